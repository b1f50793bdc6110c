/**
 * GitLab webhook deliveries. GitLab does not sign a delivery: it sends the
 * hook's secret token as is in `X-Gitlab-Token`, which orch compares in
 * constant time. `X-Gitlab-Event-UUID` identifies the delivery. Issue events
 * (`Issue Hook`, and `Note Hook` on an issue) name the issue to read again;
 * review events (`Note Hook` on a merge request, and `Merge Request Hook`
 * when it is approved or unapproved) name the merge request whose reviews to
 * read again. Every other event is ignored.
 */
import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { TrackerError, type WebhookDelivery, type WebhookReceiver } from '../types.ts';
import { bodyDigest, parseBody } from '../webhook-kit.ts';

const iid = z.number().int().positive();
const MergeRequestRef = z.object({ iid, source_branch: z.string() });

const IssueEvent = z.object({ object_attributes: z.object({ iid }) });
const NoteEvent = z.object({
  object_attributes: z.object({ noteable_type: z.string() }),
  issue: z.object({ iid }).optional(),
  merge_request: MergeRequestRef.optional(),
});
const MergeRequestEvent = z.object({
  object_attributes: z.object({ iid, source_branch: z.string(), action: z.string().optional() }),
});

/** Merge request actions that change its review state. */
const REVIEW_ACTIONS = new Set(['approved', 'unapproved', 'approval', 'unapproval']);

export function createGitLabWebhooks(secret: string): WebhookReceiver {
  if (!secret) throw new TrackerError('gitlab: no webhook secret token configured', 'invalid');
  const expected = Buffer.from(secret, 'utf8');
  return {
    async verify(headers: Headers): Promise<boolean> {
      const given = Buffer.from(headers.get('x-gitlab-token') ?? '', 'utf8');
      return given.length === expected.length && timingSafeEqual(given, expected);
    },

    parse(headers: Headers, rawBody: string): WebhookDelivery | null {
      const event = headers.get('x-gitlab-event') ?? '';
      const deliveryId = headers.get('x-gitlab-event-uuid') || bodyDigest(rawBody);
      const service = `gitlab '${event}'`;
      if (event === 'Issue Hook' || event === 'Confidential Issue Hook') {
        const { object_attributes: issue } = parseBody(service, IssueEvent, rawBody);
        return { deliveryId, taskIds: [String(issue.iid)], reviews: [] };
      }
      if (event === 'Note Hook' || event === 'Confidential Note Hook') {
        const note = parseBody(service, NoteEvent, rawBody);
        const on = note.object_attributes.noteable_type;
        if (on === 'Issue' && note.issue)
          return { deliveryId, taskIds: [String(note.issue.iid)], reviews: [] };
        if (on === 'MergeRequest' && note.merge_request) {
          const m = note.merge_request;
          return {
            deliveryId,
            taskIds: [],
            reviews: [{ pullRequest: m.iid, head: m.source_branch, action: 'note' }],
          };
        }
        return null;
      }
      if (event === 'Merge Request Hook') {
        const { object_attributes: m } = parseBody(service, MergeRequestEvent, rawBody);
        if (!m.action || !REVIEW_ACTIONS.has(m.action)) return null;
        return {
          deliveryId,
          taskIds: [],
          reviews: [{ pullRequest: m.iid, head: m.source_branch, action: m.action }],
        };
      }
      parseBody(service, z.object({}).loose(), rawBody);
      return null;
    },
  };
}
