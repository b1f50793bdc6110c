import { describe, expect, it } from 'vitest';
import type { AgentEvent } from './events.ts';
import { MAX_RAW_CHARS, createStreamJsonParser, parseStreamJsonLine } from './stream-json.ts';
import { AGENT_EVENT_TYPES } from '../../test/helpers/agent-events.ts';

const SESSION = '5b0c7f0e-2f4d-4d1a-9a63-0c1f2e7d9b11';

const initLine = JSON.stringify({
  type: 'system',
  subtype: 'init',
  cwd: '/home/dev/worktrees/ORCH-109',
  session_id: SESSION,
  tools: ['Task', 'Bash', 'Glob', 'Grep', 'Read', 'Edit', 'Write', 'TodoWrite'],
  mcp_servers: [],
  model: 'claude-opus-4-8',
  permissionMode: 'bypassPermissions',
  slash_commands: ['compact', 'review'],
  apiKeySource: 'none',
  claude_code_version: '2.1.30',
  output_style: 'default',
  uuid: 'c2a9d1b4-8e0f-4c55-a7a1-6f0f3e0c2d10',
});

const assistant = (content: unknown[], extra: Record<string, unknown> = {}): string =>
  JSON.stringify({
    type: 'assistant',
    message: {
      model: 'claude-opus-4-8',
      id: 'msg_01XyZ3kq9d2v8c7b6a5n4m3l',
      type: 'message',
      role: 'assistant',
      content,
      stop_reason: null,
      stop_sequence: null,
      usage: {
        input_tokens: 4,
        cache_creation_input_tokens: 5210,
        cache_read_input_tokens: 12000,
        cache_creation: { ephemeral_5m_input_tokens: 5210, ephemeral_1h_input_tokens: 0 },
        output_tokens: 3,
        service_tier: 'standard',
      },
      ...extra,
    },
    parent_tool_use_id: null,
    session_id: SESSION,
    uuid: '0d7e5f7a-1a43-4a4e-b4a8-1b1b2f3c4d5e',
  });

const toolResult = (content: unknown, isError?: boolean): string =>
  JSON.stringify({
    type: 'user',
    message: {
      role: 'user',
      content: [
        {
          tool_use_id: 'toolu_01AbCdEf',
          type: 'tool_result',
          content,
          ...(isError === undefined ? {} : { is_error: isError }),
        },
      ],
    },
    parent_tool_use_id: null,
    session_id: SESSION,
    uuid: '9f6a3b1c-4d2e-4f0a-8b7c-6d5e4f3a2b1c',
    tool_use_result: { stdout: 'ok', stderr: '', interrupted: false, isImage: false },
  });

const modelUsage = {
  'claude-haiku-4-5-20251001': {
    inputTokens: 1200,
    outputTokens: 80,
    cacheReadInputTokens: 0,
    cacheCreationInputTokens: 0,
    webSearchRequests: 0,
    costUSD: 0.0016,
    contextWindow: 200000,
  },
  'claude-opus-4-8': {
    inputTokens: 25,
    outputTokens: 2310,
    cacheReadInputTokens: 200312,
    cacheCreationInputTokens: 10234,
    webSearchRequests: 0,
    costUSD: 0.4197,
    contextWindow: 200000,
  },
};

const resultLine = (fields: Record<string, unknown> = {}): string =>
  JSON.stringify({
    type: 'result',
    subtype: 'success',
    is_error: false,
    duration_ms: 53211,
    duration_api_ms: 50110,
    num_turns: 12,
    result: 'Implemented the timeout ladder and added tests.',
    session_id: SESSION,
    total_cost_usd: 0.4213,
    usage: {
      input_tokens: 25,
      cache_creation_input_tokens: 10234,
      cache_read_input_tokens: 200312,
      output_tokens: 2310,
      server_tool_use: { web_search_requests: 0, web_fetch_requests: 0 },
      service_tier: 'standard',
    },
    modelUsage,
    permission_denials: [],
    uuid: 'e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b',
    ...fields,
  });

