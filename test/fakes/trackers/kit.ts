/**
 * The plumbing every fake tracker and forge shares: a Hono app served on
 * 127.0.0.1 with an ephemeral port, every request recorded, a bearer-style
 * token checked, and faults queued by the test (a status with headers, for
 * the next N requests whose path matches) served before the vendor's routes.
 * A vendor's fake adds only its routes and its in-memory state.
 */
import { Hono, type Context } from 'hono';
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  /** The query string without `?`. */
  query: string;
  headers: Record<string, string>;
  /** Raw body text ('' for none). */
  body: string;
  /** The status the fake answered. */
  status?: number;
  /** When the request arrived (epoch ms), to check how far apart a client's retries came. */
  at: number;
}

/** An injected failure: `status` (with `headers`, e.g. retry-after) for the next `times` matching requests. */
export interface Fault {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  times: number;
  /** Matching requests to let through first (e.g. fail a list's second page); 0 when absent. */
  skip?: number;
  /** Only requests whose path (no query) matches; all when absent. */
  path?: RegExp;
  method?: string;
}

export interface FakeService {
  url: string;
  app: Hono;
  requests: RecordedRequest[];
  /** Queues a fault; faults are served in the order they were queued. */
  fail(fault: Fault): void;
  /** Drops every queued fault: the service has recovered. */
  recover(): void;
  /** Requests answered by a route (faults and 401s excluded), for "no double effect" checks. */
  served(method: string, path: RegExp): RecordedRequest[];
  close(): Promise<void>;
}

export interface FakeServiceOptions {
  /** The token a request must present; checked by `authorized`. */
  token: string;
  /** Reads the presented token from a request (e.g. `Authorization: Bearer x`, `token x`, Basic). */
  authorized: (c: Context, token: string) => boolean;
  /** Paths that need no token (webhook senders' endpoints, health). */
  public?: RegExp;
}

/** Starts a fake; `routes` adds the vendor's routes to the app. */
export async function startFakeService(
  opts: FakeServiceOptions,
  routes: (app: Hono) => void,
): Promise<FakeService> {
  const app = new Hono();
  const requests: RecordedRequest[] = [];
  const faults: Fault[] = [];

  app.use('*', async (c, next) => {
    const url = new URL(c.req.url);
    const rec: RecordedRequest = {
      method: c.req.method,
      path: url.pathname,
      query: url.search.replace(/^\?/, ''),
      headers: Object.fromEntries(c.req.raw.headers.entries()),
      body: c.req.method === 'GET' || c.req.method === 'HEAD' ? '' : await c.req.raw.clone().text(),
      at: Date.now(),
    };
    requests.push(rec);
    const i = faults.findIndex(
      (f) => (!f.path || f.path.test(rec.path)) && (!f.method || f.method === rec.method),
    );
    if (i >= 0 && (faults[i]!.skip ?? 0) > 0) {
      faults[i]!.skip! -= 1;
    } else if (i >= 0) {
      const f = faults[i]!;
      if (--f.times <= 0) faults.splice(i, 1);
      rec.status = f.status;
      return c.json(f.body ?? { message: `injected ${f.status}` }, f.status as 500, f.headers);
    }
    if (!(opts.public?.test(rec.path) ?? false) && !opts.authorized(c, opts.token)) {
      rec.status = 401;
      return c.json({ message: 'Bad credentials' }, 401);
    }
    await next();
    rec.status = c.res.status;
  });
  routes(app);

  const server: ServerType = await new Promise((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    requests,
    fail: (f) => faults.push({ ...f }),
    recover: () => {
      faults.length = 0;
    },
    served: (method, path) =>
      requests.filter(
        (r) => r.method === method && path.test(r.path) && r.status !== undefined && r.status < 400,
      ),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

/** `Authorization: <scheme> <token>` check. */
export const schemeAuth =
  (scheme: string) =>
  (c: Context, token: string): boolean =>
    c.req.header('authorization') === `${scheme} ${token}`;

export interface PageOptions {
  /** Query parameter of the 1-based page number. */
  pageParam: string;
  /** Query parameter of the page size. */
  sizeParam: string;
  /** Size when the request gives none. */
  defaultSize: number;
  /** The most a page holds, whatever the request asks (vendors cap it). */
  maxSize: number;
}

/**
 * One page of `items` as a page-numbered API serves it: the slice the
 * request's page and size select, the `Link` header (first, prev, next, last,
 * GitHub's format, which Gitea follows) and the total for `X-Total-Count`.
 */
export function pageOf<T>(
  requestUrl: string,
  items: T[],
  opts: PageOptions,
): { items: T[]; link: string | null; total: number } {
  const url = new URL(requestUrl);
  const asked = Number(url.searchParams.get(opts.sizeParam) ?? opts.defaultSize);
  const size = Math.min(
    Math.max(1, Number.isFinite(asked) && asked > 0 ? asked : opts.defaultSize),
    opts.maxSize,
  );
  const page = Math.max(1, Number(url.searchParams.get(opts.pageParam) ?? 1) || 1);
  const last = Math.max(1, Math.ceil(items.length / size));
  const at = (p: number) => {
    const u = new URL(url);
    u.searchParams.set(opts.pageParam, String(p));
    u.searchParams.set(opts.sizeParam, String(size));
    return u.toString();
  };
  const rels: string[] = [];
  if (page > 1) rels.push(`<${at(page - 1)}>; rel="prev"`, `<${at(1)}>; rel="first"`);
  if (page < last) rels.push(`<${at(page + 1)}>; rel="next"`, `<${at(last)}>; rel="last"`);
  return {
    items: items.slice((page - 1) * size, page * size),
    link: rels.length > 0 ? rels.join(', ') : null,
    total: items.length,
  };
}
