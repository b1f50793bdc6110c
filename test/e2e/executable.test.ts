/**
 * `bin/orch.js`, the executable users run: it works a task to the end, keeps
 * Node's compile cache, and runs the long-running commands with a small
 * young generation by replacing itself (same pid, so signals still reach it).
 * Under a Node too old for the checkout it re-runs itself with the bundled
 * Node 24: replacing itself where that Node has `process.execve`, else as a
 * parent that passes SIGTERM on and ends as orch ended.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { groupAlive, makeProject, processesIn, ROOT, waitFor, type TempProject } from '../helpers/kit.ts';

const BIN = join(ROOT, 'bin', 'orch.js');
const NODE_24 = realpathSync(join(ROOT, 'node_modules', '.bin', 'node'));
const NODE_22 = join(ROOT, 'test', 'tools', 'node_modules', 'node', 'bin', 'node');

/** The first `node` on PATH older than the checkout's 24 and without process.execve (the system's Node 20 here), or null. */
function olderNodeWithoutExecve(): string | null {
  const all = spawnSync('sh', ['-c', 'which -a node'], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean);
  for (const node of all) {
    const probe = spawnSync(
      node,
      ['-p', 'process.versions.node.split(".")[0] + " " + typeof process.execve'],
      {
        encoding: 'utf8',
      },
    ).stdout.trim();
    const [major, execve] = probe.split(' ');
    if (Number(major) < 24 && execve === 'undefined') return node;
  }
  return null;
}
const OLDER_NODE = olderNodeWithoutExecve();

/** Children of `pid`. */
const childrenOf = (pid: number): number[] =>
  execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.trim())
    .map(Number);

/**
 * Starts `bin/orch.js run` with `node` in the project. At debug level the scheduler says when it
 * listens: its signal handlers are in place then.
 */
function startRun(node: string) {
  const child = spawn(node, [BIN, 'run'], {
    cwd: project!.dir,
    env: { ...project!.env, ORCH_LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started = child;
  child.stdout.resume();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, stderr: () => stderr };
}

/** Starts `orch run` with `node`, a task's developer sleeping, and waits until that agent runs. */
async function runWithSleepingDeveloper(node: string) {
  project = makeProject({ script: { defaults: { developer: [{ sleep_ms: 60_000 }] } } });
  expect(project.orch(['task', 'add', 'stop me gracefully']).code).toBe(0);
  const run = startRun(node);
  const ctx = await project.context();
  const agent = await waitFor(
    async () => (await ctx.store.getRunningAgents()).find((a) => a.agent === 'developer' && a.pgid),
    60_000,
    'the developer running',
  );
  return { ...run, ctx, agent };
}

/** SIGTERM to `child`'s pid ends orch gracefully: exit 0, the run interrupted, nothing left running. */
async function expectGracefulStop(
  r: Awaited<ReturnType<typeof runWithSleepingDeveloper>>,
  orchPids: number[],
) {
  r.child.kill('SIGTERM');
  expect(await r.exited, r.stderr()).toBe(0);
  expect(r.stderr()).toContain('SIGTERM: stopping');
  const runs = await r.ctx.store.runsOfTask(1);
  expect(runs.find((run) => run.id === r.agent.run_id)).toMatchObject({
    status: 'finished',
    outcome: 'interrupted',
  });
  expect(groupAlive(r.agent.pgid!)).toBe(false);
  expect(processesIn(project!.dir)).toEqual([]);
  for (const pid of orchPids) expect(existsPid(pid), `orch process ${pid}`).toBe(false);
}

const existsPid = (pid: number): boolean => {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== undefined && state !== 'Z';
  } catch {
    return false;
  }
};

let project: TempProject | undefined;
let cacheDir: string | undefined;
let started: ChildProcess | undefined;
afterEach(() => {
  if (started?.exitCode === null && started.signalCode === null) started.kill('SIGKILL');
  started = undefined;
  project?.cleanup();
  project = undefined;
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
  cacheDir = undefined;
});

const filesUnder = (dir: string): string[] =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name);