const fullUsage = {
  inputTokens: 25,
  outputTokens: 2310,
  cacheReadTokens: 200312,
  cacheWriteTokens: 10234,
  costUsd: 0.4213,
  model: 'claude-opus-4-8',
  sessionId: SESSION,
  numTurns: 12,
};

describe('parseStreamJsonLine', () => {
  const cases: Array<{ name: string; line: string; events: AgentEvent[] }> = [
    { name: 'empty line', line: '', events: [] },
    { name: 'blank line', line: '   \r', events: [] },
    {
      name: 'plain text',
      line: 'Reading package.json',
      events: [{ type: 'message', text: 'Reading package.json' }],
    },
    {
      name: 'plain text keeps indentation, drops CR',
      line: '  at foo (x.ts:1)\r',
      events: [{ type: 'message', text: '  at foo (x.ts:1)' }],
    },
    {
      name: 'bracketed log line',
      line: '[INFO] starting',
      events: [{ type: 'message', text: '[INFO] starting' }],
    },
    { name: 'a bare JSON number is plain text', line: '42', events: [{ type: 'message', text: '42' }] },
    {
      name: 'system init',
      line: initLine,
      events: [{ type: 'started', sessionId: SESSION, model: 'claude-opus-4-8' }],
    },
    {
      name: 'system init without model',
      line: '{"type":"system","subtype":"init","session_id":"s-1"}',
      events: [{ type: 'started', sessionId: 's-1', model: null }],
    },
    {
      name: 'api_retry as Claude Code prints it',
      line: JSON.stringify({
        type: 'system',
        subtype: 'api_retry',
        attempt: 2,
        max_retries: 10,
        retry_delay_ms: 1043,
        error_status: 529,
        error: 'server_error',
        session_id: SESSION,
        uuid: 'a1',
      }),
      events: [{ type: 'retry', attempt: 2, delayMs: 1043, error: 'server_error (HTTP 529)' }],
    },
    {
      name: 'api_retry without a response',
      line: '{"type":"system","subtype":"api_retry","attempt":1,"max_retries":10,"retry_delay_ms":500,"error_status":null,"error":"unknown"}',
      events: [{ type: 'retry', attempt: 1, delayMs: 500, error: 'unknown' }],
    },
    {
      name: 'api_retry variant with delay_ms and an error object',
      line: '{"type":"system","subtype":"api_retry","attempt":3,"delay_ms":2000,"error":{"type":"overloaded_error","message":"Overloaded"}}',
      events: [{ type: 'retry', attempt: 3, delayMs: 2000, error: 'Overloaded' }],
    },
    {
      name: 'other system subtypes are ignored',
      line: '{"type":"system","subtype":"hook_started","hook_name":"SessionStart","session_id":"s"}',
      events: [],
    },
    {
      name: 'assistant text',
      line: assistant([{ type: 'text', text: "I'll start by reading the timeout module." }]),
      events: [{ type: 'message', text: "I'll start by reading the timeout module." }],
    },
    {
      name: 'assistant text and tool use, thinking skipped',
      line: assistant([
        { type: 'thinking', thinking: 'The ladder has three levels.', signature: 'EqQBCkYIBxgCKkD' },
        { type: 'text', text: 'Running the tests.' },
        {
          type: 'tool_use',
          id: 'toolu_01AbCdEf',
          name: 'Bash',
          input: { command: 'npm test', description: 'Run tests' },
        },
      ]),
      events: [
        { type: 'message', text: 'Running the tests.' },
        { type: 'tool_use', name: 'Bash', input: { command: 'npm test', description: 'Run tests' } },
      ],
    },
    {
      name: 'assistant with string content',
      line: '{"type":"assistant","message":{"content":"hello"}}',
      events: [{ type: 'message', text: 'hello' }],
    },
    {
      name: 'tool result with string content',
      line: toolResult('Tests: 3 passed', false),
      events: [{ type: 'tool_result', isError: false, text: 'Tests: 3 passed' }],
    },
    {
      name: 'failed tool result with block content',
      line: toolResult(
        [
          { type: 'text', text: 'Exit code 1' },
          { type: 'text', text: 'npm ERR! test failed' },
        ],
        true,
      ),
      events: [{ type: 'tool_result', isError: true, text: 'Exit code 1\nnpm ERR! test failed' }],
    },
    {
      name: 'tool result without is_error or content',
      line: toolResult(undefined),
      events: [{ type: 'tool_result', isError: false, text: '' }],
    },
    {
      name: 'user prompt echo is ignored',
      line: '{"type":"user","message":{"role":"user","content":"Implement ORCH-109"}}',
      events: [],
    },
    {
      name: 'success result',
      line: resultLine(),
      events: [
        {
          type: 'result',
          ok: true,
          text: 'Implemented the timeout ladder and added tests.',
          subtype: 'success',
          usage: fullUsage,
        },
      ],
    },
    {
      name: 'max turns result has no result text',
      line: resultLine({ subtype: 'error_max_turns', is_error: true, result: undefined }),
      events: [{ type: 'result', ok: false, text: '', subtype: 'error_max_turns', usage: fullUsage }],
    },
    {
      name: 'is_error makes a success subtype fail',
      line: resultLine({ is_error: true, result: 'API Error: 401' }),
      events: [{ type: 'result', ok: false, text: 'API Error: 401', subtype: 'success', usage: fullUsage }],
    },
    {
      name: 'an error subtype fails even without is_error',
      line: resultLine({ subtype: 'error_during_execution', is_error: false }),
      events: [
        {
          type: 'result',
          ok: false,
          text: 'Implemented the timeout ladder and added tests.',
          subtype: 'error_during_execution',
          usage: fullUsage,
        },
      ],
    },
    {
      name: 'result without cost or modelUsage',
      line: '{"type":"result","subtype":"success","is_error":false,"result":"ok","usage":{"input_tokens":10,"output_tokens":5}}',
      events: [
        {
          type: 'result',
          ok: true,
          text: 'ok',
          subtype: 'success',
          usage: {
            inputTokens: 10,
            outputTokens: 5,
            cacheReadTokens: 0,
            cacheWriteTokens: 0,
            costUsd: null,
            model: null,
            sessionId: null,
            numTurns: null,
          },
        },
      ],
    },
    {
      name: 'result without any usage figures',
      line: '{"type":"result","subtype":"success","is_error":false,"result":"ok"}',
      events: [{ type: 'result', ok: true, text: 'ok', subtype: 'success', usage: null }],
    },
    {
      name: 'unknown event types are ignored',
      line: '{"type":"stream_event","event":{"type":"content_block_delta"}}',
      events: [],
    },
  ];

  it.each(cases)('$name', ({ line, events }) => {
    expect(parseStreamJsonLine(line)).toEqual(events);
  });

  const errorCases: Array<{ name: string; line: string; message: RegExp }> = [
    {
      name: 'truncated JSON',
      line: '{"type":"assistant","message":{"content":[',
      message: /^invalid JSON: /,
    },
    { name: 'a JSON array', line: '[1,2,3]', message: /not an object/ },
    { name: 'object without type', line: '{"message":"hi"}', message: /without a string "type"/ },
    { name: 'object with a numeric type', line: '{"type":3}', message: /without a string "type"/ },
    {
      name: 'init with a numeric session id',
      line: '{"type":"system","subtype":"init","session_id":7}',
      message: /^system init line does not match .*session_id: /,
    },
    {
      name: 'assistant without message',
      line: '{"type":"assistant"}',
      message: /^assistant line does not match .*message: /,
    },
    {
      name: 'tool_use without a name',
      line: assistant([{ type: 'tool_use', id: 'toolu_1', input: {} }]),
      message: /^assistant tool_use block 0 does not match .*name: /,
    },
    {
      name: 'result with string tokens',
      line: resultLine({ usage: { input_tokens: '25', output_tokens: 3 } }),
      message: /^result line does not match .*usage\.input_tokens: /,
    },
    {
      name: 'result with a negative cost',
      line: resultLine({ total_cost_usd: -1 }),
      message: /total_cost_usd/,
    },
    {
      name: 'tool_result with numeric content',
      line: toolResult(12),
      message: /^user tool_result block 0 does not match .*content: /,
    },
  ];

  it.each(errorCases)('reports $name as an error with the raw line', ({ line, message }) => {
    const events = parseStreamJsonLine(line);
    expect(events).toHaveLength(1);
    const [event] = events;
    expect(event?.type).toBe('error');
    if (event?.type !== 'error') return;
    expect(event.message).toMatch(message);
    expect(event.message.length).toBeLessThanOrEqual(300);
    expect(event.raw).toBe(line);
  });

  it('keeps the good blocks of an assistant line with one bad block', () => {
    const events = parseStreamJsonLine(
      assistant([
        { type: 'text', text: 'first' },
        { type: 'text', text: 42 },
        { type: 'tool_use', name: 'Read', input: { file_path: 'a.ts' } },
      ]),
    );
    expect(events.map((e) => e.type)).toEqual(['message', 'error', 'tool_use']);
  });

  it('truncates the raw line of a huge malformed line', () => {
    const line = `{"type":"result","result":"${'x'.repeat(100_000)}`;
    const [event] = parseStreamJsonLine(line);
    expect(event?.type).toBe('error');
    if (event?.type === 'error') expect(event.raw?.length).toBe(MAX_RAW_CHARS);
  });
});

