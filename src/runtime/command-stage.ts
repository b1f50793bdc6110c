/**
 * Command stages (a deploy script, say): the configured argv runs in the
 * task's worktree under the same process control as an agent; exit 0 is
 * success. Its output is the run's log, and its tail the run's result.
 */
import { mkdirSync } from 'node:fs';
import type { OrchContext, ProjectRuntime } from './context.ts';
import { paths } from './context.ts';
import type { Job, Task } from '../store/schema.ts';
import type { StagePlan } from '../config/pipeline-config.ts';
import { runTimeoutS } from '../config/settings.ts';
import { tail } from '../core/gates.ts';
import { COMMAND_LIMITS, runOwnedProcess } from './owned-process.ts';
import { agentEnv, contractEnv } from './agent-env.ts';
import type { LaunchResult } from './launcher.ts';

/** Output of a command stage kept for its result, characters (core/gates.ts `tail` cuts it further). */
const OUTPUT_TAIL_CHARS = 64_000;

export async function runCommandStage(
  ctx: OrchContext,
  rt: ProjectRuntime,
  task: Task,
  job: Job,
  plan: StagePlan,
  worktree: string,
  workerId: string,
  signal: AbortSignal,
): Promise<LaunchResult> {
  const role = plan.role ?? 'deployer';
  const timeoutS = runTimeoutS(rt.config, plan, role);
  const logsDir = paths.logsDir(ctx, task);
  mkdirSync(logsDir, { recursive: true });
  // The log is named after the run's id, written with its row: `<logs>/<run id>-<stage>.log`.
  const logPathOf = { before: `${logsDir}/`, after: `-${job.stage}.log` };
  const runId = await ctx.store.createRun({
    taskId: task.id,
    jobId: job.id,
    agent: role,
    stage: job.stage,
    attempt: null,
    adapter: 'command-stage',
    timeoutS,
    logPath: logPathOf,
    workerId,
  });
  const logPath = `${logPathOf.before}${runId}${logPathOf.after}`;
  const env = agentEnv(
    ctx.env,
    contractEnv(task, job.stage, role, worktree, { ORCH_RUN_ID: String(runId) }),
    plan.env,
  );
  const outcome = await runOwnedProcess({
    ctx,
    kind: 'command',
    name: job.stage,
    taskId: task.id,
    jobId: job.id,
    workerId,
    spec: {
      argv: plan.command!,
      cwd: worktree,
      env,
      logPath,
      label: `command stage ${job.stage} of ${task.key}`,
      timeoutS,
      killGraceS: rt.config.timeouts.agentKillGraceSeconds,
      ...COMMAND_LIMITS,
      // The run's result is the output's tail, kept as it is read: the log is never read back.
      outputTailChars: OUTPUT_TAIL_CHARS,
      signal,
      onSpawn: ({ pid, pgid }) => void ctx.store.setRunProcess(runId, pid, pgid).catch(() => {}),
    },
  });
  const output = tail(outcome.outputTail);
  const kind = outcome.spawnError
    ? 'spawn_error'
    : outcome.canceled
      ? 'cancelled'
      : outcome.timedOut
        ? 'timeout'
        : outcome.exitCode === 0
          ? 'ok'
          : outcome.exitCode !== null && outcome.exitCode < 0
            ? 'killed'
            : 'failed';
  return {
    runId,
    outcome: kind,
    exitCode: outcome.exitCode,
    resultText: output,
    usage: null,
    error:
      kind === 'ok' ? null : (outcome.spawnError ?? `${kind}: exit ${outcome.exitCode ?? 'none'}\n${output}`),
    durationMs: outcome.durationMs,
  };
}
