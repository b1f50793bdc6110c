/**
 * Keeps secrets out of responses: every string of a JSON value (keys too), and
 * any text, goes through the one redaction of runtime/secrets.ts (token shapes,
 * orch's known secrets, and `secrets`).
 */
import { redact } from '../runtime/secrets.ts';

/** Only plain objects are walked; anything else (a Date, a Buffer) is passed as it is. */
const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
};

/** Every string of a JSON value, keys included, in the order {@link redactDeep} walks them. */
function collectStrings(v: unknown, out: string[]): void {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) collectStrings(x, out);
  else if (isPlainObject(v))
    for (const [k, x] of Object.entries(v)) {
      out.push(k);
      collectStrings(x, out);
    }
}

/**
 * A NUL between the texts: not a word character, not whitespace and not in any token's
 * alphabet, so whatever matches inside one text still matches in the joined one.
 */
const SEPARATOR = '\u0000';

/**
 * `value` with every string redacted. Most responses hold nothing to redact:
 * one pass of the redaction over all their strings joined says so, and the
 * value is returned as it is; only otherwise is each string redacted (a match
 * across two texts costs that walk, never a missed secret).
 */
export function redactDeep<T>(value: T, secrets: readonly string[]): T {
  const strings: string[] = [];
  collectStrings(value, strings);
  const joined = strings.join(SEPARATOR);
  if (redact(joined, secrets) === joined) return value;
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return redact(v, secrets);
    if (Array.isArray(v)) return v.map(walk);
    if (isPlainObject(v)) {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[redact(k, secrets)] = walk(x);
      return out;
    }
    return v;
  };
  return walk(value) as T;
}

export { redact };
