/**
 * Development candidates (`pipeline.development.candidates: N`) as the store keeps them: the
 * development job records one `candidates` event per attempt it ran them for (each candidate's
 * run, how its gates judged it, its diff hash and the ref its commit is kept under), and the
 * review, the ledger and the terminal packet read it back. What happens next is decided by the
 * state machine (`candidates_ran` in core/pipeline.ts); this only reads and renders.
 */
import type { CandidateResult } from '../core/pipeline.ts';
import type { Store } from '../store/store.ts';
import { candidateDiff } from './git.ts';

/** One candidate as recorded: its result and where its commit is kept. */
export interface RecordedCandidate extends CandidateResult {
  ref: string;
}

/** The `candidates` event of one attempt. */
export interface CandidatesRecord {
  attempt: number;
  /** The commit every candidate was made from (the task branch's tip then). */
  from: string;
  candidates: RecordedCandidate[];
}

/** The task's candidates by attempt (the last record of an attempt wins: a try run again replaces it). */
export async function candidatesOfTask(store: Store, taskId: number): Promise<Map<number, CandidatesRecord>> {
  const byAttempt = new Map<number, CandidatesRecord>();
  for (const e of await store.reports.eventsOfTask(taskId, 'candidates')) {
    const record = JSON.parse(e.payload) as CandidatesRecord;
    byAttempt.set(record.attempt, record);
  }
  return byAttempt;
}

/** Longest diff of one candidate put in front of the reviewer, in characters. */
const MAX_DIFF_CHARS = 60_000;

/**
 * The section of the reviewer's prompt that shows each passing candidate's diff, labelled, and
 * asks for the chosen one in the verdict.
 */
export async function reviewerAppendix(repo: string, record: CandidatesRecord): Promise<string> {
  const passing = record.candidates.filter((c) => c.result === 'passed');
  const parts = [
    `## Candidates: choose one`,
    '',
    `This attempt was developed ${record.candidates.length} times side by side; ${passing.length} of the candidates passed the development gates. Their diffs are below. Approve the best one by naming it in your verdict (\`"chosen": <number>\`), or reject them all with comments that say what must change.`,
    '',
    '```json',
    `{"verdict": "approved", "chosen": ${passing[0]?.n ?? 1}, "comments": "why this one"}`,
    '```',
  ];
  for (const c of passing) {
    let diff = await candidateDiff(repo, record.from, c.ref);
    if (diff.length > MAX_DIFF_CHARS)
      diff = `${diff.slice(0, MAX_DIFF_CHARS)}\n[… ${diff.length - MAX_DIFF_CHARS} more characters not shown]`;
    parts.push('', `### Candidate ${c.n}`, '', '```diff', diff.trimEnd(), '```');
  }
  return parts.join('\n') + '\n';
}
