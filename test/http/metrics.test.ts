/**
 * `/metrics`: the domain figures come from the store at scrape time, so they
 * count what any process recorded (here: rows written straight to the store,
 * as another worker would).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiFixture, fakeRun, type ApiFixture } from './http-kit.ts';
import { createApp } from '../../src/http/app.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import { startLoopWatchdog } from '../../src/runtime/loop-watchdog.ts';

let f: ApiFixture;
beforeAll(async () => {
  f = await apiFixture();
});
afterAll(async () => {
  await f.close();
});

/** The value of one sample, by name and exact label set. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_:]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(labels).sort()))
      return Number(m[3]);
  }
  return undefined;
}

const scrape = async (): Promise<string> => {
  const res = await f.get('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return res.text();
};

describe('/metrics', () => {
  it('counts runs, durations, tokens, cost, gates, escalations, budget stops, reaped runs and the queue', async () => {
    const empty = await scrape();
    expect(sample(empty, 'orch_queue_depth')).toBe(0);
    expect(sample(empty, 'orch_runs_total', { role: 'developer', outcome: 'ok' })).toBeUndefined();

    const key = ((await (await f.post('/api/tasks', { title: 'Measured' })).json()) as { key: string }).key;
    const task = await f.ctx.store.getTaskByKey(key);
    const dev = await fakeRun(f, key);
    await f.ctx.store.stampRun(dev.runId, 'claude-opus-4-8', 'xhigh');
    await f.ctx.store.recordUsage(dev.runId, { inputTokens: 1000, outputTokens: 200, costUsd: 0.5 });
    await f.ctx.store.finishRun(f.ctx.store.db, dev.runId, {
      exitCode: 0,
      outcome: 'ok',
      resultText: null,
      error: null,
    });
    const rev = await fakeRun(f, key, { role: 'reviewer', stage: 'review' });
    await f.ctx.store.stampRun(rev.runId, 'claude-sonnet-4-6', 'high');
    await f.ctx.store.recordUsage(rev.runId, { inputTokens: 10, outputTokens: 5, costUsd: 0.25 });
    await f.ctx.store.finishRun(f.ctx.store.db, rev.runId, {
      exitCode: 1,
      outcome: 'failed',
      resultText: null,
      error: 'boom',
    });
    const stillRunning = await fakeRun(f, key, { role: 'tester', stage: 'testing' });
    const now = new Date().toISOString();
    await f.ctx.store.tx(async (tx) => {
      await f.ctx.store.recordGate(tx, {
        task_id: task.id,
        stage: 'testing',
        name: 'check_ci_green',
        passed: 0,
        output_tail: 'x',
        started_at: now,
        finished_at: now,
      });
      await f.ctx.store.recordGate(tx, {
        task_id: task.id,
        stage: 'testing',
        name: 'check_ci_green',
        passed: 1,
        output_tail: 'y',
        started_at: now,
        finished_at: now,
      });
      await f.ctx.store.appendEvent(tx, task.id, 'escalated', { reason: 'budget_exhausted', detail: 'usd' });
      await f.ctx.store.appendEvent(tx, task.id, 'escalated', {
        reason: 'oscillation_detected',
        detail: 'A B A',
      });
      await f.ctx.store.appendEvent(tx, task.id, 'run_reaped', {
        run_id: stillRunning.runId,
        outcome: 'reaped',
        killed: true,
      });
    });

    const text = await scrape();
    expect(sample(text, 'orch_runs_total', { role: 'developer', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'orch_runs_total', { role: 'reviewer', outcome: 'failed' })).toBe(1);
    // A run in flight is not counted as finished.
    expect(sample(text, 'orch_runs_total', { role: 'tester', outcome: 'unknown' })).toBeUndefined();
    expect(sample(text, 'orch_run_duration_seconds_count', { role: 'developer' })).toBe(1);
    expect(sample(text, 'orch_run_duration_seconds_bucket', { role: 'developer', le: '+Inf' })).toBe(1);
    expect(
      sample(text, 'orch_tokens_total', { model: 'claude-opus-4-8', role: 'developer', direction: 'input' }),
    ).toBe(1000);
    expect(
      sample(text, 'orch_tokens_total', { model: 'claude-opus-4-8', role: 'developer', direction: 'output' }),
    ).toBe(200);
    expect(sample(text, 'orch_cost_usd_total', { model: 'claude-sonnet-4-6', role: 'reviewer' })).toBe(0.25);
    expect(
      sample(text, 'orch_gate_results_total', { gate: 'check_ci_green', stage: 'testing', result: 'failed' }),
    ).toBe(1);
    expect(
      sample(text, 'orch_gate_results_total', { gate: 'check_ci_green', stage: 'testing', result: 'passed' }),
    ).toBe(1);
    expect(sample(text, 'orch_escalations_total', { reason: 'oscillation_detected' })).toBe(1);
    expect(sample(text, 'orch_budget_stops_total', { reason: 'budget_exhausted' })).toBe(1);
    expect(sample(text, 'orch_budget_stops_total', { reason: 'oscillation_detected' })).toBeUndefined();
    expect(sample(text, 'orch_reaped_runs_total', { outcome: 'reaped', killed: 'true' })).toBe(1);
    expect(sample(text, 'orch_queue_depth')).toBe(1);
    expect(sample(text, 'orch_tasks', { stage: 'created', status: 'queued' })).toBe(1);
    expect(
      sample(text, 'orch_http_requests_total', { method: 'POST', route: '/api/tasks', status: '201' }),
    ).toBe(1);
  });

  it('agrees between two apps on one store: the figures are not kept in a process', async () => {
    const other = createApp(f.ctx, { webDir: null });
    const mine = await scrape();
    const theirs = await (await other.app.request('/metrics')).text();
    for (const name of ['orch_runs_total', 'orch_tokens_total', 'orch_cost_usd_total'])
      expect(theirs.split('\n').filter((l) => l.startsWith(name))).toEqual(
        mine.split('\n').filter((l) => l.startsWith(name)),
      );
    other.pulse.close();
  });

  it('counts agents in flight', async () => {
    const key = ((await (await f.post('/api/tasks', { title: 'Flying' })).json()) as { key: string }).key;
    const job = await f.ctx.store.claimJob('w', 60_000);
    await fakeRun(f, (await f.ctx.store.getTask(job!.task_id)).key, { jobId: job!.id });
    expect(sample(await scrape(), 'orch_running_agents')).toBe(1);
    expect(key).toBeTruthy();
  });

  it("shows the event loop's delay and counts a stall, which is also a warning in the log", async () => {
    const before = await scrape();
    // No watchdog runs in this process yet: nothing to show but zero stalls.
    expect(sample(before, 'orch_event_loop_delay_seconds', { stat: 'max' })).toBeUndefined();
    const warnings: string[] = [];
    const stop = startLoopWatchdog({ log: createLogger({ write: (l) => warnings.push(l), json: false }) });
    try {
      // The delay histogram's first sample is its baseline: let it take one.
      await new Promise((resolve) => setTimeout(resolve, 100));
      // What a synchronous read of a FIFO would do, for a bounded while: block the loop.
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        // busy
      }
      await new Promise((resolve) => setTimeout(resolve, 400));
      const text = await scrape();
      expect(sample(text, 'orch_event_loop_stalls_total')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'orch_event_loop_longest_stall_seconds')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'orch_event_loop_delay_seconds', { stat: 'max' })).toBeGreaterThanOrEqual(1);
      expect(warnings.join('\n')).toMatch(/warn: the event loop was blocked for 1\d{3} ms/);
      // Each scrape starts a new window: the stall is history for the delay, not for the count.
      const next = await scrape();
      expect(sample(next, 'orch_event_loop_delay_seconds', { stat: 'max' })).toBeLessThan(1);
      expect(sample(next, 'orch_event_loop_stalls_total')).toBe(sample(text, 'orch_event_loop_stalls_total'));
    } finally {
      stop();
    }
  });
});
