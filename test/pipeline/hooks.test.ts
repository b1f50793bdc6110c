/**
 * Issue 18: workspace hooks (orch.yaml `hooks`). Whole pipelines through the real CLI with the
 * scripted agent: `after_create` prepares what the project's tests need (a module only it makes),
 * `before_run` / `after_run` run around every agent run, `before_remove` before the worktree goes.
 * A failing or hanging `after_create` / `before_run` fails the try with its output as the
 * feedback, and escalates once the retries are spent; `after_run` only logs. Every failure is a
 * `hook_failed` event `orch task show` shows. A sandboxed role's hooks run in its sandbox: they
 * see what its agent sees (a probe run by both), unless `hooks.sandbox: false`.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bwrapStatus } from '../../src/runtime/process/sandbox.ts';
import {
  makeProject,
  processesWith,
  waitFor,
  type ProjectOptions,
  type TempProject,
  ONLY_DEVELOPMENT,
} from '../helpers/kit.ts';
import { serve } from '../helpers/serve.ts';

const bwrap = await bwrapStatus();

vi.setConfig({ testTimeout: 180_000 });

let project: TempProject | undefined;
afterEach(() => {
  project?.cleanup();
  project = undefined;
});

interface HookFailure {
  hook: string;
  stage: string | null;
  role: string | null;
  outcome: string;
  exit_code: number | null;
  fatal: boolean;
  sandbox_role: string | null;
  summary: string;
  log_path: string | null;
  output_tail: string;
}

interface Shown {
  hook_failures: HookFailure[];
  stage: string;
  status: string;
  terminal_reason: string | null;
  status_detail: string | null;
  feedback: string | null;
  runs: { role: string; stage: string; outcome: string }[];
  gates: { name: string; stage: string; passed: boolean; output_tail: string }[];
}

/** Development, then a test gate that needs `vendor/dep.cjs`: a file no commit holds (it is ignored). */
const PIPELINE = {
  ...ONLY_DEVELOPMENT,
  development: {
    gates: ['check_diff_nonempty', { name: 'unit', command: ['node', 'test.cjs'], timeout_s: 60 }],
  },
};
const FILES = {
  '.gitignore': 'vendor/\n',
  'test.cjs':
    "const dep = require('./vendor/dep.cjs');\nif (dep.answer !== 42) process.exit(1);\nconsole.log('unit ok');\n",
};
/** What an install does here: makes the module the tests require. */
const INSTALL =
  "mkdir -p vendor && echo 'module.exports = { answer: 42 };' > vendor/dep.cjs && echo installed";

function setup(hooks: Record<string, unknown> | null, config: Record<string, unknown> = {}): TempProject {
  const opts: ProjectOptions = {
    files: FILES,
    config: {
      pipeline: PIPELINE,
      budget: { max_attempts: 1 },
      retry: { base_ms: 100, max_ms: 200, max_retries: 1 },
      ...(hooks ? { hooks } : {}),
      ...config,
    },
  };
  project = makeProject(opts);
  expect(project.orch(['task', 'add', 'hooked']).code).toBe(0);
  return project;
}

/** What the last `orch run` printed (its log lines). */
let printed = '';

function run(p: TempProject, env: Record<string, string> = {}): Shown {
  const r = p.orch(['run', '--until-idle'], { env });
  expect(r.code, r.stderr).toBe(0);
  printed = r.stdout + r.stderr;
  return JSON.parse(p.orch(['task', 'show', 'T-1', '--json']).stdout) as Shown;
}

const logsDir = (p: TempProject) => join(p.dir, '.orch', 'logs', 'T-1');
const hookLogs = (p: TempProject, name: string): string[] =>
  readdirSync(logsDir(p))
    .filter((f) => f.startsWith(`hook-${name}-`))
    .sort();
const readLog = (p: TempProject, file: string) => readFileSync(join(logsDir(p), file), 'utf8');
const worktree = (p: TempProject) => join(p.dir, '.orch', 'worktrees', 'sample', 'T-1');

