/**
 * Linear's failures as `TrackerError`s. The SDK wraps every failure in a
 * `LinearError` subclass, but its classification is coarse (any 4xx without
 * a GraphQL error becomes an "authentication error") and it does not know
 * Linear's current rate-limit answer (HTTP 400 or 429 with
 * `extensions.code: RATELIMITED`). So the kind is read from the raw response
 * the error carries: the GraphQL errors' `extensions.code`/`type` first,
 * then the HTTP status; an error without a response is a network failure.
 */
import { LinearError } from '@linear/sdk';
import { TrackerError, type TrackerErrorKind } from '../types.ts';

interface RawGraphQLError {
  message?: string;
  extensions?: { code?: unknown; type?: unknown };
}

/** The `TrackerError` for a failed SDK call; `what` names the operation in the message. */
export function linearError(err: unknown, what: string, now = Date.now()): TrackerError {
  if (err instanceof TrackerError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  if (!(err instanceof LinearError)) {
    // Not from the API: the SDK could not read what it got back.
    return new TrackerError(`linear: ${what}: ${detail}`, 'invalid', { cause: err });
  }
  const response = err.raw?.response;
  const status = response?.status ?? err.status ?? null;
  const errors = (response?.errors ?? []) as RawGraphQLError[];
  const kind = kindOf(status, errors, response !== undefined);
  return new TrackerError(`linear: ${what}${status ? ` answered ${status}` : ' failed'}: ${detail}`, kind, {
    status,
    retryAfterMs: kind === 'rate_limited' ? rateLimitWaitMs(response?.headers, now) : null,
    cause: err,
  });
}

function kindOf(status: number | null, errors: RawGraphQLError[], responded: boolean): TrackerErrorKind {
  const tags = errors.flatMap((e) =>
    [e.extensions?.code, e.extensions?.type]
      .filter((t): t is string => typeof t === 'string')
      .map((t) => t.toLowerCase()),
  );
  if (tags.includes('ratelimited') || status === 429) return 'rate_limited';
  if (tags.some((t) => t === 'authentication_error' || t === 'authentication error')) return 'auth';
  if (tags.includes('forbidden')) return 'auth';
  if (errors.some((e) => /entity not found|could not find referenced/i.test(e.message ?? '')))
    return 'not_found';
  if (!responded) return 'unavailable';
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'not_found';
  if (status !== null && (status === 408 || status >= 500)) return 'unavailable';
  if (tags.some((t) => t === 'internal error' || t === 'internal_server_error' || t === 'lock timeout'))
    return 'unavailable';
  return 'invalid';
}

/**
 * How long Linear asks to wait: `Retry-After` (seconds) when sent, else the
 * reset of the exhausted budget (`X-RateLimit-Requests-Reset` or
 * `X-RateLimit-Complexity-Reset`, epoch milliseconds; seconds are accepted
 * too). When no budget says it is exhausted, the later reset: waiting too
 * long costs a delay, too short another refusal. Null when there is none.
 */
export function rateLimitWaitMs(headers: Headers | undefined, now = Date.now()): number | null {
  if (!headers) return null;
  const num = (name: string) => {
    const v = headers.get(name);
    return v === null || v.trim() === '' || !Number.isFinite(Number(v)) ? null : Number(v);
  };
  const retryAfter = num('retry-after');
  if (retryAfter !== null) return Math.max(0, retryAfter * 1000);
  const budgets = ['requests', 'complexity'].flatMap((b) => {
    const reset = num(`x-ratelimit-${b}-reset`);
    if (reset === null || reset <= 0) return [];
    const remaining = num(`x-ratelimit-${b}-remaining`);
    return [
      { exhausted: remaining !== null && remaining <= 0, resetAt: reset > 1e12 ? reset : reset * 1000 },
    ];
  });
  const exhausted = budgets.filter((b) => b.exhausted);
  const resets = (exhausted.length > 0 ? exhausted : budgets).map((b) => b.resetAt);
  return resets.length === 0 ? null : Math.max(0, Math.max(...resets) - now);
}
