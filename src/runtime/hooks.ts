/**
 * Workspace hooks (orch.yaml `hooks`): commands run in a task's worktree at points of its life —
 * `after_create` once the worktree is made, `before_run` and `after_run` around every agent run,
 * `before_remove` before orch removes the worktree. Each runs through the owned-process runner
 * (its own process group, recorded in the store as kind `hook`, ended by the job's abort signal
 * and by the kill ladder on timeout), with the agents' scrubbed environment, and its output goes
 * to `<logsDir>/hook-<name>-<n>.log`, which `orch logs` shows. Deciding what a failure means is
 * the engine's (a failed `after_create` or `before_run` fails the try); this module runs the hook
 * and records each failure as a `hook_failed` event on the task's timeline.
 *
 * A hook runs in the sandbox of the role whose work it prepares when that role's agent is
 * sandboxed: it executes what the worktree holds (an install runs the package's scripts, a build
 * the project's), which an agent may have written, so it must not see more than the agent does.
 * `before_remove` has no role of its own: it gets the sandbox of the task's last agent run, the
 * one that left the worktree as it is. `hooks.sandbox: false` runs every hook outside
 * (docs/configuration.md#hooks).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { OrchContext, ProjectRuntime } from './context.ts';
import { paths } from './context.ts';
import type { Task } from '../store/schema.ts';
import { tail } from '../core/gates.ts';
import { hookTimeoutS, type HookName } from '../config/settings.ts';
import { COMMAND_LIMITS, runOwnedProcess } from './owned-process.ts';
import { agentEnv, contractEnv } from './agent-env.ts';
import { redact, rememberSecrets, secretValues } from './secrets.ts';
import { gitDirOf, removeCleanWorktree } from './git.ts';
import { sandboxForRun } from './sandbox.ts';
import type { SandboxPlan } from './process/sandbox.ts';
import { ROLES, type Role } from '../core/stages.ts';

/** Output of a hook kept for its feedback, characters (core/gates.ts `tail` cuts it further). */
const HOOK_OUTPUT_CHARS = 64_000;

export interface HookResult {
  name: HookName;
  /** Exit 0 within its timeout. */
  ok: boolean;
  /** Stopped by the abort signal (shutdown, cancel, a lost lease): it decided nothing. */
  interrupted: boolean;
  timedOut: boolean;
  /** The command, how it ended and the tail of its output, secrets redacted: the feedback of a failed try. */
  output: string;
  /** One line: which hook failed and how (the try's error). */
  summary: string;
  logPath: string;
  /** The role whose sandbox it ran in, or null when it ran outside any. */
  sandboxRole: Role | null;
}

export interface HookRunOptions {
  /** The stage and role whose work the hook prepares (its `ORCH_STAGE`, `ORCH_ROLE`). */
  stage: string;
  role: string;
  signal?: AbortSignal;
  workerId?: string;
  jobId?: number | null;
  /**
   * The role whose sandbox applies, or null for none; by default the stage's role when the stage
   * is an agent stage (a command or human stage runs no agent: its hooks run outside, like it),
   * and at `created` (the job that makes the worktree) the role of the pipeline's first stage.
   */
  sandboxRole?: Role | null;
}

/** Whether a failed hook fails its try (the engine's rule; `after_run` and `before_remove` only log). */
const FATAL: ReadonlySet<HookName> = new Set(['after_create', 'before_run']);

const isRole = (role: string): role is Role => (ROLES as readonly string[]).includes(role);

/** The role whose sandbox a hook runs in, or null: see {@link HookRunOptions.sandboxRole}. */
function sandboxRoleOf(rt: ProjectRuntime, opts: HookRunOptions): Role | null {
  if (rt.raw.hooks.sandbox === false) return null;
  let role: Role | null;
  if (opts.sandboxRole !== undefined) role = opts.sandboxRole;
  else if (opts.stage === 'created') {
    // The worktree is made for the first stage: after_create prepares it for that stage's agent.
    const first = rt.pipeline.stages[0];
    role = first?.kind === 'agent' ? first.role : null;
  } else {
    const stage = rt.pipeline.stages.find((s) => s.name === opts.stage);
    role = stage?.kind === 'agent' && isRole(opts.role) ? opts.role : null;
  }
  return role !== null && rt.config.agents[role].sandbox.enabled ? role : null;
}

