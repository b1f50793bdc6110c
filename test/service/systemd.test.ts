/**
 * The systemd units of docs/running-as-a-service.md, started the way systemd starts them: each
 * unit's ExecStart command line as written, with this checkout's `bin/orch.js` for
 * `/usr/local/bin/orch`, a temporary directory for WorkingDirectory, a file of the test's for
 * EnvironmentFile, and a free port for 7700. `orch serve` must answer, `orch worker` must work a
 * task of the shared PostgreSQL database, and both must stop on SIGTERM with exit 0.
 * `systemd-analyze verify` checks the units themselves where it is installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeProject, ROOT, waitFor, type TempProject } from '../helpers/kit.ts';
import { makeCluster, type Cluster } from '../scale/cluster.ts';

const DOC = join(ROOT, 'docs', 'running-as-a-service.md');
const BIN = join(ROOT, 'bin', 'orch.js');
const INSTALLED_ORCH = '/usr/local/bin/orch';
/** systemd's PATH for services, after the Node that runs these tests. */
const SERVICE_PATH = [
  dirname(process.execPath),
  '/usr/local/sbin',
  '/usr/local/bin',
  '/usr/sbin',
  '/usr/bin',
  '/sbin',
  '/bin',
].join(delimiter);

interface Unit {
  text: string;
  /** `[Service]` keys; repeated keys (Environment) keep every value. */
  service: Map<string, string[]>;
}

/** The ```ini blocks of the doc, by the unit file name on their first line. */
function unitsOfDoc(): Map<string, Unit> {
  const units = new Map<string, Unit>();
  for (const m of readFileSync(DOC, 'utf8').matchAll(/^```ini\n([\s\S]*?)^```$/gm)) {
    const text = m[1]!;
    const name = /^# \/etc\/systemd\/system\/(\S+)\n/.exec(text)?.[1];
    if (!name) continue;
    const service = new Map<string, string[]>();
    let section = '';
    for (const line of text.split('\n')) {
      const header = /^\[(\w+)\]$/.exec(line);
      if (header) section = header[1]!;
      const kv = /^(\w+)=(.*)$/.exec(line);
      if (kv && section === 'Service') service.set(kv[1]!, [...(service.get(kv[1]!) ?? []), kv[2]!]);
    }
    units.set(name, { text, service });
  }
  return units;
}

const one = (unit: Unit, key: string): string => {
  const values = unit.service.get(key) ?? [];
  expect(values, key).toHaveLength(1);
  return values[0]!;
};

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });

/**
 * Starts a unit's ExecStart as systemd would: in WorkingDirectory, with Environment= and the
 * EnvironmentFile's lines, and nothing of orch's from this process's environment.
 */
