/**
 * Who may talk to the API. Bound to loopback, orch may serve without a token;
 * bound to any other address it needs `ORCH_API_TOKEN`, and once a token is
 * set every API and metrics request must carry it as `Authorization: Bearer`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Env } from '../config/settings.ts';
import { OrchError } from '../errors.ts';

/** Shorter tokens are refused: a bearer token is the only lock on a networked orch. */
export const MIN_TOKEN_LENGTH = 16;

/** Whether `host` (a name or an address, IPv6 with or without brackets) is this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\./.test(h);
  return false;
}

/** The API token from the environment, or null; a too-short one is refused with the rule. */
export function apiTokenFrom(env: Env): string | null {
  const token = env.ORCH_API_TOKEN?.trim();
  if (!token) return null;
  if (token.length < MIN_TOKEN_LENGTH)
    throw new OrchError(
      'config_invalid',
      `ORCH_API_TOKEN must be at least ${MIN_TOKEN_LENGTH} characters (it has ${token.length}); try \`openssl rand -hex 32\``,
    );
  return token;
}

/** Refuses to serve a non-loopback address without a token. */
export function checkBindable(host: string, token: string | null): void {
  if (token === null && !isLoopbackHost(host))
    throw new OrchError(
      'config_invalid',
      `refusing to serve on ${host} without an API token: set ORCH_API_TOKEN (at least ${MIN_TOKEN_LENGTH} characters), or bind to 127.0.0.1`,
    );
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Whether an `Authorization` header carries `token`; compared in constant time (hashes of equal length). */
export function bearerMatches(header: string | undefined | null, token: string): boolean {
  const m = /^Bearer[ \t]+(\S+)\s*$/i.exec(header ?? '');
  const given = m?.[1] ?? '';
  // Hash both sides so the comparison takes the same time whatever the lengths.
  const ok = timingSafeEqual(digest(given), digest(token));
  return ok && given.length > 0;
}