describe('bin/orch.js', () => {
  it('works a task to done, filling the compile cache it was given', () => {
    project = makeProject({ script: {} });
    cacheDir = mkdtempSync(join(tmpdir(), 'orch-compile-cache-'));
    const env = { ...project.env, NODE_COMPILE_CACHE: cacheDir };
    const run = (args: string[]) =>
      spawnSync(process.execPath, [BIN, ...args], {
        cwd: project!.dir,
        env,
        encoding: 'utf8',
        timeout: 120_000,
      });
    expect(run(['task', 'add', 'through the executable']).status).toBe(0);
    const r = run(['run', '--until-idle']);
    expect(r.status, r.stderr).toBe(0);
    const shown = run(['task', 'show', 'T-1', '--json']);
    expect(JSON.parse(shown.stdout)).toMatchObject({ stage: 'done', status: 'done' });
    expect(filesUnder(cacheDir).length).toBeGreaterThan(0);
  }, 180_000);

  it('runs `orch run` as the same process with --max-semi-space-size, and stops it with SIGTERM', async () => {
    project = makeProject();
    const { child, exited, stderr } = startRun(process.execPath);
    try {
      // The pid we started is the process that ends up running orch, with the flag.
      const cmdline = await waitFor(
        () => {
          const args = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
          return args.includes('--max-semi-space-size=2') && args.includes('run') ? args : null;
        },
        30_000,
        'orch run re-executed with --max-semi-space-size',
      );
      expect(cmdline.filter((a) => a === BIN)).toHaveLength(1);
      await waitFor(() => stderr().includes('listening for jobs'), 30_000, 'the scheduler listening');
      child.kill('SIGTERM');
      expect(await exited, stderr()).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);

  it('leaves short commands as they are, and answers under an older Node on PATH too', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string })
      .version;
    const here = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
    expect(here.stdout.trim()).toBe(version);
    // Whatever `node` is on PATH (Node 20 on this machine re-runs itself with the bundled Node 24).
    const onPath = spawnSync('node', [BIN, '--version'], { encoding: 'utf8' });
    if (onPath.error) return;
    expect(onPath.stdout.trim(), onPath.stderr).toBe(version);
  });

  it.skipIf(!OLDER_NODE)(
    'under an older Node without execve, passes SIGTERM to orch run, which stops gracefully',
    async () => {
      const r = await runWithSleepingDeveloper(OLDER_NODE!);
      try {
        // The wrapper did not become orch: orch is its child, under the bundled Node 24.
        const wrapperExe = realpathSync(`/proc/${r.child.pid}/exe`);
        expect(wrapperExe).not.toBe(NODE_24);
        const [orch] = childrenOf(r.child.pid!);
        expect(orch, 'the orch child').toBeDefined();
        expect(realpathSync(`/proc/${orch}/exe`)).toBe(NODE_24);
        await expectGracefulStop(r, [orch!]);
      } finally {
        await r.ctx.close();
      }
    },
    120_000,
  );

  it('under Node 22, replaces itself with the bundled Node 24 (same pid), which SIGTERM stops gracefully', async () => {
    const r = await runWithSleepingDeveloper(NODE_22);
    try {
      expect(realpathSync(`/proc/${r.child.pid}/exe`)).toBe(NODE_24);
      expect(readFileSync(`/proc/${r.child.pid}/cmdline`, 'utf8').split('\0')).toContain(
        '--max-semi-space-size=2',
      );
      // No second orch below it: its children are the agents.
      const cmdline = (pid: number) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        } catch {
          return []; // ended meanwhile
        }
      };
      expect(childrenOf(r.child.pid!).filter((pid) => cmdline(pid).includes(BIN))).toEqual([]);
      await expectGracefulStop(r, []);
    } finally {
      await r.ctx.close();
    }
  }, 120_000);
});
