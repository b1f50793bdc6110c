/**
 * The `tracker`, `forge` and `notify` sections of `orch.yaml`: where a
 * project's tasks come from and where their progress is written back, where
 * branches become pull requests, and which chats and webhooks hear about what.
 * Tokens are never written here: each section names the environment variable
 * that holds its token.
 */
import { z } from 'zod';

const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name (A-Z, 0-9, _)');
const httpUrl = z.url({ protocol: /^https?$/, error: 'an http(s) URL' });
const repoName = z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, '`owner/name`');

/** Event kinds a channel can be routed: the events table's kinds that mean something to people. */
export const NOTIFY_EVENTS = [
  'task_created',
  'run_started',
  'run_finished',
  'stage_changed',
  'gate_failed',
  'approval_requested',
  'escalated',
  'pull_request',
  'done',
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

const events = z.array(z.enum([...NOTIFY_EVENTS, 'all'])).min(1);

export const TRACKER_KINDS = ['github', 'gitea', 'forgejo', 'linear', 'plane', 'jira'] as const;
export const FORGE_KINDS = ['github', 'gitea', 'forgejo'] as const;

/** The environment variable holding each service's token when the config names none. */
export const DEFAULT_TOKEN_ENV: Readonly<Record<(typeof TRACKER_KINDS)[number], string>> = {
  github: 'ORCH_GITHUB_TOKEN',
  gitea: 'ORCH_GITEA_TOKEN',
  forgejo: 'ORCH_GITEA_TOKEN',
  linear: 'ORCH_LINEAR_API_KEY',
  plane: 'ORCH_PLANE_API_TOKEN',
  jira: 'ORCH_JIRA_TOKEN',
};

/** What a task's stage (or end) changes on the tracker: a state to move to, labels to carry. */
const StageMapping = z
  .object({
    state: z.string().min(1).optional(),
    labels: z.array(z.string().min(1)).optional(),
  })
  .strict();
export type StageMapping = z.infer<typeof StageMapping>;

export const TrackerSchema = z
  .object({
    kind: z.enum(TRACKER_KINDS),
    /** API root; the service's public one when absent (required for self-hosted Gitea, Plane, Jira). */
    url: httpUrl.optional(),
    /** GitHub, Gitea, Forgejo: the repository whose issues are the tasks. */
    repo: repoName.optional(),
    /** Linear: the team key (`ENG`). */
    team: z.string().min(1).optional(),
    /** Plane: the workspace slug. */
    workspace: z.string().min(1).optional(),
    /** Plane: the project id; Jira: the project key. */
    project: z.string().min(1).optional(),
    /** Jira: the account e-mail the token belongs to. */
    email: z.string().min(3).optional(),
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
  })
  .strict();
export type TrackerConfig = z.infer<typeof TrackerSchema>;

export const ForgeSchema = z
  .object({
    kind: z.enum(FORGE_KINDS),
    url: httpUrl.optional(),
    repo: repoName,
    token_env: envName.optional(),
    /** How the pull request is merged. */
    merge_method: z.enum(['merge', 'squash', 'rebase']).default('merge'),
    /** Wait for the pull request's CI to pass before merging. */
    require_ci: z.boolean().default(true),
    /** Seconds between reads of the pull request's CI while it is pending. */
    ci_poll_s: z.number().min(0.1).max(3600).default(5),
  })
  .strict();
export type ForgeConfig = z.infer<typeof ForgeSchema>;

const channelBase = {
  /** Which events reach the channel; `all` for every one. */
  events: events.optional(),
  /** At most this many deliveries a minute (default: Telegram 20, Slack 50, webhook no limit). */
  rate_per_minute: z.number().int().positive().optional(),
};

export const ChannelSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('telegram'),
      chat_id: z.union([z.string().min(1), z.number().int()]),
      token_env: envName.default('ORCH_TELEGRAM_BOT_TOKEN'),
      api_url: httpUrl.default('https://api.telegram.org'),
      ...channelBase,
    })
    .strict(),
  z
    .object({
      kind: z.literal('slack'),
      channel: z.string().min(1),
      token_env: envName.default('ORCH_SLACK_BOT_TOKEN'),
      api_url: httpUrl.default('https://slack.com/api'),
      ...channelBase,
    })
    .strict(),
  z
    .object({
      kind: z.literal('webhook'),
      url: httpUrl,
      /** The variable holding the HMAC-SHA256 key; the body's signature goes in `X-Orch-Signature`. */
      secret_env: envName.optional(),
      ...channelBase,
    })
    .strict(),
]);
export type ChannelConfig = z.infer<typeof ChannelSchema>;

export const NotifySchema = z
  .object({
    /** The dashboard's address, for links in messages to tasks not imported from a tracker. */
    dashboard_url: httpUrl.optional(),
    channels: z
      .record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, - and _'), ChannelSchema)
      .default({}),
  })
  .strict();
export type NotifyConfig = z.infer<typeof NotifySchema>;

/** What the schema cannot check: fields each tracker kind needs. */
export function trackerProblems(t: TrackerConfig | undefined): { key: string; message: string }[] {
  if (!t) return [];
  const need: Record<TrackerConfig['kind'], (keyof TrackerConfig)[]> = {
    github: ['repo'],
    gitea: ['repo', 'url'],
    forgejo: ['repo', 'url'],
    linear: ['team'],
    plane: ['url', 'workspace', 'project'],
    jira: ['url', 'project', 'email'],
  };
  return need[t.kind]
    .filter((k) => t[k] === undefined)
    .map((k) => ({ key: `tracker.${k}`, message: `required for a ${t.kind} tracker` }));
}
