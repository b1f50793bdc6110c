/** A command agent speaks the contract: Claude Code's stream-json (docs/agents.md). */
import type { LineParser } from '../events.ts';
import { boundedParser, createStreamJsonParser } from '../stream-json.ts';

export { parseStreamJsonLine } from '../stream-json.ts';

/** A parser for one command (or scripted) agent run, with the event limits applied. */
export const createCommandParser = (): LineParser => boundedParser(createStreamJsonParser());
import { parseStreamJsonLine } from '../stream-json.ts';

/** Whether a line is the final `result` line; stateless. */
export const isStreamJsonResultLine = (line: string): boolean =>
  line.includes('"result"') && parseStreamJsonLine(line).some((e) => e.type === 'result');
