/**
 * Does an attempt ledger file agree with the database? The database is the
 * source of truth; the file (runtime/ledger.ts) is its audit copy and must
 * hold a header for the task's loop run, then exactly the database's
 * attempts: same numbers, diff hashes and verdicts, in order. Shared by the
 * build-loop crash tests and the chaos suite.
 */
import { existsSync } from 'node:fs';
import { readLedger } from '../../src/runtime/ledger.ts';
import type { Attempt, Task } from '../../src/store/schema.ts';

interface LedgerLine {
  type?: string;
  schema_version?: unknown;
  run_id?: unknown;
  n?: unknown;
  diff_hash?: unknown;
  verdict?: unknown;
}

const summary = (l: { n?: unknown; diff_hash?: unknown; verdict?: unknown }): string =>
  `${String(l.n)}:${String(l.verdict)}:${String(l.diff_hash).slice(0, 10)}`;

/**
 * Why the ledger at `path` disagrees with the task's attempts in the
 * database, or null when it agrees. A task with no attempt may have no
 * ledger at all.
 */
export function ledgerDisagreement(
  path: string,
  task: Pick<Task, 'key' | 'loop_run_id'>,
  attempts: readonly Pick<Attempt, 'n' | 'diff_hash' | 'verdict'>[],
): string | null {
  if (!existsSync(path)) return attempts.length ? `${task.key}: no ledger file at ${path}` : null;
  let lines: LedgerLine[];
  try {
    lines = readLedger(path) as LedgerLine[];
  } catch (error) {
    return `${task.key}: the ledger ${path} is not JSON lines: ${(error as Error).message}`;
  }
  const [header, ...rest] = lines;
  if (header?.type !== 'header' || typeof header.schema_version !== 'string')
    return `${task.key}: the ledger ${path} does not start with a header line`;
  const runId = task.loop_run_id ?? task.key;
  if (header.run_id !== runId)
    return `${task.key}: the ledger header names run ${String(header.run_id)}, the database ${runId}`;
  const inFile = rest.map((l) => `${String(l.type)} ${summary(l)}`);
  const inDb = attempts.map((a) => `attempt ${summary(a)}`);
  if (inFile.join('\n') !== inDb.join('\n'))
    return `${task.key}: the ledger has [${inFile.join(', ')}], the database [${inDb.join(', ')}]`;
  return null;
}
