/**
 * The HTTP client of the REST adapters (Gitea/Forgejo, Plane, Jira): JSON in
 * and out, a timeout, every answer parsed with the caller's schema (a body
 * that does not match is an `invalid` TrackerError naming the field, never a
 * blind cast), and every failure turned into a `TrackerError` carrying the
 * service's retry hint. No retries here: callers retry durably.
 */
import { z } from 'zod';
import { TrackerError, type TrackerErrorKind } from './types.ts';
import { describeIssues } from './webhook-kit.ts';

/** The schema of an answer whose body the caller does not read. */
export const Ignored = z.unknown();

export interface HttpClientOptions {
  /** The API root, e.g. `https://gitea.example.com/api/v1`; paths are appended to it. */
  baseUrl: string;
  /** Headers sent with every request (authorization, accept). */
  headers: Record<string, string>;
  /** Names the service in error messages. */
  service: string;
  timeoutMs?: number;
}

export interface HttpResponse<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** An answer as it came, whatever its status. */
export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
}

export interface PageOptions {
  /** Query parameter of the 1-based page number; `page` unless told. */
  pageParam?: string;
  /** Query parameter of the page size; `limit` unless told. */
  sizeParam?: string;
  /** Items asked for per page; 50 unless told. */
  pageSize?: number;
  /** A guard against a server that never ends its list; 1000 unless told. */
  maxPages?: number;
}

/** The URL of a `Link` header's relation (`next`, `last`, …), or null when absent. */
export function linkRel(headers: Headers, rel: string): string | null {
  const link = headers.get('link');
  if (!link) return null;
  // Each link is `<url>; rel="a b"; other=params`, separated by commas.
  for (const m of link.matchAll(/<([^>]*)>([^<]*)/g)) {
    const rels = /;\s*rel\s*=\s*"?([^";]*)"?/i.exec(m[2]!)?.[1]?.trim().split(/\s+/) ?? [];
    if (rels.includes(rel)) return m[1]!;
  }
  return null;
}

/**
 * Milliseconds to wait from the response's headers: `Retry-After` (seconds or
 * an HTTP date), else a rate-limit reset (`X-RateLimit-Reset` as epoch
 * seconds or an ISO date) when the remaining count is zero. Null when none.
 */
export function retryAfterMs(headers: Headers, now = Date.now()): number | null {
  const retryAfter = headers.get('retry-after');
  if (retryAfter !== null) {
    const seconds = Number(retryAfter);
    if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
    const at = Date.parse(retryAfter);
    if (Number.isFinite(at)) return Math.max(0, at - now);
  }
  const remaining = headers.get('x-ratelimit-remaining');
  const reset = headers.get('x-ratelimit-reset');
  if (remaining === '0' && reset !== null) {
    const n = Number(reset);
    const at = Number.isFinite(n) ? (n > 1e12 ? n : n * 1000) : Date.parse(reset);
    if (Number.isFinite(at)) return Math.max(0, at - now);
  }
  return null;
}

/** The error kind of an HTTP status (with its headers, for GitHub-style 403 rate limiting). */
export function errorKindOf(status: number, headers: Headers): TrackerErrorKind {
  if (status === 429) return 'rate_limited';
  if (status === 403 && headers.get('x-ratelimit-remaining') === '0') return 'rate_limited';
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  if (status === 408 || status >= 500) return 'unavailable';
  return 'invalid';
}

/** A `TrackerError` for a non-2xx response; the message names the service, method, path and status. */
export function httpError(
  service: string,
  method: string,
  path: string,
  status: number,
  headers: Headers,
  bodyText: string,
): TrackerError {
  const detail = bodyText.trim().slice(0, 300);
  return new TrackerError(
    `${service}: ${method} ${path} answered ${status}${detail ? `: ${detail}` : ''}`,
    errorKindOf(status, headers),
    { status, retryAfterMs: retryAfterMs(headers) },
  );
}

export class HttpClient {
  private readonly opts: Required<HttpClientOptions>;
  constructor(opts: HttpClientOptions) {
    this.opts = { timeoutMs: 30_000, ...opts, baseUrl: opts.baseUrl.replace(/\/+$/, '') };
  }

  /**
   * Sends a request and returns the answer whatever its status (for callers
   * that read a vendor's refusal, e.g. a merge answered 405/409); throws
   * `TrackerError` only when no answer came (connection, timeout).
   */
  async send(method: string, path: string, body?: unknown): Promise<RawResponse> {
    const { service, baseUrl, headers, timeoutMs } = this.opts;
    try {
      const res = await fetch(baseUrl + path, {
        method,
        headers: {
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { status: res.status, headers: res.headers, text: await res.text() };
    } catch (err) {
      throw new TrackerError(
        `${service}: ${method} ${path} failed: ${(err as Error).message}`,
        'unavailable',
        {
          cause: err,
        },
      );
    }
  }

  /**
   * Sends a request; a 2xx answer's JSON body (null when empty) parsed with
   * `schema`, else throws `TrackerError`.
   */
  async request<S extends z.ZodType>(
    method: string,
    path: string,
    schema: S,
    body?: unknown,
  ): Promise<HttpResponse<z.output<S>>> {
    const { service } = this.opts;
    const res = await this.send(method, path, body);
    if (res.status < 200 || res.status > 299) {
      throw httpError(service, method, path, res.status, res.headers, res.text);
    }
    let json: unknown = null;
    if (res.text !== '') {
      try {
        json = JSON.parse(res.text);
      } catch {
        throw new TrackerError(
          `${service}: ${method} ${path} answered ${res.status} with a body that is not JSON`,
          'invalid',
          { status: res.status },
        );
      }
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      throw new TrackerError(
        `${service}: ${method} ${path} answered ${res.status} with a body orch cannot read: ${describeIssues(parsed.error)}`,
        'invalid',
        { status: res.status },
      );
    }
    return { status: res.status, headers: res.headers, body: parsed.data };
  }

  /**
   * Every item of a page-numbered list (`?page=1&limit=50`, as Gitea and
   * GitHub-style APIs page). A server may serve fewer items than asked (Gitea
   * caps `limit` at its MAX_RESPONSE_ITEMS), so a short page does not end the
   * list by itself: `X-Total-Count` does when sent, else the `Link` header's
   * `next`, else a page shorter than asked for.
   */
  async getAllPages<S extends z.ZodType>(
    path: string,
    item: S,
    opts: PageOptions = {},
  ): Promise<z.output<S>[]> {
    const { pageParam = 'page', sizeParam = 'limit', pageSize = 50, maxPages = 1000 } = opts;
    const items: z.output<S>[] = [];
    const list = z.array(item);
    for (let page = 1; page <= maxPages; page++) {
      const sep = path.includes('?') ? '&' : '?';
      const pagePath = `${path}${sep}${pageParam}=${page}&${sizeParam}=${pageSize}`;
      const res = await this.get(pagePath, list);
      items.push(...res.body);
      if (res.body.length === 0) return items;
      const total = Number(res.headers.get('x-total-count') ?? NaN);
      if (Number.isFinite(total)) {
        if (items.length >= total) return items;
      } else if (res.headers.has('link')) {
        if (linkRel(res.headers, 'next') === null) return items;
      } else if (res.body.length < pageSize) {
        return items;
      }
    }
    throw new TrackerError(`${this.opts.service}: GET ${path} has more than ${maxPages} pages`, 'invalid');
  }

  get<S extends z.ZodType>(path: string, schema: S) {
    return this.request('GET', path, schema);
  }
}
