/**
 * Parser of the command agent contract: Claude Code's
 * `--output-format stream-json --verbose` lines, one JSON object per line.
 *
 * Glossary: a *known* line is one whose `type` is `system`, `assistant`, `user`,
 * `result` or `rate_limit_event` (a usage limit, see usage-limit.ts); it is validated with a schema and a mismatch becomes an `error`
 * event that keeps the raw line. Any other object with a string `type` is valid
 * and ignored, so new Claude Code event kinds never break a run. Lines that do
 * not look like JSON are the agent's plain text output and become messages.
 */
import { z } from 'zod';
import { emptyUsage, type AgentEvent, type LineParser, type Usage } from './events.ts';
import { resetFromClockText } from './usage-limit.ts';

/** Longest raw line kept in an `error` event, in characters. */
export const MAX_RAW_CHARS = 2000;
const MAX_ERROR_MESSAGE_CHARS = 300;
/**
 * Most events one line may yield. An assistant line with thousands of tiny
 * content blocks (a 1 MB line holds ~40 000) is cut here, not forwarded whole.
 */
export const MAX_EVENTS_PER_LINE = 1000;
/** Most `retry` events one run reports: each becomes a stored event, so a looping agent must not fill the store. */
export const MAX_RETRY_EVENTS_PER_RUN = 1000;

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

// A provider's rate or usage limit (Claude Code on a subscription): `rejected` means no more work
// until `resetsAt` (epoch seconds); `allowed` and `allowed_warning` are reports, not refusals.
const rateLimitLine = z.looseObject({
  type: z.literal('rate_limit_event'),
  rate_limit_info: z.looseObject({
    status: z.string(),
    resetsAt: z.number().nullish(),
    rateLimitType: z.string().nullish(),
  }),
});

type AssistantLine = z.infer<typeof assistantLine>;
type UserLine = z.infer<typeof userLine>;
type ResultLine = z.infer<typeof resultLine>;

// ------------------------------------------------------------ the quick path
//
// Assistant and user lines are nearly all of a run's output, and a zod parse of each costs about
// twice the JSON.parse. These checks accept only what the schemas above accept; whatever they do
// not accept (or are unsure of) goes through the schema, which has the final say and explains the
// mismatch. So they change how fast a line is parsed, never what it becomes.

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const optionalString = (v: unknown): boolean => v === undefined || typeof v === 'string';
const tokenCountOrNothing = (v: unknown): boolean =>
  v === undefined || v === null || (Number.isSafeInteger(v) && (v as number) >= 0);
/** `string | {type: string, …}[]`: a message's content as the schemas take it. */
const isContent = (v: unknown): boolean =>
  typeof v === 'string' || (Array.isArray(v) && v.every((b) => isObject(b) && typeof b.type === 'string'));

function quickUsage(u: unknown): boolean {
  if (u === undefined || u === null) return true;
  return (
    isObject(u) &&
    tokenCountOrNothing(u.input_tokens) &&
    tokenCountOrNothing(u.output_tokens) &&
    tokenCountOrNothing(u.cache_read_input_tokens) &&
    tokenCountOrNothing(u.cache_creation_input_tokens)
  );
}

/** The line as {@link assistantLine} would return it, or null to let the schema decide. */
function quickAssistant(v: Obj): AssistantLine | null {
  const m = v.message;
  if (!optionalString(v.session_id) || !isObject(m)) return null;
  if (!optionalString(m.id) || !optionalString(m.model) || !isContent(m.content) || !quickUsage(m.usage))
    return null;
  return v as AssistantLine;
}

/** The line as {@link userLine} would return it, or null to let the schema decide. */
const quickUser = (v: Obj): UserLine | null =>
  isObject(v.message) && isContent(v.message.content) ? (v as UserLine) : null;

const parseAssistant = (v: Obj) => {
  const quick = quickAssistant(v);
  return quick ? ({ success: true, data: quick } as const) : assistantLine.safeParse(v);
};
const parseUser = (v: Obj) => {
  const quick = quickUser(v);
  return quick ? ({ success: true, data: quick } as const) : userLine.safeParse(v);
};
const parseText = (block: Obj) =>
  typeof block.text === 'string'
    ? ({ success: true, data: block as z.infer<typeof textBlock> } as const)
    : textBlock.safeParse(block);
const parseToolUse = (block: Obj) =>
  typeof block.name === 'string'
    ? ({ success: true, data: block as z.infer<typeof toolUseBlock> } as const)
    : toolUseBlock.safeParse(block);
