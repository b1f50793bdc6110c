/**
 * Helpers for the build-loop tests: scripted-agent steps, the real CLI run
 * against a temporary project, SIGKILL of a running `orch run`, and checks
 * that the attempt ledger file and the database agree.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { expect } from 'vitest';
import { makeProject, waitFor, type ProjectOptions, type TempProject } from '../helpers/kit.ts';
import type { OrchContext } from '../../src/runtime/context.ts';
import type { AgentRun, Attempt, Task } from '../../src/store/schema.ts';
import { LEDGER_FILE } from '../../src/runtime/ledger.ts';
import { ledgerDisagreement } from '../helpers/ledger-check.ts';
import type { taskDetail } from '../../src/runtime/views.ts';
import { processGroupAlive } from '../../src/runtime/process/run-agent-process.ts';

export type TaskDetail = Awaited<ReturnType<typeof taskDetail>>;

// ------------------------------------------------------------ script steps

export const write = (path: string, content: string) => ({ write: { path, content } });
export const verdict = (v: 'approved' | 'rejected', comments = '') => ({ verdict: v, comments });
export const sleep = (ms: number) => ({ sleep_ms: ms });

/** A script for one task (matched by title): steps per role and attempt. */
export function taskScript(
  title: string,
  roles: Record<string, { attempts?: Record<number, unknown[]>; default?: unknown[] }>,
): Record<string, unknown> {
  return { tasks: [{ match: { title }, roles }] };
}

// ------------------------------------------------------------- projects

const live = { projects: [] as TempProject[], children: [] as ChildProcess[] };

/** A temporary project with one task added through the CLI; cleaned up by {@link cleanupAll}. */
export function projectWithTask(title: string, opts: ProjectOptions): { project: TempProject; key: string } {
  const project = makeProject(opts);
  live.projects.push(project);
  const added = project.orch(['task', 'add', title, '--json']);
  expect(added.code, added.stderr).toBe(0);
  const key = (JSON.parse(added.stdout) as { key: string }).key;
  return { project, key };
}

