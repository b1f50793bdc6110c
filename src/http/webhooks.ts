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
import { importFilter, importTask, matchesImport } from '../runtime/tracker-sync.ts';
import {
  TrackerError,
  type ReviewSignal,
  type TrackerKind,
  type WebhookReceiver,
} from '../trackers/types.ts';
import type { Project } from '../store/schema.ts';

/** What to do with review deliveries: the pipeline reads those pull requests' reviews again. */
export type ReviewSignalHandler = (project: Project, signals: ReviewSignal[]) => void;

export function webhookEndpoint(
  ctx: OrchContext,
  onImported: () => void,
  onReview: ReviewSignalHandler = () => {},
): Endpoint {
  return endpoint({
    method: 'post',
    path: '/api/webhooks/{project}',
    summary:
      "A tracker's or forge's webhook (GitHub, Gitea, Forgejo, GitLab, Linear, Plane, Jira): verified by its signature (GitLab: its token), not by the API token",
    tag: 'trackers',
    params: { project: 'the project name' },
    responses: {
      202: 'accepted: `{ imported: [task keys] }`, `{ reviews: [{ pull_request, head }] }` for a review, or `{ ignored: true }` for events orch does not act on',
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
      const forge = rt.raw.forge;
      // The tracker's receiver, and the forge's when it has a secret of its own.
      const receivers = [
        ...(cfg ? [{ kind: cfg.kind, receiver: await createWebhookReceiver(cfg, ctx.env) }] : []),
        ...(forge?.webhook_secret_env
          ? [{ kind: forge.kind, receiver: await createWebhookReceiver(forge, ctx.env) }]
          : []),
      ].filter((r): r is { kind: TrackerKind; receiver: WebhookReceiver } => r.receiver !== null);
      if (receivers.length === 0)
        throw new ApiError(
          'not_found',
          `project ${project.name} takes no webhooks: its orch.yaml needs a tracker (or forge) with webhook_secret_env`,
        );
      // Bodies over the API's limit (MAX_BODY_BYTES) were refused with 413 before this handler.
      const raw = await c.req.text();
      let verified: { kind: TrackerKind; receiver: WebhookReceiver } | undefined;
      for (const r of receivers) if (await r.receiver.verify(c.req.raw.headers, raw)) verified ??= r;
      if (!verified)
        throw new ApiError(
          'unauthorized',
          `webhook signature missing or wrong for ${receivers.map((r) => r.kind).join(' or ')}`,
        );
      let delivery;
      try {
        delivery = verified.receiver.parse(c.req.raw.headers, raw);
      } catch (error) {
        throw new ApiError('bad_request', `unreadable ${verified.kind} webhook: ${(error as Error).message}`);
      }
      if (!delivery) return c.json({ ignored: true }, 202);
      if (delivery.reviews.length > 0) {
        const source = `${verified.kind}:${project.name}`;
        if (await ctx.store.outbox.seenDelivery(source, delivery.deliveryId))
          return c.json({ duplicate: true }, 200);
        onReview(project, delivery.reviews);
        await ctx.store.outbox.firstDelivery(source, delivery.deliveryId);
        return c.json(
          { reviews: delivery.reviews.map((r) => ({ pull_request: r.pullRequest, head: r.head })) },
          202,
        );
      }
      // Issue events of a forge that is not the tracker name no tracker task.
      if (!cfg || verified.kind !== cfg.kind) return c.json({ ignored: true }, 202);
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
