/**
 * The fix the "orch run SIGKILLed" fault called for once the outbox had
 * channels: deliveries leased by an orchestrator that was SIGKILLed are taken
 * back by the next round of any orchestrator on the same host, instead of
 * stalling (with every later message of those tasks) for the lease's two
 * minutes. A lease held by a live process is left alone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { WORKER_HOST } from '../../src/runtime/worker-id.ts';
import { afterEach, expect, it } from 'vitest';
import { makeProject, type TempProject } from '../helpers/kit.ts';
import { Outbox } from '../../src/notify/outbox.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import type { OrchContext } from '../../src/runtime/context.ts';
import { startOutside, type Outside } from './outside.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A project whose outbox delivers to a webhook receiver, with one task's events waiting. */
async function world(): Promise<{ ctx: OrchContext; outside: Outside; project: TempProject }> {
  const outside = await startOutside();
  cleanups.push(() => outside.close());
  const project = makeProject({ config: outside.config });
  cleanups.push(() => project.cleanup());
  const ctx = await project.context();
  cleanups.push(() => ctx.close());
  Object.assign(ctx.env, outside.env);
  const { id } = (await ctx.store.listProjects())[0]!;
  await ctx.store.createTask({ projectId: id, title: 'Say hello' });
  return { ctx, outside, project };
}

/** A process of this host: `alive` keeps running until the test ends; otherwise it has exited. */
async function processOfThisHost(alive: boolean): Promise<string> {
  const child: ChildProcess = spawn(process.execPath, ['-e', alive ? 'setTimeout(() => {}, 600000)' : ''], {
    stdio: 'ignore',
  });
  if (alive)
    cleanups.push(async () => {
      child.kill('SIGKILL');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    });
  else await once(child, 'exit');
  return `${WORKER_HOST}:${child.pid}:chaos`;
}

const log = createLogger({ write: () => {} });

it('takes back the deliveries a dead orchestrator leased, and sends them', async () => {
  const { ctx, outside } = await world();
  const dead = await processOfThisHost(false);
  const outbox = new Outbox({ ctx, log, owner: `${WORKER_HOST}:${process.pid}:live` });
  await outbox.fanOut();
  // The dead process claimed them and died before sending (or after, unrecorded).
  const leased = await ctx.store.outbox.claimDue(dead, 120_000, 50);
  expect(leased.map((i) => i.kind)).toEqual(['task_created']);

  await outbox.round();

  expect(outside.received.map((r) => r.event)).toEqual(['task_created']);
  expect((await ctx.store.outbox.items()).map((i) => [i.kind, i.status, i.lease_owner])).toEqual([
    ['task_created', 'sent', null],
  ]);
});

it('leaves alone the deliveries a live process leased', async () => {
  const { ctx, outside } = await world();
  const live = await processOfThisHost(true);
  const outbox = new Outbox({ ctx, log, owner: `${WORKER_HOST}:${process.pid}:live` });
  await outbox.fanOut();
  expect(await ctx.store.outbox.claimDue(live, 120_000, 50)).toHaveLength(1);

  await outbox.round();

  expect(outside.received).toEqual([]);
  expect((await ctx.store.outbox.items()).map((i) => [i.status, i.lease_owner])).toEqual([['pending', live]]);
  // The busy check still counts it: `--until-idle` waits for its lease rather than dropping it.
  expect(await outbox.busy()).toBe(true);
});
