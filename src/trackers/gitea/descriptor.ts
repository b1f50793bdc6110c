/** Gitea and Forgejo: issues as the tracker, pull requests with commit statuses as the forge (docs/trackers.md#gitea-and-forgejo). */
import { z } from 'zod';
import { forgeFields, httpUrl, repoName, trackerFields } from '../fields.ts';
import type { ServiceDescriptor } from '../descriptor.ts';

const kind = z.enum(['gitea', 'forgejo']);

const trackerSchema = z
  .object({
    kind,
    /** The instance, e.g. https://codeberg.org (a trailing /api/v1 is dropped). */
    url: httpUrl('gitea or forgejo tracker'),
    repo: repoName('gitea or forgejo tracker'),
    ...trackerFields,
  })
  .strict();
const forgeSchema = z
  .object({
    kind,
    url: httpUrl('gitea or forgejo forge'),
    repo: repoName('gitea or forgejo forge'),
    ...forgeFields,
  })
  .strict();

const options = (cfg: { kind: 'gitea' | 'forgejo'; url: string; repo: string }, token: string) => ({
  url: cfg.url,
  token,
  repo: cfg.repo,
  kind: cfg.kind,
});

export const gitea: ServiceDescriptor<typeof trackerSchema, typeof forgeSchema> = {
  kinds: ['gitea', 'forgejo'],
  // One variable for both: a Forgejo instance is a Gitea to its clients.
  tokenEnv: 'ORCH_GITEA_TOKEN',
  openClosed: true,
  trackerSchema,
  forgeSchema,
  createTracker: async (cfg, token) => (await import('./tracker.ts')).createGiteaTracker(options(cfg, token)),
  createForge: async (cfg, token) => (await import('./forge.ts')).createGiteaForge(options(cfg, token)),
  createWebhooks: async (kind, secret) =>
    (await import('./webhooks.ts')).createGiteaWebhooks(secret, kind === 'forgejo' ? 'forgejo' : 'gitea'),
};
