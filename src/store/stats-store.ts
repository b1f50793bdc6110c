/**
 * Outcome analytics, counted in the database: four statements (the runs, their
 * durations, their tasks, first reviews), grouped by any of the run's role,
 * adapter, model, effort and variant, so nothing but one row per group (and
 * outcome, status, kind) leaves the database, however many runs there are. A
 * task belongs to every group one of its runs in the window is in. Also the
 * launch stamp, which carries the variant these figures compare.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Dialect } from './migrations.ts';
import type { Database } from './schema.ts';
import {
  INTERVENTION_KINDS,
  type DoneCostRow,
  type DurationBucketRow,
  type FirstPassRow,
  type GroupKey,
  type InterventionRow,
  type RunDurationRow,
  type RunOutcomeRow,
  type StatsDimension,
  type StatsRows,
  type TaskOutcomeRow,
} from '../core/stats.ts';

/** Which runs count, and how they are grouped. */
export interface StatsFilter {
  /** Only tasks of this project. Default: every project. */
  projectId?: number | undefined;
  /** Only runs started at or after this ISO instant. Default: all history. */
  sinceIso?: string | null | undefined;
  /** The dimensions of a group; none gives one group of everything. */
  by: readonly StatsDimension[];
}

/** The column of `agent_runs` behind each dimension. */
const COLUMN: Record<StatsDimension, 'agent' | 'adapter' | 'model' | 'effort' | 'variant'> = {
  role: 'agent',
  adapter: 'adapter',
  model: 'model',
  effort: 'effort',
  variant: 'variant',
};

type Row = Record<string, unknown>;
const num = (v: unknown): number => Number(v ?? 0);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/** The figures' columns of `taskFigures`'s rows, whichever part a row is of. */
const PART_COLUMNS = [
  'task_status',
  'terminal_reason',
  'event_kind',
  'tasks',
  'attempts',
  'tasks_with_attempts',
  'cost_usd',
  'cost_usd_sq',
  'tokens',
  'events',
] as const;

export class StatsStore {
  private readonly db: Kysely<Database>;
  private readonly dialect: Dialect;
  constructor(db: Kysely<Database>, dialect: Dialect) {
    this.db = db;
    this.dialect = dialect;
  }

  /**
   * The launch stamp: model, effort and the task's variant of the role in one
   * update, so all three are visible while the run lives.
   */
  async stampLaunch(
    runId: number,
    stamp: { model: string; effort: string; variant: string | null },
  ): Promise<void> {
    await this.db
      .updateTable('agent_runs')
      .set({ model: stamp.model, effort: stamp.effort, variant: stamp.variant })
      .where('id', '=', runId)
      .execute();
  }

  /**
   * Every row a report is assembled from (`assembleGroups`): the four statements below, issued
   * together, so on PostgreSQL they run side by side on the pool's connections (SQLite's one
   * connection takes them in turn).
   */
  reportRows(f: StatsFilter): Promise<StatsRows> {
    return this.rowsWith(f, this.runDurations(f));
  }

  /** The same rows with the runs' durations as given (`/metrics` counts them into buckets instead). */
  async rowsWith<D>(
    f: StatsFilter,
    durations: Promise<D>,
  ): Promise<Omit<StatsRows, 'durations'> & { durations: D }> {
    const [runs, d, { tasks, doneCosts, interventions }, firstPass] = await Promise.all([
      this.runOutcomes(f),
      durations,
      this.taskFigures(f),
      this.firstPassReviews(f),
    ]);
    return { runs, durations: d, tasks, doneCosts, firstPass, interventions };
  }

  // ------------------------------------------------------------ statements

  /** `r.agent AS g_role, …`: the group's columns of run `r`, named after their dimension. */
  private groupColumns(by: readonly StatsDimension[]): RawBuilder<unknown>[] {
    return by.map((d) => sql`${sql.ref(`r.${COLUMN[d]}`)} AS ${sql.ref(`g_${d}`)}`);
  }

  /** The group's columns of run `r` as expressions, for GROUP BY. */
  private groupExprs(by: readonly StatsDimension[]): RawBuilder<unknown>[] {
    return by.map((d) => sql`${sql.ref(`r.${COLUMN[d]}`)}`);
  }

