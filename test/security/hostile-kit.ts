/**
 * Hostile agents, and orch watched while it works them. The agent is a real
 * shell script committed in the project (`hostile.sh`, run by the command
 * adapter, sandboxed or not); the task's title says which misdeed it does.
 * `serveUntil` runs `orch serve` as a user would and, the whole time (once a
 * first request has warmed it up), asks `/api/status` every 200 ms with a
 * one-second limit: an event loop stopped by a FIFO or a huge read shows up as
 * a request that timed out, and as a stall in orch's own log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { expect } from 'vitest';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, makeProject, processesIn, waitFor, type TempProject } from '../helpers/kit.ts';
import type { OrchContext } from '../../src/runtime/context.ts';
import type { ProcessRow } from '../../src/store/schema.ts';

/** How soon `/api/status` must answer while orch works, ms. */
export const ANSWER_WITHIN_MS = 1000;
/** Unanswered polls after which `serveUntil` stops waiting for the work. */
const UNANSWERED_GIVE_UP = 10;

/**
 * The agent. `$ORCH_ROLE:<first word of the title>` picks what it does; anything not listed does
 * the role's honest work. Every run that does not exit 1 ends with a successful result line.
 */
export const HOSTILE_AGENT = `#!/bin/sh
set -u
dir="docs/tasks/$ORCH_TASK_KEY"
mkdir -p "$dir"
set -- $ORCH_TASK_TITLE
what=$1
ESC=$(printf '\\033')
BEL=$(printf '\\007')
plan() { echo "the plan" > "$dir/test-plan.md"; }
case "$ORCH_ROLE:$what" in
  analyst:fifo) mkfifo "$dir/requirements.md"; plan ;;
  analyst:devzero) ln -s /dev/zero "$dir/requirements.md"; plan ;;
  analyst:outside) ln -s "$2" "$dir/requirements.md"; plan ;;
  analyst:escapes)
    # A clipboard write (OSC 52), a window title, clear screen and colour, on stdout and stderr.
    printf '%s]52;c;cm0gLXJmIH4K%s%s]0;pwned-title%s%s[2J%s[31mred text%s[0m\\n' "$ESC" "$BEL" "$ESC" "$BEL" "$ESC" "$ESC" "$ESC"
    printf '%s]0;stderr-title%s%s[2J%s]52;c;ZWNobyBwd25lZAo=%sboom\\n' "$ESC" "$BEL" "$ESC" "$ESC" "$BEL" >&2
    exit 1 ;;
  analyst:*) echo "requirements of $ORCH_TASK_KEY" > "$dir/requirements.md"; plan ;;
  architect:fifo-adr) mkfifo "$dir/adr.md" ;;
  architect:*) echo "# ADR for $ORCH_TASK_KEY" > "$dir/adr.md" ;;
  developer:nested) mkdir -p vendor/lib && (cd vendor/lib && git init -q) && echo "x" > vendor/lib/x.js ;;
  developer:sparse) truncate -s 10G data.bin ;;
  developer:*) echo "change for $ORCH_TASK_KEY" > "change-$ORCH_TASK_KEY.txt" ;;
  *) ;;
esac
echo '{"type":"result","subtype":"success","is_error":false,"result":"done"}'
`;

/** Stages on unless listed: analysis and development only (development cannot be disabled). */
export function pipeline(on: string[] = ['analysis']): Record<string, unknown> {
  const all = ['analysis', 'architecture', 'review', 'testing', 'deploy-staging', 'deploy'];
  return Object.fromEntries(all.filter((s) => !on.includes(s)).map((s) => [s, { enabled: false }]));
}

/** A project whose every role is the hostile agent, sandboxed or not. */
export function hostileProject(opts: { sandbox: boolean; config?: Record<string, unknown> }): TempProject {
  return makeProject({
    config: {
      agents: {
        default: { adapter: 'command', command: ['sh', 'hostile.sh'], sandbox: opts.sandbox },
      },
      retry: { max_retries: 1, base_ms: 50, max_ms: 100 },
      timeouts: { agent_kill_grace_seconds: 2 },
      worktrees: { remove: 'never' },
      pipeline: pipeline(),
      ...opts.config,
    },
    files: { 'hostile.sh': HOSTILE_AGENT },
  });
}

/** No byte a terminal acts on: ESC, BEL and the other C0 controls but tab and newline, DEL, C1. */
// eslint-disable-next-line no-control-regex
const RAW_CONTROL = /[\u0000-\u0008\u000b-\u000c\u000e-\u001f\u007f-\u009f]/;

export function expectTerminalSafe(what: string, text: string): void {
  const at = text.search(RAW_CONTROL);
  expect(
    at,
    `${what} holds a raw control character near ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 40))}`,
  ).toBe(-1);
}

export interface Watched {
  /** Everything orch printed, stdout then stderr. */
  stdout: string;
  stderr: string;
  /** Its exit code (null when it had to be killed). */
  code: number | null;
  /** `/api/status` polls that got no answer within {@link ANSWER_WITHIN_MS}, with when and why. */
  unanswered: string[];
  polls: number;
}

/** The `orch serve` children started here, killed by {@link killLeftovers} whatever happened. */
const started = new Set<ChildProcess>();

