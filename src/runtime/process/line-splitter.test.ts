import { describe, expect, it } from 'vitest';
import { LineSplitter } from './line-splitter.ts';

type Line = [line: string, droppedBytes: number];

function split(maxLineBytes: number, chunks: (string | Buffer)[]): Line[] {
  const lines: Line[] = [];
  const splitter = new LineSplitter(maxLineBytes, (line, dropped) => lines.push([line, dropped]));
  for (const chunk of chunks) splitter.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  splitter.end();
  return lines;
}

describe('LineSplitter', () => {
  const euro = Buffer.from('€'); // e2 82 ac
  const cases: { name: string; max?: number; chunks: (string | Buffer)[]; lines: Line[] }[] = [
    {
      name: 'lines in one chunk',
      chunks: ['a\nb\n'],
      lines: [
        ['a', 0],
        ['b', 0],
      ],
    },
    {
      name: 'a line across chunks',
      chunks: ['ab', 'c\nd', 'e\n'],
      lines: [
        ['abc', 0],
        ['de', 0],
      ],
    },
    {
      name: 'CRLF',
      chunks: ['a\r\nb\r\n'],
      lines: [
        ['a', 0],
        ['b', 0],
      ],
    },
    {
      name: 'CR and LF in different chunks',
      chunks: ['a\r', '\nb\n'],
      lines: [
        ['a', 0],
        ['b', 0],
      ],
    },
    { name: 'only one trailing CR is removed', chunks: ['a\r\r\n'], lines: [['a\r', 0]] },
    {
      name: 'empty lines are lines',
      chunks: ['\n\n'],
      lines: [
        ['', 0],
        ['', 0],
      ],
    },
    {
      name: 'final line without newline',
      chunks: ['a\nlast'],
      lines: [
        ['a', 0],
        ['last', 0],
      ],
    },
    { name: 'final partial CR line', chunks: ['x\r'], lines: [['x', 0]] },
    { name: 'nothing after the last newline', chunks: ['a\n'], lines: [['a', 0]] },
    { name: 'no input', chunks: [], lines: [] },
    {
      name: 'truncation',
      max: 4,
      chunks: ['abcdefgh\nxy\n'],
      lines: [
        ['abcd', 4],
        ['xy', 0],
      ],
    },
    {
      name: 'truncation across chunks',
      max: 4,
      chunks: ['ab', 'cdef', 'gh\nz'],
      lines: [
        ['abcd', 4],
        ['z', 0],
      ],
    },
    { name: 'a CR beyond the limit is not truncation', max: 3, chunks: ['abc\r\n'], lines: [['abc', 0]] },
    { name: 'a CR beyond the limit, chunked', max: 3, chunks: ['ab', 'c', '\r', '\n'], lines: [['abc', 0]] },
    { name: 'truncation keeps whole characters', max: 4, chunks: ['aé€\n'], lines: [['aé', 3]] },
    { name: 'truncated final line', max: 2, chunks: ['abc'], lines: [['ab', 1]] },
    {
      name: 'a character split across chunks',
      chunks: [euro.subarray(0, 1), Buffer.concat([euro.subarray(1), Buffer.from('\n')])],
      lines: [['€', 0]],
    },
  ];

  it.each(cases)('$name', ({ max = 1024, chunks, lines }) => {
    expect(split(max, chunks)).toEqual(lines);
  });

  it('holds at most maxLineBytes of a 12 MB line', () => {
    const max = 64 * 1024;
    const lines: Line[] = [];
    const splitter = new LineSplitter(max, (line, dropped) => lines.push([line, dropped]));
    const chunk = Buffer.alloc(64 * 1024, 'x');
    let peak = 0;
    for (let i = 0; i < 192; i += 1) {
      splitter.push(chunk);
      peak = Math.max(peak, splitter.bufferedBytes);
    }
    splitter.push(Buffer.from('\nnext\n'));
    expect(peak).toBe(max);
    expect(splitter.bufferedBytes).toBe(0);
    expect(lines.map(([line, dropped]) => [line.length, dropped])).toEqual([
      [max, 12 * 1024 * 1024 - max],
      [4, 0],
    ]);
  });

  it('rejects a maxLineBytes below 1', () => {
    expect(() => new LineSplitter(0, () => undefined)).toThrow(RangeError);
  });
});