/** Kills what a test left running, then deletes its projects. Call from afterEach. */
export async function cleanupAll(): Promise<void> {
  for (const child of live.children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  for (const project of live.projects.splice(0)) {
    const ctx = await project.context().catch(() => null);
    if (ctx) {
      // Agents orphaned by a killed orch: end their groups so nothing outlives the test.
      const runs = await ctx.store.db
        .selectFrom('agent_runs')
        .select('pgid')
        .execute()
        .catch(() => []);
      for (const { pgid } of runs) {
        if (!pgid || pgid <= 1 || !processGroupAlive(pgid)) continue;
        try {
          process.kill(-pgid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await ctx.close();
    }
    project.cleanup();
  }
}

/** `orch run --until-idle`, which must exit 0; returns its stdout. */
export function runUntilIdle(project: TempProject): string {
  const r = project.orch(['run', '--until-idle'], { timeoutMs: 45_000 });
  expect(r.code, `orch run failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

/** `orch task show KEY --json`. */
export function showTask(project: TempProject, key: string): TaskDetail {
  const r = project.orch(['task', 'show', key, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as TaskDetail;
}

/** Rewrites the scripted agent's script; the next agent run reads the new one. */
export function rewriteScript(project: TempProject, script: Record<string, unknown>): void {
  writeFileSync(join(project.dir, '.orch', 'script.yaml'), stringify(script));
}

export const ledgerPath = (project: TempProject, key: string): string =>
  join(project.dir, '.orch', 'artifacts', key, LEDGER_FILE);

export const packetPath = (project: TempProject, key: string): string =>
  join(project.dir, '.orch', 'artifacts', key, 'terminal-packet.md');

/** The prompt file orch wrote for a run. */
export function promptOf(project: TempProject, key: string, run: { id: number; role: string }): string {
  return readFileSync(join(project.dir, '.orch', 'logs', key, `${run.id}-${run.role}.prompt.md`), 'utf8');
}

export function ledgerLines(project: TempProject, key: string): string[] {
  const path = ledgerPath(project, key);
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
}

// ------------------------------------------------------------- database

export interface LoopState {
  task: Task;
  attempts: Attempt[];
  runs: AgentRun[];
}

export async function loopState(ctx: OrchContext, key: string): Promise<LoopState> {
  const task = await ctx.store.getTaskByKey(key);
  const [attempts, runs] = await Promise.all([
    ctx.store.attemptsOfTask(task.id),
    ctx.store.runsOfTask(task.id),
  ]);
  return { task, attempts, runs };
}

export async function withContext<T>(project: TempProject, fn: (ctx: OrchContext) => Promise<T>): Promise<T> {
  const ctx = await project.context();
  try {
    return await fn(ctx);
  } finally {
    await ctx.close();
  }
}

// -------------------------------------------------------------- crashes

/** Starts `orch run --until-idle` in the background; its output is collected for failure messages. */
export function startOrch(
  project: TempProject,
  env: Record<string, string> = {},
): { child: ChildProcess; output: () => string } {
  const child = project.spawnOrch(['run', '--until-idle'], { env });
  live.children.push(child);
  let text = '';
  child.stdout?.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (text += d.toString()));
  return { child, output: () => text };
}

/**
 * Polls the database (through a context of its own) until `check` holds, then
 * SIGKILLs the orch process at once and waits for it to be gone.
 */
export async function killWhen(
  project: TempProject,
  key: string,
  orch: { child: ChildProcess; output: () => string },
  what: string,
  check: (s: LoopState) => boolean,
  opts: { pollMs?: number; timeoutMs?: number } = {},
): Promise<LoopState> {
  const ctx = await project.context();
  try {
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      const state = await loopState(ctx, key);
      if (check(state)) {
        orch.child.kill('SIGKILL');
        await once(orch.child, 'exit');
        return state;
      }
      if (orch.child.exitCode !== null) throw new Error(`orch exited before ${what}:\n${orch.output()}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${orch.output()}`);
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 20));
    }
  } finally {
    await ctx.close();
  }
}

/**
 * Whether a run's agent got past loading its script: its first stream-json
 * line (`system`/`init`) reached the run log. Before that, a rewritten script
 * would still be read by the old agent.
 */
export const agentStarted = (run: AgentRun): boolean =>
  !!run.log_path &&
  existsSync(run.log_path) &&
  readFileSync(run.log_path, 'utf8').includes('"subtype":"init"');

/** A run of `role` for build-loop attempt `n`: running, its process group recorded, its agent at work. */
export const runningRunOf = (s: LoopState, role: string, n: number): AgentRun | undefined =>
  s.runs.find(
    (r) =>
      r.agent === role && r.attempt === n && r.status === 'running' && r.pgid !== null && agentStarted(r),
  );

// -------------------------------------------------------------- invariants

/**
 * What must hold after any crash and restart: attempts are 1..n with no gap
 * or repeat; the ledger file has a header and exactly the database's attempts
 * (numbers, diff hashes, verdicts); no run is left running; no agent process
 * group of the task is alive; each attempt has at most one clean development
 * run and one clean review run.
 */
export async function expectLoopConsistent(project: TempProject, key: string): Promise<LoopState> {
  const state = await withContext(project, (ctx) => loopState(ctx, key));
  const ns = state.attempts.map((a) => a.n);
  expect(ns).toEqual(ns.map((_, i) => i + 1));

  expect(state.task.loop_run_id).toBeTruthy();
  expect(ledgerDisagreement(ledgerPath(project, key), state.task, state.attempts)).toBeNull();

  expect(state.runs.filter((r) => r.status === 'running').map((r) => r.id)).toEqual([]);
  for (const role of ['developer', 'reviewer']) {
    const clean = state.runs.filter((r) => r.agent === role && r.outcome === 'ok').map((r) => r.attempt);
    expect(clean, `clean ${role} runs per attempt`).toEqual([...new Set(clean)]);
  }
  for (const run of state.runs.filter((r) => r.pgid !== null)) {
    // Zombies are reaped by init a moment later; a live member never goes away by itself.
    await waitFor(
      () => !processGroupAlive(run.pgid!),
      5_000,
      `process group ${run.pgid} of run ${run.id} to end`,
    );
  }
  return state;
}
