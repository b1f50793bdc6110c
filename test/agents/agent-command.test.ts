/**
 * From `orch.yaml` to the argv and environment of an agent: the adapter keys
 * of a role, the `prices:` table, and which environment wins.
 */
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, parseProjectConfig, type ProjectConfig } from '../../src/config/project-config.ts';
import { effectiveConfig } from '../../src/config/settings.ts';
import type { ProjectRuntime } from '../../src/runtime/context.ts';
import type { Project } from '../../src/store/schema.ts';
import { agentCommand } from '../../src/runtime/launcher.ts';
import { SCRIPTED_AGENT_PATH } from '../../src/agents/scripted/argv.ts';
import { ORCH_BIN_DIR } from '../../src/agents/binary.ts';

const runtime = (
  yaml: Record<string, unknown>,
): Pick<ProjectRuntime, 'config' | 'project'> & { raw: ProjectConfig } => {
  const raw = parseProjectConfig(stringify(yaml), 'orch.yaml');
  return {
    project: { id: 1, name: 'sample', root_path: '/repo' } as Project,
    raw,
    config: effectiveConfig(raw, {}),
  };
};
const vars = {
  prompt: 'Do T-1.',
  promptFile: '/p.md',
  model: 'claude-opus-4-8',
  effort: 'xhigh',
  worktree: '/wt',
  key: 'T-1',
};

describe('agent config keys', () => {
  it('accepts every adapter key on a role', () => {
    const rt = runtime({
      agents: {
        developer: {
          adapter: 'claude-code',
          binary: 'tools/claude',
          args: ['--fallback-model', 'claude-sonnet-4-5'],
          max_turns: 50,
          allowed_tools: ['Edit', 'Bash(npm test)'],
          system_prompt_append: 'Keep it small.',
          permission_mode: 'edits',
          model: 'claude-opus-4-8',
          effort: 'max',
        },
      },
      prices: { 'my-model': { input: 1, output: 2, cache_read: 0.1 } },
    });
    expect(rt.config.agents.developer).toMatchObject({
      adapter: 'claude-code',
      max_turns: 50,
      permission_mode: 'edits',
    });
    expect(rt.raw.prices).toEqual({ 'my-model': { input: 1, output: 2, cache_read: 0.1 } });
  });

  it.each([
    [{ agents: { developer: { adapter: 'cursor' } } }, 'agents.developer.adapter'],
    [{ agents: { reviewer: { permission_mode: 'yolo' } } }, 'agents.reviewer.permission_mode'],
    [{ agents: { default: { max_turns: 0 } } }, 'agents.default.max_turns'],
    [{ prices: { 'gpt-5': { input: -1, output: 2 } } }, 'prices.gpt-5.input'],
    [{ prices: { 'gpt-5': { input: 1 } } }, 'prices.gpt-5.output'],
  ])('refuses %j at %s', (yaml, key) => {
    let error: unknown;
    try {
      runtime(yaml);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.key)).toContain(key);
  });
});

describe('agent command', () => {
  it('runs the scripted agent exactly as before: this Node binary, its script resolved in the project', () => {
    const rt = runtime({ agents: { default: { adapter: 'scripted', script: '.orch/script.yaml' } } });
    expect(agentCommand({ PATH: '/nowhere' }, rt, 'developer', vars)).toEqual({
      argv: [process.execPath, SCRIPTED_AGENT_PATH],
      env: { ORCH_SCRIPT_FILE: '/repo/.orch/script.yaml' },
    });
  });

  it('keeps the command agent placeholders', () => {
    const rt = runtime({
      agents: { default: { adapter: 'command', command: ['my-agent', '{key}', '{model}', '{prompt}'] } },
    });
    expect(agentCommand({}, rt, 'analyst', vars).argv).toEqual([
      'my-agent',
      'T-1',
      'claude-opus-4-8',
      'Do T-1.',
    ]);
  });

  it("finds a CLI in orch's node_modules/.bin when it is not on PATH, and lets the role's env override the adapter's", () => {
    const rt = runtime({
      agents: {
        developer: { adapter: 'gemini', env: { GEMINI_CLI_TRUST_WORKSPACE: 'false', GEMINI_API_KEY: 'k' } },
      },
    });
    const { argv, env } = agentCommand(
      { PATH: '/nowhere', GEMINI_CLI_HOME: '/cfg/gemini' },
      rt,
      'developer',
      vars,
    );
    expect(argv[0]).toBe(`${ORCH_BIN_DIR}/gemini`);
    expect(env).toEqual({
      GEMINI_CLI_TRUST_WORKSPACE: 'false',
      GEMINI_CLI_HOME: '/cfg/gemini',
      GEMINI_API_KEY: 'k',
    });
  });

  it('never lets a role env replace a contract variable the adapter sets', () => {
    const rt = runtime({
      agents: {
        default: { adapter: 'scripted', script: 's.yaml', env: { ORCH_SCRIPT_FILE: '/elsewhere.yaml' } },
      },
    });
    expect(agentCommand({}, rt, 'tester', vars).env.ORCH_SCRIPT_FILE).toBe('/repo/s.yaml');
  });
});
