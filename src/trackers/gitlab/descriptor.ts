/** GitLab: issues as the tracker, merge requests with pipelines as the forge (docs/trackers.md#gitlab). */
import { z } from 'zod';
import { forgeFields, httpUrl, text, trackerFields } from '../fields.ts';
import type { ServiceDescriptor } from '../descriptor.ts';

const where = (what: string) => ({
  /** The instance: https://gitlab.com unless told. */
  url: httpUrl().optional(),
  /** The project's path with its namespace (`group/sub/app`) or its numeric id. */
  project: text(what),
});

const trackerSchema = z
  .object({ kind: z.literal('gitlab'), ...where('gitlab tracker'), ...trackerFields })
  .strict();
const forgeSchema = z
  .object({ kind: z.literal('gitlab'), ...where('gitlab forge'), ...forgeFields })
  .strict();

const options = (cfg: { url?: string | undefined; project: string }, token: string) => ({
  token,
  project: cfg.project,
  ...(cfg.url ? { url: cfg.url } : {}),
});

export const gitlab: ServiceDescriptor<typeof trackerSchema, typeof forgeSchema> = {
  kinds: ['gitlab'],
  tokenEnv: 'ORCH_GITLAB_TOKEN',
  openClosed: true,
  trackerSchema,
  forgeSchema,
  createTracker: async (cfg, token) =>
    (await import('./tracker.ts')).createGitLabTracker(options(cfg, token)),
  createForge: async (cfg, token) => (await import('./forge.ts')).createGitLabForge(options(cfg, token)),
  createWebhooks: async (_kind, secret) => (await import('./webhooks.ts')).createGitLabWebhooks(secret),
};
