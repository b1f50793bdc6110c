/**
 * Launches one agent run for a job: resolves timeout, model and effort for
 * the role, stamps them on the run row at launch, spawns the agent in its
 * own process group inside the task's worktree with a scrubbed environment,
 * parses its events, and records usage. Finalizing the run (advance, retry,
 * escalate) is the engine's job.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { OrchContext, ProjectRuntime } from './context.ts';
import { paths } from './context.ts';
import type { Job, Task } from '../store/schema.ts';
import type { Role } from '../core/stages.ts';
import { runTimeoutS } from '../config/settings.ts';
import type { StagePlan } from '../config/pipeline-config.ts';
import { resolveEffort, resolveModel } from '../core/model.ts';
import { assignVariant, withVariant } from '../core/variants.ts';
import type { AgentConfig } from '../config/project-config.ts';
import { classifyRun, type RunOutcome } from '../core/run-outcome.ts';
import { emptyUsage, type AgentEvent, type Usage } from '../agents/events.ts';
import type { UsageLimit } from '../agents/usage-limit.ts';
import type { LaunchVars } from '../agents/adapter.ts';
import { adapterFor } from '../agents/registry.ts';
import { resolveAgentBinary } from '../agents/binary.ts';
import { costFromTable, priceTable } from '../agents/prices.ts';
import { runAgentProcess } from './process/run-agent-process.ts';
import { agentEnv, contractEnv } from './agent-env.ts';
import { rememberSecrets, secretValues } from './secrets.ts';
import { sandboxForRun } from './sandbox.ts';
import { messagesSection, renderPrompt, resumedSessionPrompt } from '../config/prompts.ts';
import { replaceFileSync } from '../io/worktree-files.ts';
import type { PromptTemplate } from '../config/prompts.ts';
import type { Logger } from './logger.ts';

export { SCRIPTED_AGENT_PATH } from '../agents/scripted/argv.ts';

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
  /** Model API retries the agent reported (each is also an `agent_retry` event row); absent for non-agent runs. */
  retries?: number;
  /** The usage limit the agent reported, for a `usage_limited` run. */
  usageLimit?: UsageLimit | null;
}

export interface LaunchRequest {
  ctx: OrchContext;
  rt: ProjectRuntime;
  task: Task;
  job: Job;
  role: Role;
  /** The stage the run works (its own `timeout_s` comes first). */
  stage?: Pick<StagePlan, 'kind' | 'role' | 'timeoutS'>;
  /** What the task may still spend in USD; null for no limit. The run is stopped when its cost crosses it. */
  remainingUsd?: number | null;
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
  /**
   * A stage's own prompt template, replacing the role's built-in one: the stage plan's `template`
   * (parsed when the config loaded), or its text.
   */
  promptTemplate?: string | PromptTemplate;
  /**
   * A CLI session to continue (adapters that support resume); default a new session. The prompt
   * is then the person's messages only ({@link resumedSessionPrompt}): the session holds the rest.
   */
  resumeSessionId?: string | null;
  /** The development candidate this run is (1-based, `ORCH_CANDIDATE`), when the stage runs several. */
  candidate?: number;
  /** A section after the stage's instructions (the candidates' diffs a reviewer chooses from). */
  promptAppendix?: string;
}

/** A role's config as a task's runs use it: the role's, with the task's variant (from its key alone). */
export function roleConfigFor(rt: Pick<ProjectRuntime, 'config'>, task: Pick<Task, 'key'>, role: Role) {
  const variant = assignVariant(rt.config.agents[role].variants, task.key, role);
  return { variant, cfg: withVariant(rt.config.agents[role], variant) };
}

/**
 * Whether a role's next run can continue `run`'s CLI session: a run a person stopped with a
 * message (`orch task say --now`) whose session id is known, of the same role and adapter, one
 * that can resume. The caller checks the session is at hand (the run's home and host).
 */
export function resumableSession(
  rt: Pick<ProjectRuntime, 'config'>,
  task: Pick<Task, 'key'>,
  role: Role,
  run: { outcome: string | null; session_id: string | null; agent: string; adapter: string | null },
): string | null {
  if (run.outcome !== 'redirected' || !run.session_id || run.agent !== role) return null;
  const { cfg } = roleConfigFor(rt, task, role);
  if (run.adapter !== cfg.adapter) return null;
  return adapterFor(cfg.adapter).resumes?.(cfg) ? run.session_id : null;
}

