/**
 * The package as a user gets it: `npm pack` in a clean copy of the repository (what a clone has),
 * `npm install -g` of the tarball into a temporary prefix, then `orch` from there under Node 24 and
 * Node 22 (the test tools' `node@22`): version, help, init, doctor, serve and the demo.
 *
 * Slow by nature (one build and one install, about a minute and a half here), so it packs once.
 * The install prefers npm's cache, which `npm ci` filled.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, waitFor } from '../helpers/kit.ts';

const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const NODE_22 = join(ROOT, 'test', 'tools', 'node_modules', 'node', 'bin', 'node');
const NODES = [
  { name: 'Node 24', binary: process.execPath, major: 24 },
  { name: 'Node 22', binary: NODE_22, major: 22 },
];

let work: string;
let tarball: string;
let installed: string;
let prefixBin: string;
/** A directory holding only `git`: a PATH with it and no agent CLI of this machine. */
let gitOnly: string;

const sh = (cwd: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 600_000, maxBuffer: 64 * 1024 * 1024 });

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'orch-package-'));
  // A clean copy of the repository: its tracked and unignored files, and this checkout's
  // node_modules (the build's tools). Packing here leaves this checkout's dist/ and web/dist alone.
  const stage = join(work, 'stage');
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
    .split('\0')
    .filter((f) => f && f !== 'node_modules' && existsSync(join(ROOT, f)));
  for (const f of files) {
    mkdirSync(dirname(join(stage, f)), { recursive: true });
    cpSync(join(ROOT, f), join(stage, f));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'));
  // npm on Node 24 (the checkout's), with the build's tools on PATH as `npm run` would have them,
  // and none of the npm_* variables of the `npm test` that may have started this (they point npm
  // at this checkout's prefix).
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('npm_')) env[k] = v;
  env.PATH = [dirname(process.execPath), join(ROOT, 'node_modules', '.bin'), process.env.PATH].join(
    delimiter,
  );
  const dest = join(work, 'pack');
  mkdirSync(dest);
  const pack = sh(stage, 'npm', ['pack', '--pack-destination', dest], env);
  expect(pack.status, pack.stderr + pack.stdout).toBe(0);
  tarball = join(
    dest,
    readdirSync(dest).find((f) => f.endsWith('.tgz'))!,
  );
  const prefix = join(work, 'prefix');
  const install = sh(
    work,
    'npm',
    ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball],
    env,
  );
  expect(install.status, install.stderr + install.stdout).toBe(0);
  installed = join(prefix, 'lib', 'node_modules', 'orch');
  prefixBin = join(prefix, 'bin');
  gitOnly = join(work, 'git-only');
  mkdirSync(gitOnly);
  const git = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  symlinkSync(git, join(gitOnly, 'git'));
}, 600_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A directory holding only `node`, that Node. */
function nodeDir(binary: string): string {
  const dir = join(work, `node-${Buffer.from(binary).toString('hex').slice(-12)}`);
  if (!existsSync(dir)) {
    mkdirSync(dir);
    symlinkSync(binary, join(dir, 'node'));
  }
  return dir;
}

/** The environment of a user whose PATH has that Node, the installed orch, and `rest`. */
function userEnv(binary: string, rest: string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('ORCH_') && !k.startsWith('npm_')) env[k] = v;
  env.PATH = [nodeDir(binary), prefixBin, ...rest].join(delimiter);
  return env;
}

function gitRepo(name: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: dir });
  writeFileSync(join(dir, 'README.md'), '# app\n');
  execFileSync('git', ['add', '-A'], { cwd: dir });
  execFileSync(
    'git',
    ['-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-q', '-m', 'initial'],
    {
      cwd: dir,
    },
  );
  return dir;
}

