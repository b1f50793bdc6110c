/**
 * The `tracker`, `forge` and `notify` sections of `orch.yaml`: where a
 * project's tasks come from and where their progress is written back, where
 * branches become pull requests, and which chats and webhooks hear about what.
 * Tokens are never written here: each section names the environment variable
 * that holds its token.
 */
import { z } from 'zod';
import * as fields from './fields.ts';
import { FORGES, TRACKERS } from './services.ts';

export { StageMapping } from './fields.ts';

const { envName } = fields;
const httpUrl = fields.httpUrl();

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
  /** An adapter paused by its provider's usage limit (once per pause, on the task whose run hit it). */
  'usage_limited',
] as const;
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number];

const events = z.array(z.enum([...NOTIFY_EVENTS, 'all'])).min(1);

type Branches<T extends readonly unknown[], K extends 'trackerSchema' | 'forgeSchema'> = {
  -readonly [I in keyof T]: T[I] extends { [P in K]?: infer S } ? Exclude<S, undefined> : never;
};

/** `tracker:`: one branch per service (src/trackers/<service>/descriptor.ts), chosen by `kind`. */
export const TrackerSchema = z.discriminatedUnion(
  'kind',
  TRACKERS.map((s) => s.trackerSchema) as unknown as Branches<typeof TRACKERS, 'trackerSchema'>,
);
export type TrackerConfig = z.infer<typeof TrackerSchema>;

/** `forge:`: one branch per service that is a forge, chosen by `kind`. */
export const ForgeSchema = z.discriminatedUnion(
  'kind',
  FORGES.map((s) => s.forgeSchema) as unknown as Branches<typeof FORGES, 'forgeSchema'>,
);
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
