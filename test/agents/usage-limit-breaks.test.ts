/**
 * Breaks found by a hostile tester (breaker18) in usage limits and hooks, through the real CLI
 * with `command` agents that are small shell scripts printing the stream-json contract. Each test
 * states what the docs promise; they failed on the commit they were written against (8d44f72).
 * - A `rate_limit_event` whose `resetsAt` is already past pauses the adapter for one second
 *   only, so an agent that keeps reporting it is run again about once a second, forever, with a
 *   `usage_limited` event each time (docs/agents.md#usage-limits: a doubling backoff when no
 *   usable reset is named; once per pause).
 * - `retry.usage_limit_backoff_s` / `_max_s` accepted any safe integer, and a large one made the
 *   writer throw `RangeError: Invalid time value`: the task was left `queued` with
 *   "internal error: Invalid time value" and the agent run again and again. They are refused at
 *   load now, past 8 days.
 * - A job claimed before another run paused its adapter still starts its agent during the pause
 *   (no check at launch): here its before_run hook takes 4 s, the pause is 30 s.
 * - A role's `env` secret printed by a before_run hook is not redacted from the hook_failed
 *   event, the try's feedback and the hook's log when no agent of that role was launched by the
 *   process yet (after a launch, it is).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeProject, ONLY_DEVELOPMENT, processesIn, waitFor, type TempProject } from '../helpers/kit.ts';
import { runOrch } from './cli-kit.ts';

let project: TempProject | undefined;

afterEach(() => {
  if (project) for (const pid of processesIn(project.dir)) process.kill(pid, 'SIGKILL');
  project?.cleanup();
  project = undefined;
});

/** A command agent: `sh -c` of a script that prints the contract's lines. */
const shAgent = (script: string) => ({ adapter: 'command', command: ['sh', '-c', script] });

/** Prints a rejected rate_limit_event with `resetsAt` = now + `offsetS`, then an error result. */
const limitedAgent = (offsetS: string) =>
  shAgent(
    `printf '{"type":"system","subtype":"init","session_id":"s1","model":"m"}\\n'; ` +
      `printf '{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":%s,"rateLimitType":"five_hour"}}\\n' $(( $(date +%s) ${offsetS} )); ` +
      `printf '{"type":"result","subtype":"error_during_execution","is_error":true,"result":"limited"}\\n'; exit 1`,
  );

/** Writes a file and succeeds. */
const okAgent = shAgent(
  `echo done >> "work-$ORCH_TASK_KEY.txt"; ` +
    `printf '{"type":"result","subtype":"success","is_error":false,"result":"ok"}\\n'`,
);

interface ShownTask {
  status: string;
  status_detail: string | null;
  feedback: string | null;
  runs: { id: number; outcome: string | null; started_at: string }[];
  hook_failures: { hook: string; output_tail: string }[];
}

