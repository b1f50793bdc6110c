/**
 * Issue 3 through the whole runtime: a real `orch run` with fake agents that
 * hang, go silent, or print their result and hang. Each run is finalized with
 * its log kept, the task goes where anti-salvage says, and no process is left.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, makeProject, processesIn, type TempProject } from '../helpers/kit.ts';

let project: TempProject | undefined;
afterEach(() => {
  project?.cleanup();
  project = undefined;
});

interface Shown {
  stage: string;
  status: string;
  terminal_reason: string | null;
  runs: {
    role: string;
    outcome: string;
    exit_code: number | null;
    status: string;
    log_path: string;
    model: string | null;
    input_tokens: number | null;
  }[];
}

function developerIs(fixture: string, extra: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  project = makeProject({
    config: {
      agents: {
        default: { adapter: 'scripted' },
        developer: { adapter: 'command', command: [join(FIXTURES, 'agents', fixture)] },
      },
      retry: { max_retries: 1, base_ms: 50, max_ms: 100 },
      timeouts: { agent_kill_grace_seconds: 1, ...extra },
    },
  });
  expect(project.orch(['task', 'add', fixture]).code).toBe(0);
  const r = project.orch(['run', '--until-idle'], { env });
  expect(r.code, r.stderr).toBe(0);
  const shown = JSON.parse(project.orch(['task', 'show', 'T-1', '--json']).stdout) as Shown;
  const dev = shown.runs.filter((x) => x.role === 'developer');
  for (const run of dev) {
    expect(run.status).toBe('finished');
    expect(existsSync(run.log_path)).toBe(true);
  }
  expect(processesIn(project.dir)).toEqual([]);
  return { shown, dev };
}

describe('the launcher under a real orch run', () => {
  it('a developer that never ends is killed at its timeout, retried, then escalated; never advanced', () => {
    const { shown, dev } = developerIs(
      'sleep-forever.sh',
      {},
      { ORCH_AGENT_TIMEOUT_OVERRIDES_JSON: '{"developer": 1}' },
    );
    expect(shown).toMatchObject({
      stage: 'development',
      status: 'escalated',
      terminal_reason: 'agent_failure',
    });
    expect(dev.map((r) => r.outcome)).toEqual(['timeout', 'timeout']);
    expect(dev.every((r) => r.exit_code !== null && r.exit_code < 0)).toBe(true);
    expect(dev.every((r) => r.model === 'claude-opus-4-8')).toBe(true); // the launch stamp survives the kill
    expect(readFileSync(dev[0]!.log_path, 'utf8')).toContain('[orch]');
  });

  it('a developer that goes silent is ended by the stall watchdog and retried', () => {
    const { shown, dev } = developerIs('silent-stall.sh', { stall_timeout_s: 1 });
    expect(shown).toMatchObject({
      stage: 'development',
      status: 'escalated',
      terminal_reason: 'agent_failure',
    });
    expect(dev.map((r) => r.outcome)).toEqual(['stalled', 'stalled']);
    expect(readFileSync(dev[0]!.log_path, 'utf8')).toContain('thinking...');
  });

  it('a developer that prints its result and hangs is ended after the grace and counted as finished', () => {
    const { shown, dev } = developerIs('result-then-hang.sh', {}, { ORCH_RESULT_GRACE_MS: '300' });
    // Every run counts as finished (none is retried as a failure); the fixture writes no file, so the
    // development gate sends it round the loop until no_progress, which is the loop's business, not the launcher's.
    expect(dev.length).toBeGreaterThan(0);
    expect(dev.every((r) => r.outcome === 'ok' && r.exit_code !== null && r.input_tokens === 10)).toBe(true);
    expect(shown.terminal_reason).toBe('no_progress');
  });

  it('a developer that exits 0 without a result is not salvaged', () => {
    const { shown, dev } = developerIs('exit0-no-result.sh');
    expect(dev.map((r) => [r.outcome, r.exit_code])).toEqual([
      ['no_result', 0],
      ['no_result', 0],
    ]);
    expect(shown).toMatchObject({
      stage: 'development',
      status: 'escalated',
      terminal_reason: 'agent_failure',
    });
  });
});
