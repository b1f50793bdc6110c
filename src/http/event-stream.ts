/**
 * `GET /api/events`: the event feed as server-sent events. Each stream polls
 * the store on its own timer (or at once when the pulse fires), writes what is
 * new, says `ready` after its first poll, and ends when the client goes or the
 * server closes.
 */
import { streamSSE } from 'hono/streaming';
import { endpoint, type Endpoint } from './endpoint.ts';
import { EventsQuery } from './schemas.ts';
import { EventFeed } from './events.ts';
import { redactDeep } from './redact.ts';
import type { RouteDeps } from './types.ts';

export function eventStreamEndpoint(d: RouteDeps): Endpoint {
  const { ctx, secrets } = d;
  return endpoint({
    method: 'get',
    path: '/api/events',
    summary: 'Server-sent events: every event after a cursor, runs started and finished, live log lines',
    tag: 'events',
    query: EventsQuery,
    produces: 'text/event-stream',
    responses: {
      200: 'an event stream',
      400: 'invalid query (details list each problem)',
      404: 'no such task',
    },
    handle: async (c, { query }) => {
      const header = c.req.header('last-event-id');
      const resume = header && /^\d+$/.test(header.trim()) ? Number(header.trim()) : query.after;
      const taskId = query.task ? (await ctx.store.getTaskByKey(query.task)).id : undefined;
      const feed = new EventFeed(ctx, { after: resume ?? null, taskId, logs: query.logs });
      return streamSSE(c, async (stream) => {
        const abort = new AbortController();
        stream.onAbort(() => abort.abort());
        let lastWrite = Date.now();
        let first = true;
        while (!stream.aborted && !d.pulse.closed) {
          let events;
          try {
            events = await feed.poll();
          } catch (error) {
            if (d.pulse.closed || stream.aborted) break;
            throw error;
          }
          for (const e of events)
            await stream.writeSSE({
              ...(e.id ? { id: e.id } : {}),
              event: e.event,
              data: JSON.stringify(redactDeep(e.data, secrets)),
            });
          if (first) {
            // Tells the client the stream is live, and from which event on.
            await stream.writeSSE({
              event: 'ready',
              data: JSON.stringify({ last_event_id: feed.lastEventId }),
              retry: 2000,
            });
            first = false;
          }
          if (events.length) lastWrite = Date.now();
          else if (Date.now() - lastWrite >= d.sseKeepAliveMs) {
            await stream.write(': keep-alive\n\n');
            lastWrite = Date.now();
          }
          await d.pulse.wait(d.ssePollMs, abort.signal);
        }
      });
    },
  });
}
