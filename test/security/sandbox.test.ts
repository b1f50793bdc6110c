/**
 * Issue 11, the agent sandbox: a role with `sandbox:` runs its agent under
 * bubblewrap. Through the real CLI, a command agent (a shell script committed
 * in the repository) tries what a hostile agent would: read the project's
 * checkout, orch's database, a file in another temporary directory, its
 * parent's environment; write outside its worktree; commit; reach a loopback
 * server. Its report lands with its work. Then the runner's process control
 * under bwrap, `orch doctor`, and a missing bwrap.
 */
import { createServer, type Server } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  FIXTURES,
  makeProject,
  processesIn,
  processesWith,
  waitFor,
  type TempProject,
} from '../helpers/kit.ts';
import { bwrapStatus, type SandboxPlan } from '../../src/runtime/process/sandbox.ts';
import { runAgentProcess, type AgentProcessSpec } from '../../src/runtime/process/run-agent-process.ts';
import { sandboxPlan } from '../../src/runtime/sandbox.ts';

const bwrap = await bwrapStatus();
/** A describe's name, saying why it is skipped when bwrap does not work here. */
const needsBwrap = (name: string): string =>
  bwrap.ok ? name : `${name} (skipped: bubblewrap does not work here: ${bwrap.error})`;

/**
 * The probing agent. The task title names a directory outside every project and the port of a
 * loopback server; the project's checkout is four levels above the worktree
 * (`<root>/.orch/worktrees/sample/<KEY>`). Each probe prints `name=yes|no`.
 */
const PROBE_AGENT = `#!/bin/sh
set -u
root=$(cd "$ORCH_WORKTREE/../../../.." && pwd)
set -- $ORCH_TASK_TITLE
outside=$2
port=$3
has() { grep -qs "$1" "$2" && echo yes || echo no; }
ok() { "$@" >/dev/null 2>&1 && echo yes || echo no; }
{
  echo "read_root_file=$(has ROOT-SECRET "$root/root-secret.txt")"
  echo "read_orch_yaml=$(has project: "$root/orch.yaml")"
  echo "read_database=$(has 'SQLite format' "$root/.orch/orch.db")"
  echo "read_outside=$(has OUTSIDE-SECRET "$outside/outside.txt")"
  echo "read_parent_env=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c ORCH_GITHUB_TOKEN)"
  echo "write_root=$(ok sh -c "echo x > '$root/escaped.txt'")"
  echo "write_git_hooks=$(ok sh -c "echo x > '$root/.git/hooks/post-commit'")"
  echo "write_git_file=$(ok sh -c "echo gitdir: /tmp > .git")"
  echo "write_tmp=$(ok sh -c 'echo x > /tmp/scratch')"
  echo "tmpdir=$TMPDIR"
  echo "git_status=$(ok git status --porcelain)"
  echo "git_log=$(ok git log -1)"
  echo "git_commit=$(ok git -c user.name=a -c user.email=a@localhost commit -q --allow-empty -m sneaky)"
  echo "network=$(ok bash -c "echo hi > /dev/tcp/127.0.0.1/$port")"
} > sandbox-report.txt
echo "developed in a sandbox" > developed.txt
echo '{"type":"result","subtype":"success","is_error":false,"result":"probed"}'
`;