describe('createStreamJsonParser', () => {
  it('emits running usage totals, counting each message id once', () => {
    const parse = createStreamJsonParser();
    expect(parse(initLine)).toEqual([{ type: 'started', sessionId: SESSION, model: 'claude-opus-4-8' }]);
    const first = parse(assistant([{ type: 'text', text: 'a' }]));
    expect(first).toEqual([
      { type: 'message', text: 'a' },
      {
        type: 'usage',
        usage: {
          inputTokens: 4,
          outputTokens: 3,
          cacheReadTokens: 12000,
          cacheWriteTokens: 5210,
          costUsd: null,
          model: 'claude-opus-4-8',
          sessionId: SESSION,
          numTurns: null,
        },
      },
    ]);
    // Claude Code prints one line per content block of a message, repeating its usage.
    expect(parse(assistant([{ type: 'text', text: 'b' }]))).toEqual([{ type: 'message', text: 'b' }]);
    const next = parse(
      assistant([{ type: 'text', text: 'c' }], {
        id: 'msg_02',
        usage: {
          input_tokens: 6,
          output_tokens: 40,
          cache_read_input_tokens: 17210,
          cache_creation_input_tokens: 0,
        },
      }),
    );
    expect(next.at(-1)).toMatchObject({
      type: 'usage',
      usage: { inputTokens: 10, outputTokens: 43, cacheReadTokens: 29210, cacheWriteTokens: 5210 },
    });
    expect(parse(resultLine())).toEqual(parseStreamJsonLine(resultLine()));
  });

  it('keeps parsers independent', () => {
    const a = createStreamJsonParser();
    const b = createStreamJsonParser();
    a(assistant([{ type: 'text', text: 'x' }]));
    expect(b(assistant([{ type: 'text', text: 'x' }])).at(-1)).toMatchObject({ usage: { outputTokens: 3 } });
  });
});

