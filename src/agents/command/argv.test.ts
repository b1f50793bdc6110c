import { describe, expect, it } from 'vitest';
import { agentConfig, launchVars } from '../../../test/helpers/adapter-fixtures.ts';
import { commandArgv, commandEnv } from './argv.ts';

describe('command argv', () => {
  it('replaces every placeholder in command and args, and nothing else', () => {
    const cfg = agentConfig({
      adapter: 'command',
      command: ['./agent.sh', '--model', '{model}', '--effort={effort}', '{prompt}'],
      args: ['--in', '{worktree}', '--file', '{prompt_file}', '--task', '{key}', '{unknown}', '$HOME'],
    });
    expect(commandArgv(cfg, launchVars())).toEqual([
      './agent.sh',
      '--model',
      'claude-opus-4-8',
      '--effort=xhigh',
      'Implement T-1.',
      '--in',
      '/repo/.orch/worktrees/sample/T-1',
      '--file',
      '/state/logs/T-1/7-developer.prompt.md',
      '--task',
      'T-1',
      '{unknown}',
      '$HOME',
    ]);
  });

  it('never expands a placeholder inside a substituted value', () => {
    const cfg = agentConfig({ adapter: 'command', command: ['a', '{prompt}'] });
    expect(commandArgv(cfg, launchVars({ prompt: 'use {model} literally' }))).toEqual([
      'a',
      'use {model} literally',
    ]);
  });

  it('adds no environment of its own', () => {
    expect(commandEnv()).toEqual({});
  });
});
