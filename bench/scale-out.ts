/**
 * Scale-out end to end: 1, 2 and 4 `orch worker` processes, each with its own
 * home and clone of one bare remote, on one PostgreSQL database, carry the
 * same batch of tasks through three agent stages with the no-op agent and the
 * git handoff on (every stage syncs from and publishes to the remote, every
 * landing pushes the base). Figures: tasks/s for each worker count, and the
 * scaling efficiency (tasks/s with N workers ÷ (N × tasks/s with one)).
 *
 *   ORCH_BENCH_SCALE_TASKS (200)  ORCH_BENCH_SCALE_WORKERS (1,2,4)  ORCH_BENCH_SCALE_CONCURRENCY (2)
 */
import { join } from 'node:path';
import { makeCluster } from '../test/scale/cluster.ts';
import type { Figure } from './chart.ts';

const int = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (v: number, digits = 2) => Number(v.toFixed(digits));

/** Tasks/s of `workers` workers over `tasks` tasks, from the first claim's chance to the last task done. */
async function rate(workers: number, tasks: number, concurrency: number, agent: string): Promise<number> {
  const all = ['analysis', 'architecture', 'development', 'review', 'testing', 'deploy-staging', 'deploy'];
  const stages = ['development', 'review', 'testing'];
  const pipeline = Object.fromEntries(
    all.map((s) => [s, stages.includes(s) ? { gates: [] } : { enabled: false }]),
  );
  const cluster = await makeCluster({
    config: { agents: { default: { adapter: 'command', command: [agent] } }, pipeline },
  });
  try {
    const ctx = await cluster.context();
    try {
      const project = (await ctx.store.listProjects())[0]!;
      // Tasks go in first, so every worker count starts from the same full queue.
      for (let i = 1; i <= tasks; i += 1)
        await ctx.store.createTask({ projectId: project.id, title: `scale ${i}` });
      const t0 = performance.now();
      for (let w = 1; w <= workers; w += 1)
        cluster.startWorker(`w${w}`, ['--concurrency', String(concurrency)]);
      const deadline = Date.now() + Math.max(300_000, tasks * 2_000);
      for (;;) {
        const row = await ctx.store.db
          .selectFrom('tasks')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('status', 'in', ['done', 'escalated'])
          .executeTakeFirstOrThrow();
        if (Number(row.n) >= tasks) break;
        if (Date.now() > deadline) throw new Error(`scale-out: ${row.n} of ${tasks} tasks ended in time`);
        await sleep(100);
      }
      const seconds = (performance.now() - t0) / 1000;
      const escalated = await ctx.store.db
        .selectFrom('tasks')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('status', '=', 'escalated')
        .executeTakeFirstOrThrow();
      if (Number(escalated.n) > 0) throw new Error(`scale-out: ${escalated.n} of ${tasks} tasks escalated`);
      return tasks / seconds;
    } finally {
      for (const w of cluster.workers) w.child.kill('SIGTERM');
      await Promise.all(cluster.workers.map((w) => w.exited));
      await ctx.close();
    }
  } finally {
    await cluster.cleanup();
  }
}

export async function scaleOut(fixtures: string): Promise<Figure[]> {
  const tasks = int('ORCH_BENCH_SCALE_TASKS', 200);
  const concurrency = int('ORCH_BENCH_SCALE_CONCURRENCY', 2);
  const counts = (process.env.ORCH_BENCH_SCALE_WORKERS ?? '1,2,4').split(',').map(Number);
  const agent = join(fixtures, 'noop-agent.sh');
  const rates = new Map<number, number>();
  for (const n of counts) rates.set(n, await rate(n, tasks, concurrency, agent));
  const one = rates.get(1) ?? null;
  return counts.map((n): Figure => {
    const tps = rates.get(n)!;
    const efficiency = one === null ? null : tps / (n * one);
    return {
      name: `scale-out on PostgreSQL: ${n} worker${n === 1 ? '' : 's'} × c=${concurrency}, ${tasks} tasks × 3 stages, git handoff`,
      value: round(tps),
      unit: 'tasks/s',
      reference: n === 1 || one === null ? null : round(n * one),
      ratio: efficiency === null || n === 1 ? null : round(efficiency, 3),
      target: n === 4 ? 'efficiency ≥ 0.7' : n === 1 ? '' : 'informational',
      met: n === 4 && efficiency !== null ? efficiency >= 0.7 : null,
    };
  });
}
