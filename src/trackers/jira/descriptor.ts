/** Jira Cloud: the issues of a project, over the REST API v3 (docs/trackers.md#jira). */
import { z } from 'zod';
import { httpUrl, text, trackerFields } from '../fields.ts';
import type { ServiceDescriptor } from '../descriptor.ts';

const trackerSchema = z
  .object({
    kind: z.literal('jira'),
    /** The site, e.g. https://acme.atlassian.net. */
    url: httpUrl('jira tracker'),
    /** The project key (`PROJ`). */
    project: text('jira tracker'),
    /** The account the API token belongs to. */
    email: text('jira tracker', 3),
    ...trackerFields,
  })
  .strict();

export const jira: ServiceDescriptor<typeof trackerSchema> = {
  kinds: ['jira'],
  tokenEnv: 'ORCH_JIRA_TOKEN',
  openClosed: false,
  trackerSchema,
  createTracker: async (cfg, token) =>
    (await import('./tracker.ts')).createJiraTracker({
      baseUrl: cfg.url,
      email: cfg.email,
      token,
      project: cfg.project,
    }),
  createWebhooks: async (_kind, secret) => (await import('./webhooks.ts')).createJiraWebhooks(secret),
};
