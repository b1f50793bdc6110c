/**
 * Secret hygiene: the one redaction every stored or served text goes through
 * (orch's log, run logs and the result and error text taken from them, API
 * responses, the event stream, the dashboard).
 *
 * What is redacted: known token shapes (below), and the values of every
 * secret this process knows — variables of its environment whose names say
 * they are secret, passwords in URLs, the values a role's `env` gives under
 * such a name (registered by the launcher), and whatever a caller passes.
 * Values shorter than {@link MIN_SECRET_LENGTH} are never redacted: they
 * would blank ordinary words out of every log.
 */

export const REDACTED = '[REDACTED]';
export const MIN_SECRET_LENGTH = 6;

/**
 * Names whose values are secret: ending in TOKEN, SECRET, PASSWORD, PASSWD,
 * PASSPHRASE or CREDENTIALS, or in a `_KEY` / `_PAT` word (ANTHROPIC_API_KEY,
 * ORCH_WEBHOOK_SECRET, PGPASSWORD). `ORCH_BUDGET_MAX_TOKENS` is not one.
 */
const SECRET_NAME = /(?:TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIALS?)$|(?:^|_)(?:KEY|PAT)$/i;

/** Whether a variable's name says its value is secret. */
export const isSecretName = (name: string): boolean => SECRET_NAME.test(name);

/**
 * Token shapes redacted wherever they appear, configured or not. Each is a
 * regex source; a lookbehind keeps the part that is not secret (`Bearer `,
 * `postgres://user:`).
 */
const TOKEN_SHAPES: readonly string[] = [
  // PEM private keys (a whole block in one text; a run log sees it line by line, so its base64 body
  // lines are not caught: do not print keys)
  '-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\\s\\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----',
  // Anthropic (sk-ant-…) and OpenAI (sk-…, sk-proj-…) API keys
  '\\bsk-[A-Za-z0-9_-]{20,}',
  // GitHub: personal, OAuth, user-to-server, server-to-server and refresh tokens; fine-grained PATs
  '\\bgh[pousr]_[A-Za-z0-9]{30,}',
  '\\bgithub_pat_[A-Za-z0-9_]{20,}',
  // Slack bot, user, app and configuration tokens
  '\\bxox[abposr]-[A-Za-z0-9-]{10,}',
  // Telegram bot tokens: the bot id, a colon, 35 characters
  '\\b\\d{5,}:[A-Za-z0-9_-]{35}(?![A-Za-z0-9_-])',
  // AWS access key ids
  '\\b(?:AKIA|ASIA)[A-Z0-9]{16}\\b',
  // Google API keys
  '\\bAIza[A-Za-z0-9_-]{35}',
  // Linear API and OAuth tokens
  '\\blin_(?:api|oauth)_[A-Za-z0-9]{20,}',
  // Stripe live keys
  '\\b[rs]k_live_[A-Za-z0-9]{20,}',
  // JSON Web Tokens (header.payload.signature)
  '\\beyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}',
  // Authorization headers: the credentials after Bearer / Basic
  '(?<=\\b[Bb]earer\\s+)[A-Za-z0-9._~+/=-]{16,}',
  '(?<=Authorization:\\s*Basic\\s+)[A-Za-z0-9+/=]{8,}',
  // The password of a URL: scheme://user:PASSWORD@host
  '(?<=\\b[A-Za-z][A-Za-z0-9+.-]*://[^\\s/:@"\'\\\\]*:)[^\\s/@"\'\\\\]+(?=@)',
];

/** The password of a URL-shaped value (raw and percent-decoded), or none. */
function urlPasswords(value: string): string[] {
  if (!value.includes('://')) return [];
  try {
    const password = new URL(value.trim()).password;
    if (!password) return [];
    let decoded = password;
    try {
      decoded = decodeURIComponent(password);
    } catch {
      /* not percent-encoded */
    }
    return [...new Set([password, decoded])];
  } catch {
    return [];
  }
}

/**
 * The secret values of an environment: every variable whose name says it is
 * secret (see {@link isSecretName}), and the password of any URL in it (a
 * database URL's, say). Works for orch's environment and for a role's `env`.
 */
export function secretValues(env: Readonly<Record<string, string | undefined>>): string[] {
  const found = new Set<string>();
  for (const [name, value] of Object.entries(env)) {
    if (!value) continue;
    if (isSecretName(name)) found.add(value);
    for (const password of urlPasswords(value)) found.add(password);
  }
  return [...found].filter((v) => v.length >= MIN_SECRET_LENGTH);
}

// ------------------------------------------------------- what this process knows

const known = new Set<string>();
let knownVersion = 0;
let seeded = false;

/** The secrets of this process: its environment's, and every value registered since. */
function knownSecrets(): Set<string> {
  if (!seeded) {
    seeded = true;
    rememberSecrets(secretValues(process.env));
  }
  return known;
}

/**
 * Registers secrets every later redaction in this process removes (an
 * environment other than `process.env`, a role's `env`). Never forgotten:
 * a value that was once secret stays redacted.
 */
export function rememberSecrets(values: Iterable<string>): void {
  const all = knownSecrets();
  for (const value of values) {
    if (value.length < MIN_SECRET_LENGTH || all.has(value)) continue;
    all.add(value);
    knownVersion += 1;
  }
}

// ------------------------------------------------------------------ redaction

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');

function compile(extra: readonly string[]): RegExp {
  const values = [...new Set([...extra, ...knownSecrets()])].filter((v) => v.length >= MIN_SECRET_LENGTH);
  // Longest first, so a secret that contains another is redacted whole.
  values.sort((a, b) => b.length - a.length);
  return new RegExp([...values.map(escapeRegex), ...TOKEN_SHAPES].join('|'), 'g');
}

interface Compiled {
  version: number;
  re: RegExp;
}
const compiledFor = new WeakMap<readonly string[], Compiled>();
const NONE: readonly string[] = Object.freeze([]);

function regexFor(extra: readonly string[]): RegExp {
  const hit = compiledFor.get(extra);
  if (hit && hit.version === knownVersion) return hit.re;
  const re = compile(extra);
  compiledFor.set(extra, { version: knownVersion, re });
  return re;
}

/**
 * `text` with every token shape, every secret this process knows and every
 * value of `secrets` replaced by `[REDACTED]`. Pass the same array again to
 * reuse its compiled pattern.
 */
export function redact(text: string, secrets: readonly string[] = NONE): string {
  if (text.length < MIN_SECRET_LENGTH) return text;
  return text.replace(regexFor(secrets), REDACTED);
}

/** A redaction bound to `secrets` (plus everything {@link redact} removes), for many texts. */
export function redactor(secrets: readonly string[] = NONE): (text: string) => string {
  const frozen = [...secrets];
  return (text) => redact(text, frozen);
}