/** Where a hook that ran in a sandbox failed: what it could not have, and the way out. */
function sandboxNote(rt: ProjectRuntime, role: Role): string {
  const network = rt.config.agents[role].sandbox.network;
  return (
    `The hook ran in the ${role}'s sandbox (agents.${role}.sandbox${network ? '' : ', no network'}): it sees ` +
    `what the agent sees.${network ? '' : ' An install there needs a cache or vendored dependencies;'} ` +
    'hooks.sandbox: false runs hooks outside any sandbox (docs/configuration.md#hooks).'
  );
}

/** The argv of a hook's command: a string runs with `sh -c`. */
export const hookArgv = (command: string | readonly string[]): string[] =>
  typeof command === 'string' ? ['sh', '-c', command] : [...command];

/** The next free `hook-<name>-<n>.log` of the task's logs (one job of a task runs at a time). */
function nextLogPath(logsDir: string, name: HookName): string {
  const prefix = `hook-${name}-`;
  let n = 0;
  for (const entry of readdirSync(logsDir)) {
    if (!entry.startsWith(prefix) || !entry.endsWith('.log')) continue;
    const k = Number(entry.slice(prefix.length, -'.log'.length));
    if (Number.isInteger(k) && k > n) n = k;
  }
  return join(logsDir, `${prefix}${n + 1}.log`);
}

/**
 * Runs the project's hook `name` in the worktree, or returns null when none is configured.
 * Never rejects for the command's own failure.
 */
export async function runHook(
  ctx: OrchContext,
  rt: ProjectRuntime,
  task: Task,
  name: HookName,
  worktree: string,
  opts: HookRunOptions,
): Promise<HookResult | null> {
  const hooks = rt.raw.hooks;
  const command = hooks[name];
  if (command === undefined) return null;
  const argv = hookArgv(command);
  const timeoutS = hookTimeoutS(hooks);
  const logsDir = paths.logsDir(ctx, task);
  mkdirSync(logsDir, { recursive: true });
  const logPath = nextLogPath(logsDir, name);
  // What the roles' env gives their agents under secret names is redacted from a hook's log and
  // output too, before any agent of the role ran in this process (a build may print a .env).
  for (const agent of Object.values(rt.config.agents)) rememberSecrets(secretValues(agent.env ?? {}));
  const env = agentEnv(ctx.env, contractEnv(task, opts.stage, opts.role, worktree), { ORCH_HOOK: name });
  const sandboxRole = sandboxRoleOf(rt, opts);
  let sandbox: SandboxPlan | undefined;
  if (sandboxRole !== null)
    sandbox = await sandboxForRun(ctx, rt, rt.config.agents[sandboxRole], {
      worktree,
      env,
      argv,
      promptFile: null,
    });
  const r = await runOwnedProcess({
    ctx,
    kind: 'hook',
    name,
    taskId: task.id,
    jobId: opts.jobId ?? null,
    ...(opts.workerId ? { workerId: opts.workerId } : {}),
    spec: {
      argv,
      cwd: worktree,
      env,
      logPath,
      label: `hook ${name} of ${task.key}`,
      timeoutS,
      killGraceS: rt.config.timeouts.agentKillGraceSeconds,
      ...COMMAND_LIMITS,
      outputTailChars: HOOK_OUTPUT_CHARS,
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(sandbox ? { sandbox } : {}),
    },
  });
  const shown = typeof command === 'string' ? command : argv.join(' ');
  const exit = r.exitCode ?? 'none';
  const how = r.spawnError
    ? `could not start: ${r.spawnError}`
    : r.timedOut
      ? `timed out after ${timeoutS}s (hooks.timeout_s)`
      : `exit ${exit}${r.signal ? ` (${r.signal})` : ''}`;
  const where = sandboxRole === null ? '' : ` in the ${sandboxRole}'s sandbox`;
  const notes = [r.recordError ?? null, sandboxRole === null ? null : sandboxNote(rt, sandboxRole)].filter(
    (n): n is string => n !== null,
  );
  const ok = r.exitCode === 0 && !r.timedOut && !r.canceled && r.spawnError === null;
  const result: HookResult = {
    name,
    ok,
    interrupted: r.canceled,
    timedOut: r.timedOut,
    output: redact(
      tail(
        `hooks.${name} failed${where}: ${how}\n$ ${shown}\n${r.outputTail}${notes.map((n) => `\n${n}`).join('')}\n(full output: ${logPath})`,
      ),
      secretValues(ctx.env),
    ),
    summary: `hooks.${name} ${ok ? 'passed' : 'failed'}${where}: ${how} (log ${logPath})`,
    logPath,
    sandboxRole,
  };
  // A failure orch did not cause is on the task's timeline, fatal or not; one it stopped decided nothing.
  if (!ok && !r.canceled) {
    const outcome = r.spawnError ? 'spawn_error' : r.timedOut ? 'timeout' : 'failed';
    try {
      await ctx.store.appendEvent(ctx.store.db, task.id, 'hook_failed', {
        hook: name,
        stage: opts.stage,
        role: opts.role || null,
        outcome,
        exit_code: r.exitCode,
        signal: r.signal,
        fatal: FATAL.has(name),
        sandbox_role: sandboxRole,
        summary: result.summary,
        log_path: logPath,
        output_tail: result.output,
      });
    } catch (error) {
      result.summary += `; could not record it on the task's timeline: ${(error as Error).message}`;
    }
  }
  return result;
}

