/**
 * The pieces of the `tracker:` and `forge:` sections every service shares,
 * and the field schemas the services' own branches are made of. Each tracker
 * folder declares its branch (src/trackers/<service>/descriptor.ts); the
 * sections are the discriminated unions of those branches
 * (config.ts).
 */
import { z } from 'zod';

/** The message of a missing field a service needs: `required for a <what>` (other problems keep theirs). */
const missing =
  (what: string | undefined, otherwise?: string) =>
  (issue: { input: unknown }): string | undefined =>
    what !== undefined && issue.input === undefined ? `required for a ${what}` : otherwise;

export const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name (A-Z, 0-9, _)');

/** An http(s) URL; `what` names the service that needs it. */
export const httpUrl = (what?: string) =>
  z.url({ protocol: /^https?$/, error: missing(what, 'an http(s) URL') });

/** A repository `owner/name`; `what` names the service that needs it. */
export const repoName = (what?: string) =>
  z.string({ error: missing(what) }).regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, '`owner/name`');

/** A non-empty string of at least `min` characters; `what` names the service that needs it. */
export const text = (what?: string, min = 1) => z.string({ error: missing(what) }).min(min);

/** What a task's stage (or end) changes on the tracker: a state to move to, labels to carry. */
export const StageMapping = z
  .object({
    state: z.string().min(1).optional(),
    labels: z.array(z.string().min(1)).optional(),
  })
  .strict();
export type StageMapping = z.infer<typeof StageMapping>;

/** The fields of a `tracker:` section whatever its kind. */
export const trackerFields = {
  token_env: envName.optional(),
  /** The variable holding the webhook secret; without it, webhooks for this project are refused. */
  webhook_secret_env: envName.optional(),
  /** Which tasks to import (all must hold). */
  import: z
    .object({
      states: z.array(z.string().min(1)).optional(),
      labels: z.array(z.string().min(1)).optional(),
      assignee: z.string().min(1).optional(),
    })
    .strict()
    .default({}),
  /** Seconds between polls; 0 polls never (webhooks only). */
  poll_interval_s: z.number().int().min(0).default(60),
  /** Per stage name, and `escalated`/`cancelled`: what to set on the tracker when the task gets there. */
  stages: z.record(z.string().min(1), StageMapping).optional(),
  /** Comment after each agent run (role, model · effort, duration, tokens, cost) and on escalation. */
  comments: z
    .object({ usage: z.boolean().default(true), escalation: z.boolean().default(true) })
    .strict()
    .default({ usage: true, escalation: true }),
};

/** The fields of a `forge:` section whatever its kind. */
export const forgeFields = {
  token_env: envName.optional(),
  /**
   * The variable holding the secret of the forge's webhooks (review events),
   * when the forge is not the tracker's service; the tracker's secret serves
   * a forge of the same service.
   */
  webhook_secret_env: envName.optional(),
  /** How the pull request is merged. */
  merge_method: z.enum(['merge', 'squash', 'rebase']).default('merge'),
  /** Wait for the pull request's CI to pass before merging. */
  require_ci: z.boolean().default(true),
  /** Seconds between reads of the pull request's CI while it is pending. */
  ci_poll_s: z.number().min(0.1).max(3600).default(5),
  /**
   * Merge only once someone other than orch's own account approved the pull
   * request with no later "changes requested"; review comments go back to the
   * developer. Default false.
   */
  require_review: z.boolean().default(false),
  /** Seconds between reads of the pull request's reviews while one is awaited (a review webhook reads them at once). */
  review_poll_s: z.number().min(0.1).max(86_400).default(60),
};
