/**
 * Parser of the command agent contract: Claude Code's
 * `--output-format stream-json --verbose` lines, one JSON object per line.
 *
 * Glossary: a *known* line is one whose `type` is `system`, `assistant`, `user`
 * or `result`; it is validated with a schema and a mismatch becomes an `error`
 * event that keeps the raw line. Any other object with a string `type` is valid
 * and ignored, so new Claude Code event kinds never break a run. Lines that do
 * not look like JSON are the agent's plain text output and become messages.
 */
import { z } from 'zod';
import { emptyUsage, type AgentEvent, type LineParser, type Usage } from './events.ts';

/** Longest raw line kept in an `error` event, in characters. */
export const MAX_RAW_CHARS = 2000;
const MAX_ERROR_MESSAGE_CHARS = 300;

const tokenCount = z.number().int().nonnegative();

const initLine = z.looseObject({
  type: z.literal('system'),
  subtype: z.literal('init'),
  session_id: z.string().optional(),
  model: z.string().optional(),
});

// Claude Code (SDKAPIRetryMessage): attempt, max_retries, retry_delay_ms,
// error_status (HTTP status or null) and error (a category such as
// "rate_limit" or "server_error"). An object error and `delay_ms` are accepted
// as plausible variants of older or third-party emitters.
const retryLine = z.looseObject({
  type: z.literal('system'),
  subtype: z.literal('api_retry'),
  attempt: z.number().nullish(),
  max_retries: z.number().nullish(),
  retry_delay_ms: z.number().nullish(),
  delay_ms: z.number().nullish(),
  error_status: z.number().nullish(),
  error: z
    .union([z.string(), z.looseObject({ message: z.string().optional(), type: z.string().optional() })])
    .nullish(),
});

const contentBlock = z.looseObject({ type: z.string() });
const textBlock = z.looseObject({ type: z.literal('text'), text: z.string() });
const toolUseBlock = z.looseObject({ type: z.literal('tool_use'), name: z.string(), input: z.unknown() });
const toolResultBlock = z.looseObject({
  type: z.literal('tool_result'),
  is_error: z.boolean().nullish(),
  content: z.union([z.string(), z.array(contentBlock)]).nullish(),
});

const messageUsage = z.looseObject({
  input_tokens: tokenCount.nullish(),
  output_tokens: tokenCount.nullish(),
  cache_read_input_tokens: tokenCount.nullish(),
  cache_creation_input_tokens: tokenCount.nullish(),
});

const assistantLine = z.looseObject({
  type: z.literal('assistant'),
  session_id: z.string().optional(),
  message: z.looseObject({
    id: z.string().optional(),
    model: z.string().optional(),
    content: z.union([z.string(), z.array(contentBlock)]),
    usage: messageUsage.nullish(),
  }),
});

const userLine = z.looseObject({
  type: z.literal('user'),
  message: z.looseObject({ content: z.union([z.string(), z.array(contentBlock)]) }),
});

const resultLine = z.looseObject({
  type: z.literal('result'),
  subtype: z.string().optional(),
  is_error: z.boolean().optional(),
  result: z.string().nullish(),
  usage: messageUsage.nullish(),
  total_cost_usd: z.number().nonnegative().nullish(),
  session_id: z.string().nullish(),
  num_turns: z.number().int().nonnegative().nullish(),
  modelUsage: z.record(z.string(), z.looseObject({ outputTokens: z.number().nullish() })).nullish(),
});

const anyTypedObject = z.looseObject({ type: z.string() });

type AssistantLine = z.infer<typeof assistantLine>;
type ResultLine = z.infer<typeof resultLine>;

