/**
 * Workspace hooks (orch.yaml `hooks`): commands run in a task's worktree at points of its life —
 * `after_create` once the worktree is made, `before_run` and `after_run` around every agent run,
 * `before_remove` before orch removes the worktree. Each runs through the owned-process runner
 * (its own process group, recorded in the store as kind `hook`, ended by the job's abort signal
 * and by the kill ladder on timeout), with the agents' scrubbed environment, and its output goes
 * to `<logsDir>/hook-<name>-<n>.log`, which `orch logs` shows. Deciding what a failure means is
 * the engine's (a failed `after_create` or `before_run` fails the try); this module only runs.
 *
 * Hooks run unsandboxed, even for a sandboxed role: an install needs the network and caches a
 * sandbox hides (docs/configuration.md#hooks).
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
import { redact, secretValues } from './secrets.ts';
import { gitDirOf, removeCleanWorktree } from './git.ts';

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
}

export interface HookRunOptions {
  /** The stage and role whose work the hook prepares (its `ORCH_STAGE`, `ORCH_ROLE`). */
  stage: string;
  role: string;
  signal?: AbortSignal;
  workerId?: string;
  jobId?: number | null;
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
  const env = agentEnv(ctx.env, contractEnv(task, opts.stage, opts.role, worktree), { ORCH_HOOK: name });
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
    },
  });
  const shown = typeof command === 'string' ? command : argv.join(' ');
  const exit = r.exitCode ?? 'none';
  const how = r.spawnError
    ? `could not start: ${r.spawnError}`
    : r.timedOut
      ? `timed out after ${timeoutS}s (hooks.timeout_s)`
      : `exit ${exit}${r.signal ? ` (${r.signal})` : ''}`;
  const notes = [r.recordError ?? null].filter((n): n is string => n !== null);
  const ok = r.exitCode === 0 && !r.timedOut && !r.canceled && r.spawnError === null;
  return {
    name,
    ok,
    interrupted: r.canceled,
    timedOut: r.timedOut,
    output: redact(
      tail(
        `hooks.${name} failed: ${how}\n$ ${shown}\n${r.outputTail}${notes.map((n) => `\n${n}`).join('')}\n(full output: ${logPath})`,
      ),
      secretValues(ctx.env),
    ),
    summary: `hooks.${name} ${ok ? 'passed' : 'failed'}: ${how} (log ${logPath})`,
    logPath,
  };
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
    const hook = await runHook(ctx, rt, task, 'before_remove', worktree, {
      stage: task.stage,
      role: '',
      ...opts,
    });
    if (hook && !hook.ok) log.warn(`${task.key}: ${hook.summary}; removing the worktree anyway`);
  });
}
