/**
 * Issue-8 acceptance: four `orch worker` processes, each with its own home and
 * its own clone of one bare remote, share one PostgreSQL database and work
 * the whole default pipeline for many tasks with the scripted agent. One
 * worker is SIGKILLed mid-run. Every task must end `done`, advanced exactly
 * once per stage, none lost, no run left `running`, and every task's work
 * must have reached the remote's base branch through git handoffs between
 * workers.
 *
 * `ORCH_SCALE_TASKS` sets the number of tasks: 12 in `npm test` (bounded: the
 * same kill, handoffs and checks, under a minute on two cores); `npm run
 * test:scale` is the full run the issue asks for, 200 tasks (figures in
 * docs/performance.md).
 */
import { afterEach, expect, it } from 'vitest';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processesIn, waitFor } from '../helpers/kit.ts';
import { makeCluster, workersLeftRunning, type Cluster } from './cluster.ts';

const TASKS = Math.max(8, Number(process.env.ORCH_SCALE_TASKS ?? 12));
const NODE_CACHE = join(tmpdir(), 'orch-test-node-compile-cache');
const WORKERS = 4;
const CONCURRENCY = 2;
const PIPELINE = [
  'created>analysis',
  'analysis>architecture',
  'architecture>development',
  'development>review',
  'review>testing',
  'testing>deploy-staging',
  'deploy-staging>deploy',
  'deploy>done',
];

let cluster: Cluster | undefined;
afterEach(async () => {
  const left = cluster ? workersLeftRunning(cluster.workers) : [];
  await cluster?.cleanup();
  cluster = undefined;
  expect(left, 'worker processes left running').toEqual([]);
});

