/**
 * `bin/orch.js`, the executable users run: it works a task to the end, keeps
 * Node's compile cache, and runs the long-running commands with a small
 * young generation by replacing itself (same pid, so signals still reach it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeProject, ROOT, waitFor, type TempProject } from '../helpers/kit.ts';

const BIN = join(ROOT, 'bin', 'orch.js');

let project: TempProject | undefined;
let cacheDir: string | undefined;
afterEach(() => {
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
    const child = spawn(process.execPath, [BIN, 'run'], {
      cwd: project.dir,
      // At debug level the scheduler says when it listens: its signal handlers are in place then.
      env: { ...project.env, ORCH_LOG_LEVEL: 'debug' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.resume();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
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
      await waitFor(() => stderr.includes('listening for jobs'), 30_000, 'the scheduler listening');
      child.kill('SIGTERM');
      expect(await exited, stderr).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);

  it('leaves short commands as they are, and answers under an older Node on PATH too', () => {
    const here = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8' });
    expect(here.stdout.trim()).toBe('0.1.0');
    // Whatever `node` is on PATH (Node 20 on this machine re-runs itself with the bundled Node 24).
    const onPath = spawnSync('node', [BIN, '--version'], { encoding: 'utf8' });
    if (onPath.error) return;
    expect(onPath.stdout.trim(), onPath.stderr).toBe('0.1.0');
  });
});
