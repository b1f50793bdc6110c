/**
 * orch's HTTP app on web-standard Request/Response (Hono): the JSON API under
 * `/api`, server-sent events, the OpenAPI document, `/metrics`, and the
 * dashboard. Testable in-process with `app.request()`; `server.ts` puts it on
 * a socket.
 *
 * Glossary: an endpoint is one declared route (endpoint.ts); the pulse wakes
 * event streams early; secrets are values redacted from every response.
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { OrchContext } from '../runtime/context.ts';
import { secretValues, type Logger } from '../runtime/logger.ts';
import { bearerMatches, isLoopbackHost } from './auth.ts';
import { ApiError, errorResponse } from './errors.ts';
import { endpoint, honoPath, type Endpoint } from './endpoint.ts';
import { apiEndpoints } from './routes.ts';
import { openApiDocument } from './openapi.ts';
import { createMetrics } from './metrics.ts';
import { Pulse } from './events.ts';
import { WEB_DIST, dashboardResponse } from './dashboard.ts';
import { redactDeep } from './redact.ts';
import { webhookEndpoint } from './webhooks.ts';
import { landingReviewed } from '../runtime/tasks.ts';

export interface AppOptions {
  /** Bearer token required on every API and metrics request; null (default) serves open, loopback only. */
  token?: string | null;
  log?: Logger;
  /** The built dashboard's directory. Default `web/dist`; null serves none. */
  webDir?: string | null;
  /** How often an event stream polls the store, in ms. Default 250. */
  ssePollMs?: number;
  /** Idle time before an event stream sends a keep-alive comment, in ms. Default 15 000. */
  sseKeepAliveMs?: number;
  /** Wakes event streams early; the server closes it to end them. Default a private one. */
  pulse?: Pulse;
  /** Called after the API queued work (a new or retried task). */
  onWorkQueued?: () => void;
  /** Agents a scheduler in this process runs at once (reported by /api/status). Default 0. */
  workers?: number;
  /** Also export Node's process metrics (CPU, memory, event loop). Default false. */
  processMetrics?: boolean;
}

export interface OrchApp {
  app: Hono;
  endpoints: readonly Endpoint[];
  pulse: Pulse;
}

const isRead = (method: string): boolean => method === 'GET' || method === 'HEAD';

/** Largest request body read, in bytes (API and webhooks alike); a task of 50 000 characters is far below. */
export const MAX_BODY_BYTES = 1024 * 1024;

export function createApp(ctx: OrchContext, opts: AppOptions = {}): OrchApp {
  const token = opts.token ?? null;
  const secrets = [...new Set([...secretValues(ctx.env), ...(token ? [token] : [])])];
  const pulse = opts.pulse ?? new Pulse();
  const webDir = opts.webDir === undefined ? WEB_DIST : opts.webDir;
  const metrics = createMetrics(ctx, { processMetrics: opts.processMetrics ?? false });
  const app = new Hono();

  app.use('*', async (c, next) => {
    await next();
    metrics.httpRequests.inc({ method: c.req.method, route: c.req.routePath, status: String(c.res.status) });
  });

  // Browsers: no cross-site writes (CSRF), and an open server answers only to loopback
  // names, so a DNS-rebound hostname cannot reach it.
  app.use('*', async (c, next) => {
    const url = new URL(c.req.url);
    if (token === null && !isLoopbackHost(url.hostname))
      throw new ApiError(
        'forbidden',
        `host ${url.host} refused: without ORCH_API_TOKEN only loopback names are served`,
      );
    const origin = c.req.header('origin');
    if (origin && !isRead(c.req.method)) {
      let from = '';
      try {
        from = new URL(origin).host;
      } catch {
        /* an unparsable origin is a foreign one */
      }
      if (from !== url.host) throw new ApiError('forbidden', `cross-origin request from ${origin} refused`);
    }
    await next();
  });

  if (token !== null) {
    app.use('*', async (c, next) => {
      const path = c.req.path;
      // The dashboard's static files hold no data; webhooks carry their tracker's signature
      // instead; everything else needs the token.
      const open =
        (isRead(c.req.method) && path !== '/metrics' && path !== '/api' && !path.startsWith('/api/')) ||
        (c.req.method === 'POST' && path.startsWith('/api/webhooks/'));
      if (!open && !bearerMatches(c.req.header('authorization'), token))
        throw new ApiError(
          'unauthorized',
          'missing or wrong bearer token (Authorization: Bearer <ORCH_API_TOKEN>)',
        );
      await next();
    });
  }

  // Handlers read bodies whole: stop an over-limit one (declared or streamed) before any of them does.
  app.use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new ApiError(
          'payload_too_large',
          `request body over the limit of ${MAX_BODY_BYTES} bytes (MAX_BODY_BYTES)`,
        );
      },
    }),
  );

  const endpoints: Endpoint[] = apiEndpoints({
    ctx,
    secrets,
    pulse,
    ssePollMs: opts.ssePollMs ?? 250,
    sseKeepAliveMs: opts.sseKeepAliveMs ?? 15_000,
    onWorkQueued: opts.onWorkQueued ?? (() => {}),
    workers: opts.workers ?? 0,
  });
  endpoints.push(
    webhookEndpoint(ctx, opts.onWorkQueued ?? (() => {}), (project, signals) => {
      // A review on a task's pull request: its landing looks now rather than at its next poll.
      void Promise.all(signals.map((s) => landingReviewed(ctx, project.id, s.head)))
        .then((found) => {
          if (found.some(Boolean)) opts.onWorkQueued?.();
        })
        .catch(() => {});
    }),
    endpoint({
      method: 'get',
      path: '/api/openapi.json',
      summary: 'This OpenAPI document',
      tag: 'meta',
      handle: (c) => c.json(openApiDocument(endpoints, { auth: token !== null })),
    }),
    endpoint({
      method: 'get',
      path: '/metrics',
      summary: 'Prometheus metrics (text exposition format); names in docs/api.md',
      tag: 'meta',
      produces: 'text/plain',
      handle: async (c) =>
        c.body(await metrics.scrape(), 200, { 'Content-Type': metrics.registry.contentType }),
    }),
  );
  for (const e of endpoints) app.on(e.method.toUpperCase(), honoPath(e.path), (c) => e.run(c));

  const noRoute = (c: Context): never => {
    throw new ApiError('not_found', `no route ${c.req.method} ${c.req.path}`);
  };
  app.all('/api', noRoute);
  app.all('/api/*', noRoute);
  if (webDir !== null) app.get('*', (c) => dashboardResponse(webDir, c.req.path));
  app.notFound(noRoute);

  app.onError((error, c) => {
    const { status, body } = errorResponse(error);
    if (status >= 500)
      opts.log?.error(`${c.req.method} ${c.req.path} failed: ${error.stack ?? String(error)}`);
    if (status === 401) c.header('WWW-Authenticate', 'Bearer realm="orch"');
    return c.json(redactDeep(body, secrets), status);
  });

  return { app, endpoints, pulse };
}
