/**
 * The state machine on PostgreSQL with several `orch worker` processes: an
 * approved stage's job carries its role's adapter; a worker whose clock is off
 * takes no live job (leases are the database's clock); and tasks that loop back
 * from their landing never fork into two job chains.
 */
import { afterEach, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { stringify } from 'yaml';
import { waitFor } from '../helpers/kit.ts';
import { makeCluster, workersLeftRunning, type Cluster } from './cluster.ts';

let cluster: Cluster | undefined;
afterEach(async () => {
  const left = cluster ? workersLeftRunning(cluster.workers) : [];
  await cluster?.cleanup();
  cluster = undefined;
  expect(left, 'worker processes left running').toEqual([]);
});

/** A command agent: writes a file, prints a successful result. */
const COMMAND_AGENT = `#!/bin/sh
echo "deployed $ORCH_TASK_KEY" > "deployed-$ORCH_TASK_KEY.txt"
echo '{"type":"result","subtype":"success","is_error":false,"result":"deployed"}'
`;

const FAKETIME = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
].find((p) => existsSync(p));

it('an approved agent stage’s job carries its role’s adapter: only a worker with that label claims it', async () => {
  cluster = await makeCluster({
    config: {
      agents: { default: { adapter: 'scripted' }, deployer: { adapter: 'command', command: ['./agent.sh'] } },
      pipeline: {
        analysis: { enabled: false },
        architecture: { enabled: false },
        'deploy-staging': { enabled: false },
        deploy: { approval: true },
      },
    },
    files: { 'agent.sh': COMMAND_AGENT },
  });
  const c = cluster;
  expect(c.orch(['task', 'add', 'approve me']).code).toBe(0);
  const scripted = c.startWorker('scripted', ['-c', '2', '--labels', 'scripted']);
  const ctx = await c.context();
  try {
    await waitFor(
      async () => (await ctx.store.getTaskByKey('APP-1')).status === 'waiting',
      150_000,
      'the approval wait',
    ).catch(async (e) => {
      const t = await ctx.store.getTaskByKey('APP-1');
      throw new Error(
        `${e.message}: ${t.stage}/${t.status} ${t.status_detail}\n${scripted.output().slice(-3000)}`,
      );
    });
    expect(c.orch(['task', 'approve', 'APP-1']).code).toBe(0);
    const job = await ctx.store.liveJobOf((await ctx.store.getTaskByKey('APP-1')).id);
    expect(job).toMatchObject({ stage: 'deploy', agent: 'deployer', adapter: 'command', status: 'queued' });
    // The scripted worker leaves it alone.
    await new Promise((r) => setTimeout(r, 2_000));
    expect((await ctx.store.getJob(job!.id))?.status).toBe('queued');
    const command = c.startWorker('command', ['-c', '1', '--labels', 'command', '--until-idle']);
    expect((await command.exited).code, command.output()).toBe(0);
    const task = await ctx.store.getTaskByKey('APP-1');
    expect(task.status).toBe('done');
    const deployRun = (await ctx.store.runsOfTask(task.id)).find((r) => r.stage === 'deploy')!;
    expect(Number(deployRun.worker_id?.split(':')[1])).toBe(command.child.pid);
    scripted.child.kill('SIGTERM');
    await scripted.exited;
  } finally {
    await ctx.close();
  }
}, 180_000);

it.skipIf(!FAKETIME)(
  'a worker whose clock is two hours ahead takes no live job: leases and due times are the database’s clock',
  async () => {
    // Two tasks: one whose developer works for a while, one whose developer fails and waits a minute to retry.
    const script = {
      tasks: [
        {
          match: { title: 'slow' },
          roles: {
            developer: { default: [{ sleep_ms: 20_000 }, { write: { path: 'a.txt', content: 'a\n' } }] },
          },
        },
        { match: { title: 'flaky' }, roles: { developer: { default: [{ exit: 1 }] } } },
      ],
    };
    cluster = await makeCluster({
      config: {
        agents: { default: { adapter: 'scripted', script: 'script.yaml' } },
        pipeline: { analysis: { enabled: false }, architecture: { enabled: false } },
        retry: { base_ms: 60_000, max_ms: 60_000 },
      },
      files: { 'script.yaml': stringify(script) },
    });
    const c = cluster;
    expect(c.orch(['task', 'add', 'slow']).code).toBe(0);
    expect(c.orch(['task', 'add', 'flaky']).code).toBe(0);
    // A lease far shorter than the skew, long enough that a loaded machine's heartbeats keep it.
    const env = { ORCH_LEASE_TTL_MS: '10000', ORCH_REAPER_INTERVAL_MS: '300' };
    const honest = c.startWorker('honest', ['-c', '2'], env);
    const ctx = await c.context();
    try {
      const slowRun = await waitFor(
        async () =>
          (await ctx.store.getRunningAgents()).find((a) => a.task_key === 'APP-1' && a.agent === 'developer'),
        60_000,
        'the slow developer',
      );
      await waitFor(
        async () => (await ctx.store.liveJobOf(2))?.last_error?.includes('retrying') === true,
        60_000,
        'the flaky developer to wait for its retry',
      );
      const skewed = c.startWorker('skewed', ['-c', '2'], {
        ...env,
        LD_PRELOAD: FAKETIME ?? '',
        FAKETIME: '+2h',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      });
      await waitFor(() => skewed.output().includes('worker '), 30_000, 'the skewed worker to start');
      expect(skewed.output()).toMatch(/20\d\d-/); // its log lines carry its own (skewed) clock
      // Several of its reaper passes go by: the live job stays the honest worker's, and the job
      // waiting a minute for its retry is not taken early.
      await new Promise((r) => setTimeout(r, 4_000));
      const slowJob = await ctx.store.getJob(slowRun.job_id!);
      expect(
        slowJob?.status,
        `${JSON.stringify(slowJob)}\n${JSON.stringify(await ctx.store.runsOfTask(1))}\n${honest.output().slice(-2000)}\n${skewed.output().slice(-2000)}`,
      ).toBe('running');
      expect(Number(slowJob?.lease_owner?.split(':')[1])).toBe(honest.child.pid);
      const flaky = await ctx.store.liveJobOf(2);
      expect(flaky?.status).toBe('queued');
      expect(flaky?.attempts).toBe(1);
      // Nothing of the slow task was reaped or interrupted meanwhile (its run is still going: the
      // workers are stopped now rather than waited out, which records that run interrupted).
      const runs = await ctx.store.runsOfTask(1);
      expect(runs.filter((r) => r.outcome === 'interrupted' || r.outcome === 'reaped')).toEqual([]);
      expect((await ctx.store.getRun(slowRun.run_id))?.status).toBe('running');
      honest.child.kill('SIGTERM');
      skewed.child.kill('SIGTERM');
      await Promise.all([honest.exited, skewed.exited]);
    } finally {
      await ctx.close();
    }
  },
  180_000,
);

