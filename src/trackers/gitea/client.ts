/**
 * The REST client both Gitea/Forgejo adapters share (API v1 at `<url>/api/v1`,
 * `Authorization: token <token>`), the JSON shapes they read, and the repo
 * option's parsing. Forgejo is a fork of Gitea and serves the same API.
 */
import { OrchError } from '../../errors.ts';
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

export interface GiteaUser {
  login: string;
}

export interface GiteaLabel {
  id: number;
  name: string;
}

export interface GiteaIssue {
  number: number;
  title: string;
  body: string | null;
  html_url: string;
  state: string;
  labels: GiteaLabel[] | null;
  assignee: GiteaUser | null;
  assignees: GiteaUser[] | null;
  updated_at: string;
  /** Set on pull requests, which the issues API also serves. */
  pull_request?: unknown;
}

export interface GiteaPull {
  number: number;
  html_url: string;
  state: string;
  merged: boolean;
  merge_commit_sha: string | null;
  head: { ref: string };
  base: { ref: string };
}

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
    const body = JSON.parse(text) as { message?: unknown };
    if (typeof body.message === 'string' && body.message !== '') return body.message;
  } catch {
    // not JSON: the text is the message
  }
  return text.trim().slice(0, 300);
}