  /** Columns already named `g_<dimension>` (in a derived table). */
  private groupAliases(by: readonly StatsDimension[], from: string): RawBuilder<unknown>[] {
    return by.map((d) => sql`${sql.ref(`${from}.g_${d}`)}`);
  }

  /** `FROM agent_runs r [JOIN tasks t] WHERE <window and project>`: the runs that count. */
  private scope(f: StatsFilter, opts: { tasks?: boolean; where?: RawBuilder<unknown> } = {}) {
    const conds: RawBuilder<unknown>[] = [];
    if (f.sinceIso) conds.push(sql`r.started_at >= ${f.sinceIso}`);
    if (f.projectId !== undefined) conds.push(sql`t.project_id = ${f.projectId}`);
    if (opts.where) conds.push(opts.where);
    const join = opts.tasks || f.projectId !== undefined;
    return sql`FROM agent_runs r ${join ? sql`JOIN tasks t ON t.id = r.task_id` : sql``} ${
      conds.length ? sql`WHERE ${sql.join(conds, sql` AND `)}` : sql``
    }`;
  }

  private keyOf(row: Row, by: readonly StatsDimension[]): GroupKey {
    const key: GroupKey = {};
    for (const d of by) key[d] = (row[`g_${d}`] as string | null | undefined) ?? null;
    return key;
  }

  private select<T>(query: RawBuilder<unknown>, map: (row: Row) => T): Promise<T[]> {
    return query.execute(this.db).then((r) => (r.rows as Row[]).map(map));
  }

  /** A SELECT list: the group's columns, then the figures. */
  private list(groups: RawBuilder<unknown>[], figures: RawBuilder<unknown>[]): RawBuilder<unknown> {
    return sql.join([...groups, ...figures]);
  }

  /** `GROUP BY …`, or nothing for one group of everything. */
  private groupBy(exprs: RawBuilder<unknown>[]): RawBuilder<unknown> {
    return exprs.length ? sql`GROUP BY ${sql.join(exprs)}` : sql``;
  }

  /** Runs per group and outcome (`running` while in flight), with their tokens and cost. */
  runOutcomes(f: StatsFilter): Promise<RunOutcomeRow[]> {
    const outcome = sql`COALESCE(r.outcome, r.status)`;
    return this.select(
      sql`SELECT ${this.list(this.groupColumns(f.by), [
        sql`${outcome} AS run_outcome`,
        sql`count(*) AS runs`,
        sql`sum(COALESCE(r.input_tokens, 0)) AS input_tokens`,
        sql`sum(COALESCE(r.output_tokens, 0)) AS output_tokens`,
        sql`sum(COALESCE(r.cost_usd, 0)) AS cost_usd`,
      ])} ${this.scope(f)} ${this.groupBy([...this.groupExprs(f.by), outcome])}`,
      (row) => ({
        key: this.keyOf(row, f.by),
        outcome: String(row.run_outcome),
        runs: num(row.runs),
        input_tokens: num(row.input_tokens),
        output_tokens: num(row.output_tokens),
        cost_usd: num(row.cost_usd),
      }),
    );
  }