/** Bare specifiers of static imports and re-exports, side-effect imports, and literal dynamic imports. */
const IMPORTS = [
  /^\s*(?:import|export)\s[^'"]*?\sfrom\s*['"]([^'".][^'"]*)['"]/gm,
  /^\s*import\s*['"]([^'".][^'"]*)['"]/gm,
  /\bimport\(\s*['"]([^'".][^'"]*)['"]\s*\)/g,
];

const tarList = (): string[] => execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).split('\n');

describe('the tarball', () => {
  it('holds the built JavaScript, the built dashboard and the docs, and no TypeScript source', () => {
    const entries = tarList();
    for (const f of [
      'package/bin/orch.js',
      'package/dist/cli/main.js',
      'package/dist/agents/scripted/agent.js',
      'package/web/dist/index.html',
      'package/docs/configuration.md',
      'package/package.json',
    ])
      expect(entries).toContain(f);
    expect(entries.filter((e) => e.endsWith('.ts'))).toEqual([]);
    expect(entries.filter((e) => e.startsWith('package/src/') || e.startsWith('package/web/src/'))).toEqual(
      [],
    );
    expect(entries.filter((e) => e.includes('.test.'))).toEqual([]);
  });

  it('installs none of the dev dependencies, and its code imports only its dependencies', () => {
    const present = readdirSync(join(installed, 'node_modules')).flatMap((d) =>
      d.startsWith('@') ? readdirSync(join(installed, 'node_modules', d)).map((s) => `${d}/${s}`) : [d],
    );
    // A dev dependency may be there only because a dependency needs it (graphql for @linear/sdk).
    const needed = new Set(
      present.flatMap((p) => {
        const file = join(installed, 'node_modules', p, 'package.json');
        if (!existsSync(file)) return [];
        const m = JSON.parse(readFileSync(file, 'utf8')) as Record<
          string,
          Record<string, string> | undefined
        >;
        return ['dependencies', 'optionalDependencies', 'peerDependencies'].flatMap((k) =>
          Object.keys(m[k] ?? {}),
        );
      }),
    );
    const devOnly = Object.keys(PKG.devDependencies).filter((d) => present.includes(d) && !needed.has(d));
    expect(devOnly).toEqual([]);
    for (const cli of ['@anthropic-ai/claude-code', '@openai/codex', '@google/gemini-cli', 'vite', 'preact'])
      expect(present).not.toContain(cli);
    expect(present.filter((p) => p.startsWith('opencode'))).toEqual([]);
    const js = (readdirSync(join(installed, 'dist'), { recursive: true }) as string[]).filter((f) =>
      f.endsWith('.js'),
    );
    const imported = new Map<string, string>();
    for (const f of js) {
      const text = readFileSync(join(installed, 'dist', f), 'utf8');
      for (const pattern of IMPORTS) for (const m of text.matchAll(pattern)) imported.set(m[1]!, f);
    }
    const packageOf = (spec: string) =>
      spec
        .split('/')
        .slice(0, spec.startsWith('@') ? 2 : 1)
        .join('/');
    const builtin = (spec: string) => spec.startsWith('node:') || builtinModules.includes(spec);
    const foreign = [...imported]
      .filter(([spec]) => !builtin(spec) && !(packageOf(spec) in PKG.dependencies))
      .map(([spec, file]) => `${spec} (${file})`);
    // vite builds the dashboard on demand in a checkout, where web/src exists; the package has
    // none, so serving never reaches that import (the serve test below loads the built one).
    expect(foreign).toEqual(['vite (http/dashboard.js)']);
    expect(existsSync(join(installed, 'web', 'src'))).toBe(false);
  });
});

describe.each(NODES)('orch installed from the tarball, under $name', ({ binary, major }) => {
  it('runs on that Node', () => {
    const r = sh(work, binary, ['--version']);
    expect(r.stdout.trim().split('.')[0]).toBe(`v${major}`);
  });

  it('answers --version and --help', () => {
    const env = userEnv(binary, ['/usr/bin', '/bin']);
    const version = sh(work, 'orch', ['--version'], env);
    expect(version.stdout.trim(), version.stderr).toBe(PKG.version);
    expect(version.stderr).toBe('');
    const help = sh(work, 'orch', ['--help'], env);
    expect(help.status).toBe(0);
    for (const command of ['init', 'run', 'serve', 'worker', 'demo', 'completion', 'help'])
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
  });

  it('init refuses without an agent CLI and writes nothing, configures the one named, and doctor passes', () => {
    const repo = gitRepo(`init-${major}`);
    const bare = sh(repo, 'orch', ['init'], userEnv(binary, [gitOnly]));
    expect(bare.status).toBe(1);
    expect(bare.stderr).toContain('npm install -g @anthropic-ai/claude-code');
    expect(readdirSync(repo).sort()).toEqual(['.git', 'README.md']);
    const env = userEnv(binary, ['/usr/bin', '/bin']);
    const init = sh(repo, 'orch', ['init', '--agent', 'scripted'], env);
    expect(init.status, init.stderr).toBe(0);
    expect(readFileSync(join(repo, 'orch.yaml'), 'utf8')).toMatch(/adapter: scripted/);
    const doctor = sh(repo, 'orch', ['doctor', '--json'], env);
    expect(doctor.status, doctor.stdout + doctor.stderr).toBe(0);
    // The scripted agent runs from the package's JavaScript, under the Node that runs orch.
    expect(doctor.stdout).toContain(join(installed, 'dist', 'agents', 'scripted', 'agent.js'));
  });

  it('serves the built dashboard and the API', async () => {
    const repo = gitRepo(`serve-${major}`);
    const env = userEnv(binary, ['/usr/bin', '/bin']);
    expect(sh(repo, 'orch', ['init', '--agent', 'scripted'], env).status).toBe(0);
    const server = spawn('orch', ['serve', '--port', '0', '--no-workers'], { cwd: repo, env });
    let out = '';
    server.stdout.on('data', (d: Buffer) => (out += d.toString()));
    server.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
    try {
      const url = await waitFor(() => /orch serve: (http:\/\/\S+)/.exec(out)?.[1], 30_000, 'orch serve');
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>orch</title>');
      const status = (await (await fetch(`${url}/api/status`)).json()) as { server: { version: string } };
      expect(status.server.version).toBe(PKG.version);
      server.kill('SIGTERM');
      expect(await exited, out).toBe(0);
    } finally {
      if (server.exitCode === null) server.kill('SIGKILL');
    }
  });

  it('runs the demo', () => {
    const r = sh(work, 'orch', ['demo', '--clean'], userEnv(binary, ['/usr/bin', '/bin']));
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/DEMO-1 .* done /);
    expect(r.stdout).toMatch(/DEMO-2 .* done /);
    expect(r.stdout).toMatch(/DEMO-3 .* escalated \(oscillation_detected\)/);
    // Node 22 says node:sqlite is experimental; the executable keeps that off the user's terminal.
    expect(r.stderr).not.toContain('ExperimentalWarning');
  });
});
