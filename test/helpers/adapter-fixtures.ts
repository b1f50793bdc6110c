/** Helpers for the adapters' unit tests: a role config, launch vars and captured CLI output. */
import { readFileSync } from 'node:fs';
import { AgentConfigSchema, type AgentConfig } from '../../src/config/project-config.ts';
import type { AgentEvent, LineParser } from '../../src/agents/events.ts';
import type { LaunchVars } from '../../src/agents/adapter.ts';

/** A role config as `orch.yaml` would give it. */
export const agentConfig = (input: Record<string, unknown>): AgentConfig => AgentConfigSchema.parse(input);

export const launchVars = (over: Partial<LaunchVars> = {}): LaunchVars => ({
  prompt: 'Implement T-1.',
  promptFile: '/state/logs/T-1/7-developer.prompt.md',
  model: 'claude-opus-4-8',
  effort: 'xhigh',
  worktree: '/repo/.orch/worktrees/sample/T-1',
  key: 'T-1',
  projectRoot: '/repo',
  binary: '/usr/local/bin/agent',
  resumeSessionId: null,
  parentEnv: {},
  ...over,
});

/** Lines a real CLI printed against orch's fake model servers (test/fixtures/captured). */
export const captured = (name: string): string[] =>
  readFileSync(new URL(`../fixtures/captured/${name}.jsonl`, import.meta.url), 'utf8')
    .split('\n')
    .filter(Boolean);

/** Every event a fresh parser makes of the lines, in order. */
export const parseAll = (parser: LineParser, lines: readonly string[]): AgentEvent[] =>
  lines.flatMap((l) => parser(l));

export const ofType = <T extends AgentEvent['type']>(events: AgentEvent[], type: T) =>
  events.filter((e): e is Extract<AgentEvent, { type: T }> => e.type === type);
