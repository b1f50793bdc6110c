/**
 * Hostile input, fuzzed: the project config loader, every adapter's line
 * parser, the verdict parser and the line splitter take whatever fast-check
 * throws at them and return a value or their own structured error: never
 * another exception, never a hang.
 *
 * Each property has bounded runs and a time budget (`interruptAfterTimeLimit`)
 * after which no new run starts; a run that hangs is caught by the test
 * timeout. Targeted cases pin the inputs that used to be quadratic (minutes of
 * CPU on one line) or to throw.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  ConfigError,
  MAX_CONFIG_BYTES,
  MAX_CONFIG_ISSUES,
  loadProjectConfig,
  parseProjectConfig,
} from '../../src/config/project-config.ts';
import { ADAPTERS } from '../../src/agents/registry.ts';
import type { AgentEvent } from '../../src/agents/events.ts';
import {
  MAX_EVENTS_PER_LINE,
  MAX_RETRY_EVENTS_PER_RUN,
  parseStreamJsonLine,
} from '../../src/agents/stream-json.ts';
import { geminiStderrEvents } from '../../src/agents/gemini/parse.ts';
import { parseVerdict } from '../../src/core/verdict.ts';
import { LineSplitter } from '../../src/runtime/process/line-splitter.ts';
import { AGENT_EVENT_TYPES } from '../helpers/agent-events.ts';

/** Bounded runs, and no new run after the time budget: the suite stops by itself on 2 shared cores. */
const budget = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns,
  interruptAfterTimeLimit: 15_000,
  markInterruptAsFailure: false,
});

/** What every parser output must be: an array of known events with the fields their type promises. */
function expectEvents(events: unknown): void {
  expect(Array.isArray(events)).toBe(true);
  for (const e of events as AgentEvent[]) {
    expect(AGENT_EVENT_TYPES.has(e.type), JSON.stringify(e).slice(0, 200)).toBe(true);
    if (e.type === 'message') expect(typeof e.text).toBe('string');
    if (e.type === 'error') expect(typeof e.message).toBe('string');
    if (e.type === 'result') expect(typeof e.ok).toBe('boolean');
  }
}

// ---------------------------------------------------------------- generators

const TYPES = [
  'system',
  'assistant',
  'user',
  'result',
  'init',
  'message',
  'tool_use',
  'tool_result',
  'error',
  'thread.started',
  'turn.completed',
  'turn.failed',
  'item.started',
  'item.updated',
  'item.completed',
  'step_start',
  'step_finish',
  'text',
];
const KEYS = [
  'type',
  'subtype',
  'message',
  'content',
  'usage',
  'result',
  'is_error',
  'session_id',
  'model',
  'item',
  'part',
  'stats',
  'status',
  'error',
  'text',
  'id',
  'input_tokens',
  'output_tokens',
  'total_cost_usd',
  'modelUsage',
  'delta',
  'role',
  'sessionID',
  'tokens',
  'cost',
  'reason',
  'attempt',
  'retry_delay_ms',
  '__proto__',
  'constructor',
];

/** JSON values whose objects use the keys parsers look for, so schemas are reached, not just JSON.parse. */
const shapedJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.jsonValue({ maxDepth: 1 }),
    fc.constantFrom(...TYPES),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.constantFrom(...KEYS), tie('value'), { maxKeys: 6 }),
  ),
})).value;

/** A line an agent might print: JSON objects with a known type, other JSON, text, binary junk. */
const agentLine: fc.Arbitrary<string> = fc.oneof(
  fc
    .tuple(fc.constantFrom(...TYPES), fc.dictionary(fc.constantFrom(...KEYS), shapedJson, { maxKeys: 6 }))
    .map(([type, rest]) => JSON.stringify({ ...rest, type })),
  shapedJson.map((v) => JSON.stringify(v) ?? ''),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({
    unit: fc.constantFrom('{', '}', '[', ']', '"', ':', ',', '\\', '\r', ' ', 'a', '1'),
    maxLength: 200,
  }),
);

// ---------------------------------------------------------------- config loader