it(
  `${TASKS} tasks, ${WORKERS} workers on one shared database, one SIGKILLed mid-run: all done, once each`,
  async () => {
    const started = Date.now();
    cluster = await makeCluster({
      // Node's compile cache makes each scripted agent start about twice as fast.
      config: { agents: { default: { adapter: 'scripted', env: { NODE_COMPILE_CACHE: NODE_CACHE } } } },
    });
    const c = cluster;
    const ctx = await c.context();
    try {
      // One task through the CLI (as a user adds it), the rest straight into the store.
      const viaCli = c.orch(['task', 'add', 'from the command line', '--json']);
      expect(viaCli.code, viaCli.stderr).toBe(0);
      const project = (await ctx.store.listProjects())[0]!;
      expect(project.remote_url).toBe(c.remote);
      for (let i = 2; i <= TASKS; i += 1)
        await ctx.store.createTask({ projectId: project.id, title: `task ${i}` });

      const env = { ORCH_LEASE_TTL_MS: '2000', ORCH_REAPER_INTERVAL_MS: '500' };
      const args = ['-c', String(CONCURRENCY), '--until-idle', '--json'];
      const workers = Array.from({ length: WORKERS }, (_, i) => c.startWorker(`w${i + 1}`, args, env));
      const victim = workers[1]!;

      // Kill one worker while it is running an agent, a third of the way through the work.
      const finishedRuns = async () =>
        Number(
          (
            await ctx.store.db
              .selectFrom('agent_runs')
              .select((eb) => eb.fn.countAll<number>().as('n'))
              .where('status', '=', 'finished')
              .executeTakeFirstOrThrow()
          ).n,
        );
      await waitFor(
        async () =>
          (await finishedRuns()) >= (TASKS * 7) / 3 &&
          (await ctx.store.getRunningAgents()).some((a) => a.worker_id?.includes(`:${victim.child.pid}:`)),
        // The workers' start (clones, a loaded machine) is the same for any number of tasks.
        60_000 + TASKS * 3_000,
        `a third of the runs finished and ${victim.name} running an agent`,
      );
      victim.child.kill('SIGKILL');
      expect((await victim.exited).signal).toBe('SIGKILL');
      const runsAtKill = await finishedRuns();
      // The victim's runs cut off by the kill (its agent may have ended in the moment between the
      // check and the signal, on a loaded machine): each must end interrupted and be worked again.
      const cutOff = (
        await ctx.store.db
          .selectFrom('agent_runs')
          .select('id')
          .where('status', '=', 'running')
          .where('worker_id', 'like', `%:${victim.child.pid}:%`)
          .execute()
      ).map((r) => r.id);

      const survivors = workers.filter((w) => w !== victim);
      const exits = await Promise.all(survivors.map((w) => w.exited));
      for (const [i, e] of exits.entries())
        expect(e.code, `${survivors[i]!.name} exit\n${survivors[i]!.output().slice(-3000)}`).toBe(0);
      const elapsedS = (Date.now() - started) / 1000;

      // Every task done, none lost.
      const tasks = await ctx.store.listTasks();
      expect(tasks).toHaveLength(TASKS);
      expect(
        tasks
          .filter((t) => t.status !== 'done')
          .map((t) => `${t.key} ${t.stage}/${t.status}: ${t.status_detail}`),
      ).toEqual([]);
      expect(runsAtKill).toBeLessThan(TASKS * 7);

      // Every stage advanced exactly once, in pipeline order.
      const events = await ctx.store.db
        .selectFrom('events')
        .select(['task_id', 'payload'])
        .where('kind', '=', 'stage_changed')
        .orderBy('id')
        .execute();
      const moves = new Map<number, string[]>();
      for (const e of events) {
        const m = JSON.parse(e.payload) as { from: string; to: string };
        moves.set(e.task_id!, [...(moves.get(e.task_id!) ?? []), `${m.from}>${m.to}`]);
      }
      // A task sent back from a failed landing says why (the gate's output), should it ever happen.
      const failedGates = await ctx.store.db
        .selectFrom('gate_results')
        .select(['task_id', 'name', 'output_tail'])
        .where('passed', '=', 0)
        .execute();
      for (const t of tasks) {
        const why = failedGates.filter((g) => g.task_id === t.id).map((g) => `${g.name}: ${g.output_tail}`);
        expect(moves.get(t.id), `${t.key} ${why.join('; ')}`).toEqual(PIPELINE);
      }

      // Nothing left running or queued; the victim's run in flight was finalized by a survivor.
      const runs = await ctx.store.db.selectFrom('agent_runs').selectAll().orderBy('id').execute();
      expect(runs.filter((r) => r.status === 'running')).toEqual([]);
      const jobs = await ctx.store.db.selectFrom('jobs').select(['status']).execute();
      expect(jobs.filter((j) => j.status === 'queued' || j.status === 'running')).toEqual([]);
      const victimId = runs.find((r) => r.worker_id?.includes(`:${victim.child.pid}:`))!.worker_id;
      const interrupted = runs.filter((r) => r.worker_id === victimId && r.outcome === 'interrupted');
      expect(interrupted.map((r) => r.id)).toEqual(expect.arrayContaining(cutOff));
      // …and its job was reclaimed by lease expiry and finished by another worker.
      for (const r of interrupted) {
        const retried = runs.filter((x) => x.job_id === r.job_id && x.id > r.id);
        const task = tasks.find((t) => t.id === r.task_id)!;
        expect(
          retried.some((x) => x.worker_id !== victimId && x.outcome === 'ok') || task.status === 'done',
        ).toBe(true);
      }
      // Every agent stage has one clean run per task (retries aside). A run of the victim's that
      // ended ok just before the kill left its work uncommitted in the victim's clone: another
      // worker runs that stage again, so that one run is not counted.
      const redone = (r: (typeof runs)[number]) =>
        r.worker_id === victimId &&
        runs.some((x) => x.task_id === r.task_id && x.stage === r.stage && x.id > r.id && x.outcome === 'ok');
      for (const t of tasks) {
        const ok = runs
          .filter((r) => r.task_id === t.id && r.outcome === 'ok' && !redone(r))
          .map((r) => r.stage);
        expect(ok, t.key).toEqual([
          'analysis',
          'architecture',
          'development',
          'review',
          'testing',
          'deploy-staging',
          'deploy',
        ]);
      }

      // Stages handed off between workers, and every task's work reached origin's base.
      const handedOff = tasks.filter((t) => {
        const ids = runs.filter((r) => r.task_id === t.id && r.outcome === 'ok').map((r) => r.worker_id);
        return new Set(ids).size > 1;
      });
      expect(handedOff.length).toBeGreaterThan(TASKS / 2);
      const landed = new Set(c.remoteGit(['ls-tree', '-r', '--name-only', 'main']).split('\n'));
      expect(tasks.filter((t) => !landed.has(`docs/tasks/${t.key}/adr.md`)).map((t) => t.key)).toEqual([]);

      // No agent left behind in any worker's worktrees.
      expect(processesIn(c.root)).toEqual([]);
      console.log(
        `scale-out: ${TASKS} tasks × 7 agent stages, ${WORKERS} workers × ${CONCURRENCY}, one killed after ${runsAtKill} runs: ${elapsedS.toFixed(1)} s, ${runs.length} runs (${interrupted.length} interrupted), ${handedOff.length} tasks handed off between workers`,
      );
    } finally {
      await ctx.close();
    }
  },
  Number(process.env.ORCH_SCALE_TIMEOUT_MS ?? 240_000 + TASKS * 4_000),
);
