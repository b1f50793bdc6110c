/**
 * Kit for the end-to-end tests of the real agent CLIs through orch: orch run
 * asynchronously (the fake model servers live in the test process, so a
 * synchronous spawn would starve them), the runs of a task read from the
 * database, and the result line a CLI printed read back from the run log.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, type TempProject } from '../helpers/kit.ts';
import type { AgentRun, Task } from '../../src/store/schema.ts';

export interface OrchResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the orch CLI without blocking this process's event loop. */
export function runOrch(
  project: TempProject,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<OrchResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: project.dir,
      env: { ...project.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 150_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A fresh HOME for an agent CLI, so no login, setting or session of the machine leaks in. */
export const agentHome = (): string => mkdtempSync(join(tmpdir(), 'orch-agent-home-'));

export interface TaskRuns {
  task: Task;
  runs: AgentRun[];
  /** The development runs, in order. */
  dev: AgentRun[];
  events: { kind: string; payload: Record<string, unknown> }[];
}

/** The task with its runs and event rows, from the database. */
export async function taskRuns(project: TempProject, title: string): Promise<TaskRuns> {
  const ctx = await project.context();
  try {
    const task = (await ctx.store.listTasks()).find((t) => t.title === title);
    if (!task) throw new Error(`no task titled ${title}`);
    const runs = await ctx.store.runsOfTask(task.id);
    const events = await ctx.store.db
      .selectFrom('events')
      .selectAll()
      .where('task_id', '=', task.id)
      .orderBy('id')
      .execute();
    return {
      task,
      runs,
      dev: runs.filter((r) => r.agent === 'developer'),
      events: events.map((e) => ({
        kind: e.kind,
        payload: JSON.parse(e.payload) as Record<string, unknown>,
      })),
    };
  } finally {
    await ctx.close();
  }
}

/** Every JSON object the agent printed on stdout, from its run log (stderr lines are prefixed there). */
export function loggedObjects(run: AgentRun): Record<string, unknown>[] {
  if (!run.log_path) return [];
  return readFileSync(run.log_path, 'utf8')
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** The last stdout object of a given `type` in the run's log. */
export function lastLogged(run: AgentRun, type: string): Record<string, unknown> | undefined {
  return loggedObjects(run)
    .filter((o) => o.type === type)
    .at(-1);
}

/** Whether this process runs as root (Claude Code then needs IS_SANDBOX=1 to skip permissions). */
export const isRoot = (): boolean => process.getuid?.() === 0;
