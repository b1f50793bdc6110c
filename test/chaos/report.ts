/**
 * docs/reliability.md, written by the full chaos run (`npm run test:chaos`):
 * which faults were injected, how often, into how many tasks, how those
 * tasks ended, and which invariants held afterwards.
 */
import { writeFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { format, resolveConfig } from 'prettier';
import { ROOT } from '../helpers/kit.ts';

export interface FaultOutcome {
  fault: string;
  world: 'sqlite' | 'postgres';
  injects: string;
  /** Strikes planned and made. */
  planned: number;
  injected: number;
  tasks: number;
  done: number;
  /** Escalated tasks by terminal reason. */
  escalated: Record<string, number>;
  /** Orchestrators started after the first (after kills or crashes). */
  restarts: number;
  seconds: number;
  held: string[];
  violations: string[];
  notes: string[];
  /** Why the fault was not injected on this machine. */
  skipped?: string;
}

export interface RunFacts {
  seed: number;
  mode: 'full' | 'bounded';
  startedAt: Date;
  seconds: number;
  invariants: string[];
}

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function outcomeCell(o: FaultOutcome): string {
  if (o.skipped) return `skipped: ${o.skipped}`;
  const reasons = Object.entries(o.escalated)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([reason, n]) => `${n} ${reason}`);
  return `${o.done} done${reasons.length ? `, escalated: ${reasons.join(', ')}` : ''}`;
}

function invariantsCell(o: FaultOutcome, total: number): string {
  if (o.skipped) return '—';
  if (!o.violations.length) return `all ${total} held`;
  return `**${o.violations.length} violations**: ${o.violations.map((v) => v.split('\n')[0]).join('; ')}`;
}

