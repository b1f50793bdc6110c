/**
 * A project's channels, from its orch.yaml: the `notify.channels` it names
 * and, when it has a `tracker`, the tracker itself. A channel that cannot be
 * built (a token variable not set) is left out with a problem to report; its
 * deliveries wait in the outbox until it can be.
 */
import type { Channel } from './channel.ts';
import type { ChannelConfig } from '../trackers/config.ts';
import { NOTIFY_EVENTS } from '../trackers/config.ts';
import type { Project } from '../store/schema.ts';
import type { ProjectConfig } from '../config/project-config.ts';
import type { Store } from '../store/store.ts';
import { createWebhookChannel } from './webhook-channel.ts';
import { createTelegramChannel } from './telegram-channel.ts';
import { createSlackChannel } from './slack-channel.ts';
import { createTrackerChannel, TRACKER_CHANNEL } from './tracker-channel.ts';
import { createTracker } from '../trackers/index.ts';

type Env = Readonly<Record<string, string | undefined>>;

export interface ChannelDeps {
  project: Project;
  config: ProjectConfig;
  env: Env;
  store: Store;
}

/** Builds one configured channel; throws with a message saying what is missing. */
type ChannelFactory = (
  id: string,
  cfg: ChannelConfig,
  events: ReadonlySet<string>,
  deps: ChannelDeps,
) => Channel;

const envValue = (env: Env, name: string): string => {
  const v = env[name];
  if (!v) throw new Error(`the environment variable ${name} is not set`);
  return v;
};

export const CHANNEL_FACTORIES: Partial<Record<ChannelConfig['kind'], ChannelFactory>> = {
  webhook: (id, cfg, events, { env }) => {
    if (cfg.kind !== 'webhook') throw new Error('not a webhook');
    return createWebhookChannel({
      id,
      url: cfg.url,
      secret: cfg.secret_env ? envValue(env, cfg.secret_env) : null,
      events,
    });
  },
  telegram: (id, cfg, events, { env }) => {
    if (cfg.kind !== 'telegram') throw new Error('not a telegram channel');
    return createTelegramChannel({
      id,
      token: envValue(env, cfg.token_env),
      chatId: cfg.chat_id,
      apiUrl: cfg.api_url,
      events,
    });
  },
  slack: (id, cfg, events, { env }) => {
    if (cfg.kind !== 'slack') throw new Error('not a slack channel');
    return createSlackChannel({
      id,
      token: envValue(env, cfg.token_env),
      channel: cfg.channel,
      apiUrl: cfg.api_url,
      events,
    });
  },
};

const routedEvents = (events: readonly string[] | undefined): ReadonlySet<string> =>
  new Set(!events || events.includes('all') ? NOTIFY_EVENTS : events);

export interface ProjectChannels {
  /** The channels that could be built, by id. */
  channels: Map<string, Channel>;
  /**
   * Every configured channel's routed events, built or not: deliveries for a
   * channel that cannot be built yet are still written, and wait for it.
   */
  routes: Map<string, ReadonlySet<string>>;
  /** Deliveries a minute each channel may make, when limited. */
  rates: Map<string, number>;
  problems: string[];
}

/** Chat services throttle bots per chat: Telegram about 20 messages a minute in a group, Slack about one a second. */
const DEFAULT_RATE: Partial<Record<ChannelConfig['kind'], number>> = { telegram: 20, slack: 50 };

/** The events the tracker channel takes (see tracker-channel.ts). */
const trackerEvents = (usage: boolean): ReadonlySet<string> =>
  new Set(['stage_changed', 'escalated', 'pull_request', ...(usage ? ['run_finished'] : [])]);

export function buildChannels(deps: ChannelDeps): ProjectChannels {
  const channels = new Map<string, Channel>();
  const routes = new Map<string, ReadonlySet<string>>();
  const rates = new Map<string, number>();
  const problems: string[] = [];
  for (const [name, cfg] of Object.entries(deps.config.notify.channels)) {
    const id = `${deps.project.name}/${name}`;
    routes.set(id, routedEvents(cfg.events));
    const rate = cfg.rate_per_minute ?? DEFAULT_RATE[cfg.kind];
    if (rate) rates.set(id, rate);
    const factory = CHANNEL_FACTORIES[cfg.kind];
    try {
      if (!factory) throw new Error(`channel kind ${cfg.kind} is not available in this build`);
      channels.set(id, factory(id, cfg, routedEvents(cfg.events), deps));
    } catch (error) {
      problems.push(`channel ${name}: ${(error as Error).message}`);
    }
  }
  if (deps.config.tracker) {
    const id = `${deps.project.name}/${TRACKER_CHANNEL}`;
    routes.set(id, trackerEvents(deps.config.tracker.comments.usage));
    try {
      const tracker = createTracker(deps.config.tracker, deps.env);
      channels.set(
        id,
        createTrackerChannel({
          id,
          events: routes.get(id)!,
          config: deps.config.tracker,
          tracker,
          store: deps.store,
        }),
      );
    } catch (error) {
      problems.push(`tracker: ${(error as Error).message}`);
    }
  }
  return { channels, routes, rates, problems };
}