describe('workspace hooks', () => {
  it('after_create installs what the tests need and the task reaches done; before_run and after_run wrap the run, after_run failing is only logged; before_remove precedes the removal; orch logs shows them', () => {
    const p = setup({
      after_create: INSTALL,
      before_run: 'echo "before $ORCH_STAGE $ORCH_ROLE"',
      // Its failure is logged and never fatal.
      after_run: ['sh', '-c', 'echo "after run of $ORCH_ROLE"; exit 3'],
      before_remove: 'echo "removing $ORCH_TASK_KEY"; ls vendor',
    });
    // Neither orch's secrets nor its other variables reach a hook: only the agents' environment.
    const t = run(p, { MY_API_TOKEN: 'sk-hook-secret-123', UNRELATED_VAR: 'leak-me' });
    expect(t).toMatchObject({ stage: 'done', status: 'done' });
    expect(t.gates.find((g) => g.name === 'unit')).toMatchObject({ passed: true });
    expect(t.gates.find((g) => g.name === 'unit')!.output_tail).toContain('unit ok');

    // after_create ran once; before_run and after_run around the one agent run.
    expect(hookLogs(p, 'after_create')).toEqual(['hook-after_create-1.log']);
    expect(readLog(p, 'hook-after_create-1.log')).toContain('installed');
    expect(hookLogs(p, 'before_run')).toEqual(['hook-before_run-1.log']);
    expect(readLog(p, 'hook-before_run-1.log')).toContain('before development developer');
    expect(readLog(p, 'hook-after_run-1.log')).toContain('after run of developer');
    expect(printed).toMatch(
      /T-1: hooks\.after_run failed: exit 3 \(log .*hook-after_run-1\.log\) \(not fatal\)/,
    );
    // Not fatal, yet on the task's timeline: the one failure, with its output.
    expect(t.hook_failures).toEqual([
      expect.objectContaining({
        hook: 'after_run',
        stage: 'development',
        role: 'developer',
        outcome: 'failed',
        exit_code: 3,
        fatal: false,
        sandbox_role: null,
        log_path: join(logsDir(p), 'hook-after_run-1.log'),
      }),
    ]);
    expect(t.hook_failures[0]!.output_tail).toContain('after run of developer');
    // before_remove ran in the worktree, while it still held what after_create made; then it went.
    expect(readLog(p, 'hook-before_remove-1.log')).toMatch(/removing T-1\s+dep\.cjs/);
    expect(existsSync(worktree(p))).toBe(false);

    // `orch logs` shows the hooks' output beside the runs'.
    const logs = p.orch(['logs', 'T-1']);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('==> hook after_create #1');
    expect(logs.stdout).toContain('installed');
    expect(logs.stdout).toContain('==> hook after_run #1');
    expect(logs.stdout.indexOf('hook after_create')).toBeLessThan(logs.stdout.indexOf('==> run '));

    // No secret and nothing else of orch's environment in any hook's output.
    const all = readdirSync(logsDir(p))
      .filter((f) => f.startsWith('hook-'))
      .map((f) => readLog(p, f))
      .join('\n');
    expect(all).not.toContain('sk-hook-secret-123');
    expect(all).not.toContain('leak-me');
  });

  it('the same project without after_create fails its test gate', () => {
    const p = setup(null);
    const t = run(p);
    expect(t).toMatchObject({ stage: 'development', status: 'escalated', terminal_reason: 'max_attempts' });
    const unit = t.gates.find((g) => g.name === 'unit')!;
    expect(unit.passed).toBe(false);
    expect(unit.output_tail).toContain('vendor/dep.cjs');
    expect(existsSync(logsDir(p)) ? hookLogs(p, 'after_create') : []).toEqual([]);
  });

  it('hooks run with the contract variables and the agents scrubbed environment', async () => {
    const p = setup({ after_create: `${INSTALL}; env | sort` }, { worktrees: { remove: 'never' } });
    const t = run(p, { MY_API_TOKEN: 'sk-hook-secret-123' });
    expect(t.status).toBe('done');
    const log = readLog(p, 'hook-after_create-1.log');
    expect(log).toContain('ORCH_TASK_KEY=T-1');
    expect(log).toContain('ORCH_HOOK=after_create');
    expect(log).toContain(`ORCH_WORKTREE=${worktree(p)}`);
    expect(log).not.toContain('MY_API_TOKEN');
    expect(log).not.toContain('ORCH_HOME=');
    // The marker that after_create succeeded lives in the worktree's git directory, out of git status.
    expect(p.git(['-C', worktree(p), 'status', '--porcelain']).trim()).toBe('');
    const ctx = await p.context();
    try {
      const task = await ctx.store.getTaskByKey('T-1');
      const rows = await ctx.store.processes.ofTask(task.id);
      expect(rows.filter((r) => r.kind === 'hook').map((r) => `${r.name}:${r.outcome}`)).toEqual([
        'after_create:ok',
      ]);
    } finally {
      await ctx.close();
    }
  });

  it('a failing after_create fails the try with its output as feedback, runs again, and escalates after the retries', () => {
    const p = setup({ after_create: 'echo "npm ERR! network unreachable" >&2; exit 7' });
    const t = run(p);
    expect(t).toMatchObject({ stage: 'created', status: 'escalated', terminal_reason: 'agent_failure' });
    expect(t.runs).toEqual([]);
    expect(t.feedback).toContain('npm ERR! network unreachable');
    expect(t.feedback).toContain('hooks.after_create failed: exit 7');
    expect(t.status_detail).toContain('hooks.after_create failed');
    // One try and one retry (retry.max_retries: 1): it ran again because it never succeeded.
    expect(hookLogs(p, 'after_create')).toEqual(['hook-after_create-1.log', 'hook-after_create-2.log']);
    const packet = readFileSync(join(p.dir, '.orch', 'artifacts', 'T-1', 'terminal-packet.md'), 'utf8');
    expect(packet).toContain('npm ERR! network unreachable');
  });

  it('after_create that failed once runs again, and only until it succeeds', () => {
    const p = setup({
      after_create: `test -f ../T-1.tried || { touch ../T-1.tried; echo "first try fails"; exit 1; }; ${INSTALL}`,
    });
    const t = run(p);
    expect(t).toMatchObject({ stage: 'done', status: 'done' });
    expect(hookLogs(p, 'after_create')).toEqual(['hook-after_create-1.log', 'hook-after_create-2.log']);
    expect(readLog(p, 'hook-after_create-1.log')).toContain('first try fails');
  });

  it('a failing before_run fails the try before the agent runs, and escalates after the retries', () => {
    const p = setup({ after_create: INSTALL, before_run: 'echo "cannot warm the cache"; exit 2' });
    const t = run(p);
    expect(t).toMatchObject({ stage: 'development', status: 'escalated', terminal_reason: 'agent_failure' });
    expect(t.runs).toEqual([]);
    expect(t.feedback).toContain('cannot warm the cache');
    expect(t.feedback).toContain('hooks.before_run failed: exit 2');
    expect(hookLogs(p, 'before_run')).toHaveLength(2);
    // after_create succeeded once and is not run again for the retry.
    expect(hookLogs(p, 'after_create')).toHaveLength(1);
  });

  it('each failed before_run is a hook_failed event, with its output redacted, shown by task show and the API', async () => {
    const secret = 'hunter2-hook-secret';
    const p = setup({
      after_create: INSTALL,
      before_run: `echo "registry login with ${secret} refused"; exit 2`,
    });
    const t = run(p, { MY_REGISTRY_TOKEN: secret });
    expect(t).toMatchObject({ stage: 'development', status: 'escalated', terminal_reason: 'agent_failure' });
    // The try and its retry: two failures, each failing its try.
    expect(t.hook_failures).toHaveLength(2);
    for (const [i, h] of t.hook_failures.entries()) {
      expect(h).toMatchObject({
        hook: 'before_run',
        stage: 'development',
        role: 'developer',
        outcome: 'failed',
        exit_code: 2,
        fatal: true,
        log_path: join(logsDir(p), `hook-before_run-${i + 1}.log`),
      });
      expect(h.summary).toContain('hooks.before_run failed: exit 2');
      expect(h.output_tail).toContain('registry login with [REDACTED] refused');
    }
    expect(JSON.stringify(t)).not.toContain(secret);
    const text = p.orch(['task', 'show', 'T-1']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      /hook before_run \(development\) FAILED at \S+, failing the try: hooks\.before_run failed: exit 2 \(log .*hook-before_run-2\.log\)/,
    );
    // The API's timeline of the task holds the same events, in order with the failed tries.
    const server = await serve(p, { MY_REGISTRY_TOKEN: secret });
    try {
      const res = await fetch(`${server.url}/api/tasks/T-1/events`);
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body).not.toContain(secret);
      const events = JSON.parse(body) as { kind: string; payload: Record<string, unknown> }[];
      const kinds = events.map((e) => e.kind).filter((k) => k === 'hook_failed' || k === 'run_failed');
      expect(kinds).toEqual(['hook_failed', 'run_failed', 'hook_failed']);
      expect(events.find((e) => e.kind === 'hook_failed')!.payload).toMatchObject({
        hook: 'before_run',
        fatal: true,
        output_tail: expect.stringContaining('registry login with [REDACTED] refused') as unknown,
      });
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('a hook that ignores SIGTERM and outlives hooks.timeout_s is killed, and fails the try', () => {
    const p = setup(
      { after_create: "trap '' TERM; echo started; sleep 37.25; echo never", timeout_s: 1 },
      { timeouts: { agent_kill_grace_seconds: 1 }, retry: { base_ms: 100, max_ms: 200, max_retries: 0 } },
    );
    const t = run(p);
    expect(t).toMatchObject({ stage: 'created', status: 'escalated', terminal_reason: 'agent_failure' });
    expect(t.feedback).toContain('timed out after 1s (hooks.timeout_s)');
    expect(t.feedback).toContain('started');
    expect(t.feedback).not.toContain('\nnever');
    expect(processesWith('sleep 37.25')).toEqual([]);
  });

  it('SIGTERM of orch ends a running hook, records it interrupted, and gives the try back', async () => {
    const p = setup({ after_create: 'echo started; sleep 41.5' });
    const child = p.spawnOrch(['run', '--until-idle']);
    await waitFor(() => processesWith('sleep 41.5').length > 0, 60_000, 'the hook');
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(processesWith('sleep 41.5')).toEqual([]);
    const ctx = await p.context();
    try {
      const task = await ctx.store.getTaskByKey('T-1');
      expect(task.status).toBe('queued');
      const rows = await ctx.store.processes.ofTask(task.id);
      expect(rows.map((r) => `${r.kind}:${r.name}:${r.outcome}`)).toEqual(['hook:after_create:interrupted']);
    } finally {
      await ctx.close();
    }
  });

  it("before_remove runs when a cancelled task's worktree is removed, and not with worktrees.remove: never", () => {
    const approval = { pipeline: { ...PIPELINE, development: { ...PIPELINE.development, approval: true } } };
    const hooks = { after_create: INSTALL, before_remove: 'echo "removing $ORCH_TASK_KEY from $PWD"' };
    const p = setup(hooks, approval);
    // The worktree is made (after_create runs), then development waits for an approval.
    expect(run(p)).toMatchObject({ stage: 'development', status: 'waiting' });
    expect(existsSync(join(worktree(p), 'vendor', 'dep.cjs'))).toBe(true);
    expect(p.orch(['task', 'cancel', 'T-1']).code).toBe(0);
    expect(readLog(p, 'hook-before_remove-1.log')).toContain(`removing T-1 from ${worktree(p)}`);
    expect(existsSync(worktree(p))).toBe(false);
    p.cleanup();

    const kept = setup(hooks, { ...approval, worktrees: { remove: 'never' } });
    expect(run(kept).status).toBe('waiting');
    expect(kept.orch(['task', 'cancel', 'T-1']).code).toBe(0);
    expect(hookLogs(kept, 'before_remove')).toEqual([]);
    expect(existsSync(worktree(kept))).toBe(true);
  });

  it('refuses a hooks config it cannot run, naming the key', () => {
    const p = setup(null);
    const yaml = readFileSync(join(p.dir, 'orch.yaml'), 'utf8');
    writeFileSync(join(p.dir, 'orch.yaml'), `${yaml}hooks:\n  after_create: 5\n  before_start: x\n`);
    const r = p.orch(['run', '--until-idle']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /orch\.yaml:\d+:\d+ +hooks\.after_create: a shell command \(a string, run with sh -c\) or an argv/,
    );
    expect(r.stderr).toMatch(/hooks\.before_start: unknown key/);
    // hooks.timeout_s is a run's timeout for the reaper invariant.
    writeFileSync(join(p.dir, 'orch.yaml'), `${yaml}hooks:\n  after_create: [npm, ci]\n  timeout_s: 6000\n`);
    const s = p.orch(['run', '--until-idle']);
    expect(s.code).toBe(2);
    expect(s.stderr).toMatch(
      /hooks\.timeout_s: ORCH_REAPER_MAX_RUNNING_S \(5400\) must be greater than the run timeout hooks\.timeout_s \(6000\)/,
    );
  });
});

/**
 * What a process can do where it runs, one `name=yes|no` a line: write to the project's checkout
 * (four levels above the worktree), read its orch.yaml, have a network of its own (the task's
 * title names orch's network namespace), and its TMPDIR.
 */
const PROBE = `root=$(cd "$ORCH_WORKTREE/../../../.." && pwd)
set -- $ORCH_TASK_TITLE
echo "write_root=$( (echo x > "$root/escaped-\${ORCH_HOOK:-agent}.txt") 2>/dev/null && echo yes || echo no)"
echo "read_orch_yaml=$(grep -qs project: "$root/orch.yaml" && echo yes || echo no)"
echo "own_network=$(test "$(readlink /proc/self/ns/net)" != "$2" && echo yes || echo no)"
echo "tmpdir=$TMPDIR"
`;
/** A command agent that runs the probe and leaves its report as its work. */
const PROBE_AGENT = `sh probe.sh > agent-probe.txt
echo '{"type":"result","subtype":"success","is_error":false,"result":"probed"}'
`;

const report = (text: string): Record<string, string> =>
  Object.fromEntries([...text.matchAll(/^(\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));

describe.skipIf(!bwrap.ok)(
  `workspace hooks of a sandboxed role${bwrap.ok ? '' : ` (skipped: bubblewrap does not work here: ${bwrap.error})`}`,
  () => {
    function sandboxed(hooks: Record<string, unknown>): TempProject {
      project = makeProject({
        files: { ...FILES, 'probe.sh': PROBE, 'agent.sh': PROBE_AGENT },
        config: {
          pipeline: PIPELINE,
          agents: {
            default: { adapter: 'scripted' },
            developer: { adapter: 'command', command: ['sh', 'agent.sh'], sandbox: true },
          },
          budget: { max_attempts: 1 },
          retry: { base_ms: 100, max_ms: 200, max_retries: 0 },
          hooks,
        },
      });
      const hostNet = readlinkSync('/proc/self/ns/net');
      expect(project.orch(['task', 'add', `probe ${hostNet}`]).code).toBe(0);
      return project;
    }

    it("every hook sees what the agent sees; a failing after_run is an event saying it ran in the role's sandbox", () => {
      const p = sandboxed({
        after_create: `${INSTALL} && sh probe.sh`,
        before_run: 'sh probe.sh',
        after_run: 'sh probe.sh; exit 4',
        before_remove: 'sh probe.sh',
      });
      const t = run(p);
      expect(t).toMatchObject({ stage: 'done', status: 'done' });
      const agent = report(p.git(['show', 'main:agent-probe.txt']));
      expect(agent).toEqual({ write_root: 'no', read_orch_yaml: 'no', own_network: 'yes', tmpdir: '/tmp' });
      // Each hook saw the same world as the agent: no checkout to read or write, no network.
      for (const name of ['after_create', 'before_run', 'after_run', 'before_remove'])
        expect(report(readLog(p, `hook-${name}-1.log`)), name).toEqual(agent);
      expect(readdirSync(p.dir).filter((f) => f.startsWith('escaped-'))).toEqual([]);

      // The failing after_run is on the timeline, not fatal, saying where it ran and the way out.
      expect(t.hook_failures).toEqual([
        expect.objectContaining({
          hook: 'after_run',
          role: 'developer',
          exit_code: 4,
          fatal: false,
          sandbox_role: 'developer',
        }),
      ]);
      const failure = t.hook_failures[0]!;
      expect(failure.summary).toContain("hooks.after_run failed in the developer's sandbox: exit 4");
      expect(failure.output_tail).toContain('write_root=no');
      expect(failure.output_tail).toContain('no network');
      expect(failure.output_tail).toContain('hooks.sandbox: false');
      expect(printed).toContain("T-1: hooks.after_run failed in the developer's sandbox: exit 4");
    });

    it('a hook whose sandbox cannot be built fails as a command that cannot start, never running outside it', () => {
      const p = sandboxed({ after_create: INSTALL });
      const t = run(p, { ORCH_BWRAP: '/nonexistent/bwrap' });
      expect(t).toMatchObject({
        stage: 'created',
        status: 'escalated',
        terminal_reason: 'agent_failure',
      });
      expect(t.runs).toEqual([]);
      expect(t.hook_failures[0]).toMatchObject({
        hook: 'after_create',
        outcome: 'spawn_error',
        fatal: true,
        sandbox_role: 'developer',
      });
      expect(t.hook_failures[0]!.summary).toMatch(
        /hooks\.after_create failed in the developer's sandbox: could not start: .*in its sandbox: bwrap \(\/nonexistent\/bwrap\) not found/,
      );
      expect(t.feedback).toContain('could not start');
      expect(existsSync(join(worktree(p), 'vendor'))).toBe(false);
    });

    it('hooks.sandbox: false runs the hooks outside the sandbox, the agent still in it', () => {
      const p = sandboxed({ after_create: INSTALL, before_run: 'sh probe.sh', sandbox: false });
      const t = run(p);
      expect(t).toMatchObject({ stage: 'done', status: 'done' });
      expect(report(p.git(['show', 'main:agent-probe.txt']))).toMatchObject({
        write_root: 'no',
        own_network: 'yes',
      });
      expect(report(readLog(p, 'hook-before_run-1.log'))).toMatchObject({
        write_root: 'yes',
        read_orch_yaml: 'yes',
        own_network: 'no',
      });
      expect(existsSync(join(p.dir, 'escaped-before_run.txt'))).toBe(true);
    });
  },
);