export function renderReport(run: RunFacts, outcomes: readonly FaultOutcome[]): string {
  const machine = `${platform()} ${release()}, ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`;
  const rows = outcomes.map(
    (o) =>
      `| ${cell(o.fault)} | ${cell(o.injects)} | ${o.skipped ? 0 : o.injected} of ${o.planned} | ${o.tasks} | ${cell(outcomeCell(o))} | ${o.restarts} | ${cell(invariantsCell(o, run.invariants.length))} | ${cell(o.notes.join('; ') || '—')} | ${o.seconds.toFixed(0)} s |`,
  );
  const totalTasks = outcomes.reduce((s, o) => s + o.tasks, 0);
  const violations = outcomes.reduce((s, o) => s + o.violations.length, 0);
  return `# Reliability

Written by \`npm run test:chaos\` (the full run of [test/chaos/](../test/chaos/)); do not edit by hand.
\`npm test\` runs a bounded version of the same suite and never rewrites this file.

- **Run:** ${run.startedAt.toISOString()}, ${run.mode}, ${run.seconds.toFixed(0)} s
- **Seed:** ${run.seed} (replay the same strike points with \`ORCH_CHAOS_SEED=${run.seed} npm run test:chaos\`; timing still differs)
- **Machine:** ${machine}
- **Result:** ${totalTasks} tasks over ${outcomes.length} faults, ${violations === 0 ? 'every invariant held after every fault' : `**${violations} invariant violations**`}

Each fault gets a wave of tasks worked by the scripted agent, a fixed mix that ends \`done\`
(clean) or escalated (\`oscillation_detected\`, \`no_progress\`, \`agent_failure\`). The fault strikes
at seeded random moments while the orchestrators work the wave; then the queue is worked to the
end (restarting what was killed) and the invariants below are checked over the wave's tasks, and
once more over every task at the end.

Each world has an outside for the outbox to deliver to: a fake GitHub on loopback is the project's
tracker — three tasks in four are filed there as issues and imported, and orch writes their
stages (labels, the issue closed when done), a usage comment per agent run and the terminal
packet back to them — and a webhook receiver is routed every event.

| Fault | Injected | Times | Tasks | Outcome | Restarts | Invariants | Notes | Time |
| ----- | -------- | ----- | ----- | ------- | -------- | ---------- | ----- | ---- |
${rows.join('\n')}

## Invariants

${run.invariants.map((name) => `- ${name}`).join('\n')}

## The outbox: at least once

Delivery is at least once. An orchestrator SIGKILLed after a service accepted a delivery but
before the row was marked sent makes it again when the work resumes: the webhook receiver gets
the event twice (it can drop the repeat by \`X-Orch-Delivery\`), the tracker gets the comment
twice (GitHub's comments API takes no idempotency key; label and state writes are idempotent).
Each channel makes one delivery at a time in a process, so a kill repeats at most one delivery
per channel. The outbox invariants accept exactly that and nothing more: a repeat only as the
same delivery again (an event id received before, a comment right after its twin), and no more
repeats per channel than the wave had kills. A lost event, a delivery left \`pending\` or
\`dead\`, a comment missing or out of order, or a repeat without a kill is a violation. The
notes count the repeats seen.

## Bugs these faults found (fixed)

- **Deliveries leased by a killed orchestrator stalled for their 2-minute lease**, and with them
  every later message of those tasks on that channel (one task's deliveries go in order), and
  \`orch run --until-idle\`, which waits for deliveries that are due: each SIGKILL during an outbox
  round cost two minutes. Any orch process on the same host now takes those leases back within
  5 s, as the scheduler already did for jobs and runs (\`src/notify/outbox.ts\`); one on another
  host still waits out the lease.
- **A database locked longer than SQLite's busy timeout** (10 s) made the next statement fail
  with \`database is locked\`, wherever it happened to be: a reaper pass or the outbox failed, a
  run's usage (tokens, cost) or its process group was not recorded, a finished stage threw and its
  job had to be redone; a claim failing that way ended \`orch run\`. Statements now wait out a
  locked database in 1 s slices with the event loop free in between (heartbeats, agents' output),
  for up to 5 minutes (\`src/store/node-sqlite-driver.ts\`). The fault fails on any statement
  refused meanwhile.
- **A full disk under the logs** made the prompt file's write throw out of the launch after the run
  was recorded: the run stayed \`running\` with no process until the reaper called it
  "interrupted: its job was reclaimed". It now ends \`spawn_error\` with the reason (\`ENOSPC\`),
  and is retried with backoff like any run that cannot start, then escalated (\`agent_failure\`)
  if the disk stays full (\`src/runtime/launcher.ts\`).
- **A git killed while holding a lock** (\`index.lock\`, \`refs/heads/…lock\`) made every later git
  command needing it fail, forever: tasks could never commit or land again. Before each git
  command, stale locks of its worktree (index, HEAD, its branch) are removed; a command that still
  runs into a lock waits up to 10 s for its holder, or removes it when stale, and runs again. A
  lock is stale when no live git working in that repository started before it was written (from
  \`/proc\`), and, in the user's own checkout, when it is also older than the orch process
  (\`src/runtime/git-locks.ts\`).

## Hard stops and hostile agents

What holds whatever the agents do, checked by \`test/security/hostile-agents.test.ts\` and
\`test/security/hard-stops.test.ts\` through the real CLI, with and without the sandbox:

- **Every process orch starts is owned.** Agents, command stages and gates' commands run through
  one runner, each in its own process group, with an abort signal and the kill ladder (SIGTERM to
  the group, SIGKILL after \`agent_kill_grace_seconds\`). SIGINT or SIGTERM to \`orch run\`, \`orch
  worker\` or \`orch serve\` ends them all that way, records them \`interrupted\`, and requeues their
  jobs without counting the try. A second signal, or a stop still running after the longest kill
  grace plus 10 s, SIGKILLs every process group the orch started at once (listed in its log)
  and exits; nothing it started is left running.
- **After a crash, nothing runs twice.** Gates' and command stages' process groups are recorded
  in the store while they run (\`processes\`), with their leader's identity; at start, the groups
  a dead orch on the same host left running are ended and recorded \`interrupted\`
  (\`src/runtime/process-recovery.ts\`), as agent runs are. A group whose leader's pid now belongs
  to another process is never signalled.
- **Nothing an agent writes can stop orch.** Files orch reads from a worktree or its artifacts are
  read only when they are regular files inside their root and under a size cap, opened
  non-blocking and read asynchronously (\`src/io/worktree-files.ts\`): a FIFO, a device, a
  symlink to \`/dev/zero\` or out of the worktree, or a 10 GB sparse file fails the stage's gate
  with a message naming it. An event-loop watchdog logs any stall of a second or more and exports
  the loop's delay in \`/metrics\`.
- **Nothing an agent prints reaches the terminal raw.** Escape sequences and control characters
  are neutralised in every CLI command's output; the run's log keeps the bytes.
- **What git cannot commit is the developer's to fix.** A nested repository, a file over 100 MiB
  or any other refusal of \`git add\`/\`git commit\` is a \`GitRefusal\` carrying git's message
  (\`src/runtime/git-refusal.ts\`).

## Adding faults and invariants

Faults are the \`FAULTS\` list in [test/chaos/faults.ts](../test/chaos/faults.ts) (a name, a size, an
injector); invariants are the \`INVARIANTS\` list in
[test/chaos/invariants.ts](../test/chaos/invariants.ts). A new entry in either is run, checked and
reported like the others.

## How to run

\`\`\`sh
npm run test:chaos                      # the full run; rewrites this file
ORCH_CHAOS_SEED=${run.seed} npm run test:chaos  # the same strike points again
npx vitest run test/chaos               # the bounded run, as CI does; never writes this file
\`\`\`

It needs root (the log-filesystem fault mounts a tmpfs; without it that fault is skipped, with the
reason in the table) and PostgreSQL on 127.0.0.1:5432 (\`ORCH_TEST_PG_URL\`).
`;
}

/** Writes docs/reliability.md, formatted as `npm run lint` wants it. */
export async function writeReport(run: RunFacts, outcomes: readonly FaultOutcome[]): Promise<string> {
  const path = join(ROOT, 'docs', 'reliability.md');
  const options = { ...(await resolveConfig(path)), filepath: path };
  writeFileSync(path, await format(renderReport(run, outcomes), options));
  return path;
}