/** Counts connections, so a probe that claims it could not connect is checked from the other side. */
let server: Server;
let port = 0;
let connections = 0;
beforeAll(async () => {
  server = createServer((socket) => {
    connections += 1;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let project: TempProject | undefined;
let outside = '';
afterEach(() => {
  const left = project ? processesIn(project.dir) : [];
  project?.cleanup();
  project = undefined;
  if (outside) rmSync(outside, { recursive: true, force: true });
  outside = '';
  expect(left, 'agent processes left running').toEqual([]);
});

function probeProject(
  sandbox: Record<string, unknown> | boolean,
  extra: Record<string, unknown> = {},
): TempProject {
  project = makeProject({
    config: {
      agents: {
        default: { adapter: 'scripted' },
        developer: { adapter: 'command', command: ['sh', 'agent.sh'], sandbox },
      },
      retry: { max_retries: 0, base_ms: 50, max_ms: 100 },
      ...extra,
    },
    files: { 'agent.sh': PROBE_AGENT },
  });
  writeFileSync(join(project.dir, 'root-secret.txt'), 'ROOT-SECRET\n');
  outside = mkdtempSync(join(tmpdir(), 'orch-outside-'));
  writeFileSync(join(outside, 'outside.txt'), 'OUTSIDE-SECRET\n');
  return project;
}

/** Runs the CLI in the background, so the loopback server here keeps accepting meanwhile. */
async function orchAsync(p: TempProject, args: string[], env: Record<string, string>) {
  const child = p.spawnOrch(args, { env });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout?.resume();
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, stderr };
}

/** Runs one task to its end; the probe's report as a map, from the branch that landed. */
async function runProbe(p: TempProject, env: Record<string, string> = {}): Promise<Record<string, string>> {
  expect(p.orch(['task', 'add', `probe ${outside} ${port}`]).code).toBe(0);
  const r = await orchAsync(p, ['run', '--until-idle'], env);
  expect(r.code, r.stderr).toBe(0);
  const shown = JSON.parse(p.orch(['task', 'show', 'T-1', '--json']).stdout) as { status: string };
  expect(shown.status, r.stderr).toBe('done');
  const report = p.git(['show', 'main:sandbox-report.txt']);
  return Object.fromEntries(
    report
      .trim()
      .split('\n')
      .map((l) => l.split('=') as [string, string]),
  );
}

describe.skipIf(!bwrap.ok)(needsBwrap('an agent in the sandbox'), () => {
  it('cannot read outside its worktree nor the database, nor write outside it; its own work lands', async () => {
    const p = probeProject({ network: false });
    const before = connections;
    const report = await runProbe(p, { ORCH_GITHUB_TOKEN: 'ghp_' + 'x'.repeat(36) });
    expect(report).toMatchObject({
      read_root_file: 'no',
      read_orch_yaml: 'no',
      read_database: 'no',
      read_outside: 'no',
      read_parent_env: '0',
      write_root: 'no',
      write_git_hooks: 'no',
      write_git_file: 'no',
      write_tmp: 'yes',
      tmpdir: '/tmp',
      git_status: 'yes',
      git_log: 'yes',
      // The repository's objects and refs are read-only: orch commits the agent's work, not the agent.
      git_commit: 'no',
      network: 'no',
    });
    expect(connections).toBe(before);
    expect(existsSync(join(p.dir, 'escaped.txt'))).toBe(false);
    expect(p.git(['show', 'main:developed.txt'])).toBe('developed in a sandbox\n');
    expect(p.git(['log', '--format=%s', 'main'])).not.toContain('sneaky');
    // The files it could not read were there all along, and the database is orch's.
    expect(readFileSync(join(p.dir, 'root-secret.txt'), 'utf8')).toBe('ROOT-SECRET\n');
    expect(
      readFileSync(join(p.dir, '.orch', 'orch.db'))
        .subarray(0, 13)
        .toString(),
    ).toBe('SQLite format');
  });

  it('with network on, reaches a loopback server', async () => {
    const p = probeProject({ network: true });
    const before = connections;
    const report = await runProbe(p);
    expect(report).toMatchObject({ network: 'yes', read_database: 'no', read_root_file: 'no' });
    await waitFor(() => connections === before + 1, 10_000, 'the connection to reach the server');
  });

  it('orch doctor reports bubblewrap', () => {
    const p = probeProject({ network: false });
    const r = p.orch(['doctor']);
    expect(r.stdout).toMatch(/✔ sandbox \(bubblewrap\): .*bwrap/);
    expect(r.stdout).toMatch(/✔ agent sample · developer \(command\) sandbox: bubblewrap, network off/);
  });
});

describe('without a working bwrap', () => {
  it('a sandboxed role never runs unsandboxed: the run fails, saying why, and doctor fails', () => {
    const p = probeProject(true);
    const env = { ORCH_BWRAP: '/nonexistent/bwrap' };
    expect(p.orch(['task', 'add', `probe ${outside} ${port}`]).code).toBe(0);
    const r = p.orch(['run', '--until-idle'], { env });
    expect(r.code, r.stderr).toBe(0);
    const shown = JSON.parse(p.orch(['task', 'show', 'T-1', '--json']).stdout) as {
      status: string;
      terminal_reason: string;
      runs: { role: string; outcome: string; error: string | null }[];
    };
    expect(shown).toMatchObject({ status: 'escalated', terminal_reason: 'agent_failure' });
    const dev = shown.runs.filter((run) => run.role === 'developer');
    expect(dev.length).toBeGreaterThan(0);
    for (const run of dev) {
      expect(run.outcome).toBe('spawn_error');
      expect(run.error).toMatch(/in its sandbox: bwrap \(\/nonexistent\/bwrap\) not found/);
    }
    expect(existsSync(join(p.dir, '.orch', 'worktrees', 'sample', 'T-1', 'sandbox-report.txt'))).toBe(false);
    const doctor = p.orch(['doctor'], { env });
    expect(doctor.code).toBe(1);
    expect(doctor.stdout).toMatch(/✘ .*developer.* sandbox: .*\/nonexistent\/bwrap/);
  });
});

describe.skipIf(!bwrap.ok)(needsBwrap('the runner under bwrap'), () => {
  let dir = '';
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** A worktree-like directory and the plan the launcher would make for it, with `state` hidden. */
  /** `argv`: the agent's command, whose executable the sandbox makes readable (the checkout may be under /tmp). */
  function plan(argv: string[] = []): { worktree: string; state: string; plan: SandboxPlan } {
    dir = mkdtempSync(join(tmpdir(), 'orch-sandbox-runner-'));
    const state = join(dir, 'state');
    const worktree = join(state, 'worktrees', 'T-1');
    mkdirSync(worktree, { recursive: true });
    writeFileSync(join(state, 'secret.txt'), 'STATE-SECRET\n');
    const config = {
      enabled: true,
      network: false,
      writable_paths: [],
      read_only_paths: [],
      hidden_paths: [],
    };
    return {
      worktree,
      state,
      plan: sandboxPlan({
        config,
        adapter: 'command',
        worktree,
        env: { HOME: process.env.HOME ?? '/root' },
        argv,
        promptFile: null,
        orchPaths: [state],
      }),
    };
  }

  const spec = (argv: string[], cwd: string, sandbox: SandboxPlan): AgentProcessSpec => ({
    argv,
    cwd,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    logPath: join(cwd, '..', 'run.log'),
    timeoutS: 60,
    killGraceS: 1,
    stallTimeoutS: 0,
    resultGraceMs: 1000,
    drainMs: 1000,
    maxLineBytes: 1024 * 1024,
    sandbox,
  });

  it('the most specific path wins: the worktree is writable inside the hidden state directory', async () => {
    const { worktree, state, plan: p } = plan();
    const script = `cat ${state}/secret.txt 2>&1; echo made > inside.txt && echo wrote-inside; echo x > ${state}/x 2>/dev/null || echo no-write-state`;
    const r = await runAgentProcess(spec(['sh', '-c', script], worktree, p));
    expect(r.spawnError).toBeNull();
    expect(r.exitCode).toBe(0);
    const log = readFileSync(join(state, 'worktrees', 'run.log'), 'utf8');
    expect(log).not.toContain('STATE-SECRET');
    expect(log).toContain('wrote-inside');
    expect(log).toContain('no-write-state');
    expect(readFileSync(join(worktree, 'inside.txt'), 'utf8')).toBe('made\n');
    expect(existsSync(join(state, 'x'))).toBe(false);
  });

  it('a setsid escapee dies with the sandbox (its PID namespace), and a timeout ends the whole group', async () => {
    const hanger = join(FIXTURES, 'agents', 'sleep-forever.sh');
    const { worktree, plan: p } = plan([hanger]);
    const marker = '987.654';
    const escape = await runAgentProcess(
      spec(['sh', '-c', `setsid sleep ${marker} & echo started`], worktree, p),
    );
    expect(escape.exitCode).toBe(0);
    // The kernel kills the namespace's other members as its PID 1 exits; on a loaded machine the
    // last of them may take a moment to be gone. Without the namespace it would live on (987 s).
    await waitFor(() => processesWith(marker).length === 0, 10_000, 'the setsid escapee to die');

    const hang = await runAgentProcess({
      ...spec([hanger], worktree, p),
      timeoutS: 1,
    });
    expect(hang.timedOut).toBe(true);
    expect(processesIn(worktree)).toEqual([]);
  });
});
