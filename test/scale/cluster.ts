/**
 * A cluster on one machine, as orch sees many: a fresh PostgreSQL database,
 * a bare git remote, the project registered from one clone with `orch init`,
 * and `orch worker` processes, each with its own home and its own clone
 * directory (`ORCH_REPOS_DIR`), sharing only the database and the remote.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import { CLI } from '../helpers/kit.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/pg.ts';
import { openContext, type OrchContext } from '../../src/runtime/context.ts';

export interface Worker {
  name: string;
  child: ChildProcess;
  /** Everything it printed, for failure messages. */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface Cluster {
  root: string;
  url: string;
  /** The bare remote every clone pushes to. */
  remote: string;
  /** The clone the project was registered from (`orch init`). */
  registry: string;
  env: Record<string, string>;
  /** Runs the CLI in the registering clone, to completion. */
  orch(args: string[]): { code: number; stdout: string; stderr: string };
  /** Starts `orch worker` with a home and a clone directory of its own. */
  startWorker(name: string, args: string[], env?: Record<string, string>): Worker;
  /** A context on the shared database, from the registering clone. */
  context(): Promise<OrchContext>;
  /** git in the bare remote. */
  remoteGit(args: string[]): string;
  workers: Worker[];
  cleanup(): Promise<void>;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@localhost',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@localhost',
};

export async function makeCluster(opts: {
  config?: Record<string, unknown>;
  files?: Record<string, string>;
}): Promise<Cluster> {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'orch-cluster-')));
  let database: TestDatabase | undefined;
  try {
    database = await createTestDatabase();
    const git = (cwd: string, args: string[]) =>
      execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, ...GIT_ENV } }).trim();
    const remote = join(root, 'remote.git');
    git(root, ['init', '-q', '--bare', '-b', 'main', remote]);
    const seed = join(root, 'seed');
    const files: Record<string, string> = {
      'README.md': '# app\n',
      'orch.yaml': stringify({
        project: { name: 'app', key_prefix: 'APP', base_branch: 'main' },
        agents: { default: { adapter: 'scripted' } },
        retry: { base_ms: 100, max_ms: 1000 },
        ...opts.config,
      }),
      ...opts.files,
    };
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(dirname(join(seed, path)), { recursive: true });
      writeFileSync(join(seed, path), content, { mode: content.startsWith('#!') ? 0o755 : 0o644 });
    }
    git(root, ['init', '-q', '-b', 'main', seed]);
    git(seed, ['add', '-A']);
    git(seed, ['commit', '-q', '-m', 'initial']);
    git(seed, ['push', '-q', remote, 'main']);
    const registry = join(root, 'registry');
    git(root, ['clone', '-q', remote, registry]);

    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && !k.startsWith('ORCH_')) env[k] = v;
    env.ORCH_DATABASE_URL = database.url;
    env.ORCH_LOG_LEVEL = 'info';
    const orch: Cluster['orch'] = (args) => {
      const r = spawnSync(process.execPath, [CLI, ...args], {
        cwd: registry,
        env: { ...env, ORCH_HOME: registry },
        encoding: 'utf8',
        timeout: 120_000,
      });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    };
    const init = orch(['init']);
    if (init.code !== 0) throw new Error(`orch init failed: ${init.stderr}`);

    const workers: Worker[] = [];
    const db = database;
    return {
      root,
      url: database.url,
      remote,
      registry,
      env,
      orch,
      workers,
      startWorker(name, args, extra = {}) {
        const home = join(root, 'workers', name);
        mkdirSync(home, { recursive: true });
        const child = spawn(process.execPath, [CLI, 'worker', ...args], {
          cwd: home,
          env: { ...env, ORCH_HOME: home, ORCH_REPOS_DIR: join(home, 'repos'), ...extra },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
          child.once('exit', (code, signal) => resolve({ code, signal })),
        );
        const worker = { name, child, output: () => out, exited };
        workers.push(worker);
        return worker;
      },
      context: () => openContext(registry, { ...env, ORCH_HOME: registry }),
      remoteGit: (args) => git(remote, args),
      async cleanup() {
        for (const w of workers)
          if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
        await Promise.all(workers.map((w) => w.exited));
        await db.drop();
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await database?.drop().catch(() => {});
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
}

/** Workers still running: an after-each fails the test on any (and then ends them). */
export function workersLeftRunning(workers: readonly Worker[]): string[] {
  return workers
    .filter((w) => w.child.exitCode === null && w.child.signalCode === null)
    .map((w) => `${w.name} (pid ${w.child.pid})`);
}
