/**
 * The attempt ledger file: the human-readable audit copy of the attempts in
 * the database (the source of truth). `syncLedger` makes the file agree with
 * the database: it appends missing lines, and rewrites a file that a crash
 * left torn or out of step.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Attempt, Task } from '../store/schema.ts';

export const LEDGER_SCHEMA_VERSION = 'v1.0';
export const LEDGER_FILE = 'attempt_ledger.jsonl';

export interface LedgerHeader {
  type: 'header';
  schema_version: string;
  policy_hash: string;
  handoff_hash: string;
  run_id: string;
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export function ledgerHeader(task: Task, policy: unknown, handoff: string): LedgerHeader {
  return {
    type: 'header',
    schema_version: LEDGER_SCHEMA_VERSION,
    policy_hash: sha256(JSON.stringify(policy)),
    handoff_hash: sha256(handoff),
    run_id: task.loop_run_id ?? `${task.key}`,
  };
}

export const attemptLine = (a: Attempt) =>
  JSON.stringify({
    type: 'attempt',
    n: a.n,
    diff_hash: a.diff_hash,
    verdict: a.verdict,
    input_tokens: a.input_tokens,
    output_tokens: a.output_tokens,
    cost_usd: a.cost_usd,
    duration_ms: a.duration_ms,
    reason: a.reason,
    feedback: a.feedback,
    recorded_at: a.created_at,
  });

/** Brings the ledger file in line with the database's attempts. Returns its path. */
export function syncLedger(dir: string, header: LedgerHeader, attempts: readonly Attempt[]): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LEDGER_FILE);
  const wanted = [JSON.stringify(header), ...attempts.map(attemptLine)];
  const current = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const lines = current.split('\n').filter((l) => l.length > 0);
  const consistent = current.endsWith('\n') || current === '';
  // The header is kept as first written (its hashes describe the run as it began), unless it
  // names another loop run: a task escalated before its first development run got a ledger
  // before it had a loop run id.
  const sameRun = (line: string | undefined): boolean => {
    try {
      return (JSON.parse(line ?? '') as { run_id?: unknown }).run_id === header.run_id;
    } catch {
      return false;
    }
  };
  const prefixMatches =
    consistent &&
    lines.length <= wanted.length &&
    lines.every((l, i) => (i === 0 ? sameRun(l) : l === wanted[i]));
  if (prefixMatches && lines.length > 0) {
    if (lines.length < wanted.length) appendFileSync(path, wanted.slice(lines.length).join('\n') + '\n');
    return path;
  }
  // Missing, torn by a crash mid-write, or disagreeing: rewrite atomically from the database.
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, wanted.join('\n') + '\n');
  renameSync(tmp, path);
  return path;
}

export function readLedger(path: string): unknown[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);
}
