/**
 * A run's log as the API shows it: byte-range reads that end on a line
 * boundary, and each line with a short human reading beside the raw text
 * (the log holds the agent's stream-json lines, `[stderr] ` lines and
 * orch's own `[orch] ` notes).
 */
import { readRange, regularFileSize } from '../io/worktree-files.ts';
import { parseStreamJsonLine } from '../agents/stream-json.ts';
import type { AgentEvent } from '../agents/events.ts';

export type LogLineKind =
  | 'message'
  | 'tool_use'
  | 'tool_result'
  | 'result'
  | 'system'
  | 'retry'
  | 'error'
  | 'stderr'
  | 'orch'
  | 'other';

/** One line of a run log: bytes `[offset, next_offset)` of the file, newline included. */
export interface LogLine {
  offset: number;
  next_offset: number;
  kind: LogLineKind;
  /** What a person wants to read: a message's text, `Bash: npm test`, a result. */
  text: string;
  raw: string;
}

/** Lines longer than this are cut (with `…`) in what the API returns. */
export const MAX_LINE_CHARS = 8_000;

const cut = (s: string, max = MAX_LINE_CHARS): string => (s.length > max ? `${s.slice(0, max)}…` : s);

function toolSummary(input: unknown): string {
  if (input && typeof input === 'object') {
    const o = input as Record<string, unknown>;
    for (const k of ['command', 'file_path', 'path', 'pattern', 'url', 'description']) {
      const v = o[k];
      if (typeof v === 'string') return v;
      if (Array.isArray(v)) return v.join(' ');
    }
  }
  return JSON.stringify(input) ?? '';
}

function eventText(e: AgentEvent): { kind: LogLineKind; text: string } | null {
  switch (e.type) {
    case 'message':
      return { kind: 'message', text: e.text };
    case 'tool_use':
      return { kind: 'tool_use', text: `${e.name}: ${toolSummary(e.input)}` };
    case 'tool_result':
      return { kind: 'tool_result', text: e.isError ? `error: ${e.text}` : e.text };
    case 'result':
      return { kind: 'result', text: e.ok ? e.text : `${e.subtype ?? 'error'}: ${e.text}` };
    case 'started':
      return { kind: 'system', text: `session started${e.model ? ` (${e.model})` : ''}` };
    case 'retry':
      return { kind: 'retry', text: `retrying the model API${e.error ? `: ${e.error}` : ''}` };
    case 'error':
      return { kind: 'error', text: e.message };
    case 'usage_limit':
      return { kind: 'error', text: `usage limit: ${e.message}` };
    case 'usage':
      return null;
  }
}

/** Reads one log line (the bytes `[offset, nextOffset)` of its file). Never throws. */
export function describeLogLine(raw: string, offset: number, nextOffset: number): LogLine {
  const line = cut(raw);
  const at = { offset, next_offset: nextOffset };
  if (raw.startsWith('[stderr] '))
    return { ...at, kind: 'stderr', text: line.slice('[stderr] '.length), raw: line };
  if (raw.startsWith('[orch] '))
    return { ...at, kind: 'orch', text: line.slice('[orch] '.length), raw: line };
  const described = parseStreamJsonLine(raw)
    .map(eventText)
    .filter((d) => d !== null);
  if (!described.length) return { ...at, kind: 'other', text: line, raw: line };
  return { ...at, kind: described[0]!.kind, text: cut(described.map((d) => d.text).join('\n')), raw: line };
}

/**
 * Splits `buf` (the file's bytes from `start`) into complete lines; the bytes
 * after the last newline count as a line only when `final`. `consumed` is how
 * many bytes the returned lines cover.
 */
export function splitLines(
  buf: Buffer,
  start: number,
  final: boolean,
): { lines: LogLine[]; consumed: number } {
  const lines: LogLine[] = [];
  let pos = 0;
  for (;;) {
    const nl = buf.indexOf(0x0a, pos);
    if (nl === -1) break;
    const text = buf.subarray(pos, nl).toString('utf8').replace(/\r$/, '');
    lines.push(describeLogLine(text, start + pos, start + nl + 1));
    pos = nl + 1;
  }
  if (final && pos < buf.length) {
    lines.push(describeLogLine(buf.subarray(pos).toString('utf8'), start + pos, start + buf.length));
    pos = buf.length;
  }
  return { lines, consumed: pos };
}

/**
 * Up to `length` bytes at `position`, read asynchronously from a regular file only: the server
 * keeps answering whatever the log has become (a FIFO an agent swapped in reads as empty).
 */
export const readBytes = (path: string, position: number, length: number): Promise<Buffer> =>
  readRange(path, position, length);

/** The log's size; 0 when there is none, or it is not a regular file. */
export const fileSize = (path: string | null): Promise<number> => regularFileSize(path);

/** A byte range of a log, cut back to the last whole line. */
export interface LogRange {
  offset: number;
  /** Where the next read should start: just after the last returned line. */
  next_offset: number;
  size: number;
  lines: LogLine[];
}

/**
 * Reads the lines that start in `[offset, offset + limit)`. A trailing line
 * without its newline is left for the next read while the run may still
 * write it (`final` false); a single line longer than `limit` is returned cut.
 */
export async function readLogRange(
  path: string | null,
  offset: number,
  limit: number,
  final: boolean,
): Promise<LogRange> {
  const size = await fileSize(path);
  if (!path || offset >= size) return { offset, next_offset: Math.max(offset, 0), size, lines: [] };
  const want = Math.min(limit, size - offset);
  const buf = await readBytes(path, offset, want);
  const atEnd = offset + buf.length >= size;
  const { lines, consumed } = splitLines(buf, offset, final && atEnd);
  if (consumed === 0 && buf.length === limit) {
    // One line longer than the whole window: return what fits rather than stall the reader.
    const end = utf8Boundary(buf);
    return {
      offset,
      next_offset: offset + end,
      size,
      lines: [describeLogLine(buf.subarray(0, end).toString('utf8'), offset, offset + end)],
    };
  }
  return { offset, next_offset: offset + consumed, size, lines };
}

/** The length of the longest prefix of `buf` that does not end inside a UTF-8 sequence. */
export function utf8Boundary(buf: Buffer): number {
  let back = 0;
  // Continuation bytes are 10xxxxxx; walk back to the lead byte of the last sequence.
  while (back < 3 && back < buf.length && (buf[buf.length - 1 - back]! & 0xc0) === 0x80) back += 1;
  const leadAt = buf.length - 1 - back;
  if (leadAt < 0) return buf.length;
  const lead = buf[leadAt]!;
  const needed = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return back + 1 >= needed ? buf.length : leadAt;
}