/** What a run's argv and env are built from, besides the role config (see {@link LaunchVars}). */
export type AgentCommandVars = Omit<
  LaunchVars,
  'binary' | 'projectRoot' | 'parentEnv' | 'resumeSessionId'
> & {
  resumeSessionId?: string | null;
};

/** The argv (always an array, never a shell string) and the adapter's extra env of a role's agent. */
export function agentCommand(
  env: Readonly<Record<string, string | undefined>>,
  rt: Pick<ProjectRuntime, 'config' | 'project'>,
  role: Role,
  vars: AgentCommandVars,
  /** The role's config as this run uses it (with the task's variant); default the role's. */
  cfg: AgentConfig = rt.config.agents[role],
): { argv: string[]; env: Record<string, string> } {
  const adapter = adapterFor(cfg.adapter);
  const projectRoot = rt.project.root_path;
  const binary = resolveAgentBinary(adapter, cfg, { pathVar: env.PATH, projectRoot });
  const full: LaunchVars = {
    ...vars,
    resumeSessionId: vars.resumeSessionId ?? null,
    binary: binary?.path ?? '',
    projectRoot,
    parentEnv: env,
  };
  const adapterEnv = adapter.env(cfg, full);
  // The role's env overrides the adapter's defaults, but never the contract's ORCH_* variables.
  const extra: Record<string, string> = { ...adapterEnv, ...cfg.env };
  for (const [name, value] of Object.entries(adapterEnv)) if (name.startsWith('ORCH_')) extra[name] = value;
  return { argv: adapter.argv(cfg, full), env: extra };
}

/**
 * Linux refuses one argument over 128 KiB (E2BIG), and the CLIs take the prompt as one: a
 * longer prompt (a long task description, a long review) is handed over as its file instead.
 */
export const MAX_ARGV_PROMPT_BYTES = 100_000;
export function argvPrompt(prompt: string, promptFile: string): string {
  if (Buffer.byteLength(prompt) <= MAX_ARGV_PROMPT_BYTES) return prompt;
  return `Your instructions are too long for the command line: they are in the file ${promptFile}. Read that whole file first, then do exactly what it says.`;
}

