/**
 * What the CLI prints. Text that came from an agent, a tracker or a webhook
 * (a task's status detail, a gate's output, a log line, an error git quoted) is
 * neutralised on its way to the terminal (core/text.ts `terminalSafe`), and
 * JSON never carries a raw character a terminal acts on. orch's own colours
 * only go to a terminal, and never with `NO_COLOR`.
 */
import { colourEnabled, terminalSafe, terminalSafeJson } from '../core/text.ts';

/** Writes text to stdout with control characters neutralised; a newline is added when missing. */
export function out(text: string): void {
  const safe = terminalSafe(text);
  process.stdout.write(safe.endsWith('\n') ? safe : `${safe}\n`);
}

/** One line to stdout, neutralised. */
export const printLine = (line: string): void => void process.stdout.write(`${terminalSafe(line)}\n`);

/** One JSON line to stdout (`--json` progress). */
export const printJsonLine = (value: unknown): void =>
  void process.stdout.write(`${terminalSafeJson(value)}\n`);

/** Whether orch's own colours go to stdout. */
export const stdoutColours = (): boolean => colourEnabled(process.stdout.isTTY, process.env);
