/**
 * Shared first step of the JSONL parsers (Codex, Gemini CLI, OpenCode): one
 * stdout line becomes nothing (blank), a plain-text message, a JSON object
 * with a string `type`, or an `error` event that keeps the raw line.
 */
import type { z } from 'zod';
import type { AgentEvent } from './events.ts';
import { MAX_RAW_CHARS, stripLineEnd } from './stream-json.ts';

const MAX_ERROR_MESSAGE_CHARS = 300;

const truncate = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`;

/** An `error` event with the raw line kept (both cut to a sane length). */
export function errorEvent(message: string, raw: string | null): AgentEvent {
  return {
    type: 'error',
    message: truncate(message, MAX_ERROR_MESSAGE_CHARS),
    raw: raw === null ? null : truncate(raw, MAX_RAW_CHARS),
  };
}

/** `what does not match the <format> schema: path: why; …` (at most three issues). */
export function schemaError(format: string, what: string, error: z.ZodError): string {
  const issues = error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.map(String).join('.') || '(line)'}: ${issue.message}`)
    .join('; ');
  return `${what} does not match the ${format} schema: ${issues}`;
}

export type JsonLine =
  | { kind: 'events'; events: AgentEvent[] }
  | { kind: 'object'; type: string; value: Record<string, unknown>; raw: string };

/** Classifies one line; never throws. Plain text (a CLI's log output) becomes a message. */
export function readJsonLine(input: unknown): JsonLine {
  if (typeof input !== 'string') return { kind: 'events', events: [errorEvent('line is not a string', '')] };
  const line = stripLineEnd(input); // not /[\r\n]+$/: quadratic on a long run of \r
  const trimmed = line.trim();
  if (!trimmed) return { kind: 'events', events: [] };
  if (!trimmed.startsWith('{')) return { kind: 'events', events: [{ type: 'message', text: line }] };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return { kind: 'events', events: [errorEvent(`invalid JSON: ${why}`, line)] };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { kind: 'events', events: [errorEvent('JSON line is not an object', line)] };
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string')
    return { kind: 'events', events: [errorEvent('JSON object without a string "type"', line)] };
  return { kind: 'object', type, value: value as Record<string, unknown>, raw: line };
}

/** Wraps a parser body so that an unexpected exception becomes an error event, never a crash. */
export function guarded(
  parse: (line: string) => AgentEvent[],
  format: string,
): (line: string) => AgentEvent[] {
  return (line) => {
    try {
      return parse(line);
    } catch (error) {
      const why = error instanceof Error ? error.message : 'unknown error';
      return [errorEvent(`${format} parser failed: ${why}`, String(line))];
    }
  };
}