/** Bounded in `npm test` (one round of 8 tasks); `npm run test:scale` and `npm run test:chaos` run 10 rounds of 20. */
const FULL = Boolean(process.env.ORCH_SCALE_ROUNDS ?? process.env.ORCH_CHAOS_FULL);
const ROUNDS = Number(process.env.ORCH_SCALE_ROUNDS ?? (process.env.ORCH_CHAOS_FULL ? 10 : 1));
const TASKS = FULL ? 20 : 8;

it(
  `${TASKS} tasks that conflict in pairs at their landing, on two workers, ${ROUNDS} round(s): all done, no task ever holds two live jobs`,
  async () => {
    let loopedBack = 0;
    for (let round = 0; round < ROUNDS; round += 1) {
      // Tasks conflict in pairs (each pair's developers write one file): the second of a pair to
      // land conflicts and loops back to development, then lands.
      cluster = await makeCluster({
        config: {
          agents: { default: { adapter: 'scripted', script: 'script.yaml' } },
          pipeline: {
            analysis: { enabled: false },
            architecture: { enabled: false },
            // Development and its landing are the loop under test: the stages between would only
            // multiply the runs of every round trip.
            review: { enabled: false },
            testing: { enabled: false },
            'deploy-staging': { enabled: false },
            deploy: { enabled: false },
          },
        },
        files: {
          'script.yaml': stringify({
            tasks: Array.from({ length: TASKS }, (_, i) => ({
              match: { key: `APP-${i + 1}` },
              roles: {
                developer: {
                  default: [
                    { write: { path: `pair-${Math.floor(i / 2)}.txt`, content: 'line by {{key}}\n' } },
                  ],
                },
              },
            })),
          }),
        },
      });
      const c = cluster;
      for (let i = 0; i < TASKS; i += 1) expect(c.orch(['task', 'add', `task ${i}`]).code).toBe(0);
      const a = c.startWorker('a', ['-c', '4', '--until-idle']);
      const b = c.startWorker('b', ['-c', '4', '--until-idle']);
      const ctx = await c.context();
      try {
        // Sample the live jobs while they work: never two of one task.
        let sampled = 0;
        let done = false;
        const both = Promise.all([a.exited, b.exited]).then((r) => ((done = true), r));
        while (!done) {
          const rows = await ctx.store.db
            .selectFrom('jobs')
            .select(['task_id'])
            .where('status', 'in', ['queued', 'running'])
            .execute();
          const ids = rows.map((r) => r.task_id);
          expect(new Set(ids).size, `live jobs ${JSON.stringify(ids)}`).toBe(ids.length);
          sampled += 1;
          await new Promise((r) => setTimeout(r, 50));
        }
        const [ea, eb] = await both;
        expect(ea.code, a.output()).toBe(0);
        expect(eb.code, b.output()).toBe(0);
        expect(sampled).toBeGreaterThan(0);
        const tasks = await ctx.store.listTasks();
        const notDone = tasks.filter((t) => t.status !== 'done');
        const why = async (t: { id: number; key: string }) =>
          (await ctx.store.gatesOfTask(t.id))
            .filter((g) => !g.passed)
            .map((g) => g.output_tail)
            .join(' | ') +
          '\n' +
          [a, b]
            .flatMap((w) => w.output().split('\n'))
            .filter((l) => l.includes(t.key))
            .join('\n');
        expect(
          notDone.map((t) => `${t.key} ${t.stage}/${t.status}: ${t.status_detail}`),
          (await Promise.all(notDone.map(why))).join('\n'),
        ).toEqual([]);
        for (const t of tasks) {
          const attempts = await ctx.store.attemptsOfTask(t.id);
          expect(attempts.map((x) => x.n)).toEqual(attempts.map((_, i) => i + 1));
          if (attempts.length > 1) loopedBack += 1;
        }
      } finally {
        await ctx.close();
      }
      await c.cleanup();
      cluster = undefined;
    }
    // The landing conflicts did send tasks back to development.
    expect(loopedBack).toBeGreaterThan(0);
  },
  600_000 * ROUNDS,
);