  /**
   * p50 and p90 of the wall time of each group's finished runs, by nearest
   * rank (the value at rank ⌈q·n⌉ of n sorted): integer arithmetic, the same
   * on both databases, and a real run's time rather than an interpolation.
   * Each group's times are gathered sorted into one array by an ordered
   * aggregate (a sort per group, no window over every run), and the two ranks
   * read from it.
   */
  runDurations(f: StatsFilter): Promise<RunDurationRow[]> {
    const sorted =
      this.dialect === 'postgres'
        ? sql`array_agg(r.duration_ms ORDER BY r.duration_ms)`
        : sql`json_group_array(r.duration_ms ORDER BY r.duration_ms)`;
    // The element at a 1-based rank: PostgreSQL arrays count from 1, SQLite's JSON arrays from 0.
    const at = (rank: RawBuilder<unknown>) =>
      this.dialect === 'postgres' ? sql`s.ms_sorted[(${rank})::int]` : sql`s.ms_sorted ->> (${rank} - 1)`;
    return this.select(
      sql`SELECT ${this.list(this.groupAliases(f.by, 's'), [
        sql`s.finished`,
        sql`${at(sql`(s.finished + 1) / 2`)} AS p50_ms`,
        sql`${at(sql`(9 * s.finished + 9) / 10`)} AS p90_ms`,
      ])}
          FROM (
            SELECT ${this.list(this.groupColumns(f.by), [sql`count(*) AS finished`, sql`${sorted} AS ms_sorted`])}
            ${this.scope(f, { where: sql`r.duration_ms IS NOT NULL` })}
            ${this.groupBy(this.groupExprs(f.by))}
          ) s`,
      (row) => ({
        key: this.keyOf(row, f.by),
        finished: num(row.finished),
        p50_ms: numOrNull(row.p50_ms),
        p90_ms: numOrNull(row.p90_ms),
      }),
    );
  }

  /**
   * Each group's tasks, in one statement sharing one pass over the window's runs: `m` holds each
   * (group, task) once, with the cost and tokens of the group's runs on it; from it come the
   * tasks per status and terminal reason with their attempts (for the mean attempts to done),
   * the cost and tokens on the done tasks (summed per task, then over the tasks, with the sum of
   * squares for the interval), and the approvals, retries and messages (events) in the window,
   * counted per task first (through the index on kind, task and time), then over the tasks.
   * One row per part and group (and status, or event kind), told apart by `part`.
   */
  async taskFigures(
    f: StatsFilter,
  ): Promise<{ tasks: TaskOutcomeRow[]; doneCosts: DoneCostRow[]; interventions: InterventionRow[] }> {
    const kinds = Object.keys(INTERVENTION_KINDS);
    const g = this.groupAliases(f.by, 'm');
    // The columns of every part, in this order; a part leaves the others NULL (typed, so
    // PostgreSQL can match the parts' columns).
    const part = (name: string, cols: Partial<Record<(typeof PART_COLUMNS)[number], RawBuilder<unknown>>>) =>
      sql.join([
        sql`${sql.lit(name)} AS part`,
        ...g,
        ...PART_COLUMNS.map(
          (c) =>
            sql`${cols[c] ?? (c.endsWith('_status') || c.endsWith('_reason') || c.endsWith('_kind') ? sql`CAST(NULL AS text)` : sql`CAST(NULL AS numeric)`)} AS ${sql.ref(c)}`,
        ),
      ]);
    const rows = await this.select(
      sql`WITH m AS (
            SELECT ${this.list(this.groupColumns(f.by), [
              sql`r.task_id`,
              sql`sum(COALESCE(r.cost_usd, 0)) AS c`,
              sql`sum(COALESCE(r.input_tokens, 0) + COALESCE(r.output_tokens, 0)) AS tok`,
            ])}
            ${this.scope(f)}
            GROUP BY ${sql.join([...this.groupExprs(f.by), sql`r.task_id`])}
          ), na AS (
            SELECT a.task_id, count(*) AS n FROM attempts a GROUP BY a.task_id
          ), iv AS (
            SELECT e.task_id, e.kind, count(*) AS n FROM events e
            WHERE e.kind IN (${sql.join(kinds)})
            ${f.sinceIso ? sql`AND e.created_at >= ${f.sinceIso}` : sql``}
            GROUP BY e.task_id, e.kind
          )
          SELECT ${part('task', {
            task_status: sql`t.status`,
            terminal_reason: sql`t.terminal_reason`,
            tasks: sql`count(*)`,
            attempts: sql`sum(COALESCE(na.n, 0))`,
            tasks_with_attempts: sql`sum(CASE WHEN na.n > 0 THEN 1 ELSE 0 END)`,
          })}
          FROM m JOIN tasks t ON t.id = m.task_id LEFT JOIN na ON na.task_id = m.task_id
          ${this.groupBy([...g, sql`t.status`, sql`t.terminal_reason`])}
          UNION ALL
          SELECT ${part('done', {
            tasks: sql`count(*)`,
            cost_usd: sql`sum(m.c)`,
            cost_usd_sq: sql`sum(m.c * m.c)`,
            tokens: sql`sum(m.tok)`,
          })}
          FROM m JOIN tasks t ON t.id = m.task_id WHERE t.status = 'done'
          ${this.groupBy(g)}
          UNION ALL
          SELECT ${part('event', { event_kind: sql`iv.kind`, events: sql`sum(iv.n)` })}
          FROM m JOIN iv ON iv.task_id = m.task_id
          ${this.groupBy([...g, sql`iv.kind`])}`,
      (row) => row,
    );
    const out = {
      tasks: [] as TaskOutcomeRow[],
      doneCosts: [] as DoneCostRow[],
      interventions: [] as InterventionRow[],
    };
    for (const row of rows) {
      const key = this.keyOf(row, f.by);
      if (row.part === 'task')
        out.tasks.push({
          key,
          status: String(row.task_status),
          terminal_reason: (row.terminal_reason as string | null) ?? null,
          tasks: num(row.tasks),
          attempts: num(row.attempts),
          tasks_with_attempts: num(row.tasks_with_attempts),
        });
      else if (row.part === 'done')
        out.doneCosts.push({
          key,
          tasks: num(row.tasks),
          cost_usd: num(row.cost_usd),
          cost_usd_sq: num(row.cost_usd_sq),
          tokens: num(row.tokens),
        });
      else out.interventions.push({ key, kind: String(row.event_kind), events: num(row.events) });
    }
    return out;
  }