const show = (p: TempProject, key: string): ShownTask => {
  const r = p.orch(['task', 'show', key, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ShownTask;
};

const pausedAdapters = async (p: TempProject) => {
  const r = await runOrch(p, ['status', '--json'], { timeoutMs: 30_000 });
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { paused_adapters: { until: string; since: string }[] }).paused_adapters;
};

describe('usage limits under a hostile agent', () => {
  it('a reset already in the past does not pause for one second only (the doubling backoff applies)', async () => {
    project = makeProject({
      config: {
        agents: { default: limitedAgent('- 3600') },
        pipeline: ONLY_DEVELOPMENT,
        retry: { base_ms: 100, max_ms: 1000, usage_limit_backoff_s: 120 },
      },
    });
    const p = project;
    expect(p.orch(['task', 'add', 'limited']).code).toBe(0);
    const run = p.spawnOrch(['run']);
    try {
      await waitFor(
        () => show(p, 'T-1').runs.some((r) => r.outcome === 'usage_limited'),
        60_000,
        'a limited run',
      );
    } finally {
      run.kill('SIGTERM');
      await new Promise((r) => run.once('close', r));
    }
    // The pause is in force, and lasts at least the configured backoff (not a second).
    const paused = await pausedAdapters(p);
    expect(paused).toHaveLength(1);
    expect(Date.parse(paused[0]!.until) - Date.parse(paused[0]!.since)).toBeGreaterThanOrEqual(119_000);
  }, 120_000);

  it('a retry.usage_limit_backoff_s too large to be a pause is refused at load, naming the key', () => {
    // A backoff that would overflow a date is refused when the configuration loads, with its key.
    expect(() =>
      makeProject({
        config: {
          pipeline: ONLY_DEVELOPMENT,
          retry: { usage_limit_backoff_s: Number.MAX_SAFE_INTEGER, usage_limit_backoff_max_s: 10 ** 12 },
        },
      }),
    ).toThrow(/retry\.usage_limit_backoff_s[\s\S]*at most 691200[\s\S]*retry\.usage_limit_backoff_max_s/);
  });

  it('a job claimed before the pause does not start its agent during it', async () => {
    const marks = mkdtempSync(join(tmpdir(), 'orch-limit-marks-'));
    project = makeProject({
      config: {
        agents: {
          // T-1 is limited once (a mark outside its worktree remembers it), 12 s ahead.
          default: shAgent(
            `if [ "$ORCH_TASK_KEY" = T-1 ] && [ ! -e ${marks}/limited ]; then touch ${marks}/limited; ` +
              `printf '{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","resetsAt":%s,"rateLimitType":"five_hour"}}\\n' $(( $(date +%s) + 12 )); ` +
              `printf '{"type":"result","subtype":"error_during_execution","is_error":true,"result":"limited"}\\n'; exit 1; fi; ` +
              `echo done >> "work-$ORCH_TASK_KEY.txt"; ` +
              `printf '{"type":"result","subtype":"success","is_error":false,"result":"ok"}\\n'`,
          ),
        },
        pipeline: ONLY_DEVELOPMENT,
        // T-2's job is claimed with T-1's, and is still in its before_run hook when T-1 is limited.
        hooks: { before_run: 'if [ "$ORCH_TASK_KEY" = T-2 ]; then sleep 4; fi' },
      },
    });
    const p = project;
    expect(p.orch(['task', 'add', 'one']).code).toBe(0);
    expect(p.orch(['task', 'add', 'two']).code).toBe(0);
    const run = p.spawnOrch(['run', '-c', '2']);
    let until: string;
    try {
      const paused = await waitFor(async () => (await pausedAdapters(p))[0], 60_000, 'the pause');
      until = paused.until;
      await waitFor(() => show(p, 'T-2').runs.length > 0, 60_000, "T-2's run");
    } finally {
      run.kill('SIGTERM');
      await new Promise((r) => run.once('close', r));
    }
    expect(show(p, 'T-2').runs[0]!.started_at >= until).toBe(true);
  }, 150_000);
});

describe('hooks and secrets', () => {
  it("a before_run hook's output is redacted of the role's env secret before any agent of it ran", async () => {
    const secret = 'zz-role-secret-value-9d1c';
    project = makeProject({
      config: {
        agents: { default: { ...okAgent, env: { MY_API_KEY: secret } } },
        pipeline: ONLY_DEVELOPMENT,
        retry: { base_ms: 100, max_ms: 1000, max_retries: 0 },
        hooks: { before_run: 'cat leak.txt; exit 3' },
      },
      // What a build might print (a .env it reads, say): the value the role's env gives its agent.
      files: { 'leak.txt': `printing ${secret}\n` },
    });
    const p = project;
    expect(p.orch(['task', 'add', 'hooked']).code).toBe(0);
    const ran = await p.orchAsync(['run', '--until-idle'], { timeoutMs: 90_000 });
    expect(ran.code, ran.stderr).toBe(0);
    const task = show(p, 'T-1');
    expect(task.hook_failures.length).toBeGreaterThan(0);
    for (const h of task.hook_failures) expect(h.output_tail).not.toContain(secret);
    expect(task.feedback ?? '').not.toContain(secret);
  }, 120_000);
});
