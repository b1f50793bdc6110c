/**
 * Test kit: temporary git repositories made orch projects, and the real CLI
 * run as a child process (`node src/cli/main.ts`), exactly as a user runs it.
 *
 * A project's `orch init` is run once per test process and project section
 * (name, key prefix, base branch): every later project with the same section
 * gets a copy of that database, its project row pointed at the new repository
 * (a CLI start saved per test). test/cli/init.test.ts tests `orch init` itself.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  mkdirSync,
  realpathSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { loadProjectConfig } from '../../src/config/project-config.ts';
import { openContext, type OrchContext } from '../../src/runtime/context.ts';
import { processGroupAlive } from '../../src/runtime/process/run-agent-process.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'src', 'cli', 'main.ts');
export const FIXTURES = join(ROOT, 'test', 'fixtures');

/** orch.yaml's `pipeline` with only development and the reviewer: the shortest run that has attempts and a review. */
export const DEVELOP_AND_REVIEW = {
  analysis: { enabled: false },
  architecture: { enabled: false },
  testing: { enabled: false },
  'deploy-staging': { enabled: false },
  deploy: { enabled: false },
};

/** orch.yaml's `pipeline` with only development: one agent stage, then the landing. */
export const ONLY_DEVELOPMENT = { ...DEVELOP_AND_REVIEW, review: { enabled: false } };