function expectConfigOutcome(run: () => unknown): void {
  let value: unknown;
  try {
    value = run();
  } catch (error) {
    // The one error the loader may throw: structured, located, non-empty.
    expect(error, String(error)).toBeInstanceOf(ConfigError);
    const { issues } = error as ConfigError;
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.length).toBeLessThanOrEqual(MAX_CONFIG_ISSUES + 1);
    for (const issue of issues) {
      expect(typeof issue.message).toBe('string');
      expect(typeof issue.key).toBe('string');
    }
    return;
  }
  expect(value).toBeTypeOf('object');
}

const TOP_KEYS = [
  'project',
  'agents',
  'pipeline',
  'retry',
  'budget',
  'timeouts',
  'prices',
  'merge',
  'worktrees',
];

/** Text made of YAML's own syntax and orch's keys, so the parser and the schema both get exercised. */
const yamlish: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        ':',
        ': ',
        '- ',
        '\n',
        '\n  ',
        '\n    ',
        '[',
        ']',
        '{',
        '}',
        ',',
        '&a ',
        '*a',
        '&b ',
        '*b',
        '<<: *a',
        '? ',
        '!!str ',
        '!!binary ',
        '!tag ',
        '|',
        '>',
        '"',
        "'",
        '#',
        '---\n',
        '...\n',
        '%YAML 1.2\n',
        '\t',
        'null',
        'true',
        '1e400',
        '0x1F',
        '-.inf',
        ...TOP_KEYS,
        'adapter',
        'scripted',
        'default',
        'developer',
        'base_ms',
        'prompt',
        '{{task.title}}',
        '{{',
        '}}',
      ),
      fc.string({ maxLength: 8 }),
    ),
    { maxLength: 60 },
  )
  .map((parts) => parts.join(''));

/** Objects shaped like orch.yaml with anything as values, serialized to YAML. */
const configObject: fc.Arbitrary<Record<string, unknown>> = fc.dictionary(
  fc.oneof(fc.constantFrom(...TOP_KEYS), fc.string({ maxLength: 6 })),
  fc.oneof(
    fc.dictionary(
      fc.oneof(
        fc.constantFrom(
          'default',
          'developer',
          'reviewer',
          'adapter',
          'name',
          'key_prefix',
          'development',
          'review',
        ),
        fc.string({ maxLength: 6 }),
      ),
      fc.oneof(shapedJson, fc.jsonValue({ maxDepth: 3 })),
      { maxKeys: 5 },
    ),
    fc.jsonValue({ maxDepth: 3 }),
  ),
  { maxKeys: 6 },
);

