/**
 * Schemas of what clients send: request bodies and query strings. Each is
 * checked before a route runs; a failure is a 400 that lists every problem
 * with its path (`body.title`, `query.limit`).
 */
import { z } from 'zod';
import { STAGES, TASK_STATUSES } from '../core/stages.ts';
import { DEFAULT_STATS_BY, DEFAULT_STATS_SINCE, parseSince, parseStatsBy } from '../core/stats.ts';
import type { ErrorDetail } from './errors.ts';
import { MAX_MESSAGE_CHARS } from '../core/text.ts';

const positiveInt = z.number().int().positive();
const taskKey = z.string().trim().min(1).max(100);

export const CreateTaskBody = z.strictObject({
  title: z.string().trim().min(1, 'must not be empty').max(500, 'at most 500 characters'),
  description: z.string().max(50_000, 'at most 50000 characters').optional(),
  /** The project's name; needed when the home serves several. */
  project: z.string().min(1).optional(),
  priority: z.number().int().min(-1000).max(1000).optional(),
  labels: z.array(z.string().trim().min(1).max(100)).max(50).optional(),
  /** Task keys it waits for: it starts only once each is done. */
  after: z.array(taskKey).min(1).max(100).optional(),
});

/** Tasks a task waits for (`remove: true` drops those edges instead). */
export const DependencyBody = z.strictObject({
  on: z.array(taskKey).min(1).max(100),
  remove: z.boolean().default(false),
});

/** Raised budget limits; unset ones keep the task's current budget. */
export const RetryBody = z.strictObject({
  max_attempts: positiveInt.max(1000).optional(),
  max_usd: z.number().positive().optional(),
  max_tokens: positiveInt.optional(),
  max_wall_s: positiveInt.optional(),
});

/** Who approves, recorded with the approval (default `api`). */
export const ApproveBody = z.strictObject({
  by: z.string().trim().min(1).max(100).optional(),
});

/**
 * A person's message to a task's next agent run (`by` defaults to `api`); `now` stops the running
 * agent and runs its stage again at once with the message (`orch task say --now`).
 */
export const MessageBody = z.strictObject({
  text: z
    .string()
    .refine((t) => t.trim().length > 0, 'must not be empty')
    .refine((t) => t.length <= MAX_MESSAGE_CHARS, `at most ${MAX_MESSAGE_CHARS} characters`),
  by: z.string().trim().min(1).max(100).optional(),
  now: z.boolean().optional(),
});

/** Actions without parameters accept no body, or `{}`. */
export const EmptyBody = z.strictObject({});

const limit = (max: number, fallback: number) => z.coerce.number().int().min(1).max(max).default(fallback);

/**
 * A page of tasks: `limit` of them after the cursor `after` (the `X-Next-After` of the previous
 * page), oldest first or (`order=newest`) newest first; `open=true` keeps the tasks not at done or
 * cancelled.
 */
export const TaskListQuery = z.strictObject({
  project: z.string().min(1).optional(),
  status: z.enum(TASK_STATUSES).optional(),
  stage: z.enum(STAGES).optional(),
  open: z.stringbool().default(false),
  order: z.enum(['oldest', 'newest']).default('oldest'),
  limit: limit(500, 100),
  after: z.coerce.number().int().min(0).optional(),
});

export const RunListQuery = z.strictObject({
  status: z.enum(['running', 'finished']).optional(),
  task: z.string().min(1).optional(),
  role: z.string().min(1).optional(),
  limit: limit(1000, 100),
});

/** Byte offsets of a run log; `tail` reads the last bytes instead (from a line start). */
export const LogQuery = z.strictObject({
  offset: z.coerce.number().int().min(0).default(0),
  limit: limit(1024 * 1024, 64 * 1024),
  tail: z.coerce
    .number()
    .int()
    .min(1)
    .max(1024 * 1024)
    .optional(),
  format: z.enum(['json', 'raw']).default('json'),
});

export const CostsQuery = z.strictObject({
  days: limit(366, 14),
});

/** Outcome analytics: which runs count (`since`, `project`) and how they are grouped (`by`). */
export const StatsQuery = z.strictObject({
  project: z.string().min(1).optional().describe("a project's name; default every project"),
  since: z
    .string()
    .default(DEFAULT_STATS_SINCE)
    .refine((s) => parseSince(s, new Date()).ok, 'a count of m, h, d or w (30d), an ISO date, or all')
    .describe('runs started since: 30d, 12h, 2w, 90m, an ISO date or instant, or all'),
  by: z
    .string()
    .default(DEFAULT_STATS_BY.join(','))
    .refine(
      (s) => Array.isArray(parseStatsBy(s)),
      'comma-separated: role, adapter, model, effort, variant (empty for totals)',
    )
    .describe('group by, comma-separated: role, adapter, model, effort, variant; empty for totals'),
});

export const EventsQuery = z.strictObject({
  /** Resume after this event id (like `Last-Event-ID`, which wins when both are sent). */
  after: z.coerce.number().int().min(0).optional(),
  task: z.string().min(1).optional(),
  logs: z.stringbool().default(true),
});

export const QueueQuery = z.strictObject({
  limit: limit(1000, 200),
});

/** zod issues as error details, paths prefixed with where the input came from. */
export function issueDetails(where: 'body' | 'query', error: z.ZodError): ErrorDetail[] {
  return error.issues.flatMap((issue) => {
    const base = [where, ...issue.path.map(String)].join('.');
    if (issue.code === 'unrecognized_keys')
      return issue.keys.map((k) => ({ path: `${base}.${k}`, message: 'unknown field' }));
    return [{ path: base, message: issue.message }];
  });
}