export interface TempProject {
  dir: string;
  env: Record<string, string>;
  /** Runs the CLI to completion. */
  orch(
    args: string[],
    opts?: { timeoutMs?: number; env?: Record<string, string> },
  ): { code: number; stdout: string; stderr: string };
  /** Starts the CLI in the background. */
  spawnOrch(args: string[], opts?: { env?: Record<string, string> }): ChildProcess;
  /**
   * Runs the CLI to completion without blocking this process, so fake servers
   * living in the test process keep answering it.
   */
  orchAsync(
    args: string[],
    opts?: { timeoutMs?: number; env?: Record<string, string> },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  context(): Promise<OrchContext>;
  git(args: string[]): string;
  cleanup(): void;
}

export interface ProjectOptions {
  /** Written to orch.yaml (merged over a scripted default). */
  config?: Record<string, unknown>;
  /** Scripted agent script, written to .orch/script.yaml and wired into the config. */
  script?: Record<string, unknown>;
  files?: Record<string, string>;
  keyPrefix?: string;
}

export function makeProject(opts: ProjectOptions = {}): TempProject {
  const dir = mkdtempSync(join(tmpdir(), 'orch-test-'));
  const git = (args: string[]) => execFileSync('git', args, { cwd: dir, encoding: 'utf8' });
  const files = { 'README.md': '# sample\n', ...opts.files };
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  const agents: Record<string, unknown> = {
    default: {
      adapter: 'scripted',
      ...(opts.script ? { script: '.orch/script.yaml' } : {}),
      // The scripted agent is a Node program started for every stage: Node's compile cache (the
      // test run's, see vitest.config.ts) makes it start about twice as fast.
      ...(process.env.NODE_COMPILE_CACHE
        ? { env: { NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE } }
        : {}),
    },
  };
  const config = {
    project: { name: 'sample', key_prefix: opts.keyPrefix ?? 'T', base_branch: 'main' },
    agents,
    retry: { base_ms: 100, max_ms: 1000 },
    ...opts.config,
  };
  writeFileSync(join(dir, 'orch.yaml'), stringify(config));
  git(['init', '-q', '-b', 'main']);
  git(['add', '-A']);
  git(['-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-q', '-m', 'initial']);
  mkdirSync(join(dir, '.orch'), { recursive: true });
  if (opts.script) writeFileSync(join(dir, '.orch', 'script.yaml'), stringify(opts.script));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('ORCH_')) env[k] = v;
  env.ORCH_HOME = dir;
  env.ORCH_LOG_LEVEL = 'info';
  const orch: TempProject['orch'] = (args, o = {}) => {
    const r = spawnSync(process.execPath, [CLI, ...args], {
      cwd: dir,
      env: { ...env, ...o.env },
      encoding: 'utf8',
      timeout: o.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  };
  if (!initFromTemplate(dir, config.project, env)) {
    const init = orch(['init']);
    if (init.code !== 0) throw new Error(`orch init failed: ${init.stderr}`);
  }
  return {
    dir,
    env,
    orch,
    spawnOrch: (args, o = {}) =>
      spawn(process.execPath, [CLI, ...args], {
        cwd: dir,
        env: { ...env, ...o.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    orchAsync: (args, o = {}) =>
      new Promise((resolvePromise, reject) => {
        const child = spawn(process.execPath, [CLI, ...args], {
          cwd: dir,
          env: { ...env, ...o.env },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 120_000);
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolvePromise({ code: code ?? -1, stdout, stderr });
        });
      }),
    context: () => openContext(dir, env),
    git,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Databases made by a real `orch init`, one per project section, kept for this test process. */
const initTemplates = new Map<string, string>();

/**
 * Does what `orch init` does to the repository at `dir` (orch.yaml validated, the project
 * registered, `.orch/` excluded from git) by copying the database of a real `orch init` for the
 * same project section. False when the section leaves a value to init's defaults (those depend on
 * the directory), so the caller runs `orch init` itself.
 */
function initFromTemplate(dir: string, project: unknown, env: Record<string, string>): boolean {
  const p = (project ?? {}) as Record<string, unknown>;
  const section = { name: p.name, key_prefix: p.key_prefix, base_branch: p.base_branch };
  if (Object.values(section).some((v) => typeof v !== 'string')) return false;
  loadProjectConfig(join(dir, 'orch.yaml'));
  const key = JSON.stringify(section);
  let template = initTemplates.get(key);
  if (!template) {
    const home = mkdtempSync(join(tmpdir(), 'orch-test-template-'));
    const git = (args: string[]) => execFileSync('git', args, { cwd: home, encoding: 'utf8' });
    writeFileSync(
      join(home, 'orch.yaml'),
      stringify({ project: section, agents: { default: { adapter: 'scripted' } } }),
    );
    git(['init', '-q', '-b', section.base_branch as string]);
    git(['add', '-A']);
    git(['-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-q', '-m', 'initial']);
    const init = spawnSync(process.execPath, [CLI, 'init'], {
      cwd: home,
      env: { ...env, ORCH_HOME: home },
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (init.status !== 0) throw new Error(`orch init failed: ${init.stderr}`);
    template = join(home, '.orch', 'orch.db');
    // Closed cleanly, the database is one file (no write-ahead log beside it) and safe to copy.
    if (existsSync(`${template}-wal`)) throw new Error(`${template}-wal is left after orch init`);
    initTemplates.set(key, template);
    process.once('exit', () => rmSync(home, { recursive: true, force: true }));
  }
  const db = join(dir, '.orch', 'orch.db');
  copyFileSync(template, db);
  const copy = new DatabaseSync(db);
  try {
    copy
      .prepare('UPDATE projects SET root_path = ?, created_at = ?')
      .run(realpathSync(dir), new Date().toISOString());
  } finally {
    copy.close();
  }
  mkdirSync(join(dir, '.git', 'info'), { recursive: true });
  appendFileSync(join(dir, '.git', 'info', 'exclude'), '/.orch/\n');
  return true;
}

/** Waits until `check` returns a truthy value, polling every 50 ms. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Pids of live processes whose environment or command line mentions `marker` (for orphan checks). */
export function processesWith(marker: string): number[] {
  const out = spawnSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .filter((l) => l.includes(marker) && !l.includes('ps -eo'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

/** Whether a process group still has a live member (zombies, waiting for a parent to reap them, do not count). */
export const groupAlive = (pgid: number): boolean => processGroupAlive(pgid);

/** Pids of live processes whose working directory is inside `dir` (agents run in worktrees there). */
export function processesIn(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cwd = readlinkSync(`/proc/${entry}/cwd`);
      const state = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.[0];
      if (state !== 'Z' && (cwd === dir || cwd.startsWith(dir + '/'))) found.push(Number(entry));
    } catch {
      /* gone or not ours */
    }
  }
  return found;
}
