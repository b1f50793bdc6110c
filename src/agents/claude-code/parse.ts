/**
 * Claude Code's stream-json is the command agent contract, parsed by
 * `../stream-json.ts`. On top of it: when the API fails for good, Claude Code
 * prints the error as a synthetic assistant message (model `<synthetic>`,
 * `is_api_error_message: true`); that text is an `error` event here, not a
 * message, so the run log and the dashboard say what went wrong.
 */
import type { AgentEvent, LineParser } from '../events.ts';
import { boundedParser, createStreamJsonParser, parseStreamJsonLine } from '../stream-json.ts';

const SYNTHETIC = /"is_api_error_message"\s*:\s*true|"model"\s*:\s*"<synthetic>"/;

function isApiErrorMessage(line: string): boolean {
  if (!SYNTHETIC.test(line)) return false;
  try {
    const value = JSON.parse(line) as {
      type?: unknown;
      is_api_error_message?: unknown;
      message?: { model?: unknown };
    };
    return (
      value.type === 'assistant' &&
      (value.is_api_error_message === true || value.message?.model === '<synthetic>')
    );
  } catch {
    return false;
  }
}

/** A parser for one Claude Code run. */
export function createClaudeCodeParser(): LineParser {
  const parse = createStreamJsonParser();
  return boundedParser((line) => {
    const events = parse(line);
    if (!isApiErrorMessage(line)) return events;
    return events.map((event): AgentEvent =>
      event.type === 'message' ? { type: 'error', message: event.text, raw: line } : event,
    );
  });
}

/** Whether a line is the final `result` line; stateless. */
export const isClaudeCodeResultLine = (line: string): boolean =>
  line.includes('"result"') && parseStreamJsonLine(line).some((e) => e.type === 'result');
