/**
 * Parser of `codex exec --json`: one thread event per line (thread.started,
 * turn.started/completed/failed, item.started/updated/completed, error).
 *
 * Codex has no final result line: `turn.completed` (with the run's usage) is
 * the result, its text the last agent message; `turn.failed` is an error
 * result. `error` lines that say `Reconnecting... n/m` are retries of the
 * model API. Codex reports no cost and no model; input tokens include cached
 * ones, which are split out here (input = input_tokens − cached_input_tokens).
 */
import { z } from 'zod';
import { emptyUsage, type AgentEvent, type LineParser, type Usage } from '../events.ts';
import { errorEvent, guarded, readJsonLine, schemaError } from '../json-line.ts';
import { usageLimitFromMessage } from '../usage-limit.ts';
import { boundedParser } from '../stream-json.ts';

const count = z.number().int().nonnegative();

const threadStarted = z.looseObject({ type: z.literal('thread.started'), thread_id: z.string() });
const turnCompleted = z.looseObject({
  type: z.literal('turn.completed'),
  usage: z.looseObject({
    input_tokens: count,
    cached_input_tokens: count.nullish(),
    cache_write_input_tokens: count.nullish(),
    output_tokens: count,
    reasoning_output_tokens: count.nullish(),
  }),
});
const turnFailed = z.looseObject({
  type: z.literal('turn.failed'),
  error: z.looseObject({ message: z.string() }).nullish(),
});
const errorLine = z.looseObject({ type: z.literal('error'), message: z.string() });
const itemLine = z.looseObject({
  type: z.enum(['item.started', 'item.updated', 'item.completed']),
  item: z.looseObject({ id: z.string().optional(), type: z.string() }),
});

const agentMessage = z.looseObject({ text: z.string() });
const commandExecution = z.looseObject({
  command: z.string(),
  aggregated_output: z.string().nullish(),
  exit_code: z.number().int().nullish(),
  status: z.string().nullish(),
});
const fileChange = z.looseObject({
  changes: z.array(z.looseObject({ path: z.string(), kind: z.string() })),
  status: z.string().nullish(),
});
const mcpToolCall = z.looseObject({
  server: z.string(),
  tool: z.string(),
  arguments: z.unknown().optional(),
  result: z.unknown().optional(),
  error: z.looseObject({ message: z.string() }).nullish(),
  status: z.string().nullish(),
});
const webSearch = z.looseObject({ query: z.string() });
const itemError = z.looseObject({ message: z.string() });

const RECONNECTING = /^Reconnecting\.\.\.\s*(\d+)\/(\d+)\s*(?:\((.*)\))?\s*$/s;
const FORMAT = 'codex exec --json';

/** Whether a line is `turn.completed` or `turn.failed`; stateless. */
export function isCodexResultLine(line: string): boolean {
  if (!line.includes('"turn.')) return false;
  const read = readJsonLine(line);
  return read.kind === 'object' && (read.type === 'turn.completed' || read.type === 'turn.failed');
}

