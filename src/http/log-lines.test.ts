import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeLogLine, MAX_LINE_CHARS, readLogRange, splitLines, utf8Boundary } from './log-lines.ts';

const dir = mkdtempSync(join(tmpdir(), 'orch-log-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('describeLogLine', () => {
  it.each([
    [
      '{"type":"assistant","message":{"content":[{"type":"text","text":"Reading the code"}]}}',
      'message',
      'Reading the code',
    ],
    [
      '{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{"command":"npm test"}}]}}',
      'tool_use',
      'Bash: npm test',
    ],
    [
      '{"type":"user","message":{"content":[{"type":"tool_result","is_error":true,"content":"exit 1"}]}}',
      'tool_result',
      'error: exit 1',
    ],
    ['{"type":"result","subtype":"success","is_error":false,"result":"Done."}', 'result', 'Done.'],
    [
      '{"type":"result","subtype":"error_max_turns","is_error":true,"result":"gave up"}',
      'result',
      'error_max_turns: gave up',
    ],
    [
      '{"type":"system","subtype":"init","session_id":"s","model":"claude-opus-4-8"}',
      'system',
      'session started (claude-opus-4-8)',
    ],
    ['[stderr] npm WARN deprecated', 'stderr', 'npm WARN deprecated'],
    ['[orch] killed after 600 s of silence', 'orch', 'killed after 600 s of silence'],
    ['plain progress text', 'message', 'plain progress text'],
    ['{"type": broken', 'error', expect.stringContaining('invalid JSON')],
    ['{"type":"stream_event"}', 'other', '{"type":"stream_event"}'],
  ])('%s → %s', (raw, kind, text) => {
    expect(describeLogLine(raw, 7, 9)).toEqual({ offset: 7, next_offset: 9, kind, text, raw });
  });

  it('cuts very long lines', () => {
    const l = describeLogLine('x'.repeat(MAX_LINE_CHARS + 50), 0, 1);
    expect(l.raw).toHaveLength(MAX_LINE_CHARS + 1);
    expect(l.raw.endsWith('…')).toBe(true);
  });
});

describe('splitLines and utf8Boundary', () => {
  it('keeps a trailing line without newline unless final, with byte offsets', () => {
    const buf = Buffer.from('é1\r\nb2\ntail');
    const open = splitLines(buf, 100, false);
    expect(open.lines.map((l) => [l.text, l.offset, l.next_offset])).toEqual([
      ['é1', 100, 105],
      ['b2', 105, 108],
    ]);
    expect(open.consumed).toBe(8);
    expect(splitLines(buf, 100, true).lines.at(-1)).toMatchObject({
      text: 'tail',
      offset: 108,
      next_offset: 112,
    });
  });

  it.each([
    ['ascii', Buffer.from('abc'), 3],
    ['a whole two-byte char', Buffer.from('aé'), 3],
    ['half of a two-byte char', Buffer.from('aé').subarray(0, 2), 1],
    ['two thirds of a three-byte char', Buffer.from('a✓').subarray(0, 3), 1],
    ['a whole four-byte char', Buffer.from('a😀'), 5],
    ['three quarters of a four-byte char', Buffer.from('a😀').subarray(0, 4), 1],
  ])('%s', (_what, buf, end) => expect(utf8Boundary(buf)).toBe(end));
});

describe('readLogRange', () => {
  it('returns a line longer than the window cut on a character boundary, and moves on', async () => {
    const path = join(dir, 'long.log');
    writeFileSync(path, `${'✓'.repeat(10)}\nnext\n`);
    const first = await readLogRange(path, 0, 8, false);
    expect(first.lines).toHaveLength(1);
    expect(first.lines[0]!.text).toBe('✓✓');
    expect(first.next_offset).toBe(6);
    const rest = await readLogRange(path, 31, 100, false);
    expect(rest.lines.map((l) => l.text)).toEqual(['next']);
  });

  it('answers a missing file and an offset past the end with no lines', async () => {
    expect(await readLogRange(join(dir, 'nope.log'), 0, 100, true)).toEqual({
      offset: 0,
      next_offset: 0,
      size: 0,
      lines: [],
    });
    const path = join(dir, 'short.log');
    writeFileSync(path, 'a\n');
    expect(await readLogRange(path, 50, 100, true)).toMatchObject({ next_offset: 50, size: 2, lines: [] });
  });

  it('answers a log swapped for a FIFO with no lines, at once', async () => {
    const path = join(dir, 'fifo.log');
    execFileSync('mkfifo', [path]);
    expect(await readLogRange(path, 0, 100, true)).toEqual({ offset: 0, next_offset: 0, size: 0, lines: [] });
  });
});
