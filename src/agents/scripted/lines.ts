/**
 * The scripted agent's stdout: Claude Code stream-json lines (the command
 * agent contract), and its deterministic usage figures. Pure.
 */
import { createHash } from 'node:crypto';

/** Token figures and cost the scripted agent reports in its result line. */
export interface ScriptedUsage {
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  model: string;
}

/** What usage is computed from; `override` comes from a `usage` step. */
export interface UsageInput {
  promptChars: number;
  steps: number;
  charsWritten: number;
  model: string;
  override: { input_tokens?: number; output_tokens?: number; cost_usd?: number; model?: string } | null;
}

/** USD per token, the same shape of price as a large model's. */
const INPUT_USD_PER_TOKEN = 15 / 1e6;
const OUTPUT_USD_PER_TOKEN = 75 / 1e6;

const round6 = (n: number): number => Math.round(n * 1e6) / 1e6;

/**
 * input = ceil(prompt chars / 4) + 100; output = 50 + 20 × steps + ceil(chars
 * written / 4); cost = input × $15/M + output × $75/M, to 6 decimals. A `usage`
 * step overrides any of them; the cost is recomputed from overridden tokens
 * unless it is overridden too.
 */
export function computeUsage(u: UsageInput): ScriptedUsage {
  const inputTokens = u.override?.input_tokens ?? Math.ceil(u.promptChars / 4) + 100;
  const outputTokens = u.override?.output_tokens ?? 50 + 20 * u.steps + Math.ceil(u.charsWritten / 4);
  const costUsd = round6(
    u.override?.cost_usd ?? inputTokens * INPUT_USD_PER_TOKEN + outputTokens * OUTPUT_USD_PER_TOKEN,
  );
  return { inputTokens, outputTokens, costUsd, model: u.override?.model ?? u.model };
}

/** A UUID-shaped session id that depends only on task key, role and attempt. */
export function sessionIdFor(key: string, role: string, attempt: number): string {
  const hex = createHash('sha256').update(`${key}\u0000${role}\u0000${attempt}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** Builds the lines of one run; every line carries the run's session id. */
export function lineWriter(sessionId: string, model: string) {
  let messageCount = 0;
  const assistant = (content: unknown[], usage?: { input_tokens: number; output_tokens: number }): string => {
    messageCount += 1;
    return JSON.stringify({
      type: 'assistant',
      message: {
        id: `msg_scripted_${messageCount}`,
        type: 'message',
        role: 'assistant',
        model,
        content,
        stop_reason: null,
        ...(usage ? { usage } : {}),
      },
      parent_tool_use_id: null,
      session_id: sessionId,
    });
  };
  let toolCount = 0;
  return {
    init: (cwd: string, extra: Record<string, unknown>): string =>
      JSON.stringify({
        type: 'system',
        subtype: 'init',
        session_id: sessionId,
        model,
        cwd,
        tools: ['Write', 'Append', 'Edit', 'Bash'],
        ...extra,
      }),
    text: (text: string): string => assistant([{ type: 'text', text }]),
    /** A message that reports the tokens used so far, as a CLI streams them during a run. */
    usage: (inputTokens: number, outputTokens: number): string =>
      assistant([{ type: 'text', text: `(${inputTokens + outputTokens} tokens so far)` }], {
        input_tokens: inputTokens,
        output_tokens: outputTokens,
      }),
    /** A tool_use line and the id its tool_result must carry. */
    toolUse: (name: string, input: unknown): { line: string; id: string } => {
      toolCount += 1;
      const id = `toolu_scripted_${toolCount}`;
      return { line: assistant([{ type: 'tool_use', id, name, input }]), id };
    },
    toolResult: (id: string, text: string, isError: boolean): string =>
      JSON.stringify({
        type: 'user',
        message: {
          role: 'user',
          content: [{ type: 'tool_result', tool_use_id: id, content: text, is_error: isError }],
        },
        parent_tool_use_id: null,
        session_id: sessionId,
      }),
    result: (r: {
      ok: boolean;
      text: string;
      usage: ScriptedUsage;
      numTurns: number;
      durationMs: number;
    }): string =>
      JSON.stringify({
        type: 'result',
        subtype: r.ok ? 'success' : 'error_during_execution',
        is_error: !r.ok,
        duration_ms: r.durationMs,
        num_turns: r.numTurns,
        result: r.text,
        session_id: sessionId,
        total_cost_usd: r.usage.costUsd,
        usage: {
          input_tokens: r.usage.inputTokens,
          output_tokens: r.usage.outputTokens,
          cache_read_input_tokens: 0,
          cache_creation_input_tokens: 0,
        },
        modelUsage: {
          [r.usage.model]: {
            inputTokens: r.usage.inputTokens,
            outputTokens: r.usage.outputTokens,
            cacheReadInputTokens: 0,
            cacheCreationInputTokens: 0,
            costUSD: r.usage.costUsd,
          },
        },
      }),
  };
}

export type LineWriter = ReturnType<typeof lineWriter>;