describe('config loader (fuzz)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'orch-fuzz-config-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('arbitrary text: a config or a ConfigError', () => {
    fc.assert(
      fc.property(fc.oneof(yamlish, fc.string({ unit: 'binary', maxLength: 400 })), (text) => {
        expectConfigOutcome(() => parseProjectConfig(text, 'orch.yaml'));
      }),
      budget(400),
    );
  });

  it('arbitrary objects serialized to YAML: a config or a ConfigError', () => {
    fc.assert(
      fc.property(configObject, (object) => {
        expectConfigOutcome(() => parseProjectConfig(stringify(object), 'orch.yaml'));
      }),
      budget(300),
    );
  });

  it('the loader reads the file: a config or a ConfigError, through the file system too', () => {
    let n = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          yamlish,
          configObject.map((o) => stringify(o)),
        ),
        (text) => {
          const path = join(dir, `orch-${(n += 1)}.yaml`);
          writeFileSync(path, text);
          expectConfigOutcome(() => loadProjectConfig(path));
        },
      ),
      budget(60),
    );
  });

  it('refuses an over-size file, a FIFO and a directory by name, without reading them', () => {
    const big = join(dir, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(MAX_CONFIG_BYTES)}\n`);
    expect(() => loadProjectConfig(big)).toThrow(/over the limit of 262144 \(MAX_CONFIG_BYTES\)/);
    // A FIFO nobody writes to would block a plain read forever.
    const fifo = join(dir, 'fifo.yaml');
    execFileSync('mkfifo', [fifo]);
    expect(() => loadProjectConfig(fifo)).toThrow(/not a regular file/);
    const sub = join(dir, 'sub.yaml');
    mkdirSync(sub);
    expect(() => loadProjectConfig(sub)).toThrow(ConfigError);
    // The same limit holds for text handed over directly.
    expect(() => parseProjectConfig(`# ${'x'.repeat(MAX_CONFIG_BYTES)}`, 'orch.yaml')).toThrow(
      /MAX_CONFIG_BYTES/,
    );
  });

  it('an alias bomb, deep nesting and thousands of unknown keys end in a ConfigError', () => {
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x]']
      .concat(
        ['b', 'c', 'd', 'e', 'f'].map(
          (k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcde'[i]}`).join(', ')}]`,
        ),
      )
      .join('\n');
    expect(() => parseProjectConfig(bomb, 'orch.yaml')).toThrow(
      /cannot load the YAML: Excessive alias count/,
    );
    expectConfigOutcome(() => parseProjectConfig('['.repeat(100_000), 'orch.yaml'));
    // Locating every unknown key walked the map once per key: minutes for 16 000 keys. Now 50 are listed.
    const keys = Array.from({ length: 15_000 }, (_, i) => `k${i}: v`).join('\n');
    const error = (() => {
      try {
        parseProjectConfig(keys, 'orch.yaml');
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error.issues).toHaveLength(MAX_CONFIG_ISSUES + 1);
    expect(error.issues.at(-1)!.message).toBe(
      `14950 more problems not listed (MAX_CONFIG_ISSUES = ${MAX_CONFIG_ISSUES})`,
    );
  });

  it('a prompt template that loops or allocates without end is refused at load, not rendered forever', () => {
    const prompt = (template: string) =>
      `pipeline:\n  development:\n    prompt: ${JSON.stringify(template)}\n`;
    expect(() =>
      parseProjectConfig(prompt('{% for i in (1..1000000000) %}x{% endfor %}'), 'orch.yaml'),
    ).toThrow(/pipeline\.development\.prompt: invalid prompt template: memory alloc limit exceeded/);
    expect(
      () =>
        parseProjectConfig(
          prompt('{% for i in (1..5000) %}{% for j in (1..5000) %}{% endfor %}{% endfor %}'),
          'orch.yaml',
        ),
      // Whichever of the time and memory limits the loop meets first stops it.
    ).toThrow(/invalid prompt template: (template render|memory alloc) limit exceeded/);
  });

  it('still reports a duplicate key where it is', () => {
    expect(() => parseProjectConfig('retry:\n  base_ms: 1\n  base_ms: 2\n', 'orch.yaml')).toThrow(
      /orch\.yaml:3:3 .*Map keys must be unique: "base_ms" appears again/,
    );
  });
});

// ---------------------------------------------------------------- agent output