/** mulberry32: a tiny seeded PRNG, so a failing fuzz case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('fuzz', () => {
  const random = prng(0x5eed);
  const int = (n: number): number => Math.floor(random() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const alphabet = [
    '{',
    '}',
    '[',
    ']',
    '"',
    ':',
    ',',
    '\\',
    ' ',
    'a',
    'type',
    '1',
    '-',
    '\n',
    '\r',
    '\u0000',
    'é',
    '😀',
    'null',
    'true',
  ];
  const randomString = (): string => Array.from({ length: int(40) }, () => pick(alphabet)).join('');
  const keys = [
    'type',
    'subtype',
    'message',
    'content',
    'text',
    'name',
    'input',
    'usage',
    'result',
    'is_error',
    'modelUsage',
    'session_id',
    'model',
    'attempt',
    'error',
    'retry_delay_ms',
    'total_cost_usd',
    'num_turns',
    'input_tokens',
    'outputTokens',
    '__proto__',
    'constructor',
  ];
  const typeValues = [
    'system',
    'assistant',
    'user',
    'result',
    'init',
    'api_retry',
    'text',
    'tool_use',
    'tool_result',
    'success',
  ];
  const randomValue = (depth: number): unknown => {
    switch (int(depth > 3 ? 5 : 8)) {
      case 0:
        return null;
      case 1:
        return random() < 0.5;
      case 2:
        return pick([0, -1, 1.5, 1e308, -0, Number.MAX_SAFE_INTEGER, int(5000)]);
      case 3:
        return randomString();
      case 4:
        return pick(typeValues);
      case 5:
      case 6:
        return Object.fromEntries(Array.from({ length: int(6) }, () => [pick(keys), randomValue(depth + 1)]));
      default:
        return Array.from({ length: int(4) }, () => randomValue(depth + 1));
    }
  };
  const seeds = [
    initLine,
    assistant([{ type: 'text', text: 'hi' }]),
    assistant([{ type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: 'ls' } }]),
    toolResult('ok', false),
    resultLine(),
    JSON.stringify({
      type: 'rate_limit_event',
      rate_limit_info: { status: 'rejected', resetsAt: 1796679513, rateLimitType: 'five_hour' },
    }),
  ];
  const mutate = (line: string): string => {
    const at = int(line.length);
    switch (int(3)) {
      case 0:
        return line.slice(0, at);
      case 1:
        return line.slice(0, at) + pick(alphabet) + line.slice(at + 1);
      default:
        return line.replace(
          /"(\w+)":("[^"]*"|\d+|true|false|null)/,
          (_m, key: string) => `"${key}":${JSON.stringify(randomValue(2))}`,
        );
    }
  };

  const inputs: string[] = [];
  for (let i = 0; i < 2000; i += 1) inputs.push(randomString());
  for (let i = 0; i < 2000; i += 1) inputs.push(JSON.stringify(randomValue(0)) ?? 'undefined');
  for (let i = 0; i < 1000; i += 1) {
    inputs.push(
      JSON.stringify({ ...(randomValue(1) as object), type: pick(typeValues), subtype: pick(typeValues) }),
    );
  }
  for (let i = 0; i < 2000; i += 1) inputs.push(mutate(pick(seeds)));
  inputs.push('['.repeat(100_000), '{"a":'.repeat(50_000), `{"type":"x","y":"${'z'.repeat(1_000_000)}"}`);

  it(`never throws on ${inputs.length} generated lines and always returns well-formed events`, () => {
    const stateful = createStreamJsonParser();
    const seen = new Set<string>();
    for (const line of inputs) {
      for (const parse of [parseStreamJsonLine, stateful]) {
        let events: AgentEvent[] = [];
        expect(
          () => {
            events = parse(line);
          },
          line.slice(0, 200),
        ).not.toThrow();
        expect(Array.isArray(events)).toBe(true);
        for (const event of events) {
          expect(AGENT_EVENT_TYPES.has(event.type), JSON.stringify(event)).toBe(true);
          seen.add(event.type);
          if (event.type === 'error') expect((event.raw ?? '').length).toBeLessThanOrEqual(MAX_RAW_CHARS);
          if (event.type === 'result') expect(typeof event.text).toBe('string');
        }
      }
    }
    // The generator is only useful if it reaches every branch of the parser.
    expect([...seen].sort()).toEqual([...AGENT_EVENT_TYPES].sort());
  });
});
