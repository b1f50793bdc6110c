/**
 * The terminal packet: the Markdown report a human reads when the loop stops
 * without success. Pure rendering.
 */
import type { AttemptRecord, TaskBudget, TerminalReason } from './build-loop.ts';

export interface TerminalPacketInput {
  taskKey: string;
  title: string;
  stage: string;
  reason: TerminalReason;
  detail: string;
  attempts: readonly AttemptRecord[];
  lastFeedback: string | null;
  diffStat: string;
  ledgerPath: string;
  /** The budget the task ran with, so the retry command raises the one that ran out. */
  budget?: TaskBudget;
  /** The task's runs, oldest first: the packet names the ones that failed or were cut off. */
  runs?: readonly PacketRun[];
  /** Gates that failed, oldest first: late failures after an approval are only here. */
  failedGates?: readonly PacketGate[];
  /** Development candidates (`pipeline.development.candidates` > 1), by attempt. */
  candidates?: readonly PacketCandidate[];
}

export interface PacketCandidate {
  attempt: number;
  n: number;
  runId: number | null;
  /** passed, gate_failed or run_failed. */
  result: string;
  gate: string | null;
  diffHash: string | null;
  chosen: boolean;
  /** Where its commit is kept. */
  ref: string;
}

export interface PacketRun {
  id: number;
  role: string;
  stage: string | null;
  outcome: string | null;
  tokens: number;
  costUsd: number | null;
  durationMs: number | null;
  error: string | null;
}

export interface PacketGate {
  stage: string;
  name: string;
  output: string;
}

/** Rows shown at most in the packet's runs and gates tables (the newest). */
const MAX_PACKET_ROWS = 20;

const DECISIONS: Record<TerminalReason, string> = {
  oscillation_detected:
    'The developer keeps alternating between the same solutions. Decide which approach is right, state it in the task description, then retry.',
  no_progress:
    'The developer produced the same change twice. Clarify what the reviewer wants, or accept the change as it is.',
  budget_exhausted: 'The budget ran out. Raise it if the work is worth more, or narrow the task.',
  max_attempts:
    'Every attempt was rejected. Read the last feedback: refine the task, or raise the attempt budget.',
  design_rejected: 'The design was rejected. Revise the requirements or the architecture before any build.',
  agent_failure: 'The agent failed repeatedly. Check its log, its credentials and its limits, then retry.',
  gate_failure: 'A quality gate kept failing. Read its output below, fix the cause, then retry.',
  internal_error:
    "orch itself failed on this task again and again (an error of its own, not the agent's). Read orch's log for the error, fix its cause, then retry.",
  runs_interrupted:
    "The stage's runs were cut off again and again without a result (reaped for running too long, their orchestrator died, or their lease was lost): an agent that crashes orch, hangs past the reaper, or a worker that keeps dying. Read the runs' logs below, fix the cause, then retry.",
  cancelled: 'The task was cancelled. Nothing to decide unless it should be resumed.',
};

