/**
 * Task keys (and project names) as directory names and git branch names.
 *
 * Keys orch generates (`DEMO-1`) are used as they are, so paths and branches
 * stay readable. Keys from outside (a tracker's `acme/app#12`, `../../etc`,
 * anything with spaces or quotes) become a sanitized name plus a hash of the
 * raw key: `acme_app_12-3f9a1c2b7d`. The hash keeps apart keys that sanitize
 * alike, and a plain name never ends like a hashed one, so two distinct keys
 * never share a name. Every name is one path segment (no `/`, never `.` or
 * `..`) and a valid git ref component (git check-ref-format).
 */
import { createHash } from 'node:crypto';

/** Longest name, suffix included: keeps paths and refs far from file system limits. */
export const MAX_NAME_CHARS = 64;
const HASH_CHARS = 10;

/**
 * Used unchanged: starts with a letter or digit; then letters, digits, `_`,
 * `-`, and dots that are neither doubled nor last (git refuses `..`, a
 * trailing `.`, and components ending in `.lock`).
 */
const PLAIN = /^[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?=[A-Za-z0-9_-]))*$/;
/** What a hashed name ends with; a plain name must not, or it could equal one. */
const HASHED_TAIL = new RegExp(`-[0-9a-f]{${HASH_CHARS}}$`);

/** Short hash of the raw key. UTF-16 code units, so even lone surrogates hash apart. */
const keyHash = (key: string): string =>
  createHash('sha256').update(key, 'utf16le').digest('hex').slice(0, HASH_CHARS);

const isPlain = (key: string): boolean =>
  key.length <= MAX_NAME_CHARS && PLAIN.test(key) && !/\.lock$/i.test(key) && !HASHED_TAIL.test(key);

/** A key as one safe path segment and ref component; distinct keys give distinct names. */
export function safeName(key: string): string {
  if (isPlain(key)) return key;
  const readable = key.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, MAX_NAME_CHARS - HASH_CHARS - 2);
  // A leading `-` would read as an option to the commands the name is given to.
  const lead = /^[A-Za-z0-9_]/.test(readable) ? '' : '_';
  return `${lead}${readable}-${keyHash(key)}`;
}
