/**
 * Kit for the end-to-end tests of the real agent CLIs through orch: orch run
 * asynchronously (the fake model servers live in the test process, so a
 * synchronous spawn would starve them), the runs of a task read from the
 * database, and the result line a CLI printed read back from the run log.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { expect } from 'vitest';
import { CLI, makeProject, processesIn, type TempProject } from '../helpers/kit.ts';
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

/**
 * A fresh HOME for an agent CLI, so no login, setting or session of the machine leaks in;
 * `settings` are JSON files written into it, by path relative to the HOME.
 */
export function agentHome(settings: Record<string, unknown> = {}): string {
  const home = mkdtempSync(join(tmpdir(), 'orch-agent-home-'));
  for (const [path, content] of Object.entries(settings)) {
    mkdirSync(dirname(join(home, path)), { recursive: true });
    writeFileSync(join(home, path), JSON.stringify(content));
  }
  return home;
}

/** A project whose developer is `developer`, every other role the scripted agent. */
export const developerProject = (
  developer: Record<string, unknown>,
  config: Record<string, unknown> = {},
): TempProject =>
  makeProject({ config: { agents: { default: { adapter: 'scripted' }, developer }, ...config } });

/** A task whose description carries the marker that picks its conversation on the fake. */
export interface ScriptedTask {
  title: string;
  marker: string;
}

/** Adds the tasks, then works them all at once with `orch run --until-idle`. */
export async function runScriptedTasks(
  project: TempProject,
  tasks: Record<string, ScriptedTask>,
  env: Record<string, string> = {},
): Promise<OrchResult> {
  const all = Object.values(tasks);
  for (const { title, marker } of all) {
    const added = project.orch(['task', 'add', title, '--description', `Scripted by the fake (${marker}).`]);
    expect(added.code, added.stderr).toBe(0);
  }
  return runOrch(project, ['run', '--until-idle'], { env: { ORCH_CONCURRENCY: String(all.length), ...env } });
}

/** The requests of the conversation a marker picks, the conversations scripted in the order of `tasks`. */
export function requestsOf<R extends { conversation: number | null }>(
  requests: R[],
  tasks: Record<string, ScriptedTask>,
  marker: string,
): R[] {
  const index = Object.values(tasks).findIndex((t) => t.marker === marker);
  return requests.filter((r) => r.conversation === index);
}

/** Sums one count over the scripted turns' usages. */
export const sumOf =
  <U>(usages: U[]) =>
  (pick: (u: U) => number | undefined): number =>
    usages.reduce((s, u) => s + (pick(u) ?? 0), 0);

/** Closes the fake and removes the project, killing its leftover processes first if asked. */
export async function closeAll(
  fake: { close(): Promise<void> } | undefined,
  project: TempProject | undefined,
  opts: { killLeftovers?: boolean } = {},
): Promise<void> {
  await fake?.close();
  if (project && opts.killLeftovers) for (const pid of processesIn(project.dir)) process.kill(pid, 'SIGKILL');
  project?.cleanup();
}

/** orch ran every task to its end, and the script answered every request the CLI made. */
export function expectScriptedRun(run: OrchResult, requests: { served: string }[]): void {
  expect(run.code, run.stderr).toBe(0);
  expect(requests.filter((r) => r.served === 'unmatched' || r.served === 'not_found')).toEqual([]);
}

// The happy conversation every CLI plays: write src/feature.mjs, change it to return 2, run the check.
export const FEATURE_V1 = 'export const feature = () => 1;\n';
export const CHECK_COMMAND = `node -e "import('./src/feature.mjs').then((m) => console.log('feature=' + m.feature()))" > check.txt`;
export const FEATURE_DONE = 'Implemented feature() returning 2.';

/**
 * The happy task is done with the feature and its check committed, in one run that
 * ended ok, stamped with `stamp` (adapter, model, effort); returns that run.
 */
export async function expectFeatureDone(
  project: TempProject,
  title: string,
  stamp: Partial<AgentRun>,
  explain?: (dev: AgentRun[]) => string,
): Promise<AgentRun> {
  const { task, dev } = await taskRuns(project, title);
  expect(task.status, explain?.(dev)).toBe('done');
  expect(project.git(['show', 'main:src/feature.mjs'])).toBe('export const feature = () => 2;\n');
  expect(project.git(['show', 'main:check.txt'])).toBe('feature=2\n');
  expect(dev).toHaveLength(1);
  const [r] = dev;
  expect(r).toMatchObject({ outcome: 'ok', exit_code: 0, ...stamp });
  return r!;
}

/** The task is done in one run that ended ok, `file` committed with `content`. */
export async function expectDoneInOneRun(
  project: TempProject,
  title: string,
  file: string,
  content: string,
): Promise<TaskRuns> {
  const runs = await taskRuns(project, title);
  expect(runs.task.status).toBe('done');
  expect(runs.dev.map((r) => r.outcome)).toEqual(['ok']);
  expect(project.git(['show', `main:${file}`])).toBe(content);
  return runs;
}

/** The task escalated as agent_failure, still in development. */
export async function expectEscalatedInDevelopment(project: TempProject, title: string): Promise<TaskRuns> {
  const runs = await taskRuns(project, title);
  expect(runs.task).toMatchObject({
    status: 'escalated',
    terminal_reason: 'agent_failure',
    stage: 'development',
  });
  return runs;
}

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
