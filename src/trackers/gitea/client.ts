/**
 * The REST client both Gitea/Forgejo adapters share (API v1 at `<url>/api/v1`,
 * `Authorization: token <token>`), the JSON shapes they read, and the repo
 * option's parsing. Forgejo is a fork of Gitea and serves the same API.
 */
import { OrchError } from '../../errors.ts';
import { z } from 'zod';
import { HttpClient } from '../http.ts';
import { TrackerError } from '../types.ts';

export interface GiteaOptions {
  /** The instance's root, e.g. `https://gitea.example.com` (the API is at `/api/v1` below it; a trailing `/api/v1` is dropped). */
  url: string;
  token: string;
  /** `owner/name`. */
  repo: string;
  kind?: 'gitea' | 'forgejo';
  /** Per request; 30 s unless told. */
  timeoutMs?: number;
  /** Items asked for per page; 50 unless told (Gitea serves at most its MAX_RESPONSE_ITEMS, 50 by default). */
  pageSize?: number;
}

export interface GiteaClient {
  http: HttpClient;
  kind: 'gitea' | 'forgejo';
  /** `/repos/<owner>/<name>`, escaped. */
  repoPath: string;
  /** `owner/name`, for keys and messages. */
  slug: string;
  pageSize: number;
}

export const GiteaUser = z.object({ login: z.string() });

export const GiteaLabel = z.object({ id: z.number(), name: z.string() });
export type GiteaLabel = z.infer<typeof GiteaLabel>;

export const GiteaIssue = z.object({
  number: z.number(),
  title: z.string(),
  body: z.string().nullable(),
  html_url: z.string(),
  state: z.string(),
  labels: z.array(GiteaLabel).nullable(),
  assignee: GiteaUser.nullable(),
  assignees: z.array(GiteaUser).nullable(),
  updated_at: z.string(),
  /** Set on pull requests, which the issues API also serves. */
  pull_request: z.unknown().optional(),
});
export type GiteaIssue = z.infer<typeof GiteaIssue>;

export const GiteaPull = z.object({
  number: z.number(),
  html_url: z.string(),
  state: z.string(),
  merged: z.boolean(),
  merge_commit_sha: z.string().nullable(),
  user: GiteaUser,
  head: z.object({ ref: z.string() }),
  base: z.object({ ref: z.string() }),
});
export type GiteaPull = z.infer<typeof GiteaPull>;

/** A comment on an issue or on a pull request's conversation. */
export const GiteaComment = z.object({
  id: z.number(),
  body: z.string(),
  user: GiteaUser,
  created_at: z.string(),
});

export function createGiteaClient(opts: GiteaOptions): GiteaClient {
  const kind = opts.kind ?? 'gitea';
  const [owner, name, ...rest] = opts.repo.split('/');
  if (!owner || !name || rest.length > 0) {
    throw new OrchError('config_invalid', `${kind}: repo must look like 'owner/name', got '${opts.repo}'`);
  }
  const http = new HttpClient({
    // The instance root or the API root itself: a trailing `/api/v1` is dropped, then added.
    baseUrl: `${opts.url.replace(/\/+$/, '').replace(/\/api\/v1$/, '')}/api/v1`,
    headers: { authorization: `token ${opts.token}` },
    service: kind,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
  });
  return {
    http,
    kind,
    repoPath: `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`,
    slug: `${owner}/${name}`,
    pageSize: opts.pageSize ?? 50,
  };
}

/** An issue or pull request number from a task id (`"12"`); `invalid` otherwise. */
export function issueNumber(kind: string, id: string): number {
  const n = Number(id);
  if (!/^[1-9][0-9]*$/.test(id) || !Number.isSafeInteger(n)) {
    throw new TrackerError(`${kind}: '${id}' is not an issue number`, 'invalid');
  }
  return n;
}

/** The service's `message` from an error body, else the body itself (shortened). */
export function messageOf(text: string): string {
  try {
    const body = z.object({ message: z.string().min(1) }).safeParse(JSON.parse(text));
    if (body.success) return body.data.message;
  } catch {
    // not JSON: the text is the message
  }
  return text.trim().slice(0, 300);
}