function startUnit(
  unit: Unit,
  opts: { workingDirectory: string; environmentFile: string; replace?: [string, string][] },
): { child: ChildProcess; output(): string; exited: Promise<number | null> } {
  let command = one(unit, 'ExecStart');
  // Written to be split on spaces as it stands: no quoting, no specifiers, no prefixes.
  expect(command).not.toMatch(/["'%\\$]|^[-@:+!]/);
  for (const [from, to] of opts.replace ?? []) {
    expect(command).toContain(from);
    command = command.replace(from, to);
  }
  expect(command.startsWith(INSTALLED_ORCH + ' ')).toBe(true);
  const [, ...args] = command.split(/\s+/);
  const env: Record<string, string> = { HOME: process.env.HOME ?? '/root', PATH: SERVICE_PATH };
  for (const assignment of unit.service.get('Environment') ?? []) {
    const [k, ...v] = assignment.split('=');
    env[k!] = v.join('=');
  }
  for (const line of readFileSync(opts.environmentFile, 'utf8').split('\n')) {
    const kv = /^(\w+)=(.*)$/.exec(line.trim());
    if (kv) env[kv[1]!] = kv[2]!;
  }
  const child = spawn(BIN, args, { cwd: opts.workingDirectory, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

let dir: string | undefined;
let project: TempProject | undefined;
let cluster: Cluster | undefined;
let started: ChildProcess | undefined;
afterEach(async () => {
  if (started && started.exitCode === null && started.signalCode === null) started.kill('SIGKILL');
  started = undefined;
  project?.cleanup();
  project = undefined;
  await cluster?.cleanup();
  cluster = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('docs/running-as-a-service.md', () => {
  const units = unitsOfDoc();

  it('has a unit for orch serve and one for orch worker, which stop orch alone on SIGTERM', () => {
    expect([...units.keys()].sort()).toEqual(['orch-serve.service', 'orch-worker.service']);
    for (const unit of units.values()) {
      expect(one(unit, 'KillMode')).toBe('mixed');
      expect(unit.service.get('KillSignal') ?? ['SIGTERM']).toEqual(['SIGTERM']);
    }
  });

  it.skipIf(spawnSync('sh', ['-c', 'command -v systemd-analyze']).status !== 0)(
    'systemd-analyze verify finds nothing to say about either unit',
    () => {
      dir = mkdtempSync(join(tmpdir(), 'orch-units-'));
      for (const [name, unit] of units)
        writeFileSync(join(dir, name), unit.text.replace(INSTALLED_ORCH, BIN));
      const r = spawnSync('systemd-analyze', ['verify', ...[...units.keys()].map((n) => join(dir!, n))], {
        encoding: 'utf8',
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    },
  );

  it('orch serve: the ExecStart as written answers on its port and stops on SIGTERM', async () => {
    const unit = units.get('orch-serve.service')!;
    project = makeProject();
    dir = mkdtempSync(join(tmpdir(), 'orch-unit-'));
    const environmentFile = join(dir, 'orch.env');
    writeFileSync(environmentFile, 'ORCH_LOG_LEVEL=info\n');
    expect(one(unit, 'EnvironmentFile')).toBe('-/etc/orch/orch.env');
    const port = await freePort();
    const s = startUnit(unit, {
      workingDirectory: project.dir,
      environmentFile,
      replace: [['--port 7700', `--port ${port}`]],
    });
    started = s.child;
    const status = await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/api/status`).catch(() => null);
        return r?.ok
          ? ((await r.json()) as { projects: { name: string }[]; server: { workers: number } })
          : null;
      },
      60_000,
      'orch serve answering',
    );
    expect(status.projects.map((p) => p.name)).toEqual(['sample']);
    expect(status.server.workers).toBeGreaterThan(0);
    s.child.kill('SIGTERM');
    expect(await s.exited, s.output()).toBe(0);
  }, 120_000);

  it('orch worker: the ExecStart as written works a task of the shared database and stops on SIGTERM', async () => {
    const unit = units.get('orch-worker.service')!;
    cluster = await makeCluster({});
    expect(cluster.orch(['task', 'add', 'worked by the service']).code).toBe(0);
    const stateDirectory = join(cluster.root, 'var-lib-orch-worker');
    mkdirSync(stateDirectory);
    const environmentFile = join(cluster.root, 'worker.env');
    writeFileSync(environmentFile, `ORCH_DATABASE_URL=${cluster.url}\n`);
    expect(one(unit, 'EnvironmentFile')).toBe('/etc/orch/worker.env');
    expect(one(unit, 'WorkingDirectory')).toBe(`/var/lib/${one(unit, 'StateDirectory')}`);
    const s = startUnit(unit, { workingDirectory: stateDirectory, environmentFile });
    started = s.child;
    const ctx = await cluster.context();
    try {
      const task = await waitFor(
        async () => {
          const t = await ctx.store.getTaskByKey('APP-1');
          return t.status === 'done' ? t : null;
        },
        120_000,
        `APP-1 done by the worker\n${s.output()}`,
      );
      expect(task.stage).toBe('done');
      // The work happened in the unit's state directory: its clone and its logs.
      const runs = await ctx.store.runsOfTask(task.id);
      expect(runs.length).toBeGreaterThan(0);
      expect(runs.every((r) => r.log_path?.startsWith(stateDirectory))).toBe(true);
    } finally {
      await ctx.close();
    }
    s.child.kill('SIGTERM');
    expect(await s.exited, s.output()).toBe(0);
  }, 180_000);
});