/**
 * Runs `orch serve --port 0` until `done` says so (asked every 500 ms, through the API), polling
 * `/api/status` meanwhile; then SIGTERM, and waits for the exit. Gives up after `timeoutMs`.
 */
export async function serveUntil(
  project: TempProject,
  done: (get: (path: string) => Promise<unknown>) => Promise<boolean>,
  opts: { timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<Watched> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0'], {
    cwd: project.dir,
    env: { ...project.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + (opts.timeoutMs ?? 240_000);
  const url = await waitFor(
    () => /orch serve: (http:\/\/\S+)/.exec(stdout)?.[1],
    90_000,
    `orch serve to start:\n${stderr}`,
  );
  // Bounded like the polls: an orch that stopped answering must not hang the test too.
  const get = async (path: string): Promise<unknown> =>
    (await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) })).json();
  const unanswered: string[] = [];
  let polls = 0;
  let polling = true;
  // The first request loads the API's code paths; the clock starts once it has answered.
  await fetch(`${url}/api/status`, { signal: AbortSignal.timeout(30_000) }).then((r) => r.arrayBuffer());
  const poller = (async () => {
    while (polling) {
      const at = Date.now();
      try {
        const res = await fetch(`${url}/api/status`, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
        await res.arrayBuffer();
        if (!res.ok) unanswered.push(`${new Date(at).toISOString()}: status ${res.status}`);
      } catch (error) {
        unanswered.push(`${new Date(at).toISOString()}: ${(error as Error).message}`);
      }
      polls += 1;
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  try {
    while (!(await done(get).catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`gave up waiting; orch said:\n${stdout}\n${stderr}`);
      // An orch that stopped answering will not finish either: the caller's check of `unanswered` says so.
      if (unanswered.length >= UNANSWERED_GIVE_UP) break;
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    polling = false;
    await poller;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
    started.delete(child);
  }
  return { stdout, stderr, code: child.exitCode, unanswered, polls };
}

/** Whether every task the API lists is done, escalated or cancelled. */
export async function allSettled(get: (path: string) => Promise<unknown>, count: number): Promise<boolean> {
  const tasks = (await get('/api/tasks')) as { status: string }[];
  return tasks.length === count && tasks.every((t) => ['done', 'escalated', 'cancelled'].includes(t.status));
}

/**
 * Ends what a test made: its context, the orch processes started here and anything still running
 * in its project (returned, so the test fails on them), the project and the temporary directories.
 */
export async function endTest(
  project: TempProject | undefined,
  ctx: OrchContext | undefined,
  dirs: string[],
): Promise<number[]> {
  await ctx?.close();
  const left = killLeftovers(project);
  project?.cleanup();
  for (const dir of dirs) if (dir) rmSync(dir, { recursive: true, force: true });
  return left;
}

/** Kills what a failed test left: orch processes started here, and anything running in the project. */
function killLeftovers(project: TempProject | undefined): number[] {
  for (const child of started) child.kill('SIGKILL');
  started.clear();
  const left = project ? processesIn(project.dir) : [];
  for (const pid of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return left;
}

/**
 * A project whose testing gate (`project.test_command`) ignores SIGTERM and sleeps; its first run
 * writes `first` to `<marks>/gate-runs`, later runs write `again` and pass at once. One task added.
 */
export function gatedProject(
  marks: string,
  opts: { killGraceS?: number } = {},
): { project: TempProject; mark: string } {
  const mark = join(marks, 'gate-runs');
  // TERM is ignored before `first` is written: a test that saw `first` knows a SIGTERM cannot end the gate.
  const script = `trap '' TERM; if [ -s '${mark}' ]; then echo again >> '${mark}'; exit 0; fi; echo first >> '${mark}'; echo gate-started; sleep 300 & wait`;
  const project = hostileProject({
    sandbox: false,
    config: {
      project: { name: 'sample', key_prefix: 'T', base_branch: 'main', test_command: ['sh', '-c', script] },
      pipeline: pipeline(['testing']),
      timeouts: { agent_kill_grace_seconds: opts.killGraceS ?? 2 },
    },
  });
  expect(project.orch(['task', 'add', 'gated']).code).toBe(0);
  return { project, mark };
}

/**
 * Starts an orch command in the background and waits until its test gate is recorded running
 * and, with `mark` (the {@link gatedProject}'s), until the gate ignores SIGTERM.
 */
export async function startAndReachGate(
  project: TempProject,
  args: string[],
  ctx: OrchContext,
  mark?: string,
): Promise<{ child: ChildProcess; exited: Promise<number | null>; gate: ProcessRow; output: () => string }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: project.dir,
    env: project.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      started.delete(child);
      resolve(code);
    }),
  );
  const [gate] = await waitFor(
    async () => {
      const rows = (await ctx.store.processes.running()).filter((r) => r.kind === 'gate');
      return rows.length ? rows : null;
    },
    150_000,
    `the test gate to run; orch said:\n${output}`,
  );
  if (mark)
    await waitFor(
      () => existsSync(mark) && readFileSync(mark, 'utf8').includes('first'),
      60_000,
      'the gate to ignore SIGTERM',
    );
  return { child, exited, gate: gate!, output: () => output };
}