export async function launchRun(req: LaunchRequest): Promise<LaunchResult> {
  const { ctx, rt, task, job, role, log } = req;
  const { store } = ctx;
  // The task's variant of the role (from its key alone, so a retry keeps it) overrides the role's keys.
  const { variant, cfg } = roleConfigFor(rt, task, role);
  const limits = req.limits ?? { ...DEFAULT_LIMITS, resultGraceMs: ctx.settings.resultGraceMs };
  const warn = (message: string) => log.warn(message, { task: task.key, role });
  const timeoutS = runTimeoutS(rt.config, req.stage ?? null, role, warn);
  const remainingUsd = req.remainingUsd ?? null;
  const model = resolveModel(rt.config.models, role, variant);
  const effort = resolveEffort(rt.config.models, role, variant);

  const logsDir = paths.logsDir(ctx, task);
  mkdirSync(logsDir, { recursive: true });
  // The run row, its log path (`<logs>/<run id>-<role>.log`) and its event, committed before the spawn.
  const logPathOf = { before: `${logsDir}/`, after: `-${role}.log` };
  const runId = await store.createRun({
    taskId: task.id,
    jobId: job.id,
    agent: role,
    stage: job.stage,
    attempt: req.attempt,
    adapter: cfg.adapter,
    timeoutS,
    logPath: logPathOf,
    workerId: req.workerId,
  });
  const logPath = `${logPathOf.before}${runId}${logPathOf.after}`;
  const promptFile = join(logsDir, `${runId}-${role}.prompt.md`);
  // The stamp and the messages' read are independent: issued together (on PostgreSQL, side by
  // side on the pool's connections), both after the run row is committed.
  const [, allMessages] = await Promise.all([
    // The stamp is telemetry: a failure to write it is logged and never stops the launch.
    store.stats
      .stampLaunch(runId, { model, effort, variant: variant?.name ?? null })
      .catch((error: unknown) => {
        log.warn(`could not stamp model and effort on run ${runId}: ${(error as Error).message}`, {
          task: task.key,
        });
      }),
    store.humanMessages(task.id),
  ]);
  // A person's messages not yet in front of a run come after the stage's instructions (once each).
  const messages = allMessages.filter((m) => m.delivered_run_id === null);
  const resumeSessionId = req.resumeSessionId ?? null;
  const rendered = renderPrompt(
    role,
    {
      task: { key: task.key, title: task.title, description: task.description },
      stage: job.stage,
      role,
      attempt: req.contractAttempt,
      feedback: task.feedback ?? '',
      artifacts_dir: paths.artifacts(rt.project, task),
      test_command: rt.config.testCommand?.join(' ') ?? '',
    },
    req.promptTemplate,
  );
  const instructions = req.promptAppendix ? `${rendered.trimEnd()}\n\n${req.promptAppendix}` : rendered;
  const prompt = resumeSessionId
    ? resumedSessionPrompt(messages)
    : messages.length
      ? `${instructions.trimEnd()}\n${messagesSection(messages)}`
      : instructions;
  try {
    // Replaced, never opened: something planted under this name (a FIFO) cannot block the write.
    replaceFileSync(promptFile, prompt);
  } catch (error) {
    // A full or read-only disk: the run cannot start, like one whose log file cannot be opened,
    // and ends as a spawn error (retried, then escalated). Thrown, it left the run recorded as
    // running with no process, until the reaper called it interrupted.
    const why = `cannot write the prompt file ${promptFile}: ${(error as Error).message}`;
    log.warn(`run ${runId} cannot start: ${why}`, { task: task.key, role });
    return {
      runId,
      outcome: 'spawn_error',
      exitCode: null,
      resultText: null,
      usage: null,
      error: why,
      durationMs: 0,
    };
  }

  // Delivered once the prompt carrying them is written: a later run does not repeat them. Should
  // the record fail, the run goes on and the next run gets them again (at least once, never lost).
  if (messages.length > 0) {
    try {
      await store.tx(async (tx) => {
        for (const m of messages)
          await store.appendEvent(tx, task.id, 'human_message_delivered', {
            message_id: m.id,
            run_id: runId,
          });
      });
    } catch (error) {
      log.warn(`could not record run ${runId} as reading its messages: ${(error as Error).message}`, {
        task: task.key,
      });
    }
  }

  const adapter = adapterFor(cfg.adapter);
  const { argv, env: extraEnv } = agentCommand(
    ctx.env,
    rt,
    role,
    {
      prompt: argvPrompt(prompt, promptFile),
      promptFile,
      model,
      effort,
      worktree: req.worktree,
      key: task.key,
      resumeSessionId,
      maxBudgetUsd: remainingUsd,
    },
    cfg,
  );
  const env = agentEnv(
    ctx.env,
    {
      ...contractEnv(task, job.stage, role, req.worktree, {
        ORCH_ATTEMPT: String(req.contractAttempt),
        ORCH_PROMPT_FILE: promptFile,
        ORCH_MODEL: model,
        ORCH_EFFORT: effort,
        ORCH_RUN_ID: String(runId),
      }),
      ...(req.candidate ? { ORCH_CANDIDATE: String(req.candidate) } : {}),
    },
    extraEnv,
    cfg.pass_env,
  );
  // What the role's env gives the agent under a secret name is redacted from all that is stored.
  rememberSecrets([...secretValues(ctx.env), ...secretValues(cfg.env)]);
  const sandbox = await sandboxForRun(ctx, rt, cfg, { worktree: req.worktree, env, argv, promptFile });

  let result: Extract<AgentEvent, { type: 'result' }> | null = null;
  let lastUsage: Usage | null = null;
  let pendingPid: Promise<void> = Promise.resolve();
  let pendingSession: Promise<void> = Promise.resolve();
  let retries = 0;
  let limit: UsageLimit | null = null;
  const pendingRetries: Promise<void>[] = [];
  // One stateful parser per run: it totals usage as the agent goes, so a killed run still reports its tokens.
  const parse = adapter.createParser();
  const prices = priceTable(rt.raw.prices);
  // Spend is bounded within a run too: crossing what the task may still spend stops the agent.
  const overBudget = new AbortController();
  const costSoFar = (usage: Usage): number | null => usage.costUsd ?? costFromTable(usage, prices, model);
  const handle = (event: AgentEvent): void => {
    if (event.type === 'result') result = event;
    // The first report of a limit that names its reset is kept (Claude Code's exact reset comes
    // before its result's reset to the minute); the message is the CLI's last word on it.
    if (event.type === 'usage_limit')
      limit = {
        resetAt: limit?.resetAt ?? event.resetAt,
        window: limit?.window ?? event.window,
        message: event.message,
      };
    // Recorded at once, not only with the final usage: a run stopped early can still be resumed.
    if (event.type === 'started' && event.sessionId) {
      const sessionId = event.sessionId;
      pendingSession = store
        .setRunSession(runId, sessionId)
        .catch((e: unknown) => log.warn(`could not record the session of run ${runId}: ${String(e)}`));
    }
    if (event.type === 'usage') {
      lastUsage = event.usage;
      const cost = costSoFar(event.usage);
      if (remainingUsd !== null && cost !== null && cost >= remainingUsd && !overBudget.signal.aborted) {
        log.warn(
          `run ${runId} stopped: its cost $${cost.toFixed(4)} crossed the task's remaining $${remainingUsd.toFixed(4)}`,
          { task: task.key },
        );
        overBudget.abort('over_budget');
      }
    }
    if (event.type === 'error')
      log.debug(`agent output not understood: ${event.message}`, { task: task.key, run: runId });
    if (event.type === 'retry') {
      retries += 1;
      pendingRetries.push(
        store
          .appendEvent(store.db, task.id, 'agent_retry', {
            run_id: runId,
            role,
            attempt: event.attempt,
            delay_ms: event.delayMs,
            error: event.error,
          })
          .catch((e: unknown) => log.warn(`could not record a retry of run ${runId}: ${String(e)}`)),
      );
    }
    req.onEvent?.(runId, event);
  };
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
    signal: AbortSignal.any([req.signal, overBudget.signal]),
    pidNamespace: cfg.pid_namespace,
    ...(sandbox ? { sandbox } : {}),
    isResultLine: (line) => adapter.isResultLine(line),
    onSpawn: ({ pid, pgid }) => {
      pendingPid = store
        .setRunProcess(runId, pid, pgid)
        .catch((e: unknown) => log.warn(`could not record pid: ${String(e)}`));
    },
    onLine: (line, stream) => {
      req.onLine?.(runId, line);
      const events = stream === 'stdout' ? parse(line) : (adapter.stderrEvents?.(line) ?? []);
      for (const event of events) handle(event);
    },
  });
  await pendingPid;
  await pendingSession;
  await Promise.all(pendingRetries);
  const finalResult = result as Extract<AgentEvent, { type: 'result' }> | null;
  const reported = finalResult?.usage ?? (lastUsage as Usage | null);
  // Where the CLI reports no USD, the price table prices its tokens; with no price the cost stays unknown.
  const usage =
    reported && reported.costUsd === null
      ? { ...reported, costUsd: costFromTable(reported, prices, model) }
      : reported;
  try {
    await store.recordUsage(runId, usage);
  } catch (error) {
    log.warn(`could not record usage of run ${runId}: ${(error as Error).message}`, { task: task.key });
  }
  // A run past the task's remaining budget (stopped by orch, or by a CLI that enforces it) is one.
  const crossed =
    remainingUsd !== null &&
    usage?.costUsd !== null &&
    usage?.costUsd !== undefined &&
    usage.costUsd >= remainingUsd;
  const classified = classifyRun({
    exitCode: outcome.exitCode,
    timedOut: outcome.timedOut,
    stalled: outcome.stalled,
    canceled: outcome.canceled,
    endedAfterResult: outcome.endedAfterResult,
    spawnError: outcome.spawnError,
    hasResult: finalResult !== null,
    resultOk: finalResult?.ok ?? false,
  });
  const reportedLimit = limit as UsageLimit | null;
  const kind: RunOutcome =
    classified === 'ok' || req.signal.aborted
      ? classified
      : overBudget.signal.aborted || crossed
        ? 'over_budget'
        : reportedLimit && !['timeout', 'stalled', 'spawn_error'].includes(classified)
          ? 'usage_limited'
          : classified;
  const error =
    kind === 'ok'
      ? null
      : kind === 'usage_limited'
        ? `usage limit: ${reportedLimit?.message ?? 'reached'}`
        : kind === 'over_budget'
          ? `cost $${(usage?.costUsd ?? 0).toFixed(4)} crossed the $${(remainingUsd ?? 0).toFixed(4)} the task had left of budget.max_usd`
          : (outcome.spawnError ??
            `${kind}: exit ${outcome.exitCode ?? 'none'}${outcome.signal ? ` (${outcome.signal})` : ''}${
              outcome.stderrTail.trim()
                ? ` — ${outcome.stderrTail.trim().split('\n').slice(-3).join(' | ')}`
                : ''
            }`);
  return {
    runId,
    outcome: kind,
    exitCode: outcome.exitCode,
    resultText: finalResult?.text ?? null,
    usage: usage ?? (finalResult ? emptyUsage() : null),
    error,
    durationMs: outcome.durationMs,
    retries,
    usageLimit: kind === 'usage_limited' ? reportedLimit : null,
  };
}
