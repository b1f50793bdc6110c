/**
 * Usage limits: a provider refusing more work until a reset (a subscription's
 * 5-hour or weekly window, an API key's rate limit the CLI gave up on). The
 * adapters recognise them in their CLI's own output and report a
 * `usage_limit` event; the run is then `usage_limited`, never a failed try,
 * and the adapter is paused until the reset (the writer, runtime/transitions.ts,
 * and store/pause-store.ts).
 *
 * What the CLIs print, as verified with the real CLIs against fake APIs on
 * loopback (test/agents/usage-limits.test.ts):
 * - Claude Code on a subscription: a `rate_limit_event` line whose
 *   `rate_limit_info` has `status: "rejected"`, `resetsAt` (epoch seconds) and
 *   `rateLimitType` (`five_hour`, `seven_day`, …), then an error result
 *   "You've hit your 5-hour limit · resets 9:38pm (UTC)" with
 *   `api_error_status: 429`. With an API key, only the result with
 *   `api_error_status: 429` (no reset).
 * - Codex on a subscription: `turn.failed` "You’ve hit your usage limit. …
 *   try again at 9:38 PM." (or "at Dec 10th, 2026 8:38 PM." when the reset is
 *   not today), in the machine's local time; with an API key, "exceeded retry
 *   limit, last status: 429 Too Many Requests" (no reset).
 * - Gemini CLI: "Quota exceeded …" / `RESOURCE_EXHAUSTED` / a 429 in its final
 *   error, sometimes with "Please retry in 38.2s" or "reset after 3h2m1s".
 * - OpenCode: the provider's 429 in a session error.
 */

/** What an agent's output said of a usage limit. */
export interface UsageLimit {
  /** When the provider said the limit resets (epoch ms); null when it did not say. */
  resetAt: number | null;
  /** The limit's window as the provider names it (`five_hour`, `seven_day`), when known. */
  window: string | null;
  /** The CLI's own words. */
  message: string;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** Words that say a request was refused for a limit, in the CLIs' messages. */
const LIMIT_WORDS =
  /hit your (?:usage |\S+ )?limit|usage limit|quota exceeded|resource_exhausted|rate limit(?:ed| reached| exceeded)|last status: 429|\b429\b.*too many requests|too many requests.*\b429\b|status(?: code)?:? 429/i;

/** Whether a CLI's error message is a usage or rate limit the CLI gave up on. */
export const isLimitMessage = (text: string): boolean => LIMIT_WORDS.test(text);

/**
 * "try again at 9:38 PM", "try again at Dec 10th, 2026 8:38 PM", "resets 9:38pm (UTC)": the end of
 * the next such minute after `now`, in the machine's local time unless the text says UTC. Null
 * when none.
 */
export function resetFromClockText(text: string, now: number): number | null {
  const m =
    /(?:try again at|resets?(?: at)?)\s+(?:([A-Za-z]{3})[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})?\s*)?(\d{1,2})(?::(\d{2}))?\s*([ap]\.?m\.?)?\s*(\(UTC\)|UTC)?/i.exec(
      text,
    );
  if (!m) return null;
  const [, mon, day, year, hh, mm, ampm, utc] = m;
  let hour = Number(hh);
  const minute = Number(mm ?? 0);
  if (!ampm && mm === undefined) return null; // "resets 5" is not a time
  if (hour > 23 || minute > 59) return null;
  if (ampm) {
    if (hour > 12 || hour === 0) return null;
    const pm = ampm.toLowerCase().startsWith('p');
    hour = (hour % 12) + (pm ? 12 : 0);
  }
  const base = new Date(now);
  const useUtc = utc !== undefined;
  const monthIndex = mon ? MONTHS.indexOf(mon.toLowerCase()) : -1;
  if (mon && monthIndex < 0) return null;
  const parts = {
    year: year ? Number(year) : useUtc ? base.getUTCFullYear() : base.getFullYear(),
    month: monthIndex >= 0 ? monthIndex : useUtc ? base.getUTCMonth() : base.getMonth(),
    day: day ? Number(day) : useUtc ? base.getUTCDate() : base.getDate(),
  };
  const at = (d: number) =>
    useUtc
      ? Date.UTC(parts.year, parts.month, d, hour, minute)
      : new Date(parts.year, parts.month, d, hour, minute).getTime();
  // A time to the minute names a reset within that minute: its end is the first time sure to be past it.
  let t = at(parts.day) + 60_000;
  // A time of day alone is the next one: past it today, it is tomorrow's.
  if (!mon && t <= now) t = at(parts.day + 1) + 60_000;
  return Number.isFinite(t) ? t : null;
}

/** "retry in 38.2s", "reset after 3h2m1s", "retry after 120 seconds": how long, as a time after `now`. */
export function resetFromDurationText(text: string, now: number): number | null {
  const m =
    /(?:retry|try again|reset|resets)\s+(?:in|after)\s+((?:\d+(?:\.\d+)?\s*(?:ms|hours?|minutes?|seconds?|h|m|s)\s*)+)/i.exec(
      text,
    );
  if (!m) return null;
  let ms = 0;
  for (const part of m[1]!.matchAll(/(\d+(?:\.\d+)?)\s*(ms|hours?|minutes?|seconds?|h|m|s)/gi)) {
    const n = Number(part[1]);
    const unit = part[2]!.toLowerCase();
    ms +=
      unit === 'ms'
        ? n
        : unit.startsWith('h')
          ? n * 3_600_000
          : unit.startsWith('m')
            ? n * 60_000
            : n * 1_000;
  }
  return ms > 0 ? now + Math.ceil(ms) : null;
}

/** A usage limit read from a CLI's final error message, or null when it is not one. */
export function usageLimitFromMessage(text: string, now: number = Date.now()): UsageLimit | null {
  if (!isLimitMessage(text)) return null;
  return {
    resetAt: resetFromClockText(text, now) ?? resetFromDurationText(text, now),
    window: null,
    message: text.trim().slice(0, 500),
  };
}
