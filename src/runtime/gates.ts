/**
 * Evaluates a stage's gates in a worktree and stores each result, so
 * `task show`, the API and the terminal packet can show them.
 */
import { redact, secretValues } from './secrets.ts';
import type { OrchContext, ProjectRuntime } from './context.ts';
import type { Task } from '../store/schema.ts';
import { DEFAULT_ARTIFACTS, tail } from '../core/gates.ts';
import type { GateRef } from '../config/pipeline-config.ts';
import { agentEnv, contractEnv } from './agent-env.ts';
import { gitRaw } from './git.ts';
import { renderPath } from '../config/prompts.ts';
import { COMMAND_LIMITS, runOwnedProcess } from './owned-process.ts';
import { inspectWorktreeFile } from '../io/worktree-files.ts';

export interface GateOutcome {
  name: string;
  passed: boolean;
  output: string;
  /**
   * The gate was stopped before it could decide (its abort signal fired: shutdown, cancel, a lost
   * lease). Neither passed nor failed: it is not stored as a result, and its job is to be redone.
   */
  interrupted?: true;
}

/** Facts a gate may need that only the engine knows. */
export interface GateFacts {
  approved: boolean;
  lastVerdict: string | null;
}

/** How a gate runs; all optional, so a gate can run outside a job (tests, a preview). */
export interface GateRunOptions {
  /** Aborting ends a gate's command (TERM to its group, KILL after the kill grace): the gate is `interrupted`. */
  signal?: AbortSignal;
  /** The worker running the job, recorded as the command's owner. Default: this process. */
  workerId?: string;
  /** The job the gate belongs to, recorded with its command. */
  jobId?: number;
}

/** Output of a gate's command kept, characters. */
const GATE_OUTPUT_CHARS = 64_000;

async function evaluate(
  ctx: OrchContext,
  rt: ProjectRuntime,
  task: Task,
  stage: string,
  ref: GateRef,
  worktree: string,
  facts: GateFacts,
  opts: GateRunOptions,
): Promise<GateOutcome> {
  const vars = {
    task: { key: task.key, title: task.title, description: task.description },
    stage,
    role: '',
    attempt: task.attempt,
    feedback: '',
    artifacts_dir: '',
    test_command: rt.config.testCommand?.join(' ') ?? '',
  };
  const command = async (name: string, argv: readonly string[], timeoutS: number): Promise<GateOutcome> => {
    const env = agentEnv(ctx.env, contractEnv(task, stage, 'gate', worktree), {});
    const r = await runOwnedProcess({
      ctx,
      kind: 'gate',
      name,
      taskId: task.id,
      jobId: opts.jobId ?? null,
      ...(opts.workerId ? { workerId: opts.workerId } : {}),
      spec: {
        argv: [...argv],
        cwd: worktree,
        env,
        label: `gate ${name} of ${task.key}`,
        timeoutS,
        killGraceS: rt.config.timeouts.agentKillGraceSeconds,
        ...COMMAND_LIMITS,
        outputTailChars: GATE_OUTPUT_CHARS,
        ...(opts.signal ? { signal: opts.signal } : {}),
      },
    });
    const exit = r.exitCode ?? 'none';
    if (r.canceled)
      return {
        name,
        passed: false,
        interrupted: true,
        output: `$ ${argv.join(' ')}  (interrupted: ${String(opts.signal?.reason ?? 'aborted')}, exit ${exit})`,
      };
    const notes = [
      r.spawnError,
      r.timedOut ? `[orch] gate timed out after ${timeoutS}s` : null,
      r.recordError ?? null,
    ].filter((n): n is string => n !== null);
    // A test that prints a secret must not put it in the store, the feedback or the developer's prompt.
    return {
      name,
      passed: r.exitCode === 0 && !r.timedOut && r.spawnError === null,
      output: redact(
        tail(`$ ${argv.join(' ')}  (exit ${exit})\n${r.outputTail}${notes.map((n) => `\n${n}`).join('')}`),
        secretValues(ctx.env),
      ),
    };
  };
  if (typeof ref === 'object') {
    if ('command' in ref) return command(ref.name, ref.command, ref.timeout_s ?? 900);
    return artifacts(
      ref.files.map((f) => renderPath(f, vars)),
      worktree,
    );
  }
  switch (ref) {
    case 'check_ci_green':
      if (!rt.config.testCommand)
        return { name: ref, passed: true, output: 'no project.test_command configured: nothing to run' };
      return command(ref, rt.config.testCommand, 900);
    case 'check_artifacts_present':
      return artifacts(
        (DEFAULT_ARTIFACTS[stage] ?? []).map((f) => renderPath(f, vars)),
        worktree,
      );
    case 'check_diff_nonempty': {
      const base = (await gitRaw(worktree, ['merge-base', rt.project.base_branch, 'HEAD'])).stdout.trim();
      // The pipeline's own task documents (requirements, ADR) are not the change a developer owes.
      const stat = await gitRaw(worktree, [
        'diff',
        '--stat',
        base,
        'HEAD',
        '--',
        '.',
        `:(exclude)docs/tasks/${task.key}`,
      ]);
      const passed = stat.code === 0 && stat.stdout.trim() !== '';
      return {
        name: ref,
        passed,
        output: passed
          ? tail(stat.stdout)
          : `no change against ${rt.project.base_branch} outside docs/tasks/${task.key}/`,
      };
    }
    case 'check_merge_clean': {
      const r = await gitRaw(worktree, [
        'merge-tree',
        '--write-tree',
        '--name-only',
        rt.project.base_branch,
        'HEAD',
      ]);
      return {
        name: ref,
        passed: r.code === 0,
        output:
          r.code === 0
            ? `merges cleanly onto ${rt.project.base_branch}`
            : tail(r.stdout.split('\n').slice(1).join('\n')),
      };
    }
    case 'check_human_approval':
      return {
        name: ref,
        passed: facts.approved,
        output: facts.approved ? 'approved' : `waiting for: orch task approve ${task.key}`,
      };
    case 'check_reviewer_verdict':
      return {
        name: ref,
        passed: facts.lastVerdict === 'approved',
        output: `last verdict: ${facts.lastVerdict ?? 'none'}`,
      };
  }
}

