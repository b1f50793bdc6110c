/**
 * The outbox invariants themselves (outbox-check.ts), on a small world worked
 * in process: they hold when every delivery arrived, and each one reports a
 * delivery lost on its side, or sent twice without a kill to explain it.
 */
import { afterEach, expect, it } from 'vitest';
import { makeProject } from '../helpers/kit.ts';
import { Outbox } from '../../src/notify/outbox.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import type { OrchContext } from '../../src/runtime/context.ts';
import { OUTBOX_INVARIANTS } from './outbox-check.ts';
import { snapshot, type Snapshot } from './invariants.ts';
import { startOutside, type Outside } from './outside.ts';
import type { OrchExit, World } from './world.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** What each outbox invariant finds, by the start of its name. */
async function check(s: Snapshot): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {};
  for (const inv of OUTBOX_INVARIANTS) found[inv.name.split(/[:,]/)[0]!] = await inv.check(s);
  return found;
}

/**
 * An imported task with two finished runs, then done; another added straight into the store;
 * everything delivered by an outbox round in this process.
 */
async function worked(): Promise<{ ctx: OrchContext; outside: Outside; keys: string[]; world: World }> {
  const outside = await startOutside();
  cleanups.push(() => outside.close());
  const project = makeProject({ keyPrefix: 'CH', config: outside.config });
  cleanups.push(() => project.cleanup());
  const ctx = await project.context();
  cleanups.push(() => ctx.close());
  const { store } = ctx;
  const key = await outside.importIssue(ctx, 'chaos task 1 clean');
  const other = await store.createTask({
    projectId: (await store.listProjects())[0]!.id,
    title: 'chaos task 2 clean',
  });
  for (const k of [key, other.key]) {
    const task = await store.getTaskByKey(k);
    for (const agent of ['developer', 'reviewer']) {
      const runId = await store.createRun({
        taskId: task.id,
        jobId: null,
        agent,
        stage: agent === 'developer' ? 'development' : 'review',
        attempt: 1,
        adapter: 'scripted',
        timeoutS: 60,
        logPath: '',
        workerId: 'test',
      });
      await store.tx((tx) =>
        store.finishRun(tx, runId, { exitCode: 0, outcome: 'ok', resultText: 'ok', error: null }),
      );
    }
    await store.tx((tx) => store.advanceStage(tx, task, 'done', { status: 'done' }));
  }
  await new Outbox({ ctx, log: createLogger({ write: () => {} }), owner: 'test' }).round();
  const exits: OrchExit[] = [];
  const world = { kind: 'sqlite', ctx, outside, exits } as unknown as World;
  return { ctx, outside, keys: [key, other.key], world };
}

const scope = (keys: string[]) => ({ keys, exitsFrom: 0, mayEscalate: [] });
const none = {
  'no event lost from the outbox': [],
  'the webhook receiver got every event': [],
  "the tracker holds one usage comment per run and each imported task's end": [],
};

it('hold when every delivery arrived, once', async () => {
  const { outside, keys, world } = await worked();
  expect(await check(await snapshot(world, scope(keys)))).toEqual(none);
  const issue = outside.github.issue(1);
  expect(issue.state).toBe('closed');
  expect(issue.comments).toHaveLength(2);
});

it('report a delivery left pending, an event the receiver never got, a comment lost', async () => {
  const { ctx, outside, keys, world } = await worked();
  const [row] = await ctx.store.outbox.items({ channel: 'sample/tracker' });
  await ctx.store.db.updateTable('outbox').set({ status: 'pending' }).where('id', '=', row!.id).execute();
  outside.received.shift();
  const real = outside.github.issue;
  outside.github.issue = (n) => ({ ...real(n), comments: real(n).comments.slice(1) });

  const found = await check(await snapshot(world, scope(keys)));
  expect(found['no event lost from the outbox']).toEqual([
    expect.stringMatching(/^CH-1: run_finished \(event \d+\) to sample\/tracker is pending after 0 attempts/),
  ]);
  expect(found['the webhook receiver got every event']).toEqual([
    expect.stringMatching(/^CH-1: event \d+ \(task_created\) never reached the receiver$/),
  ]);
  expect(found["the tracker holds one usage comment per run and each imported task's end"]).toEqual([
    expect.stringMatching(
      /^CH-1 \(#1\): no comment for the run: \*\*orch\*\* · CH-1 · development \(developer\)/,
    ),
  ]);
});

it('accept a delivery sent twice only after a kill', async () => {
  const { outside, keys, world } = await worked();
  outside.received.push({ ...outside.received.at(-1)! });
  const real = outside.github.issue;
  outside.github.issue = (n) => {
    const issue = real(n);
    return { ...issue, comments: [issue.comments[0]!, ...issue.comments] };
  };
  const twice = await check(await snapshot(world, scope(keys)));
  expect(twice['the webhook receiver got every event']).toEqual(['1 events received twice, after 0 kills']);
  expect(twice["the tracker holds one usage comment per run and each imported task's end"]).toEqual([
    '1 tracker comments posted twice, after 0 kills',
  ]);

  world.exits.push({ name: 'orch run #1', code: null, signal: 'SIGKILL', killedByUs: true, tail: '' });
  expect(await check(await snapshot(world, scope(keys)))).toEqual(none);
});
