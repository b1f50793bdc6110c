/** Linear: the issues of a team, over the official SDK (docs/trackers.md#linear). */
import { z } from 'zod';
import { httpUrl, text, trackerFields } from '../fields.ts';
import type { ServiceDescriptor } from '../descriptor.ts';

const trackerSchema = z
  .object({
    kind: z.literal('linear'),
    /** The GraphQL endpoint; https://api.linear.app/graphql unless told. */
    url: httpUrl().optional(),
    /** The team key (`ENG`). */
    team: text('linear tracker'),
    ...trackerFields,
  })
  .strict();

export const linear: ServiceDescriptor<typeof trackerSchema> = {
  kinds: ['linear'],
  tokenEnv: 'ORCH_LINEAR_API_KEY',
  openClosed: false,
  trackerSchema,
  createTracker: async (cfg, token) =>
    (await import('./tracker.ts')).createLinearTracker({
      apiKey: token,
      team: cfg.team,
      ...(cfg.url ? { apiUrl: cfg.url } : {}),
    }),
  createWebhooks: async (_kind, secret) => (await import('./webhooks.ts')).createLinearWebhooks(secret),
};
