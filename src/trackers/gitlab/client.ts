/**
 * The gitbeaker client both GitLab adapters share, and the one place where
 * its failures become `TrackerError`s. gitbeaker's own requester retries a
 * 429 or 502 ten times within a second and drops the `Retry-After` it was
 * given, so orch gives it a requester of its own: one request per call, a
 * timeout, and a refusal thrown with the service's retry hint (callers retry
 * durably, as with every tracker). Answers come back as JSON for the
 * adapters to parse with their schemas.
 */
import { Gitlab } from '@gitbeaker/rest';
import { createRequesterFn, type RequestOptions } from '@gitbeaker/requester-utils';
import { z } from 'zod';
import { OrchError } from '../../errors.ts';
import { httpError } from '../http.ts';
import { TrackerError } from '../types.ts';
import { describeIssues } from '../webhook-kit.ts';

export interface GitLabOptions {
  /** The instance: https://gitlab.com unless told (a trailing `/api/v4` is dropped). */
  url?: string;
  /** A personal, group or project access token (`PRIVATE-TOKEN`). */
  token: string;
  /** The project: its path with namespace (`group/sub/app`) or its numeric id. */
  project: string;
  /** Per request; 30 s unless told. */
  timeoutMs?: number;
}

export interface GitLabClient {
  api: InstanceType<typeof Gitlab<false>>;
  /** The project as the API takes it (path or id). */
  project: string;
  /** The project for keys and messages (`group/app`). */
  slug: string;
}

/** One request per call: no retries, no client-side rate limiting, the status and headers kept. */
function requester(service: string, timeoutMs: number) {
  return createRequesterFn(
    async (_, options) => options,
    async (endpoint, raw) => {
      const options = (raw ?? {}) as RequestOptions;
      const base = (options.prefixUrl ?? '').replace(/\/*$/, '/');
      const url = new URL(endpoint, base);
      if (options.searchParams) url.search = options.searchParams;
      const method = options.method ?? 'GET';
      const path = url.pathname + url.search;
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          ...(options.headers ? { headers: options.headers } : {}),
          ...(options.body !== undefined ? { body: options.body } : {}),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        throw new TrackerError(
          `${service}: ${method} ${path} failed: ${(err as Error).message}`,
          'unavailable',
          {
            cause: err,
          },
        );
      }
      const text = await res.text();
      if (!res.ok) throw httpError(service, method, path, res.status, res.headers, text);
      let body: unknown = null;
      if (text !== '') {
        try {
          body = JSON.parse(text);
        } catch {
          throw new TrackerError(
            `${service}: ${method} ${path} answered ${res.status} with a body that is not JSON`,
            'invalid',
            {
              status: res.status,
            },
          );
        }
      }
      return {
        body: body as Record<string, unknown>,
        headers: Object.fromEntries(res.headers),
        status: res.status,
      };
    },
  );
}

export function createGitLabClient(opts: GitLabOptions): GitLabClient {
  const project = opts.project.trim().replace(/^\/+|\/+$/g, '');
  if (!project || (!/^\d+$/.test(project) && !project.includes('/'))) {
    throw new OrchError(
      'config_invalid',
      `gitlab: project must be a path with its namespace ('group/app') or a numeric id, got '${opts.project}'`,
    );
  }
  const host = (opts.url ?? 'https://gitlab.com').replace(/\/+$/, '').replace(/\/api\/v4$/, '');
  const api = new Gitlab({
    host,
    token: opts.token,
    rateLimits: {},
    queryTimeout: null,
    requesterFn: requester('gitlab', opts.timeoutMs ?? 30_000),
  });
  return { api, project, slug: project };
}

/** Parses a gitbeaker answer with `schema`; `invalid` naming `what` when it does not match. */
export function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success)
    throw new TrackerError(
      `gitlab: ${what} answered a body orch cannot read: ${describeIssues(r.error)}`,
      'invalid',
    );
  return r.data;
}

/** An issue or merge request iid from a task or pull request id (`"12"`); `invalid` otherwise. */
export function iidOf(id: string | number): number {
  const n = Number(id);
  if (!/^[1-9][0-9]*$/.test(String(id)) || !Number.isSafeInteger(n)) {
    throw new TrackerError(`gitlab: '${id}' is not an iid`, 'invalid');
  }
  return n;
}

/** A GitLab user as its answers name one. */
export const GitLabUser = z.object({ username: z.string() });