describe('adapter line parsers (fuzz)', () => {
  for (const [name, adapter] of Object.entries(ADAPTERS)) {
    it(`${name}: any sequence of lines gives well-formed events, never an exception`, () => {
      fc.assert(
        fc.property(fc.array(agentLine, { maxLength: 12 }), (lines) => {
          const parse = adapter.createParser();
          for (const line of lines) {
            expectEvents(parse(line));
            expect(typeof adapter.isResultLine(line)).toBe('boolean');
            if (adapter.stderrEvents) expectEvents(adapter.stderrEvents(line));
          }
        }),
        budget(250),
      );
    });
  }

  it('the stateless stream-json parser: any line, any bytes', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          agentLine,
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('utf8')),
        ),
        (line) => {
          expectEvents(parseStreamJsonLine(line));
        },
      ),
      budget(500),
    );
  });

  it('bytes through the line splitter into every parser', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.integer({ min: 1, max: 128 }), (bytes, max) => {
        const parsers = Object.values(ADAPTERS).map((a) => a.createParser());
        const splitter = new LineSplitter(max, (line) => {
          for (const parse of parsers) expectEvents(parse(line));
        });
        splitter.push(Buffer.from(bytes));
        splitter.end();
      }),
      budget(200),
    );
  });

  it('a 1 MB line of carriage returns is parsed in one pass by every parser (was quadratic: minutes)', () => {
    const line = `${'\r'.repeat(1024 * 1024)}x`;
    for (const adapter of Object.values(ADAPTERS)) expectEvents(adapter.createParser()(line));
    expect(parseStreamJsonLine(`{"type":"result"}${'\r'.repeat(1000)}`)).toHaveLength(1);
  });

  it('a 1 MB stderr line of half retry messages is scanned in bounded time (was quadratic)', () => {
    expect(geminiStderrEvents('Attempt 1 failed: '.repeat(60_000))).toEqual([]);
    expect(geminiStderrEvents('Attempt 2 failed with status 429. Retrying with backoff...')).toEqual([
      { type: 'retry', attempt: 2, delayMs: null, error: 'HTTP 429' },
    ]);
  });

  it('a line with thousands of content blocks yields at most MAX_EVENTS_PER_LINE events, and says so', () => {
    const blocks = Array.from({ length: 5000 }, (_, i) => ({ type: 'text', text: `t${i}` }));
    const line = JSON.stringify({ type: 'assistant', message: { content: blocks } });
    for (const name of ['command', 'claude-code', 'scripted'] as const) {
      const events = ADAPTERS[name].createParser()(line);
      expect(events).toHaveLength(MAX_EVENTS_PER_LINE);
      expect(events.at(-1)).toMatchObject({
        type: 'error',
        message: expect.stringContaining(
          `over the limit of ${MAX_EVENTS_PER_LINE} (MAX_EVENTS_PER_LINE): 4001 dropped`,
        ),
      });
    }
    expect(parseStreamJsonLine(line)).toHaveLength(MAX_EVENTS_PER_LINE);
  });

  it('retries past MAX_RETRY_EVENTS_PER_RUN are dropped, once said', () => {
    const cases: [name: keyof typeof ADAPTERS, line: string][] = [
      ['command', JSON.stringify({ type: 'system', subtype: 'api_retry', attempt: 1, retry_delay_ms: 10 })],
      ['claude-code', JSON.stringify({ type: 'system', subtype: 'api_retry', attempt: 1 })],
      ['codex', JSON.stringify({ type: 'error', message: 'Reconnecting... 1/5' })],
    ];
    for (const [name, line] of cases) {
      const parse = ADAPTERS[name].createParser();
      const events = Array.from({ length: MAX_RETRY_EVENTS_PER_RUN + 50 }, () => parse(line)).flat();
      expect(
        events.filter((e) => e.type === 'retry'),
        name,
      ).toHaveLength(MAX_RETRY_EVENTS_PER_RUN);
      const notes = events.filter((e) => e.type === 'error');
      expect(notes, name).toHaveLength(1);
      expect(notes[0]).toMatchObject({ message: expect.stringContaining('MAX_RETRY_EVENTS_PER_RUN') });
    }
  });
});

// ---------------------------------------------------------------- verdict

const verdictText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc
    .tuple(
      fc.string({ maxLength: 40 }),
      fc.dictionary(
        fc.constantFrom('verdict', 'comments', 'x'),
        fc.oneof(fc.constantFrom('approved', 'rejected', ' Approved '), shapedJson),
        {
          maxKeys: 3,
        },
      ),
      fc.constantFrom('fence', 'json-fence', 'bare', 'broken'),
      fc.string({ maxLength: 40 }),
    )
    .map(([before, object, how, after]) => {
      const json = JSON.stringify(object);
      const body =
        how === 'fence'
          ? `\`\`\`\n${json}\n\`\`\``
          : how === 'json-fence'
            ? `\`\`\`json \n${json}\n\`\`\``
            : how === 'bare'
              ? json
              : json.slice(0, Math.max(1, json.length - 2));
      return `${before}${body}${after}`;
    }),
  fc.string({ unit: fc.constantFrom('{', '}', '"', '\\', '`', '\n', ' ', 'verdict', ':'), maxLength: 300 }),
);

