/**
 * Launches one agent run for a job: resolves timeout, model and effort for
 * the role, stamps them on the run row at launch, spawns the agent in its
 * own process group inside the task's worktree with a scrubbed environment,
 * parses its events, and records usage. Finalizing the run (advance, retry,
 * escalate) is the engine's job.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAbsolute, join, resolve } from 'node:path';
import type { OrchContext, ProjectRuntime } from './context.ts';
import { paths } from './context.ts';
import type { Job, Task } from '../store/schema.ts';
import type { Role } from '../core/stages.ts';
import { resolveTimeoutS } from '../core/timeouts.ts';
import { resolveEffort, resolveModel } from '../core/model.ts';
import { classifyRun, type RunOutcome } from '../core/run-outcome.ts';
import { emptyUsage, type AgentEvent, type Usage } from '../agents/events.ts';
import { createStreamJsonParser, parseStreamJsonLine } from '../agents/stream-json.ts';
import { runAgentProcess } from './process/run-agent-process.ts';
import { agentEnv } from './agent-env.ts';
import { renderPrompt } from './prompts.ts';
import type { Logger } from './logger.ts';

export const SCRIPTED_AGENT_PATH = fileURLToPath(new URL('../agents/scripted/agent.ts', import.meta.url));

/** Tunables of process control, in their units. */
export interface LaunchLimits {
  /** After a result line, how long the agent may take to exit. Default 5 000 ms. */
  resultGraceMs: number;
  /** After the agent exits, how long to drain its pipes. Default 2 000 ms. */
  drainMs: number;
  /** Longer stdout lines are truncated. Default 1 MiB. */
  maxLineBytes: number;
}

export const DEFAULT_LIMITS: LaunchLimits = {
  resultGraceMs: 5_000,
  drainMs: 2_000,
  maxLineBytes: 1024 * 1024,
};

export interface LaunchResult {
  runId: number;
  outcome: RunOutcome;
  exitCode: number | null;
  resultText: string | null;
  usage: Usage | null;
  error: string | null;
  durationMs: number;
}

export interface LaunchRequest {
  ctx: OrchContext;
  rt: ProjectRuntime;
  task: Task;
  job: Job;
  role: Role;
  /** Build-loop attempt of a development or review run; null for other stages. */
  attempt: number | null;
  /** The `ORCH_ATTEMPT` the agent sees (from 1). */
  contractAttempt: number;
  worktree: string;
  workerId: string;
  signal: AbortSignal;
  log: Logger;
  limits?: LaunchLimits;
  onEvent?: (runId: number, event: AgentEvent) => void;
  onLine?: (runId: number, line: string) => void;
}

const isResultLine = (line: string): boolean =>
  line.includes('"result"') && parseStreamJsonLine(line).some((e) => e.type === 'result');

/** Builds the agent's argv from the role config. Always an array, never a shell string. */
export function agentArgv(
  rt: ProjectRuntime,
  role: Role,
  vars: { prompt: string; promptFile: string; model: string; effort: string; worktree: string; key: string },
): string[] {
  const cfg = rt.config.agents[role];
  if (cfg.adapter === 'scripted') return [process.execPath, SCRIPTED_AGENT_PATH];
  const subs: Record<string, string> = {
    '{prompt}': vars.prompt,
    '{prompt_file}': vars.promptFile,
    '{model}': vars.model,
    '{effort}': vars.effort,
    '{worktree}': vars.worktree,
    '{key}': vars.key,
  };
  return (cfg.command ?? []).map((arg) =>
    arg.replace(/\{(prompt|prompt_file|model|effort|worktree|key)\}/g, (m) => subs[m] ?? m),
  );
}