const truncate = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`;

const errorEvent = (message: string, raw: string): AgentEvent => ({
  type: 'error',
  message: truncate(message, MAX_ERROR_MESSAGE_CHARS),
  raw: truncate(raw, MAX_RAW_CHARS),
});

const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (out, part) =>
      typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part),
    '',
  );

/** `what: path: why; path: why`, at most three issues. */
function schemaError(what: string, error: z.ZodError): string {
  const issues = error.issues
    .slice(0, 3)
    .map((issue) => `${formatPath(issue.path) || '(line)'}: ${issue.message}`)
    .join('; ');
  return `${what} does not match the stream-json schema: ${issues}`;
}

function blockText(blocks: string | ReadonlyArray<z.infer<typeof contentBlock>> | null | undefined): string {
  if (blocks === null || blocks === undefined) return '';
  if (typeof blocks === 'string') return blocks;
  return blocks
    .map((block) => {
      const text = textBlock.safeParse(block);
      return text.success ? text.data.text : `[${block.type}]`;
    })
    .join('\n');
}

function assistantEvents(line: AssistantLine, raw: string): AgentEvent[] {
  const { content } = line.message;
  if (typeof content === 'string') return content ? [{ type: 'message', text: content }] : [];
  const events: AgentEvent[] = [];
  content.forEach((block, index) => {
    if (block.type === 'text') {
      const parsed = textBlock.safeParse(block);
      if (parsed.success) events.push({ type: 'message', text: parsed.data.text });
      else events.push(errorEvent(schemaError(`assistant text block ${index}`, parsed.error), raw));
    } else if (block.type === 'tool_use') {
      const parsed = toolUseBlock.safeParse(block);
      if (parsed.success) events.push({ type: 'tool_use', name: parsed.data.name, input: parsed.data.input });
      else events.push(errorEvent(schemaError(`assistant tool_use block ${index}`, parsed.error), raw));
    }
    // thinking, redacted_thinking, server tool blocks: not part of the event stream
  });
  return events;
}

function userEvents(content: z.infer<typeof userLine>['message']['content'], raw: string): AgentEvent[] {
  // A string content is the prompt echoed back, not a tool outcome.
  if (typeof content === 'string') return [];
  const events: AgentEvent[] = [];
  content.forEach((block, index) => {
    if (block.type !== 'tool_result') return;
    const parsed = toolResultBlock.safeParse(block);
    if (parsed.success) {
      events.push({
        type: 'tool_result',
        isError: parsed.data.is_error === true,
        text: blockText(parsed.data.content),
      });
    } else {
      events.push(errorEvent(schemaError(`user tool_result block ${index}`, parsed.error), raw));
    }
  });
  return events;
}

/** The modelUsage key with the most output tokens; the first one wins a tie. */
function dominantModel(modelUsage: ResultLine['modelUsage']): string | null {
  let best: string | null = null;
  let bestTokens = -1;
  for (const [model, figures] of Object.entries(modelUsage ?? {})) {
    const tokens = figures.outputTokens ?? 0;
    if (tokens > bestTokens) {
      best = model;
      bestTokens = tokens;
    }
  }
  return best;
}

function resultUsage(line: ResultLine): Usage | null {
  if (line.usage == null && line.total_cost_usd == null && line.modelUsage == null) return null;
  return {
    inputTokens: line.usage?.input_tokens ?? 0,
    outputTokens: line.usage?.output_tokens ?? 0,
    cacheReadTokens: line.usage?.cache_read_input_tokens ?? 0,
    cacheWriteTokens: line.usage?.cache_creation_input_tokens ?? 0,
    costUsd: line.total_cost_usd ?? null,
    model: dominantModel(line.modelUsage),
    sessionId: line.session_id ?? null,
    numTurns: line.num_turns ?? null,
  };
}

function retryError(line: z.infer<typeof retryLine>): string | null {
  const { error, error_status: status } = line;
  const text = typeof error === 'string' ? error : (error?.message ?? error?.type ?? null);
  if (status == null) return text;
  return text ? `${text} (HTTP ${status})` : `HTTP ${status}`;
}

type Parsed =
  { kind: 'events'; events: AgentEvent[] } | { kind: 'assistant'; line: AssistantLine; events: AgentEvent[] };

function parseObject(value: Record<string, unknown>, raw: string): Parsed {
  const typed = anyTypedObject.safeParse(value);
  if (!typed.success)
    return { kind: 'events', events: [errorEvent('JSON object without a string "type"', raw)] };
  const fail = (what: string, error: z.ZodError): Parsed => ({
    kind: 'events',
    events: [errorEvent(schemaError(what, error), raw)],
  });
  switch (typed.data.type) {
    case 'system': {
      if (value.subtype === 'init') {
        const line = initLine.safeParse(value);
        if (!line.success) return fail('system init line', line.error);
        return {
          kind: 'events',
          events: [
            { type: 'started', sessionId: line.data.session_id ?? null, model: line.data.model ?? null },
          ],
        };
      }
      if (value.subtype === 'api_retry') {
        const line = retryLine.safeParse(value);
        if (!line.success) return fail('system api_retry line', line.error);
        const delayMs = line.data.retry_delay_ms ?? line.data.delay_ms ?? null;
        return {
          kind: 'events',
          events: [
            { type: 'retry', attempt: line.data.attempt ?? null, delayMs, error: retryError(line.data) },
          ],
        };
      }
      return { kind: 'events', events: [] };
    }
    case 'assistant': {
      const line = assistantLine.safeParse(value);
      if (!line.success) return fail('assistant line', line.error);
      return { kind: 'assistant', line: line.data, events: assistantEvents(line.data, raw) };
    }
    case 'user': {
      const line = userLine.safeParse(value);
      if (!line.success) return fail('user line', line.error);
      return { kind: 'events', events: userEvents(line.data.message.content, raw) };
    }
    case 'result': {
      const line = resultLine.safeParse(value);
      if (!line.success) return fail('result line', line.error);
      const ok = line.data.is_error !== true && line.data.subtype === 'success';
      return {
        kind: 'events',
        events: [
          {
            type: 'result',
            ok,
            text: line.data.result ?? '',
            subtype: line.data.subtype ?? null,
            usage: resultUsage(line.data),
          },
        ],
      };
    }
    default:
      return { kind: 'events', events: [] };
  }
}

function parseLine(input: string): Parsed {
  const line = input.replace(/[\r\n]+$/, '');
  const trimmed = line.trim();
  if (!trimmed) return { kind: 'events', events: [] };
  const first = trimmed[0];
  if (first !== '{' && first !== '[') return { kind: 'events', events: [{ type: 'message', text: line }] };
  let value: unknown;
  try {
    value = JSON.parse(trimmed);
  } catch (error) {
    // `[INFO] starting` is log output, not broken JSON; `{...` always means JSON.
    if (first === '[') return { kind: 'events', events: [{ type: 'message', text: line }] };
    const why = error instanceof Error ? error.message : String(error);
    return { kind: 'events', events: [errorEvent(`invalid JSON: ${why}`, line)] };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { kind: 'events', events: [errorEvent('JSON line is not an object', line)] };
  }
  return parseObject(value as Record<string, unknown>, line);
}

function safeParseLine(line: unknown): Parsed {
  try {
    if (typeof line !== 'string') return { kind: 'events', events: [errorEvent('line is not a string', '')] };
    return parseLine(line);
  } catch (error) {
    // Defensive: nothing above should throw, but an adapter must never crash on agent output.
    const why = error instanceof Error ? error.message : 'unknown error';
    return { kind: 'events', events: [errorEvent(`stream-json parser failed: ${why}`, String(line))] };
  }
}

/**
 * Parses one stdout line, statelessly. Emits no `usage` events: an assistant
 * message's usage repeats on each of its lines, so totals need
 * {@link createStreamJsonParser}. Never throws.
 */
export const parseStreamJsonLine: LineParser = (line) => safeParseLine(line).events;

/**
 * A parser for one run. Like {@link parseStreamJsonLine}, and after each
 * assistant line whose usage changes the totals it also emits a `usage` event
 * with the run's running totals (each message id counted once, its latest figures
 * kept), so a run killed before its result line still reports what it spent.
 * Cost is null in these events; the result line's usage is authoritative.
 */
export function createStreamJsonParser(): LineParser {
  const byMessage = new Map<string, Usage>();
  let anonymous = 0;
  let sessionId: string | null = null;
  let model: string | null = null;
  let lastTotal = '';

  return (line) => {
    const parsed = safeParseLine(line);
    for (const event of parsed.events) {
      if (event.type === 'started') {
        sessionId = event.sessionId ?? sessionId;
        model = event.model ?? model;
      }
    }
    if (parsed.kind !== 'assistant') return parsed.events;
    const { message } = parsed.line;
    sessionId = parsed.line.session_id ?? sessionId;
    model = message.model ?? model;
    if (!message.usage) return parsed.events;
    const id = message.id ?? `anonymous-${(anonymous += 1)}`;
    byMessage.set(id, {
      ...emptyUsage(),
      inputTokens: message.usage.input_tokens ?? 0,
      outputTokens: message.usage.output_tokens ?? 0,
      cacheReadTokens: message.usage.cache_read_input_tokens ?? 0,
      cacheWriteTokens: message.usage.cache_creation_input_tokens ?? 0,
    });
    const total: Usage = { ...emptyUsage(), sessionId, model };
    for (const usage of byMessage.values()) {
      total.inputTokens += usage.inputTokens;
      total.outputTokens += usage.outputTokens;
      total.cacheReadTokens += usage.cacheReadTokens;
      total.cacheWriteTokens += usage.cacheWriteTokens;
    }
    const key = JSON.stringify(total);
    if (key === lastTotal) return parsed.events;
    lastTotal = key;
    return [...parsed.events, { type: 'usage', usage: total }];
  };
}
