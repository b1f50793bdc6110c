/**
 * What the chat channels (Telegram, Slack) share besides the tracker message:
 * cutting a text to a service's limit, and the escalation message posted
 * beside the tracker message when a task stops for a human.
 */
import type { Task } from '../store/schema.ts';
import type { Locale } from './tracker.ts';

const WORDS: Readonly<Record<Locale, { truncated: string; escalated: string }>> = {
  en: { truncated: '… [truncated]', escalated: 'escalated' },
  ru: { truncated: '… [обрезано]', escalated: 'эскалация' },
};

/**
 * `text` cut to at most `limit` UTF-16 code units (what Telegram and Slack
 * count), ending with a marker when cut. A surrogate pair is never split.
 */
export function truncate(text: string, limit: number, locale: Locale = 'en'): string {
  if (text.length <= limit) return text;
  const marker = WORDS[locale].truncated;
  let end = Math.max(0, limit - marker.length);
  const last = text.charCodeAt(end - 1);
  if (end > 0 && last >= 0xd800 && last <= 0xdbff) end -= 1;
  return text.slice(0, end) + marker;
}

/**
 * One escalation of a task, as a chat channel remembers it announced: a task
 * retried and escalated again is a new one (its `finished_at` is set anew).
 * Null when the task is not escalated now.
 */
export const escalationId = (
  task: Pick<Task, 'status' | 'terminal_reason' | 'finished_at'>,
): string | null =>
  task.status === 'escalated' ? `${task.terminal_reason ?? ''}@${task.finished_at ?? ''}` : null;

/**
 * The escalation still to announce on this delivery, or null. Looked at on
 * every delivery, not only the `escalated` one: a chat channel coalesces, so
 * a delivery that went out after the escalation (its message already shows the
 * task stopped) marks the pending `escalated` delivery sent with it.
 */
export function escalationToAnnounce(
  task: Pick<Task, 'status' | 'terminal_reason' | 'finished_at'>,
  events: ReadonlySet<string>,
  announced: string | undefined,
): string | null {
  const id = escalationId(task);
  return id && events.has('escalated') && id !== announced ? id : null;
}

/**
 * The escalation message: the task, the reason and detail, its link, then the
 * terminal packet (Markdown, shown as is), cut to `limit`.
 */
export function escalationText(
  task: Pick<Task, 'key' | 'title' | 'terminal_reason' | 'status_detail'>,
  packet: string,
  opts: { locale: Locale; taskUrl: string | null; limit: number },
): string {
  const head = [
    `⚠️ ${task.key} — ${task.title}`,
    `${WORDS[opts.locale].escalated}: ${task.terminal_reason ?? 'unknown'}`,
    ...(task.status_detail ? [task.status_detail] : []),
    ...(opts.taskUrl ? [opts.taskUrl] : []),
  ].join('\n');
  // The packet's title repeats the key the head already gives.
  const body = packet.replace(/^# .*\n+/, '').trim();
  return truncate(body ? `${head}\n\n${body}` : head, opts.limit, opts.locale);
}
