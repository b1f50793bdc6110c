/**
 * What must hold after every fault, once the orchestrators have worked the
 * queue to the end. Each invariant returns its violations (empty when it
 * holds), so one check reports everything that is wrong at once and the
 * report can say which invariants held.
 *
 * To add one, push an entry onto {@link INVARIANTS}: it gets the same
 * snapshot and runs after every fault. The outbox's (no event lost, from
 * the store's side and from the outside's) are in outbox-check.ts.
 */
import { statSync } from 'node:fs';
import { sql } from 'kysely';
import type { AgentRun, Attempt, Job, OrchEvent, OutboxItem, Task } from '../../src/store/schema.ts';
import { processGroupAlive } from '../../src/runtime/process/run-agent-process.ts';
import { ledgerDisagreement } from '../helpers/ledger-check.ts';
import { processesIn, processesWith } from '../helpers/kit.ts';
import { EXPECTED, kindOfTitle } from './workload.ts';
import type { OrchExit, World } from './world.ts';
import { OUTBOX_INVARIANTS } from './outbox-check.ts';

/** The store as the invariants see it, read once after a fault: the tasks of a wave and their rows. */
export interface Snapshot {
  world: World;
  /** The keys of the tasks added; every one must be in the store. */
  keys: readonly string[];
  tasks: Task[];
  runs: AgentRun[];
  jobs: Job[];
  attempts: Attempt[];
  events: OrchEvent[];
  /** The outbox's deliveries of the tasks' events. */
  outbox: OutboxItem[];
  /** The project's name (channel ids are `<project>/<channel>`). */
  project: string;
  /** The orchestrator processes that ended while the wave was worked. */
  exits: OrchExit[];
  /** Terminal reasons the fault may cause besides the scripted ones. */
  mayEscalate: readonly string[];
}

export interface Invariant {
  name: string;
  check(s: Snapshot): Promise<string[]> | string[];
}

export async function snapshot(
  world: World,
  scope: { keys: readonly string[]; exitsFrom: number; mayEscalate: readonly string[] },
): Promise<Snapshot> {
  const { db } = world.ctx.store;
  const tasks = await db
    .selectFrom('tasks')
    .selectAll()
    .where('key', 'in', [...scope.keys, ''])
    .orderBy('id')
    .execute();
  const ids = [...tasks.map((t) => t.id), -1];
  const [runs, jobs, attempts, events, outbox, projects] = await Promise.all([
    db.selectFrom('agent_runs').selectAll().where('task_id', 'in', ids).orderBy('id').execute(),
    db.selectFrom('jobs').selectAll().where('task_id', 'in', ids).orderBy('id').execute(),
    db
      .selectFrom('attempts')
      .selectAll()
      .where('task_id', 'in', ids)
      .orderBy('task_id')
      .orderBy('n')
      .execute(),
    db.selectFrom('events').selectAll().where('task_id', 'in', ids).orderBy('id').execute(),
    db.selectFrom('outbox').selectAll().where('task_id', 'in', ids).orderBy('id').execute(),
    world.ctx.store.listProjects(),
  ]);
  return {
    world,
    keys: scope.keys,
    tasks,
    runs,
    jobs,
    attempts,
    events,
    outbox,
    project: projects[0]!.name,
    exits: world.exits.slice(scope.exitsFrom),
    mayEscalate: scope.mayEscalate,
  };
}

const byTask = <T extends { task_id: number | null }>(rows: readonly T[], task: Task): T[] =>
  rows.filter((r) => r.task_id === task.id);

/** The ledger copy written last (a cluster keeps one per worker clone that wrote it). */
function newest(paths: readonly string[]): string | null {
  let best: { path: string; mtime: number } | null = null;
  for (const path of paths) {
    const mtime = statSync(path).mtimeMs;
    if (!best || mtime > best.mtime) best = { path, mtime };
  }
  return best?.path ?? null;
}

