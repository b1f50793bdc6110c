/** Plane: the work items of a project, over the REST API v1 (docs/trackers.md#plane). */
import { z } from 'zod';
import { httpUrl, text, trackerFields } from '../fields.ts';
import type { ServiceDescriptor } from '../descriptor.ts';

const trackerSchema = z
  .object({
    kind: z.literal('plane'),
    /** https://api.plane.so for Plane Cloud, the host when self-hosted. */
    url: httpUrl('plane tracker'),
    /** The workspace slug. */
    workspace: text('plane tracker'),
    /** The project's UUID. */
    project: text('plane tracker'),
    ...trackerFields,
  })
  .strict();

export const plane: ServiceDescriptor<typeof trackerSchema> = {
  kinds: ['plane'],
  tokenEnv: 'ORCH_PLANE_API_TOKEN',
  openClosed: false,
  trackerSchema,
  createTracker: async (cfg, token) =>
    (await import('./tracker.ts')).createPlaneTracker({
      baseUrl: cfg.url,
      token,
      workspace: cfg.workspace,
      project: cfg.project,
    }),
  createWebhooks: async (_kind, secret) => (await import('./webhooks.ts')).createPlaneWebhooks(secret),
};
