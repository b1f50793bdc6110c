/**
 * A channel: somewhere events about tasks are delivered (a Telegram chat, a
 * Slack channel, a webhook, the project's tracker). The outbox calls
 * `deliver` for each delivery routed to it, in event order per task, and
 * retries what throws. Channels never retry themselves.
 */
import type { OutboxItem, Project, Task } from '../store/schema.ts';
import type { Logger } from '../runtime/logger.ts';
import type { Locale } from './tracker.ts';
import { TrackerError } from '../trackers/types.ts';

export interface Delivery {
  item: OutboxItem;
  /** The event's payload, parsed. */
  payload: Record<string, unknown>;
  task: Task;
  project: Project;
}

/** What a channel may use while delivering. */
export interface DeliveryTools {
  /** The task's tracker message as it stands now (header, a line per stage, totals). */
  message(): Promise<string>;
  /** The task's terminal packet (Markdown) as it stands now: what a human must decide after an escalation. */
  terminalPacket(): Promise<string>;
  /** The link to the task shown in messages: its tracker page, else its dashboard page, else null. */
  taskUrl: string | null;
  locale: Locale;
  /** What the channel saved about this task (the message it edits), or null. */
  getRef<T>(): Promise<T | null>;
  setRef(ref: unknown): Promise<void>;
  log: Logger;
}

export interface Channel {
  /** `<project>/<name>`: the outbox rows' `channel`. */
  readonly id: string;
  readonly kind: string;
  /** Event kinds routed here. */
  readonly events: ReadonlySet<string>;
  /**
   * The channel shows the task's current state (it re-renders one message):
   * once a delivery is sent, the pending ones before it have nothing to add.
   */
  readonly coalesce: boolean;
  deliver(d: Delivery, tools: DeliveryTools): Promise<void>;
}

/** A failed delivery: retried (after `retryAfterMs` when the service said so) unless permanent. */
export class DeliveryError extends Error {
  readonly retryAfterMs: number | null;
  readonly permanent: boolean;
  constructor(
    message: string,
    opts: { retryAfterMs?: number | null; permanent?: boolean; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'DeliveryError';
    this.retryAfterMs = opts.retryAfterMs ?? null;
    this.permanent = opts.permanent ?? false;
  }
}

/** How the outbox reads any error a channel throws. */
export function failureOf(error: unknown): {
  message: string;
  retryAfterMs: number | null;
  permanent: boolean;
} {
  if (error instanceof DeliveryError)
    return { message: error.message, retryAfterMs: error.retryAfterMs, permanent: error.permanent };
  if (error instanceof TrackerError)
    return { message: error.message, retryAfterMs: error.retryAfterMs, permanent: !error.retryable };
  return { message: (error as Error)?.message ?? String(error), retryAfterMs: null, permanent: false };
}

/**
 * A JSON POST for the chat and webhook channels: answers with the parsed body,
 * or throws a DeliveryError (429 and 5xx retryable with the service's wait;
 * other 4xx permanent).
 */
export async function postJson(
  url: string,
  body: unknown,
  opts: { headers?: Record<string, string>; service: string; timeoutMs?: number; rawBody?: string },
): Promise<{ status: number; headers: Headers; json: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', ...opts.headers },
      body: opts.rawBody ?? JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
    });
  } catch (error) {
    throw new DeliveryError(`${opts.service}: ${(error as Error).message}`, { cause: error });
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (res.status === 429 || res.status >= 500 || res.status === 408) {
    const header = Number(res.headers.get('retry-after'));
    throw new DeliveryError(`${opts.service}: answered ${res.status}: ${text.slice(0, 200)}`, {
      retryAfterMs: Number.isFinite(header) && res.headers.has('retry-after') ? header * 1000 : null,
    });
  }
  return { status: res.status, headers: res.headers, json };
}