export const INVARIANTS: Invariant[] = [
  {
    name: 'every task done or escalated with a reason',
    check: (s) => [
      ...s.keys.filter((k) => !s.tasks.some((t) => t.key === k)).map((k) => `${k}: missing from the store`),
      ...s.tasks.flatMap((t) => {
        if (t.status === 'done' && t.stage === 'done') return [];
        if (t.status === 'escalated' && t.terminal_reason && t.status_detail) {
          const packets = s.world.packetFiles(t.key);
          return packets.length
            ? []
            : [`${t.key}: escalated (${t.terminal_reason}) without a terminal packet`];
        }
        return [
          `${t.key}: ended ${t.stage}/${t.status} (reason ${t.terminal_reason ?? 'none'}: ${t.status_detail ?? ''})`,
        ];
      }),
    ],
  },
  {
    name: 'each task ends as its script says (or as the fault may make it)',
    check: (s) =>
      s.tasks.flatMap((t) => {
        const expected = EXPECTED[kindOfTitle(t.title)];
        const got = t.status === 'done' ? 'done' : (t.terminal_reason ?? t.status);
        if (got === expected || s.mayEscalate.includes(got)) return [];
        return [`${t.key} (${t.title}): expected ${expected}, got ${got}: ${t.status_detail ?? ''}`];
      }),
  },
  {
    name: 'the ledger file agrees with the database',
    check: (s) =>
      s.tasks.flatMap((t) => {
        const attempts = byTask(s.attempts, t);
        const path = newest(s.world.ledgerFiles(t.key));
        if (!path) return attempts.length ? [`${t.key}: ${attempts.length} attempts and no ledger file`] : [];
        const problem = ledgerDisagreement(path, t, attempts);
        return problem ? [problem] : [];
      }),
  },
  {
    name: 'attempts numbered 1..n, one clean development and review run each',
    check: (s) =>
      s.tasks.flatMap((t) => {
        const problems: string[] = [];
        const ns = byTask(s.attempts, t).map((a) => a.n);
        if (ns.some((n, i) => n !== i + 1)) problems.push(`${t.key}: attempts numbered ${ns.join(',')}`);
        for (const role of ['developer', 'reviewer']) {
          const clean = byTask(s.runs, t)
            .filter((r) => r.agent === role && r.outcome === 'ok')
            .map((r) => r.attempt);
          if (new Set(clean).size !== clean.length)
            problems.push(`${t.key}: more than one clean ${role} run for an attempt (${clean.join(',')})`);
        }
        return problems;
      }),
  },
  {
    name: 'no stage moved twice',
    check: (s) =>
      s.tasks.flatMap((t) => {
        // Each move starts where the last one ended: a stage that advanced twice (two workers
        // finishing it) shows as two moves out of it in a row. A loop back to development
        // and forward again is a legitimate repeat and keeps the chain.
        const moves = byTask(s.events, t)
          .filter((e) => e.kind === 'stage_changed')
          .map((e) => JSON.parse(e.payload) as { from: string; to: string });
        let at = 'created';
        for (const [i, m] of moves.entries()) {
          if (m.from !== at)
            return [
              `${t.key}: move ${i + 1} is ${m.from}>${m.to} while the task was at ${at} (${moves.map((x) => `${x.from}>${x.to}`).join(' ')})`,
            ];
          at = m.to;
        }
        return at === t.stage ? [] : [`${t.key}: the moves end at ${at}, the task is at ${t.stage}`];
      }),
  },
  {
    name: 'no run left running, no job left queued or running',
    check: (s) => [
      ...s.runs
        .filter((r) => r.status === 'running')
        .map((r) => `run ${r.id} (${r.agent}, task ${r.task_id}) is still running`),
      ...s.jobs
        .filter((j) => j.status === 'queued' || j.status === 'running')
        .map((j) => `job ${j.id} (${j.stage}, task ${j.task_id}) is still ${j.status}`),
    ],
  },
  {
    name: 'no agent process left',
    async check(s) {
      const groups = [...new Set(s.runs.map((r) => r.pgid).filter((g): g is number => g !== null && g > 1))];
      const left = () => [
        ...groups.filter((g) => processGroupAlive(g)).map((g) => `process group ${g} of a run is alive`),
        ...processesIn(s.world.root).map((pid) => `process ${pid} still works in ${s.world.root}`),
        ...processesWith(s.world.root).map(
          (pid) => `process ${pid} still names ${s.world.root} in its arguments`,
        ),
      ];
      // A group killed a moment ago may still have members on their way out: give them a few seconds.
      for (let waited = 0; waited < 5_000 && left().length; waited += 100)
        await new Promise((r) => setTimeout(r, 100));
      return left();
    },
  },
  {
    name: 'the orchestrator never crashed',
    check: (s) =>
      s.exits
        .filter((e) => !e.killedByUs && e.code !== 0)
        .map((e) => `${e.name} exited with ${e.signal ?? `code ${e.code}`}:\n${e.tail}`),
  },
  ...OUTBOX_INVARIANTS,
  {
    name: 'the store is intact',
    async check(s) {
      if (s.world.kind !== 'sqlite') return [];
      const rows = await sql<{ integrity_check: string }>`PRAGMA integrity_check`.execute(
        s.world.ctx.store.db,
      );
      const result = rows.rows.map((r) => r.integrity_check).join('; ');
      return result === 'ok' ? [] : [`PRAGMA integrity_check: ${result}`];
    },
  },
];

/** Runs every invariant; violations are prefixed with the invariant's name. */
export async function checkInvariants(s: Snapshot): Promise<{ held: string[]; violations: string[] }> {
  const held: string[] = [];
  const violations: string[] = [];
  for (const inv of INVARIANTS) {
    let found: string[];
    try {
      found = await inv.check(s);
    } catch (error) {
      found = [`the check itself failed: ${(error as Error).stack ?? String(error)}`];
    }
    if (found.length === 0) held.push(inv.name);
    for (const v of found) violations.push(`${inv.name}: ${v}`);
  }
  return { held, violations };
}