// ------------------------------------------------------------------ after_create's marker
//
// `after_create` is done for a worktree once it succeeded there: a marker file in the worktree's
// own git directory (`.git/worktrees/<name>/orch-after-create`) holds the command that succeeded.
// The marker goes with the worktree (a worktree made again runs the hook again), never shows in
// `git status`, and a changed command runs again.

const MARKER = 'orch-after-create';

function markerPath(worktree: string): string | null {
  const dir = gitDirOf(worktree);
  return dir === null ? null : join(dir, MARKER);
}

const markerText = (command: string | readonly string[]): string => `${JSON.stringify(command)}\n`;

/** Whether `after_create` (as configured now) already succeeded in this worktree. */
export function afterCreateDone(worktree: string, command: string | readonly string[]): boolean {
  const path = markerPath(worktree);
  if (path === null) return false;
  try {
    return readFileSync(path, 'utf8') === markerText(command);
  } catch {
    return false;
  }
}

/** Records that `after_create` succeeded in this worktree. */
export function markAfterCreateDone(worktree: string, command: string | readonly string[]): void {
  const path = markerPath(worktree);
  if (path !== null) writeFileSync(path, markerText(command));
}

/**
 * Removes a task's worktree when it holds nothing uncommitted, running `hooks.before_remove` in
 * it first. The hook's failure is logged and the removal goes ahead: the task is over.
 */
export async function removeTaskWorktree(
  ctx: OrchContext,
  rt: ProjectRuntime,
  task: Task,
  worktree: string,
  log: { info(m: string): void; warn(m: string): void },
  opts: Pick<HookRunOptions, 'workerId' | 'jobId'> = {},
): Promise<boolean> {
  if (rt.raw.hooks.before_remove === undefined)
    return removeCleanWorktree(rt.project.root_path, worktree, log);
  return removeCleanWorktree(rt.project.root_path, worktree, log, async () => {
    // No role of its own: the sandbox of the agent that last worked in the worktree, if any.
    const last = (await ctx.store.runsOfTask(task.id)).at(-1)?.agent ?? '';
    const hook = await runHook(ctx, rt, task, 'before_remove', worktree, {
      stage: task.stage,
      role: '',
      sandboxRole: isRole(last) ? last : null,
      ...opts,
    });
    if (hook && !hook.ok) log.warn(`${task.key}: ${hook.summary}; removing the worktree anyway`);
  });
}
