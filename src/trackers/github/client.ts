/**
 * The Octokit client both GitHub adapters share, and the one place where
 * Octokit's errors become `TrackerError`s. `@octokit/rest` ships no retry or
 * throttling plugin, and none is added: a refused call reaches the caller at
 * once with the service's retry hint, and the caller retries durably.
 */
import { Octokit } from '@octokit/rest';
import { OrchError } from '../../errors.ts';
import { errorKindOf, retryAfterMs } from '../http.ts';
import { TrackerError } from '../types.ts';

export interface GitHubOptions {
  /** The REST API root: `https://api.github.com` unless told (GitHub Enterprise: `https://<host>/api/v3`). */
  baseUrl?: string;
  token: string;
  /** `owner/name`. */
  repo: string;
  /** Per request; 30 s unless told. */
  timeoutMs?: number;
}

export interface GitHubClient {
  octokit: Octokit;
  owner: string;
  repo: string;
  /** `owner/name`, for keys and messages. */
  slug: string;
}

const noop = () => {};

export function createGitHubClient(opts: GitHubOptions): GitHubClient {
  const [owner, repo, ...rest] = opts.repo.split('/');
  if (!owner || !repo || rest.length > 0) {
    throw new OrchError('config_invalid', `github: repo must look like 'owner/name', got '${opts.repo}'`);
  }
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const octokit = new Octokit({
    auth: opts.token,
    baseUrl: (opts.baseUrl ?? 'https://api.github.com').replace(/\/+$/, ''),
    userAgent: 'orch',
    // Failed calls are thrown as TrackerError; the request log would only repeat them.
    log: { debug: noop, info: noop, warn: console.warn, error: noop },
    request: {
      // A timeout per request (Octokit has none of its own).
      fetch: (url: string | URL, init: RequestInit = {}) =>
        fetch(url, { ...init, signal: init.signal ?? AbortSignal.timeout(timeoutMs) }),
    },
  });
  return { octokit, owner, repo, slug: `${owner}/${repo}` };
}

/** What an Octokit `RequestError` carries (it is matched by shape: the class is a transitive dependency). */
interface OctokitErrorShape {
  status: number;
  message: string;
  response?: { headers: Record<string, string | number | undefined>; data?: unknown };
}

export function isOctokitError(err: unknown): err is OctokitErrorShape {
  return err instanceof Error && typeof (err as { status?: unknown }).status === 'number';
}

/** The HTTP status of a failed Octokit call, or null when no answer came. */
export function statusOf(err: unknown): number | null {
  return isOctokitError(err) && err.response ? err.status : null;
}

/** The vendor's own words from an error answer (`message`), for `{ merged: false, message }`. */
export function vendorMessage(err: unknown): string {
  if (!isOctokitError(err)) return String(err);
  const data = err.response?.data;
  if (data && typeof data === 'object' && typeof (data as { message?: unknown }).message === 'string') {
    return (data as { message: string }).message;
  }
  return err.message;
}

/** Turns whatever an Octokit call threw into a `TrackerError` naming what was attempted. */
export function toTrackerError(err: unknown, what: string): TrackerError {
  if (err instanceof TrackerError) return err;
  if (isOctokitError(err) && err.response) {
    const headers = new Headers();
    for (const [k, v] of Object.entries(err.response.headers)) if (v !== undefined) headers.set(k, String(v));
    return new TrackerError(
      `github: ${what} answered ${err.status}: ${err.message.slice(0, 300)}`,
      errorKindOf(err.status, headers),
      { status: err.status, retryAfterMs: retryAfterMs(headers), cause: err },
    );
  }
  // No answer: connection refused or reset, DNS, timeout (Octokit reports these as status 500 without a response).
  const message = err instanceof Error ? err.message : String(err);
  return new TrackerError(`github: ${what} failed: ${message}`, 'unavailable', { cause: err });
}

/** Runs one Octokit call, mapping its failure. */
export async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toTrackerError(err, what);
  }
}

/** An issue or pull request number from a task id (`"12"`); `invalid` otherwise. */
export function issueNumber(id: string): number {
  const n = Number(id);
  if (!/^[1-9][0-9]*$/.test(id) || !Number.isSafeInteger(n)) {
    throw new TrackerError(`github: '${id}' is not an issue number`, 'invalid');
  }
  return n;
}