const parseToolResult = (block: Obj) =>
  (block.is_error === undefined || block.is_error === null || typeof block.is_error === 'boolean') &&
  (block.content === undefined || block.content === null || isContent(block.content))
    ? ({ success: true, data: block as z.infer<typeof toolResultBlock> } as const)
    : toolResultBlock.safeParse(block);

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
    .map((block) =>
      block.type === 'text' && typeof block.text === 'string' ? block.text : `[${block.type}]`,
    )
    .join('\n');
}

function assistantEvents(line: AssistantLine, raw: string): AgentEvent[] {
  const { content } = line.message;
  if (typeof content === 'string') return content ? [{ type: 'message', text: content }] : [];
  const events: AgentEvent[] = [];
  content.forEach((block, index) => {
    if (block.type === 'text') {
      const parsed = parseText(block);
      if (parsed.success) events.push({ type: 'message', text: parsed.data.text });
      else events.push(errorEvent(schemaError(`assistant text block ${index}`, parsed.error), raw));
    } else if (block.type === 'tool_use') {
      const parsed = parseToolUse(block);
      if (parsed.success) events.push({ type: 'tool_use', name: parsed.data.name, input: parsed.data.input });
      else events.push(errorEvent(schemaError(`assistant tool_use block ${index}`, parsed.error), raw));
    }
    // thinking, redacted_thinking, server tool blocks: not part of the event stream
  });
  return events;
}

