/**
 * Builds a project's tracker, forge and webhook receiver from its orch.yaml
 * sections. Tokens come from the environment variables the sections name (or
 * each service's default variable), never from the file.
 */
import { DEFAULT_TOKEN_ENV, type ForgeConfig, type TrackerConfig } from '../config/integrations-config.ts';
import { OrchError } from '../errors.ts';
import type { Forge, Tracker, WebhookReceiver } from './types.ts';
import { createGitHubForge, createGitHubTracker, createGitHubWebhooks } from './github/index.ts';
import { createGiteaForge, createGiteaTracker, createGiteaWebhooks } from './gitea/index.ts';
import { createLinearTracker, createLinearWebhooks } from './linear/index.ts';
import { createPlaneTracker, createPlaneWebhooks } from './plane/index.ts';
import { createJiraTracker, createJiraWebhooks } from './jira/index.ts';

type Env = Readonly<Record<string, string | undefined>>;

function secret(env: Env, name: string, what: string): string {
  const v = env[name];
  if (!v) throw new OrchError('config_invalid', `${what}: the environment variable ${name} is not set`);
  return v;
}

const tokenOf = (cfg: { kind: TrackerConfig['kind']; token_env?: string | undefined }, env: Env) =>
  secret(env, cfg.token_env ?? DEFAULT_TOKEN_ENV[cfg.kind], `the ${cfg.kind} token`);

/** The tracker of a `tracker:` section; throws a config error naming what is missing. */
export function createTracker(cfg: TrackerConfig, env: Env): Tracker {
  const token = tokenOf(cfg, env);
  switch (cfg.kind) {
    case 'github':
      return createGitHubTracker({ token, repo: cfg.repo!, ...(cfg.url ? { baseUrl: cfg.url } : {}) });
    case 'gitea':
    case 'forgejo':
      return createGiteaTracker({ url: cfg.url!, token, repo: cfg.repo!, kind: cfg.kind });
    case 'linear':
      return createLinearTracker({ apiKey: token, team: cfg.team!, ...(cfg.url ? { apiUrl: cfg.url } : {}) });
    case 'plane':
      return createPlaneTracker({
        baseUrl: cfg.url!,
        token,
        workspace: cfg.workspace!,
        project: cfg.project!,
      });
    case 'jira':
      return createJiraTracker({ baseUrl: cfg.url!, email: cfg.email!, token, project: cfg.project! });
  }
}

/** The forge of a `forge:` section. */
export function createForge(cfg: ForgeConfig, env: Env): Forge {
  const token = tokenOf(cfg, env);
  switch (cfg.kind) {
    case 'github':
      return createGitHubForge({ token, repo: cfg.repo, ...(cfg.url ? { baseUrl: cfg.url } : {}) });
    case 'gitea':
    case 'forgejo':
      if (!cfg.url) throw new OrchError('config_invalid', `forge.url is required for a ${cfg.kind} forge`);
      return createGiteaForge({ url: cfg.url, token, repo: cfg.repo, kind: cfg.kind });
  }
}

/** The webhook receiver of a tracker; null when no secret is configured (webhooks are then refused). */
export function createWebhookReceiver(cfg: TrackerConfig, env: Env): WebhookReceiver | null {
  if (!cfg.webhook_secret_env) return null;
  const key = secret(env, cfg.webhook_secret_env, `the ${cfg.kind} webhook secret`);
  switch (cfg.kind) {
    case 'github':
      return createGitHubWebhooks(key);
    case 'gitea':
    case 'forgejo':
      return createGiteaWebhooks(key, cfg.kind);
    case 'linear':
      return createLinearWebhooks(key);
    case 'plane':
      return createPlaneWebhooks(key);
    case 'jira':
      return createJiraWebhooks(key);
  }
}
