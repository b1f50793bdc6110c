/** GitHub: issues as the tracker, pull requests with checks and statuses as the forge (docs/trackers.md#github). */
import { z } from 'zod';
import { forgeFields, httpUrl, repoName, trackerFields } from '../fields.ts';
import type { ServiceDescriptor } from '../descriptor.ts';

const where = {
  /** The REST API root: https://api.github.com unless told (GitHub Enterprise: `https://<host>/api/v3`). */
  url: httpUrl().optional(),
};

const trackerSchema = z
  .object({ kind: z.literal('github'), ...where, repo: repoName('github tracker'), ...trackerFields })
  .strict();
const forgeSchema = z
  .object({ kind: z.literal('github'), ...where, repo: repoName('github forge'), ...forgeFields })
  .strict();

const options = (cfg: { url?: string | undefined; repo: string }, token: string) => ({
  token,
  repo: cfg.repo,
  ...(cfg.url ? { baseUrl: cfg.url } : {}),
});

export const github: ServiceDescriptor<typeof trackerSchema, typeof forgeSchema> = {
  kinds: ['github'],
  tokenEnv: 'ORCH_GITHUB_TOKEN',
  openClosed: true,
  trackerSchema,
  forgeSchema,
  createTracker: async (cfg, token) =>
    (await import('./tracker.ts')).createGitHubTracker(options(cfg, token)),
  createForge: async (cfg, token) => (await import('./forge.ts')).createGitHubForge(options(cfg, token)),
  createWebhooks: async (_kind, secret) => (await import('./webhooks.ts')).createGitHubWebhooks(secret),
};