/** A parser for one Codex run; it totals usage over turns and remembers the last agent message. */
export function createCodexParser(): LineParser {
  const started = new Set<string>();
  let sessionId: string | null = null;
  let lastMessage = '';
  let turns = 0;
  const totals: Usage = emptyUsage();

  const fail = (what: string, error: z.ZodError, raw: string): AgentEvent[] => [
    errorEvent(schemaError(FORMAT, what, error), raw),
  ];

  function itemEvents(kind: string, item: z.infer<typeof itemLine>['item'], raw: string): AgentEvent[] {
    const first = item.id === undefined || !started.has(item.id);
    if (item.id !== undefined && kind !== 'item.completed') started.add(item.id);
    const done = kind === 'item.completed';
    switch (item.type) {
      case 'agent_message': {
        if (!done) return [];
        const parsed = agentMessage.safeParse(item);
        if (!parsed.success) return fail('agent_message item', parsed.error, raw);
        lastMessage = parsed.data.text;
        return [{ type: 'message', text: parsed.data.text }];
      }
      case 'command_execution': {
        const parsed = commandExecution.safeParse(item);
        if (!parsed.success) return fail('command_execution item', parsed.error, raw);
        const use: AgentEvent = { type: 'tool_use', name: 'shell', input: { command: parsed.data.command } };
        if (!done) return first ? [use] : [];
        const result: AgentEvent = {
          type: 'tool_result',
          isError: parsed.data.status === 'failed' || (parsed.data.exit_code ?? 0) !== 0,
          text: parsed.data.aggregated_output ?? '',
        };
        return first ? [use, result] : [result];
      }
      case 'file_change': {
        const parsed = fileChange.safeParse(item);
        if (!parsed.success) return fail('file_change item', parsed.error, raw);
        const use: AgentEvent = {
          type: 'tool_use',
          name: 'apply_patch',
          input: { changes: parsed.data.changes },
        };
        if (!done) return first ? [use] : [];
        const result: AgentEvent = {
          type: 'tool_result',
          isError: parsed.data.status === 'failed',
          text: parsed.data.changes.map((c) => `${c.kind} ${c.path}`).join('\n'),
        };
        return first ? [use, result] : [result];
      }
      case 'mcp_tool_call': {
        const parsed = mcpToolCall.safeParse(item);
        if (!parsed.success) return fail('mcp_tool_call item', parsed.error, raw);
        const use: AgentEvent = {
          type: 'tool_use',
          name: `${parsed.data.server}.${parsed.data.tool}`,
          input: parsed.data.arguments ?? null,
        };
        if (!done) return first ? [use] : [];
        const result: AgentEvent = {
          type: 'tool_result',
          isError: parsed.data.status === 'failed' || Boolean(parsed.data.error),
          text: parsed.data.error?.message ?? JSON.stringify(parsed.data.result ?? null),
        };
        return first ? [use, result] : [result];
      }
      case 'web_search': {
        if (!done) return [];
        const parsed = webSearch.safeParse(item);
        if (!parsed.success) return fail('web_search item', parsed.error, raw);
        return [{ type: 'tool_use', name: 'web_search', input: { query: parsed.data.query } }];
      }
      case 'error': {
        if (!done) return [];
        const parsed = itemError.safeParse(item);
        if (!parsed.success) return fail('error item', parsed.error, raw);
        return [errorEvent(parsed.data.message, raw)];
      }
      default:
        // reasoning, todo_list and kinds added later: not part of the event stream.
        return [];
    }
  }

  function parse(line: string): AgentEvent[] {
    const read = readJsonLine(line);
    if (read.kind === 'events') return read.events;
    const { value, raw } = read;
    switch (read.type) {
      case 'thread.started': {
        const parsed = threadStarted.safeParse(value);
        if (!parsed.success) return fail('thread.started line', parsed.error, raw);
        sessionId = parsed.data.thread_id;
        return [{ type: 'started', sessionId, model: null }];
      }
      case 'item.started':
      case 'item.updated':
      case 'item.completed': {
        const parsed = itemLine.safeParse(value);
        if (!parsed.success) return fail(`${read.type} line`, parsed.error, raw);
        return itemEvents(read.type, parsed.data.item, raw);
      }
      case 'turn.completed': {
        const parsed = turnCompleted.safeParse(value);
        if (!parsed.success) return fail('turn.completed line', parsed.error, raw);
        const u = parsed.data.usage;
        const cached = Math.min(u.cached_input_tokens ?? 0, u.input_tokens);
        turns += 1;
        totals.inputTokens += u.input_tokens - cached;
        totals.cacheReadTokens += cached;
        totals.cacheWriteTokens += u.cache_write_input_tokens ?? 0;
        totals.outputTokens += u.output_tokens;
        totals.sessionId = sessionId;
        totals.numTurns = turns;
        const usage = { ...totals };
        return [
          { type: 'usage', usage },
          { type: 'result', ok: true, text: lastMessage, subtype: 'success', usage },
        ];
      }
      case 'turn.failed': {
        const parsed = turnFailed.safeParse(value);
        if (!parsed.success) return fail('turn.failed line', parsed.error, raw);
        const message = parsed.data.error?.message ?? 'turn failed';
        const limit = usageLimitFromMessage(message);
        return [
          ...(limit ? [{ type: 'usage_limit' as const, ...limit }] : []),
          {
            type: 'result',
            ok: false,
            text: message,
            subtype: 'turn_failed',
            usage: turns ? { ...totals, sessionId } : null,
          },
        ];
      }
      case 'error': {
        const parsed = errorLine.safeParse(value);
        if (!parsed.success) return fail('error line', parsed.error, raw);
        const retry = RECONNECTING.exec(parsed.data.message);
        if (retry)
          return [
            { type: 'retry', attempt: Number(retry[1]), delayMs: null, error: retry[3]?.trim() || null },
          ];
        return [errorEvent(parsed.data.message, raw)];
      }
      default:
        // turn.started and event kinds added later.
        return [];
    }
  }

  return boundedParser(guarded(parse, FORMAT));
}