const usd = (v: number | null): string => (v === null ? 'unknown' : `$${v.toFixed(4)}`);
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderTerminalPacket(p: TerminalPacketInput): string {
  const totalTokens = p.attempts.reduce((s, a) => s + a.inputTokens + a.outputTokens, 0);
  const costs = p.attempts.map((a) => a.costUsd);
  const totalUsd = costs.every((c) => c === null) ? null : costs.reduce<number>((s, c) => s + (c ?? 0), 0);
  const rows = p.attempts.map(
    (a) =>
      `| ${a.n} | \`${a.diffHash.slice(0, 12)}\` | ${a.verdict} | ${a.inputTokens + a.outputTokens} | ${usd(a.costUsd)} | ${(a.durationMs / 1000).toFixed(1)}s | ${cell(a.reason ?? '')} |`,
  );
  return [
    `# Terminal packet: ${p.taskKey}`,
    '',
    `- **Task:** ${p.taskKey} — ${p.title}`,
    `- **Stage:** ${p.stage}`,
    `- **Reason:** \`${p.reason}\``,
    `- **Detail:** ${p.detail}`,
    `- **Attempts:** ${p.attempts.length}, ${totalTokens} tokens, ${usd(totalUsd)}`,
    '',
    '## Attempts',
    '',
    '| # | diff hash | verdict | tokens | cost | duration | reason |',
    '|---|---|---|---|---|---|---|',
    ...(rows.length ? rows : ['| – | – | – | – | – | – | no attempt recorded |']),
    '',
    ...candidatesSection(p.candidates ?? []),
    ...runsSection(p.runs ?? []),
    ...gatesSection(p.failedGates ?? []),
    '## Last feedback',
    '',
    p.lastFeedback?.trim() ? p.lastFeedback.trim() : '_none_',
    '',
    '## Final diff stat',
    '',
    '```',
    p.diffStat.trimEnd() || '(no change against the base branch)',
    '```',
    '',
    '## What a human must decide',
    '',
    DECISIONS[p.reason],
    '',
    '## To continue',
    '',
    '```',
    `orch task retry ${p.taskKey}${retryOptions(p)}`,
    '```',
    '',
    `Retry resumes from the attempt ledger (\`${p.ledgerPath}\`): recorded attempts are kept, the next one is number ${p.attempts.length + 1}.`,
    '',
  ].join('\n');
}

/** The option that raises what stopped the task: the exhausted budget, else the attempts. */
function retryOptions(p: TerminalPacketInput): string {
  const b = p.budget;
  if (p.reason === 'budget_exhausted' && b) {
    if (/^cost/.test(p.detail) && b.maxUsd !== null) return ` --max-usd ${+(b.maxUsd * 2).toPrecision(3)}`;
    if (/^tokens/.test(p.detail) && b.maxTokens !== null) return ` --max-tokens ${b.maxTokens * 2}`;
    if (/^wall time/.test(p.detail) && b.maxWallS !== null) return ` --max-wall-s ${b.maxWallS * 2}`;
    if (/^project spend/.test(p.detail)) return '   # first raise budget.project_usd_per_day in orch.yaml';
  }
  if (p.reason === 'agent_failure' || p.reason === 'gate_failure' || p.reason === 'design_rejected')
    return '';
  return ` --max-attempts ${p.attempts.length + 3}`;
}

function candidatesSection(candidates: readonly PacketCandidate[]): string[] {
  if (!candidates.length) return [];
  return [
    '## Candidates',
    '',
    '| attempt | # | run | result | gate | chosen | kept as |',
    '|---|---|---|---|---|---|---|',
    ...candidates
      .slice(-MAX_PACKET_ROWS)
      .map(
        (c) =>
          `| ${c.attempt} | ${c.n} | ${c.runId ?? '–'} | ${c.result} | ${cell(c.gate ?? '')} | ${c.chosen ? 'yes' : ''} | \`${c.ref}\` |`,
      ),
    '',
  ];
}

function runsSection(runs: readonly PacketRun[]): string[] {
  if (!runs.length) return [];
  const shown = runs.slice(-MAX_PACKET_ROWS);
  return [
    '## Runs',
    '',
    ...(shown.length < runs.length ? [`The last ${shown.length} of ${runs.length} runs.`, ''] : []),
    '| run | role | stage | outcome | tokens | cost | duration | error |',
    '|---|---|---|---|---|---|---|---|',
    ...shown.map(
      (r) =>
        `| ${r.id} | ${r.role} | ${r.stage ?? '–'} | ${r.outcome ?? 'running'} | ${r.tokens} | ${usd(r.costUsd)} | ${
          r.durationMs === null ? '–' : `${(r.durationMs / 1000).toFixed(1)}s`
        } | ${cell((r.error ?? '').slice(0, 200))} |`,
    ),
    '',
  ];
}

function gatesSection(gates: readonly PacketGate[]): string[] {
  if (!gates.length) return [];
  return [
    '## Failed gates',
    '',
    '| stage | gate | output (end) |',
    '|---|---|---|',
    ...gates.slice(-MAX_PACKET_ROWS).map((g) => `| ${g.stage} | ${g.name} | ${cell(g.output.slice(-300))} |`),
    '',
  ];
}
