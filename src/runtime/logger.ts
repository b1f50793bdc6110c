/**
 * orch's own log: one JSON object a line on stderr (or plain text on a
 * terminal), redacted (runtime/secrets.ts) before anything is written. A
 * message may quote an agent's output or a tracker's text: the text form is
 * neutralised for the terminal, the JSON form escapes every control character.
 */
import { redact } from './secrets.ts';
import { terminalSafe, terminalSafeJson } from '../core/text.ts';

export { redact, secretValues } from './secrets.ts';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export function createLogger(opts: {
  level?: Level;
  write?: (line: string) => void;
  secrets?: readonly string[];
  json?: boolean;
}): Logger {
  const min = LEVELS[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  // One array for the logger's life, so its compiled pattern is reused line after line.
  const secrets = [...(opts.secrets ?? [])];
  const json = opts.json ?? !process.stderr.isTTY;
  const emit = (level: Level, message: string, fields: Record<string, unknown> = {}) => {
    if (LEVELS[level] < min) return;
    const line = json
      ? terminalSafeJson({ time: new Date().toISOString(), level, msg: message, ...fields })
      : terminalSafe(
          `${level === 'info' ? '' : `${level}: `}${message}${Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}`,
        );
    write(redact(line, secrets));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