describe('verdict parser (fuzz)', () => {
  it('any result text: a verdict, rejected unless cleanly approved', () => {
    fc.assert(
      fc.property(fc.option(verdictText, { nil: undefined }), (text) => {
        const v = parseVerdict(text);
        expect(['approved', 'rejected']).toContain(v.verdict);
        expect(typeof v.comments).toBe('string');
        expect(v.parseError === null || typeof v.parseError === 'string').toBe(true);
        if (v.verdict === 'approved') expect(v.parseError).toBeNull();
      }),
      budget(600),
    );
  });

  it('comments nested too deeply to print do not throw (JSON.stringify overflowed the stack)', () => {
    const deep = `{"verdict":"approved","comments":${'['.repeat(50_000)}${']'.repeat(50_000)}}`;
    expect(parseVerdict(deep)).toEqual({
      verdict: 'approved',
      comments: '[comments not shown: nested too deeply to print]',
      parseError: null,
    });
  });

  it('an opening fence followed by a long blank run is scanned once (was quadratic: seconds)', () => {
    const v = parseVerdict(`\`\`\`json${' \n'.repeat(99_000)}`);
    expect(v.verdict).toBe('rejected');
    expect(parseVerdict(`\`\`\`json  \n\n{"verdict": "approved"}\n\`\`\``).verdict).toBe('approved');
  });
});

// ---------------------------------------------------------------- line splitter

type Line = [line: string, dropped: number];

function splitAll(max: number, chunks: Uint8Array[]): Line[] {
  const lines: Line[] = [];
  const splitter = new LineSplitter(max, (line, dropped) => lines.push([line, dropped]));
  for (const chunk of chunks) splitter.push(Buffer.from(chunk));
  splitter.end();
  return lines;
}

/** `bytes` split into chunks at the cut points `cuts` names (each taken modulo the length; empty chunks included). */
function chunksOf(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const p of points) {
    chunks.push(bytes.subarray(at, p));
    at = p;
  }
  chunks.push(bytes.subarray(at));
  return chunks;
}

/** Bytes, and the same bytes split into chunks. */
const chunked = fc
  .tuple(
    fc.uint8Array({ maxLength: 400 }),
    fc.array(fc.nat(), { maxLength: 20 }),
    fc.oneof(fc.integer({ min: 1, max: 16 }), fc.constant(1 << 20)),
  )
  .map(([bytes, cuts, max]) => ({ bytes, chunks: chunksOf(bytes, cuts), max }));

/** Bytes rich in what matters to a splitter: newlines, carriage returns, multi-byte characters. */
const lineBytes = fc
  .array(fc.constantFrom('a', '\n', '\r', '\r\n', 'é', '€', '😀', 'xyz', '\n\n'), { maxLength: 120 })
  .map((parts) => new Uint8Array(Buffer.from(parts.join(''))));

describe('line splitter (fuzz)', () => {
  it('any chunking of the same bytes yields the same lines', () => {
    fc.assert(
      fc.property(chunked, ({ bytes, chunks, max }) => {
        expect(splitAll(max, chunks)).toEqual(splitAll(max, [bytes]));
      }),
      budget(600),
    );
  });

  it('any chunking of newline-rich text yields the lines of a plain split when nothing is cut', () => {
    fc.assert(
      fc.property(lineBytes, fc.array(fc.nat(), { maxLength: 30 }), (bytes, cuts) => {
        const chunks = chunksOf(bytes, cuts);
        const text = Buffer.from(bytes).toString('utf8');
        const expected = text.split('\n').map((l) => l.replace(/\r$/, ''));
        if (text.endsWith('\n') || text === '') expected.pop();
        expect(splitAll(1 << 20, chunks)).toEqual(expected.map((l) => [l, 0]));
      }),
      budget(600),
    );
  });

  it('a truncated line is never longer than the limit and never ends in half a character', () => {
    fc.assert(
      fc.property(lineBytes, fc.integer({ min: 1, max: 12 }), (bytes, max) => {
        for (const [line, dropped] of splitAll(max, [bytes])) {
          expect(Buffer.byteLength(line)).toBeLessThanOrEqual(max);
          expect(line).not.toContain('\uFFFD');
          expect(dropped).toBeGreaterThanOrEqual(0);
        }
      }),
      budget(400),
    );
  });
});
