/** A command agent speaks the contract: Claude Code's stream-json (docs/agents.md). */
export { createStreamJsonParser as createCommandParser, parseStreamJsonLine } from '../stream-json.ts';
import { parseStreamJsonLine } from '../stream-json.ts';

/** Whether a line is the final `result` line; stateless. */
export const isStreamJsonResultLine = (line: string): boolean =>
  line.includes('"result"') && parseStreamJsonLine(line).some((e) => e.type === 'result');