function userEvents(content: UserLine['message']['content'], raw: string): AgentEvent[] {
  // A string content is the prompt echoed back, not a tool outcome.
  if (typeof content === 'string') return [];
  const events: AgentEvent[] = [];
  content.forEach((block, index) => {
    if (block.type !== 'tool_result') return;
    const parsed = parseToolResult(block);
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
  if (typeof value.type !== 'string')
    return { kind: 'events', events: [errorEvent('JSON object without a string "type"', raw)] };
  const fail = (what: string, error: z.ZodError): Parsed => ({
    kind: 'events',
    events: [errorEvent(schemaError(what, error), raw)],
  });
  switch (value.type) {
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
      const line = parseAssistant(value);
      if (!line.success) return fail('assistant line', line.error);
      return { kind: 'assistant', line: line.data, events: assistantEvents(line.data, raw) };
    }
    case 'user': {
      const line = parseUser(value);
      if (!line.success) return fail('user line', line.error);
      return { kind: 'events', events: userEvents(line.data.message.content, raw) };
    }
    case 'rate_limit_event': {
      const line = rateLimitLine.safeParse(value);
      if (!line.success) return fail('rate_limit_event line', line.error);
      const info = line.data.rate_limit_info;
      if (info.status !== 'rejected') return { kind: 'events', events: [] };
      const window = info.rateLimitType ?? null;
      return {
        kind: 'events',
        events: [
          {
            type: 'usage_limit',
            resetAt: info.resetsAt && info.resetsAt > 0 ? info.resetsAt * 1000 : null,
            window,
            message: `the ${window ?? 'usage'} limit was reached`,
          },
        ],
      };
    }
    case 'result': {
      const line = resultLine.safeParse(value);
      if (!line.success) return fail('result line', line.error);
      const ok = line.data.is_error !== true && line.data.subtype === 'success';
      // A result that ended on the API's 429 is a limit the agent gave up on (its text may name the reset).
      const limited = !ok && (value as { api_error_status?: unknown }).api_error_status === 429;
      const text = line.data.result ?? 'the API answered 429';
      return {
        kind: 'events',
        events: [
          ...(limited
            ? [
                {
                  type: 'usage_limit' as const,
                  resetAt: resetFromClockText(text, Date.now()),
                  window: null,
                  message: text,
                },
              ]
            : []),
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

/**
 * The line without its trailing `\r`/`\n`. A loop, not `/[\r\n]+$/`: that
 * regex retries from every `\r` of a long run inside the line (quadratic; a
 * 1 MB line of them takes minutes).
 */
export function stripLineEnd(line: string): string {
  let end = line.length;
  while (end > 0 && (line[end - 1] === '\n' || line[end - 1] === '\r')) end -= 1;
  return end === line.length ? line : line.slice(0, end);
}

/** A line's events cut to {@link MAX_EVENTS_PER_LINE}; results and usage are always kept. */
export function capLineEvents(events: AgentEvent[], line: string): AgentEvent[] {
  if (events.length <= MAX_EVENTS_PER_LINE) return events;
  const kept = events.slice(0, MAX_EVENTS_PER_LINE - 1);
  const vital = events
    .slice(MAX_EVENTS_PER_LINE - 1)
    .filter((e) => e.type === 'result' || e.type === 'usage');
  const dropped = events.length - kept.length - vital.length;
  const note = errorEvent(
    `line yielded ${events.length} events, over the limit of ${MAX_EVENTS_PER_LINE} (MAX_EVENTS_PER_LINE): ${dropped} dropped`,
    line,
  );
  return [...kept, note, ...vital];
}

/**
 * A run's parser with the event limits applied: {@link capLineEvents} on each
 * line, and retries past {@link MAX_RETRY_EVENTS_PER_RUN} dropped (one error
 * event says so). Every adapter's `createParser` returns one of these.
 */
export function boundedParser(parse: LineParser): LineParser {
  let retries = 0;
  return (line) => {
    const events = capLineEvents(parse(line), line);
    if (!events.some((e) => e.type === 'retry')) return events;
    const before = retries;
    const kept = events.filter((e) => e.type !== 'retry' || ++retries <= MAX_RETRY_EVENTS_PER_RUN);
    if (before <= MAX_RETRY_EVENTS_PER_RUN && retries > MAX_RETRY_EVENTS_PER_RUN) {
      kept.push(
        errorEvent(
          `more than ${MAX_RETRY_EVENTS_PER_RUN} retries in this run (MAX_RETRY_EVENTS_PER_RUN): further ones are not recorded`,
          line,
        ),
      );
    }
    return kept;
  };
}

function parseLine(input: string): Parsed {
  const line = stripLineEnd(input);
  // Nearly every line starts with its `{`: JSON.parse takes it as it is, no trimmed copy needed.
  const trimmed = line.charCodeAt(0) === 0x7b ? line : line.trim();
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
export const parseStreamJsonLine: LineParser = (line) => capLineEvents(safeParseLine(line).events, line);

interface Tokens {
  input: number;
  output: number;
  cacheRead: number;
  cacheWrite: number;
}
const TOKEN_KINDS = ['input', 'output', 'cacheRead', 'cacheWrite'] as const;

/** Whether the running totals say nothing new since the `usage` event `a`. */
const sameUsage = (a: Usage, sum: Tokens, sessionId: string | null, model: string | null): boolean =>
  a.inputTokens === sum.input &&
  a.outputTokens === sum.output &&
  a.cacheReadTokens === sum.cacheRead &&
  a.cacheWriteTokens === sum.cacheWrite &&
  a.sessionId === sessionId &&
  a.model === model;

/**
 * A parser for one run. Like {@link parseStreamJsonLine}, and after each
 * assistant line whose usage changes the totals it also emits a `usage` event
 * with the run's running totals (each message id counted once, its latest figures
 * kept), so a run killed before its result line still reports what it spent.
 * Cost is null in these events; the result line's usage is authoritative.
 */
export function createStreamJsonParser(): LineParser {
  // Each message's latest figures, and their sum kept as it goes: a line costs the same at the
  // thousandth message as at the first.
  const byMessage = new Map<string, Tokens>();
  const sum: Tokens = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 };
  let anonymous = 0;
  let sessionId: string | null = null;
  let model: string | null = null;
  let last: Usage | null = null;

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
    const figures: Tokens = {
      input: message.usage.input_tokens ?? 0,
      output: message.usage.output_tokens ?? 0,
      cacheRead: message.usage.cache_read_input_tokens ?? 0,
      cacheWrite: message.usage.cache_creation_input_tokens ?? 0,
    };
    const previous = byMessage.get(id);
    for (const k of TOKEN_KINDS) sum[k] += figures[k] - (previous?.[k] ?? 0);
    byMessage.set(id, figures);
    // Each line of a message repeats its usage: most lines change nothing, and make no event.
    if (last && sameUsage(last, sum, sessionId, model)) return parsed.events;
    const total: Usage = {
      ...emptyUsage(),
      inputTokens: sum.input,
      outputTokens: sum.output,
      cacheReadTokens: sum.cacheRead,
      cacheWriteTokens: sum.cacheWrite,
      sessionId,
      model,
    };
    last = total;
    parsed.events.push({ type: 'usage', usage: total });
    return parsed.events;
  };
}