/**
 * Each file must be a regular file inside the worktree, not empty. A FIFO, a device, a symlink out
 * of the worktree or to nothing fails the gate with a line that names the file and what it is.
 */
async function artifacts(files: readonly string[], worktree: string): Promise<GateOutcome> {
  const problems: string[] = [];
  for (const f of files) {
    const found = await inspectWorktreeFile(worktree, f);
    if (!found.ok) problems.push(found.reason === 'missing' ? `${f} is missing` : found.message);
    else if (found.size === 0) problems.push(`${f} is empty`);
  }
  const passed = problems.length === 0;
  return {
    name: 'check_artifacts_present',
    passed,
    output: passed
      ? `present: ${files.join(', ') || '(none required)'}`
      : `missing or unusable: ${problems.join('; ')}`,
  };
}

/**
 * Evaluates a gate and stores its result. An interrupted gate (its signal fired) is not stored:
 * it decided nothing, and its stage is to be worked again.
 */
export async function runGate(
  ctx: OrchContext,
  rt: ProjectRuntime,
  task: Task,
  stage: string,
  ref: GateRef,
  worktree: string,
  facts: GateFacts,
  opts: GateRunOptions = {},
): Promise<GateOutcome> {
  const startedAt = new Date().toISOString();
  const outcome = await evaluate(ctx, rt, task, stage, ref, worktree, facts, opts);
  if (!outcome.interrupted) await recordGate(ctx, task, stage, outcome, startedAt);
  return outcome;
}

export async function recordGate(
  ctx: OrchContext,
  task: Pick<Task, 'id'>,
  stage: string,
  outcome: GateOutcome,
  startedAt: string,
): Promise<void> {
  await ctx.store.tx(async (tx) => {
    await ctx.store.recordGate(tx, {
      task_id: task.id,
      stage,
      name: outcome.name,
      passed: outcome.passed ? 1 : 0,
      output_tail: outcome.output,
      started_at: startedAt,
      finished_at: new Date().toISOString(),
    });
    await ctx.store.appendEvent(tx, task.id, 'gate_result', {
      name: outcome.name,
      stage,
      passed: outcome.passed,
    });
  });
}
