/**
 * What the webhook receivers share: the one HMAC-SHA256 check of a signed
 * body (GitHub, Gitea/Forgejo, Linear, Plane and Jira all sign so, with
 * different headers and prefixes), a body read as JSON and parsed with the
 * receiver's schema (a malformed one is an `invalid` TrackerError naming
 * what is wrong), and a delivery id from the body when the sender gives none.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { z } from 'zod';
import { TrackerError } from './types.ts';

/**
 * Whether `signature` is the hex HMAC-SHA256 of `body` keyed with `secret`,
 * written after `prefix` (`sha256=` for GitHub and Jira, none for the
 * others), compared in constant time. A missing or malformed one is false.
 */
export function verifyHmacSha256(
  secret: string,
  body: string,
  signature: string | null | undefined,
  prefix = '',
): boolean {
  if (!secret || !signature) return false;
  const given = signature.trim();
  if (!given.toLowerCase().startsWith(prefix)) return false;
  const hex = given.slice(prefix.length).toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(hex)) return false;
  const expected = createHmac('sha256', secret).update(body, 'utf8').digest();
  return timingSafeEqual(Buffer.from(hex, 'hex'), expected);
}

/** `sha256:<hex>` of the body: the delivery id of a sender that sends none, so a resend is still a duplicate. */
export const bodyDigest = (rawBody: string): string =>
  `sha256:${createHash('sha256').update(rawBody).digest('hex')}`;

/** The body as JSON, parsed with `schema`; an `invalid` TrackerError naming `service` and the problem otherwise. */
export function parseBody<T extends z.ZodType>(service: string, schema: T, json: string): z.output<T> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    throw new TrackerError(`${service} webhook: the body is not JSON`, 'invalid');
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new TrackerError(`${service} webhook: ${describeIssues(parsed.error)}`, 'invalid');
  }
  return parsed.data;
}

/** zod's issues in one line: `issue.number: expected number; …`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : 'body'}: ${i.message}`)
    .join('; ');
}