  /**
   * First attempts (n = 1) per group of their development run or their
   * judging run (the reviewer's, or the run whose gate failed), and how many
   * were approved. An attempt whose two runs share a group counts once there.
   */
  firstPassReviews(f: StatsFilter): Promise<FirstPassRow[]> {
    return this.select(
      sql`WITH fp AS (
            SELECT DISTINCT ${this.list(this.groupColumns(f.by), [sql`a.id AS attempt_id`, sql`a.verdict`])}
            FROM attempts a
            JOIN agent_runs r ON r.id = a.dev_run_id OR r.id = a.review_run_id
            ${f.projectId !== undefined ? sql`JOIN tasks t ON t.id = a.task_id` : sql``}
            WHERE a.n = 1
            ${f.sinceIso ? sql`AND r.started_at >= ${f.sinceIso}` : sql``}
            ${f.projectId !== undefined ? sql`AND t.project_id = ${f.projectId}` : sql``}
          )
          SELECT ${this.list(this.groupAliases(f.by, 'fp'), [
            sql`count(*) AS reviewed`,
            sql`sum(CASE WHEN fp.verdict = 'approved' THEN 1 ELSE 0 END) AS approved`,
          ])}
          FROM fp ${this.groupBy(this.groupAliases(f.by, 'fp'))}`,
      (row) => ({ key: this.keyOf(row, f.by), reviewed: num(row.reviewed), approved: num(row.approved) }),
    );
  }

  /**
   * Finished runs per group at or under each bound (seconds), cumulative as
   * Prometheus wants them, with their count and total seconds.
   */
  runDurationBuckets(f: StatsFilter, boundsS: readonly number[]): Promise<DurationBucketRow[]> {
    const ms = sql`r.duration_ms`;
    return this.select(
      sql`SELECT ${this.list(this.groupColumns(f.by), [
        ...boundsS.map(
          (b, i) => sql`sum(CASE WHEN ${ms} <= ${b * 1000} THEN 1 ELSE 0 END) AS ${sql.ref(`le_${i}`)}`,
        ),
        sql`count(*) AS runs`,
        sql`sum(${ms}) AS total_ms`,
      ])}
      ${this.scope(f, { where: sql`r.duration_ms IS NOT NULL` })}
      ${this.groupBy(this.groupExprs(f.by))}`,
      (row) => ({
        key: this.keyOf(row, f.by),
        cumulative: boundsS.map((_, i) => num(row[`le_${i}`])),
        count: num(row.runs),
        sum_s: num(row.total_ms) / 1000,
      }),
    );
  }
}
