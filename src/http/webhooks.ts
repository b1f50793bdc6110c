/**
 * `POST /api/webhooks/{project}`: a project's tracker tells orch a task
 * changed. The signature is the authentication (no bearer token): a missing
 * or wrong one is refused and nothing changes. A delivery seen before is
 * acknowledged and ignored; the tasks it names are re-read from the tracker
 * and imported when they match the project's import filter, as a poll would.
 */
import type { OrchContext } from '../runtime/context.ts';
import { endpoint, type Endpoint } from './endpoint.ts';
import { ApiError } from './errors.ts';
import { createTracker, createWebhookReceiver } from '../trackers/index.ts';
import { importFilter, importTask, matchesImport } from '../trackers/sync.ts';
import { TrackerError } from '../trackers/types.ts';

export function webhookEndpoint(ctx: OrchContext, onImported: () => void): Endpoint {
  return endpoint({
    method: 'post',
    path: '/api/webhooks/{project}',
    summary:
      "A tracker's webhook (GitHub, Gitea, Forgejo, Linear, Plane, Jira): verified by its signature, not by the API token",
    tag: 'trackers',
    params: { project: 'the project name' },
    responses: {
      202: 'accepted: `{ imported: [task keys] }`, or `{ ignored: true }` for events orch does not act on',
      200: 'a delivery seen before: `{ duplicate: true }`',
      400: 'a body the tracker adapter cannot read',
      401: 'missing or wrong signature',
      404: 'no such project, or it has no tracker with a webhook secret',
      413: 'a body over the API limit (1 MiB)',
      503: 'the tracker could not be read back; the sender should retry',
    },
    handle: async (c, { params }) => {
      const project = await ctx.store.getProjectByName(params['project'] ?? '');
      if (!project) throw new ApiError('not_found', `no project named ${JSON.stringify(params['project'])}`);
      const rt = await ctx.projectRuntime(project.id);
      const cfg = rt.raw.tracker;
      const receiver = cfg ? await createWebhookReceiver(cfg, ctx.env) : null;
      if (!cfg || !receiver)
        throw new ApiError(
          'not_found',
          `project ${project.name} takes no webhooks: its orch.yaml needs a tracker with webhook_secret_env`,
        );
      // Bodies over the API's limit (MAX_BODY_BYTES) were refused with 413 before this handler.
      const raw = await c.req.text();
      if (!(await receiver.verify(c.req.raw.headers, raw)))
        throw new ApiError('unauthorized', `webhook signature missing or wrong for ${cfg.kind}`);
      let delivery;
      try {
        delivery = receiver.parse(c.req.raw.headers, raw);
      } catch (error) {
        throw new ApiError('bad_request', `unreadable ${cfg.kind} webhook: ${(error as Error).message}`);
      }
      if (!delivery) return c.json({ ignored: true }, 202);
      const source = `${cfg.kind}:${project.name}`;
      if (await ctx.store.outbox.seenDelivery(source, delivery.deliveryId))
        return c.json({ duplicate: true }, 200);
      const tracker = createTracker(cfg, ctx.env);
      const imported: string[] = [];
      try {
        for (const id of delivery.taskIds) {
          const ext = await tracker.get(id);
          if (!ext || !matchesImport(ext, importFilter(cfg))) continue;
          imported.push((await importTask(ctx, rt, cfg.kind, ext)).task.key);
        }
      } catch (error) {
        if (error instanceof TrackerError)
          throw new ApiError(
            'unavailable',
            `reading the task back from ${cfg.kind} failed: ${error.message}`,
          );
        throw error;
      }
      // Recorded once acted on: a delivery that failed above is taken again when resent.
      await ctx.store.outbox.firstDelivery(source, delivery.deliveryId);
      if (imported.length) onImported();
      return c.json({ imported }, 202);
    },
  });
}
