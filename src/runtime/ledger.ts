/**
 * The attempt ledger file: the human-readable audit copy of the attempts in
 * the database (the source of truth). `syncLedger` makes the file agree with
 * the database: it appends missing lines, and rewrites a file that a crash
 * left torn or out of step.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Attempt, Task } from '../store/schema.ts';
import { appendToRegularFile, readWorktreeFile, replaceFile } from '../io/worktree-files.ts';

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

/** A development candidate of an attempt, as its ledger line shows it. */
export interface LedgerCandidate {
  n: number;
  run_id: number | null;
  result: string;
  gate: string | null;
  diff_hash: string | null;
  ref: string;
  chosen: boolean;
}

export const attemptLine = (a: Attempt, candidates?: readonly LedgerCandidate[]) =>
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
    ...(candidates?.length ? { candidates } : {}),
  });

/** Largest ledger file read back, bytes: thousands of attempts; a larger file is rewritten. */
const MAX_LEDGER_BYTES = 16 * 1024 * 1024;
/** Largest ADR hashed into the ledger header, bytes. */
export const MAX_HANDOFF_BYTES = 1024 * 1024;

/** Ledger syncs in flight, by path: one at a time per file in this process. */
const syncing = new Map<string, Promise<unknown>>();

/**
 * Brings the ledger file in line with the database's attempts. Returns its path. The file is read
 * as untrusted (worktree-files.ts): one that is not a regular file, too large, or unreadable
 * counts as disagreeing and is replaced atomically, never opened for writing. Syncs of one file
 * take turns: reading and appending are asynchronous, and two jobs of a task finishing together
 * (a review's record and the next development's catch-up) would otherwise both append a line.
 */
export function syncLedger(
  dir: string,
  header: LedgerHeader,
  attempts: readonly Attempt[],
  /** The development candidates of each attempt that ran several, by attempt number. */
  candidates: ReadonlyMap<number, readonly LedgerCandidate[]> = new Map(),
): Promise<string> {
  const path = join(dir, LEDGER_FILE);
  const previous = syncing.get(path) ?? Promise.resolve();
  const next = previous
    .catch(() => undefined)
    .then(() => syncLedgerNow(dir, path, header, attempts, candidates));
  syncing.set(path, next);
  return next.finally(() => {
    if (syncing.get(path) === next) syncing.delete(path);
  });
}

async function syncLedgerNow(
  dir: string,
  path: string,
  header: LedgerHeader,
  attempts: readonly Attempt[],
  candidates: ReadonlyMap<number, readonly LedgerCandidate[]>,
): Promise<string> {
  const wanted = [JSON.stringify(header), ...attempts.map((a) => attemptLine(a, candidates.get(a.n)))];
  const read = await readWorktreeFile(dir, LEDGER_FILE, { maxBytes: MAX_LEDGER_BYTES });
  const current = read.ok ? read.text : '';
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
    read.ok &&
    consistent &&
    lines.length <= wanted.length &&
    lines.every((l, i) => (i === 0 ? sameRun(l) : l === wanted[i]));
  if (prefixMatches && lines.length > 0) {
    if (lines.length === wanted.length) return path;
    try {
      await appendToRegularFile(path, wanted.slice(lines.length).join('\n') + '\n');
      return path;
    } catch {
      // Swapped for something else since it was read: rewritten below.
    }
  }
  // Missing, torn by a crash mid-write, disagreeing, or not a file: rewrite atomically from the database.
  await replaceFile(path, wanted.join('\n') + '\n');
  return path;
}

/**
 * What the ledger header's `handoff_hash` is taken over: the task's ADR
 * (`docs/tasks/<KEY>/adr.md` in its worktree) when it is a readable regular file, else the
 * title and description. An ADR that cannot be used (a FIFO, a symlink out of the worktree, too
 * large) is named in the text, so the hash says it was not the ADR.
 */
export async function handoffText(
  worktree: string,
  task: Pick<Task, 'key' | 'title' | 'description'>,
): Promise<string> {
  const fallback = `${task.title}\n${task.description}`;
  const adr = await readWorktreeFile(worktree, join('docs', 'tasks', task.key, 'adr.md'), {
    maxBytes: MAX_HANDOFF_BYTES,
  });
  if (adr.ok) return adr.text;
  return adr.reason === 'missing' ? fallback : `${fallback}\n[orch: ${adr.message}]`;
}

/** The ledger's lines, parsed (for tools and tests; orch itself only writes the file). */
export function readLedger(path: string): unknown[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as unknown);
}