export async function launchRun(req: LaunchRequest): Promise<LaunchResult> {
  const { ctx, rt, task, job, role, log } = req;
  const { store } = ctx;
  const cfg = rt.config.agents[role];
  const limits = req.limits ?? DEFAULT_LIMITS;
  const warn = (message: string) => log.warn(message, { task: task.key, role });
  const timeoutS = cfg.timeout_s ?? resolveTimeoutS(rt.config.timeouts, role, warn);
  const model = resolveModel(rt.config.models, role);
  const effort = resolveEffort(rt.config.models, role);

  const logsDir = paths.logsDir(ctx, task);
  mkdirSync(logsDir, { recursive: true });
  const runId = await store.createRun({
    taskId: task.id,
    jobId: job.id,
    agent: role,
    stage: job.stage,
    attempt: req.attempt,
    adapter: cfg.adapter,
    timeoutS,
    logPath: '',
    workerId: req.workerId,
  });
  // The stamp is telemetry: a failure to write it is logged and never stops the launch.
  try {
    await store.stampRun(runId, model, effort);
  } catch (error) {
    log.warn(`could not stamp model and effort on run ${runId}: ${(error as Error).message}`, {
      task: task.key,
    });
  }
  const logPath = join(logsDir, `${runId}-${role}.log`);
  const promptFile = join(logsDir, `${runId}-${role}.prompt.md`);
  await store.db.updateTable('agent_runs').set({ log_path: logPath }).where('id', '=', runId).execute();

  const prompt = renderPrompt(role, {
    task: { key: task.key, title: task.title, description: task.description },
    stage: job.stage,
    role,
    attempt: req.contractAttempt,
    feedback: task.feedback ?? '',
    artifacts_dir: paths.artifacts(rt.project, task),
    test_command: rt.config.testCommand?.join(' ') ?? '',
  });
  writeFileSync(promptFile, prompt);

  const argv = agentArgv(rt, role, {
    prompt,
    promptFile,
    model,
    effort,
    worktree: req.worktree,
    key: task.key,
  });
  const extraEnv: Record<string, string> = { ...cfg.env };
  if (cfg.adapter === 'scripted' && cfg.script) {
    extraEnv.ORCH_SCRIPT_FILE = isAbsolute(cfg.script)
      ? cfg.script
      : resolve(rt.project.root_path, cfg.script);
  }
  const env = agentEnv(
    ctx.env,
    {
      ORCH_TASK_KEY: task.key,
      ORCH_TASK_TITLE: task.title,
      ORCH_STAGE: job.stage,
      ORCH_ROLE: role,
      ORCH_ATTEMPT: String(req.contractAttempt),
      ORCH_WORKTREE: req.worktree,
      ORCH_PROMPT_FILE: promptFile,
      ORCH_MODEL: model,
      ORCH_EFFORT: effort,
      ORCH_RUN_ID: String(runId),
    },
    extraEnv,
    cfg.pass_env,
  );

  let result: Extract<AgentEvent, { type: 'result' }> | null = null;
  let lastUsage: Usage | null = null;
  let pendingPid: Promise<void> = Promise.resolve();
  // One stateful parser per run: it totals usage as the agent goes, so a killed run still reports its tokens.
  const parse = createStreamJsonParser();
  const outcome = await runAgentProcess({
    argv,
    cwd: req.worktree,
    env,
    logPath,
    timeoutS,
    killGraceS: rt.config.timeouts.agentKillGraceSeconds,
    stallTimeoutS: rt.config.stallTimeoutS,
    resultGraceMs: limits.resultGraceMs,
    drainMs: limits.drainMs,
    maxLineBytes: limits.maxLineBytes,
    signal: req.signal,
    pidNamespace: cfg.pid_namespace,
    isResultLine,
    onSpawn: ({ pid, pgid }) => {
      pendingPid = store
        .setRunProcess(runId, pid, pgid)
        .catch((e: unknown) => log.warn(`could not record pid: ${String(e)}`));
    },
    onLine: (line, stream) => {
      req.onLine?.(runId, line);
      if (stream !== 'stdout') return;
      for (const event of parse(line)) {
        if (event.type === 'result') result = event;
        if (event.type === 'usage') lastUsage = event.usage;
        if (event.type === 'error')
          log.debug(`agent output not understood: ${event.message}`, { task: task.key, run: runId });
        req.onEvent?.(runId, event);
      }
    },
  });
  await pendingPid;
  const finalResult = result as Extract<AgentEvent, { type: 'result' }> | null;
  const usage = finalResult?.usage ?? lastUsage;
  try {
    await store.recordUsage(runId, usage);
  } catch (error) {
    log.warn(`could not record usage of run ${runId}: ${(error as Error).message}`, { task: task.key });
  }
  const kind = classifyRun({
    exitCode: outcome.exitCode,
    timedOut: outcome.timedOut,
    stalled: outcome.stalled,
    canceled: outcome.canceled,
    endedAfterResult: outcome.endedAfterResult,
    spawnError: outcome.spawnError,
    hasResult: finalResult !== null,
    resultOk: finalResult?.ok ?? false,
  });
  const error =
    kind === 'ok'
      ? null
      : (outcome.spawnError ??
        `${kind}: exit ${outcome.exitCode ?? 'none'}${outcome.signal ? ` (${outcome.signal})` : ''}${
          outcome.stderrTail.trim() ? ` — ${outcome.stderrTail.trim().split('\n').slice(-3).join(' | ')}` : ''
        }`);
  return {
    runId,
    outcome: kind,
    exitCode: outcome.exitCode,
    resultText: finalResult?.text ?? null,
    usage: usage ?? (finalResult ? emptyUsage() : null),
    error,
    durationMs: outcome.durationMs,
  };
}
