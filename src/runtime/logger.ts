/**
 * orch's own log: one JSON object a line on stderr (or plain text on a
 * terminal), with known secret values redacted before anything is written.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const LEVELS: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Values of variables whose names say they are secret. */
export function secretValues(env: Readonly<Record<string, string | undefined>>): string[] {
  return Object.entries(env)
    .filter(([k, v]) => v && v.length >= 6 && /TOKEN|SECRET|PASSWORD|API_KEY|_KEY$|DATABASE_URL/i.test(k))
    .map(([, v]) => v!);
}

export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[REDACTED]');
  return out;
}

export function createLogger(opts: {
  level?: Level;
  write?: (line: string) => void;
  secrets?: readonly string[];
  json?: boolean;
}): Logger {
  const min = LEVELS[opts.level ?? 'info'];
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const secrets = opts.secrets ?? [];
  const json = opts.json ?? !process.stderr.isTTY;
  const emit = (level: Level, message: string, fields: Record<string, unknown> = {}) => {
    if (LEVELS[level] < min) return;
    const line = json
      ? JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields })
      : `${level === 'info' ? '' : `${level}: `}${message}${Object.keys(fields).length ? ` ${JSON.stringify(fields)}` : ''}`;
    write(redact(line, secrets));
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}
