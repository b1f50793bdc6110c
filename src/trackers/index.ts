/**
 * Builds a project's tracker, forge and webhook receiver from its orch.yaml
 * sections. Tokens come from the environment variables the sections name (or
 * each service's default variable), never from the file.
 *
 * The adapters' modules (Octokit, the Linear SDK…) load on a tracker's first
 * call, not when orch starts: a project without a tracker never pays for them.
 * What is missing from the config or the environment is still reported at once.
 */
import { DEFAULT_TOKEN_ENV, type ForgeConfig, type TrackerConfig } from '../config/integrations-config.ts';
import { OrchError } from '../errors.ts';
import type { Forge, Tracker, WebhookReceiver } from './types.ts';

type Env = Readonly<Record<string, string | undefined>>;

function secret(env: Env, name: string, what: string): string {
  const v = env[name];
  if (!v) throw new OrchError('config_invalid', `${what}: the environment variable ${name} is not set`);
  return v;
}

const tokenOf = (cfg: { kind: TrackerConfig['kind']; token_env?: string | undefined }, env: Env) =>
  secret(env, cfg.token_env ?? DEFAULT_TOKEN_ENV[cfg.kind], `the ${cfg.kind} token`);

/** Loads `load` once, on first use. */
const once = <T>(load: () => Promise<T>): (() => Promise<T>) => {
  let loaded: Promise<T> | null = null;
  return () => (loaded ??= load());
};

async function loadTracker(cfg: TrackerConfig, token: string): Promise<Tracker> {
  switch (cfg.kind) {
    case 'github': {
      const { createGitHubTracker } = await import('./github/index.ts');
      return createGitHubTracker({ token, repo: cfg.repo!, ...(cfg.url ? { baseUrl: cfg.url } : {}) });
    }
    case 'gitea':
    case 'forgejo': {
      const { createGiteaTracker } = await import('./gitea/index.ts');
      return createGiteaTracker({ url: cfg.url!, token, repo: cfg.repo!, kind: cfg.kind });
    }
    case 'linear': {
      const { createLinearTracker } = await import('./linear/index.ts');
      return createLinearTracker({ apiKey: token, team: cfg.team!, ...(cfg.url ? { apiUrl: cfg.url } : {}) });
    }
    case 'plane': {
      const { createPlaneTracker } = await import('./plane/index.ts');
      return createPlaneTracker({
        baseUrl: cfg.url!,
        token,
        workspace: cfg.workspace!,
        project: cfg.project!,
      });
    }
    case 'jira': {
      const { createJiraTracker } = await import('./jira/index.ts');
      return createJiraTracker({ baseUrl: cfg.url!, email: cfg.email!, token, project: cfg.project! });
    }
  }
}

/** The tracker of a `tracker:` section; throws a config error naming what is missing. */
export function createTracker(cfg: TrackerConfig, env: Env): Tracker {
  const token = tokenOf(cfg, env);
  const adapter = once(() => loadTracker(cfg, token));
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
  if (cfg.kind !== 'github' && !cfg.url)
    throw new OrchError('config_invalid', `forge.url is required for a ${cfg.kind} forge`);
  const adapter = once(async (): Promise<Forge> => {
    if (cfg.kind === 'github') {
      const { createGitHubForge } = await import('./github/index.ts');
      return createGitHubForge({ token, repo: cfg.repo, ...(cfg.url ? { baseUrl: cfg.url } : {}) });
    }
    const { createGiteaForge } = await import('./gitea/index.ts');
    return createGiteaForge({ url: cfg.url!, token, repo: cfg.repo, kind: cfg.kind });
  });
  return {
    kind: cfg.kind,
    openPullRequest: async (p) => (await adapter()).openPullRequest(p),
    ciStatus: async (ref) => (await adapter()).ciStatus(ref),
    mergePullRequest: async (n, method) => (await adapter()).mergePullRequest(n, method),
  };
}

/** The webhook receiver of a tracker; null when no secret is configured (webhooks are then refused). */
export async function createWebhookReceiver(cfg: TrackerConfig, env: Env): Promise<WebhookReceiver | null> {
  if (!cfg.webhook_secret_env) return null;
  const key = secret(env, cfg.webhook_secret_env, `the ${cfg.kind} webhook secret`);
  switch (cfg.kind) {
    case 'github':
      return (await import('./github/index.ts')).createGitHubWebhooks(key);
    case 'gitea':
    case 'forgejo':
      return (await import('./gitea/index.ts')).createGiteaWebhooks(key, cfg.kind);
    case 'linear':
      return (await import('./linear/index.ts')).createLinearWebhooks(key);
    case 'plane':
      return (await import('./plane/index.ts')).createPlaneWebhooks(key);
    case 'jira':
      return (await import('./jira/index.ts')).createJiraWebhooks(key);
  }
}
