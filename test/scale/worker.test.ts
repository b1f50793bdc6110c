/**
 * `orch worker` on a shared PostgreSQL database: labels route each job to a
 * worker that has its adapter, an idle worker is woken by LISTEN/NOTIFY (not
 * by its poll), and `--until-idle` exits once nothing is left anywhere.
 */
import { afterEach, expect, it } from 'vitest';
import { waitFor } from '../helpers/kit.ts';
import { makeCluster, workersLeftRunning, type Cluster } from './cluster.ts';

let cluster: Cluster | undefined;
afterEach(async () => {
  const left = cluster ? workersLeftRunning(cluster.workers) : [];
  await cluster?.cleanup();
  cluster = undefined;
  expect(left, 'worker processes left running').toEqual([]);
});

/** A command agent committed in the repository: writes a file, prints a successful result. */
const COMMAND_AGENT = `#!/bin/sh
echo "developed $ORCH_TASK_KEY" > "developed-$ORCH_TASK_KEY.txt"
echo '{"type":"result","subtype":"success","is_error":false,"result":"developed"}'
`;

it('labels route jobs: the developer stage goes only to the worker that can run its command agent', async () => {
  cluster = await makeCluster({
    config: {
      agents: {
        default: { adapter: 'scripted' },
        developer: { adapter: 'command', command: ['./agent.sh'] },
      },
    },
    files: { 'agent.sh': COMMAND_AGENT },
  });
  const c = cluster;
  for (const title of ['one', 'two', 'three']) expect(c.orch(['task', 'add', title]).code).toBe(0);
  const args = ['-c', '2', '--until-idle'];
  const scripted = c.startWorker('scripted', [...args, '--labels', 'scripted']);
  const command = c.startWorker('command', [...args, '--labels', 'command']);
  const [s, k] = await Promise.all([scripted.exited, command.exited]);
  expect(s.code, scripted.output()).toBe(0);
  expect(k.code, command.output()).toBe(0);

  const ctx = await c.context();
  try {
    const tasks = await ctx.store.listTasks();
    expect(tasks.map((t) => t.status)).toEqual(['done', 'done', 'done']);
    const runs = await ctx.store.db
      .selectFrom('agent_runs')
      .selectAll()
      .where('outcome', '=', 'ok')
      .execute();
    const pidOf = (r: { worker_id: string | null }) => Number(r.worker_id?.split(':')[1]);
    const byWorker = (pid: number | undefined) => runs.filter((r) => pidOf(r) === pid).map((r) => r.agent);
    expect(new Set(byWorker(command.child.pid))).toEqual(new Set(['developer']));
    expect(byWorker(scripted.child.pid)).not.toContain('developer');
    expect(byWorker(scripted.child.pid)).toHaveLength(tasks.length * 6);
    const jobs = await ctx.store.db.selectFrom('jobs').select(['stage', 'adapter']).execute();
    expect(new Set(jobs.filter((j) => j.stage === 'development').map((j) => j.adapter))).toEqual(
      new Set(['command']),
    );
    // The command agent's work, done on one machine, reached origin's base through the others.
    const landed = c.remoteGit(['ls-tree', '--name-only', 'main']);
    for (const t of tasks) expect(landed).toContain(`developed-${t.key}.txt`);
  } finally {
    await ctx.close();
  }
});

it('an idle worker starts a new task within milliseconds of its creation, woken by NOTIFY, not by its poll', async () => {
  cluster = await makeCluster({});
  const c = cluster;
  // A poll of a minute: only a notification can wake the worker in time. Its label matches no
  // agent, so it takes only each task's first job (no agent needed) and is idle again at once.
  const worker = c.startWorker('idle', ['-c', '1', '--labels', 'none'], { ORCH_POLL_MS: '60000' });
  const ctx = await c.context();
  try {
    await waitFor(() => worker.output().includes('worker '), 30_000, 'the worker to start');
    const project = (await ctx.store.listProjects())[0]!;
    const latencies: number[] = [];
    for (let i = 0; i < 5; i += 1) {
      // Let the worker go back to sleep before each task.
      await new Promise((r) => setTimeout(r, 300));
      const task = await ctx.store.createTask({ projectId: project.id, title: `wake ${i}` });
      const created = Date.now();
      const job = await waitFor(
        async () =>
          (await ctx.store.db.selectFrom('jobs').selectAll().where('task_id', '=', task.id).execute()).find(
            (j) => j.stage === 'created' && j.started_at,
          ),
        10_000,
        `task ${task.key} to be claimed`,
      );
      latencies.push(Date.parse(job.started_at!) - Date.parse(job.created_at));
      expect(Date.now() - created).toBeLessThan(10_000);
    }
    latencies.sort((a, b) => a - b);
    expect(latencies[2]!, `claim latencies ${latencies.join(', ')} ms`).toBeLessThan(250);
    expect(latencies[4]!).toBeLessThan(2_000);
    worker.child.kill('SIGTERM');
    expect((await worker.exited).code).toBe(0);
  } finally {
    await ctx.close();
  }
});
