/**
 * What `orch stats`, `GET /api/stats` and the dashboard's stats page show:
 * outcome figures per group of runs, and the variants compared. The counting
 * is the store's (`StatsStore`); the figures and intervals are core's.
 */
import type { OrchContext } from './context.ts';
import { OrchError } from '../errors.ts';
import {
  DEFAULT_STATS_BY,
  DEFAULT_STATS_SINCE,
  assembleGroups,
  compareVariants,
  parseSince,
  parseStatsBy,
  type StatsDimension,
  type StatsReport,
} from '../core/stats.ts';

export interface StatsQuery {
  /** A project's name; default every project. */
  project?: string | undefined;
  /** `30d`, `12h`, `2w`, an ISO date, or `all`. Default {@link DEFAULT_STATS_SINCE}. */
  since?: string | undefined;
  /** Comma-separated dimensions; an empty string gives totals. Default role,model,effort. */
  by?: string | undefined;
}

/** Parses a query's `since` and `by`, or throws `invalid_argument` saying which is wrong. */
export function statsParameters(q: StatsQuery, now: Date): { sinceIso: string | null; by: StatsDimension[] } {
  const since = parseSince(q.since ?? DEFAULT_STATS_SINCE, now);
  if (!since.ok)
    throw new OrchError(
      'invalid_argument',
      `since ${JSON.stringify(q.since)}: a count of m, h, d or w (30d), an ISO date (2026-01-31), or all`,
    );
  const by = q.by === undefined ? [...DEFAULT_STATS_BY] : parseStatsBy(q.by);
  if (!Array.isArray(by))
    throw new OrchError(
      'invalid_argument',
      `by ${JSON.stringify(by.unknown)}: group by role, adapter, model, effort or variant (comma-separated)`,
    );
  return { sinceIso: since.since, by };
}

export async function statsReport(
  ctx: Pick<OrchContext, 'store'>,
  q: StatsQuery,
  now = new Date(),
): Promise<StatsReport> {
  const { sinceIso, by } = statsParameters(q, now);
  let projectId: number | undefined;
  if (q.project) {
    const p = await ctx.store.getProjectByName(q.project);
    if (!p) throw new OrchError('unknown_project', `no project named ${JSON.stringify(q.project)}`);
    projectId = p.id;
  }
  const rows = await ctx.store.stats.reportRows({ projectId, sinceIso, by });
  const groups = assembleGroups(rows, by);
  return {
    project: q.project ?? null,
    since: sinceIso,
    by,
    groups,
    comparisons: compareVariants(groups, rows, by),
  };
}
