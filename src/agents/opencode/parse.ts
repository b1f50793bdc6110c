/**
 * Parser of `opencode run --format json`: step_start, text, reasoning,
 * tool_use (one line per finished tool call, with its input and output),
 * step_finish (per model step: reason, tokens, cost) and error.
 *
 * OpenCode has no final result line: the step that finishes for a reason
 * other than tool calls ends the run, and is the result here (ok when the
 * reason is `stop`), its text the last text part. Tokens and cost are summed
 * over steps; reasoning tokens are counted as output (they are billed so). A
 * cost of 0 with tokens used means OpenCode knew no price: it is recorded as
 * unknown, so orch's price table can fill it. Lines of other sessions
 * (subagents) are ignored.
 */
import { z } from 'zod';
import { emptyUsage, type AgentEvent, type LineParser, type Usage } from '../events.ts';
import { errorEvent, guarded, readJsonLine, schemaError } from '../json-line.ts';
import { usageLimitFromMessage } from '../usage-limit.ts';
import { boundedParser } from '../stream-json.ts';

const count = z.number().nonnegative();
const FORMAT = 'opencode run --format json';

const envelope = z.looseObject({ sessionID: z.string().nullish() });
const textLine = z.looseObject({ part: z.looseObject({ text: z.string() }) });
const toolLine = z.looseObject({
  part: z.looseObject({
    tool: z.string(),
    state: z.looseObject({
      status: z.string(),
      input: z.unknown().optional(),
      output: z.string().nullish(),
      error: z.string().nullish(),
    }),
  }),
});
const stepFinish = z.looseObject({
  part: z.looseObject({
    reason: z.string().nullish(),
    cost: count.nullish(),
    tokens: z
      .looseObject({
        input: count.nullish(),
        output: count.nullish(),
        reasoning: count.nullish(),
        cache: z.looseObject({ read: count.nullish(), write: count.nullish() }).nullish(),
      })
      .nullish(),
  }),
});
const errorLine = z.looseObject({
  error: z
    .looseObject({
      name: z.string().nullish(),
      message: z.string().nullish(),
      data: z.looseObject({ message: z.string().nullish() }).nullish(),
    })
    .nullish(),
});

const CONTINUES = new Set(['tool-calls', 'tool_calls']);

/** Whether a line is a `step_finish` that ends the run (not one that continues with tool calls); stateless. */
export function isOpenCodeResultLine(line: string): boolean {
  if (!line.includes('"step_finish"')) return false;
  const read = readJsonLine(line);
  if (read.kind !== 'object' || read.type !== 'step_finish') return false;
  const parsed = stepFinish.safeParse(read.value);
  return parsed.success && !CONTINUES.has(parsed.data.part.reason ?? '');
}

/** A parser for one OpenCode run. */
export function createOpenCodeParser(): LineParser {
  let sessionId: string | null = null;
  let lastText = '';
  let steps = 0;
  let costUsd = 0;
  const totals: Usage = emptyUsage();

  const fail = (what: string, error: z.ZodError, raw: string): AgentEvent[] => [
    errorEvent(schemaError(FORMAT, what, error), raw),
  ];

  function parse(line: string): AgentEvent[] {
    const read = readJsonLine(line);
    if (read.kind === 'events') return read.events;
    const { value, raw } = read;
    const session = envelope.safeParse(value);
    const lineSession = session.success ? (session.data.sessionID ?? null) : null;
    const events: AgentEvent[] = [];
    if (sessionId === null && lineSession !== null) {
      sessionId = lineSession;
      events.push({ type: 'started', sessionId, model: null });
    } else if (lineSession !== null && lineSession !== sessionId) {
      return [];
    }
    switch (read.type) {
      case 'text': {
        const parsed = textLine.safeParse(value);
        if (!parsed.success) return [...events, ...fail('text line', parsed.error, raw)];
        if (parsed.data.part.text) lastText = parsed.data.part.text;
        return [...events, { type: 'message', text: parsed.data.part.text }];
      }
      case 'tool_use': {
        const parsed = toolLine.safeParse(value);
        if (!parsed.success) return [...events, ...fail('tool_use line', parsed.error, raw)];
        const { tool, state } = parsed.data.part;
        events.push({ type: 'tool_use', name: tool, input: state.input ?? null });
        if (state.status === 'completed' || state.status === 'error')
          events.push({
            type: 'tool_result',
            isError: state.status === 'error',
            text: state.error ?? state.output ?? '',
          });
        return events;
      }
      case 'step_finish': {
        const parsed = stepFinish.safeParse(value);
        if (!parsed.success) return [...events, ...fail('step_finish line', parsed.error, raw)];
        const { reason, cost, tokens } = parsed.data.part;
        steps += 1;
        totals.inputTokens += tokens?.input ?? 0;
        totals.outputTokens += (tokens?.output ?? 0) + (tokens?.reasoning ?? 0);
        totals.cacheReadTokens += tokens?.cache?.read ?? 0;
        totals.cacheWriteTokens += tokens?.cache?.write ?? 0;
        costUsd += cost ?? 0;
        const used =
          totals.inputTokens + totals.outputTokens + totals.cacheReadTokens + totals.cacheWriteTokens;
        const usage: Usage = {
          ...totals,
          costUsd: costUsd > 0 || used === 0 ? Math.round(costUsd * 1e10) / 1e10 : null,
          sessionId,
          numTurns: steps,
        };
        events.push({ type: 'usage', usage });
        if (!CONTINUES.has(reason ?? ''))
          events.push({
            type: 'result',
            ok: reason === 'stop',
            text: lastText,
            subtype: reason ?? null,
            usage,
          });
        return events;
      }
      case 'error': {
        const parsed = errorLine.safeParse(value);
        if (!parsed.success) return [...events, ...fail('error line', parsed.error, raw)];
        const e = parsed.data.error;
        const message = e?.data?.message ?? e?.message ?? e?.name ?? 'error';
        const text = e?.name ? `${e.name}: ${message}` : message;
        const limit = usageLimitFromMessage(text);
        return [
          ...events,
          ...(limit ? [{ type: 'usage_limit' as const, ...limit }] : []),
          errorEvent(text, raw),
        ];
      }
      default:
        // step_start, reasoning and kinds added later.
        return events;
    }
  }

  return boundedParser(guarded(parse, FORMAT));
}
