/**
 * Builds a project's tracker, forge and webhook receivers from its orch.yaml
 * sections, through the service table (services.ts). Tokens come from the
 * environment variables the sections name (or each service's default
 * variable), never from the file.
 *
 * The adapters' modules (Octokit, the Linear SDK, gitbeaker…) load on a
 * tracker's first call, not when orch starts: a project without a tracker
 * never pays for them. What is missing from the environment is still
 * reported at once.
 */
import type { ForgeConfig, TrackerConfig } from './config.ts';
import { OrchError } from '../errors.ts';
import { serviceOf } from './services.ts';
import type { Forge, Tracker, TrackerKind, WebhookReceiver } from './types.ts';

type Env = Readonly<Record<string, string | undefined>>;

function secret(env: Env, name: string, what: string): string {
  const v = env[name];
  if (!v) throw new OrchError('config_invalid', `${what}: the environment variable ${name} is not set`);
  return v;
}

const tokenOf = (cfg: { kind: TrackerKind; token_env?: string | undefined }, env: Env) =>
  secret(env, cfg.token_env ?? serviceOf(cfg.kind).tokenEnv, `the ${cfg.kind} token`);

/** Loads `load` once, on first use; a failed load is tried again next time. */
const once = <T>(load: () => Promise<T>): (() => Promise<T>) => {
  let loaded: Promise<T> | null = null;
  return () => {
    loaded ??= load();
    loaded.catch(() => (loaded = null));
    return loaded;
  };
};

/** The tracker of a `tracker:` section; throws a config error naming what is missing. */
export function createTracker(cfg: TrackerConfig, env: Env): Tracker {
  const token = tokenOf(cfg, env);
  const adapter = once(() => serviceOf(cfg.kind).createTracker(cfg, token));
  return {
    kind: cfg.kind,
    list: async (query) => (await adapter()).list(query),
    get: async (id) => (await adapter()).get(id),
    update: async (id, update) => (await adapter()).update(id, update),
    comment: async (id, body) => (await adapter()).comment(id, body),
  };
}

/** The forge of a `forge:` section. */
export function createForge(cfg: ForgeConfig, env: Env): Forge {
  const token = tokenOf(cfg, env);
  const service = serviceOf(cfg.kind);
  const create = service.createForge;
  if (!create) throw new OrchError('config_invalid', `forge.kind: ${cfg.kind} is not a forge`);
  const adapter = once(() => create(cfg, token));
  return {
    kind: cfg.kind,
    openPullRequest: async (p) => (await adapter()).openPullRequest(p),
    ciStatus: async (ref) => (await adapter()).ciStatus(ref),
    mergePullRequest: async (n, method) => (await adapter()).mergePullRequest(n, method),
    reviews: async (n) => (await adapter()).reviews(n),
    answer: async (n, id, body) => (await adapter()).answer(n, id, body),
  };
}

/**
 * The webhook receiver of a `tracker:` (or `forge:`) section; null when it
 * names no `webhook_secret_env` (its webhooks are then refused).
 */
export async function createWebhookReceiver(
  cfg: { kind: TrackerKind; webhook_secret_env?: string | undefined },
  env: Env,
): Promise<WebhookReceiver | null> {
  if (!cfg.webhook_secret_env) return null;
  const key = secret(env, cfg.webhook_secret_env, `the ${cfg.kind} webhook secret`);
  return serviceOf(cfg.kind).createWebhooks(cfg.kind, key);
}
