/**
 * Parser of Gemini CLI's `--output-format stream-json`: init, message (user
 * and assistant, assistant text in deltas), tool_use, tool_result, error
 * (warnings) and one final result with the run's stats.
 *
 * The result carries no text: the answer is the assistant text after the last
 * tool call. Stats are per model (routing and checks may use a second model);
 * `input` there excludes cached tokens, and thinking tokens appear only in
 * `total_tokens`, so they are added to output (they are billed as output).
 * Gemini CLI reports no cost. It reports model API retries only on stderr
 * (`Attempt 2 failed with status 429. Retrying with backoff...`).
 */
import { z } from 'zod';
import { emptyUsage, type AgentEvent, type LineParser, type TokenCounts, type Usage } from '../events.ts';
import { errorEvent, guarded, readJsonLine, schemaError } from '../json-line.ts';
import { usageLimitFromMessage } from '../usage-limit.ts';
import { boundedParser } from '../stream-json.ts';

const count = z.number().int().nonnegative();
const FORMAT = 'gemini stream-json';

const initLine = z.looseObject({ session_id: z.string().nullish(), model: z.string().nullish() });
const messageLine = z.looseObject({ role: z.string(), content: z.string(), delta: z.boolean().nullish() });
const toolUseLine = z.looseObject({
  tool_name: z.string(),
  tool_id: z.string().nullish(),
  parameters: z.unknown(),
});
const toolResultLine = z.looseObject({
  tool_id: z.string().nullish(),
  status: z.string(),
  output: z.string().nullish(),
  error: z.looseObject({ message: z.string() }).nullish(),
});
const errorLine = z.looseObject({ severity: z.string().nullish(), message: z.string() });
const modelStats = z.looseObject({
  total_tokens: count.nullish(),
  input_tokens: count.nullish(),
  output_tokens: count.nullish(),
  cached: count.nullish(),
  input: count.nullish(),
});
const resultLine = z.looseObject({
  status: z.string(),
  error: z.looseObject({ type: z.string().nullish(), message: z.string() }).nullish(),
  stats: modelStats.extend({ models: z.record(z.string(), modelStats).nullish() }).nullish(),
});

type ModelStats = z.infer<typeof modelStats>;

function tokensOf(s: ModelStats): TokenCounts {
  const prompt = s.input_tokens ?? 0;
  const cached = Math.min(s.cached ?? 0, prompt);
  const output = s.output_tokens ?? 0;
  const thoughts = Math.max(0, (s.total_tokens ?? 0) - prompt - output);
  return {
    inputTokens: s.input ?? prompt - cached,
    outputTokens: output + thoughts,
    cacheReadTokens: cached,
    cacheWriteTokens: 0,
  };
}

function statsUsage(stats: z.infer<typeof resultLine>['stats'], sessionId: string | null): Usage | null {
  if (!stats) return null;
  const usage: Usage = { ...emptyUsage(), sessionId };
  const models = Object.entries(stats.models ?? {});
  if (!models.length) return { ...usage, ...tokensOf(stats) };
  usage.byModel = {};
  let best = -1;
  for (const [model, figures] of models) {
    const tokens = tokensOf(figures);
    usage.byModel[model] = tokens;
    usage.inputTokens += tokens.inputTokens;
    usage.outputTokens += tokens.outputTokens;
    usage.cacheReadTokens += tokens.cacheReadTokens;
    if (tokens.outputTokens > best) {
      best = tokens.outputTokens;
      usage.model = model;
    }
  }
  return usage;
}

const RETRY =
  /Attempt (\d+) failed(?: with status (\d+)| with (429|5xx) error[^.]*|: (.*?))?\. Retrying (?:after (\d+)ms|with backoff)/;

/**
 * Characters of a stderr line searched for a retry. The search restarts at
 * every `Attempt n failed: ` without a `. Retrying` after it, so on a 1 MB line
 * of them it is quadratic (minutes); real retry lines are short.
 */
export const MAX_STDERR_SCAN_CHARS = 8_000;

/** A retry the CLI reported on stderr, or nothing. */
export function geminiStderrEvents(line: string): AgentEvent[] {
  const match = RETRY.exec(line.slice(0, MAX_STDERR_SCAN_CHARS));
  if (!match) return [];
  const [, attempt, status, kind, message, delay] = match;
  const error = status ? `HTTP ${status}` : kind ? `HTTP ${kind}` : (message ?? null);
  return [{ type: 'retry', attempt: Number(attempt), delayMs: delay ? Number(delay) : null, error }];
}

/** Whether a line is the final `result`; stateless. */
export function isGeminiResultLine(line: string): boolean {
  if (!line.includes('"result"')) return false;
  const read = readJsonLine(line);
  return read.kind === 'object' && read.type === 'result';
}

/** A parser for one Gemini CLI run. */
export function createGeminiParser(): LineParser {
  let sessionId: string | null = null;
  let segment = '';
  let lastText = '';

  const fail = (what: string, error: z.ZodError, raw: string): AgentEvent[] => [
    errorEvent(schemaError(FORMAT, what, error), raw),
  ];

  function parse(line: string): AgentEvent[] {
    const read = readJsonLine(line);
    if (read.kind === 'events') return read.events;
    const { value, raw } = read;
    switch (read.type) {
      case 'init': {
        const parsed = initLine.safeParse(value);
        if (!parsed.success) return fail('init line', parsed.error, raw);
        sessionId = parsed.data.session_id ?? null;
        return [{ type: 'started', sessionId, model: parsed.data.model ?? null }];
      }
      case 'message': {
        const parsed = messageLine.safeParse(value);
        if (!parsed.success) return fail('message line', parsed.error, raw);
        // The user's message is the prompt echoed back.
        if (parsed.data.role !== 'assistant' || !parsed.data.content) return [];
        segment = parsed.data.delta === false ? parsed.data.content : segment + parsed.data.content;
        lastText = segment;
        return [{ type: 'message', text: parsed.data.content }];
      }
      case 'tool_use': {
        const parsed = toolUseLine.safeParse(value);
        if (!parsed.success) return fail('tool_use line', parsed.error, raw);
        segment = '';
        return [{ type: 'tool_use', name: parsed.data.tool_name, input: parsed.data.parameters ?? null }];
      }
      case 'tool_result': {
        const parsed = toolResultLine.safeParse(value);
        if (!parsed.success) return fail('tool_result line', parsed.error, raw);
        return [
          {
            type: 'tool_result',
            isError: parsed.data.status !== 'success',
            text: parsed.data.error?.message ?? parsed.data.output ?? '',
          },
        ];
      }
      case 'error': {
        const parsed = errorLine.safeParse(value);
        if (!parsed.success) return fail('error line', parsed.error, raw);
        return [errorEvent(parsed.data.message, raw)];
      }
      case 'result': {
        const parsed = resultLine.safeParse(value);
        if (!parsed.success) return fail('result line', parsed.error, raw);
        const ok = parsed.data.status === 'success';
        const limit = ok ? null : usageLimitFromMessage(parsed.data.error?.message ?? '');
        return [
          ...(limit ? [{ type: 'usage_limit' as const, ...limit }] : []),
          {
            type: 'result',
            ok,
            text: ok ? lastText : (parsed.data.error?.message ?? 'error'),
            subtype: ok ? 'success' : (parsed.data.error?.type ?? 'error'),
            usage: statsUsage(parsed.data.stats, sessionId),
          },
        ];
      }
      default:
        return [];
    }
  }

  return boundedParser(guarded(parse, FORMAT));
}
