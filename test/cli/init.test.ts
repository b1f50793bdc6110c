/**
 * `orch init` as a new user meets it: it configures the agent CLI it finds on the user's PATH (in
 * the documented order) and says which and why, takes `--agent`, says how to install one when there
 * is none, configures the scripted agent only by name, and refuses before writing anything when
 * the repository cannot be a project.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CLI, ROOT } from '../helpers/kit.ts';

let root: string;
let repo: string;
/** Holds only `git`: a PATH with it and no agent CLI of this machine. */
let gitOnly: string;
/** Fake agent CLIs the test puts there. */
let fakeBin: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'orch-init-'));
  gitOnly = join(root, 'git-only');
  fakeBin = join(root, 'fake-bin');
  mkdirSync(gitOnly);
  mkdirSync(fakeBin);
  symlinkSync(
    execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim(),
    join(gitOnly, 'git'),
  );
  repo = join(root, 'app');
  mkdirSync(repo);
  git(['init', '-q', '-b', 'main']);
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const git = (args: string[]) => execFileSync('git', args, { cwd: repo, encoding: 'utf8' });
const commit = () => {
  writeFileSync(join(repo, 'README.md'), '# app\n');
  git(['add', '-A']);
  git(['-c', 'user.name=t', '-c', 'user.email=t@localhost', 'commit', '-q', '-m', 'initial']);
};
/** An executable `name` in the fake bin directory (only its presence matters to `orch init`). */
const fakeCli = (name: string) => {
  writeFileSync(join(fakeBin, name), '#!/bin/sh\necho "fake 1.0"\n');
  chmodSync(join(fakeBin, name), 0o755);
};

function init(args: string[], path: string[] = [fakeBin, gitOnly]) {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('ORCH_')) env[k] = v;
  env.PATH = path.join(delimiter);
  const r = spawnSync(process.execPath, [CLI, 'init', ...args], {
    cwd: repo,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const config = () =>
  parse(readFileSync(join(repo, 'orch.yaml'), 'utf8')) as { agents: { default: Record<string, unknown> } };
/** What `orch init` may have written: orch.yaml, .orch/, the exclude line. */
const written = () => ({
  files: readdirSync(repo).filter((f) => f !== '.git' && f !== 'README.md'),
  excluded:
    existsSync(join(repo, '.git', 'info', 'exclude')) &&
    readFileSync(join(repo, '.git', 'info', 'exclude'), 'utf8').includes('/.orch/'),
});

describe('orch init picks the agent', () => {
  it.each([
    {
      found: ['claude', 'codex', 'gemini', 'opencode'],
      adapter: 'claude-code',
      also: ['Codex', 'Gemini CLI', 'OpenCode'],
    },
    { found: ['opencode', 'gemini', 'codex'], adapter: 'codex', also: ['Gemini CLI', 'OpenCode'] },
    { found: ['opencode', 'gemini'], adapter: 'gemini', also: ['OpenCode'] },
    { found: ['opencode'], adapter: 'opencode', also: [] },
  ])('with $found on PATH: $adapter, and says why', ({ found, adapter, also }) => {
    commit();
    for (const name of found) fakeCli(name);
    const r = init([]);
    expect(r.code, r.stderr).toBe(0);
    expect(config().agents.default.adapter).toBe(adapter);
    expect(r.stdout).toContain(
      `(${adapter}, ${join(
        fakeBin,
        found.find((f) => adapter.startsWith(f))!,
      )})`,
    );
    expect(r.stdout).toContain('the first of Claude Code, Codex, Gemini CLI, OpenCode on PATH');
    const alsoFound = /also found (.*)$/m.exec(r.stdout)?.[1] ?? '';
    expect([...alsoFound.matchAll(/([A-Za-z][A-Za-z ]*?) \(--agent /g)].map((m) => m[1])).toEqual(also);
  });

  it('does not count the agent CLIs in orch’s own node_modules/.bin (npm run puts it on PATH)', () => {
    commit();
    // This checkout's node_modules/.bin holds claude, codex and gemini (dev dependencies).
    expect(existsSync(join(ROOT, 'node_modules', '.bin', 'claude'))).toBe(true);
    const r = init([], [join(ROOT, 'node_modules', '.bin'), gitOnly]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no agent CLI on PATH');
  });

  it('with none found, says how to install one and writes nothing', () => {
    commit();
    const r = init([]);
    expect(r.code).toBe(1);
    for (const install of [
      'npm install -g @anthropic-ai/claude-code',
      'npm install -g @openai/codex',
      'npm install -g @google/gemini-cli',
      'npm install -g opencode-ai',
    ])
      expect(r.stderr).toContain(install);
    expect(r.stderr).toContain('--agent scripted');
    expect(written()).toEqual({ files: [], excluded: false });
  });

  it('takes --agent over what it finds, and says when that CLI is not installed yet', () => {
    commit();
    fakeCli('claude');
    const r = init(['--agent', 'gemini']);
    expect(r.code, r.stderr).toBe(0);
    expect(config().agents.default).toMatchObject({
      adapter: 'gemini',
      model: 'gemini-2.5-pro',
      pass_env: ['GEMINI_API_KEY'],
    });
    expect(r.stdout).toContain('`gemini` is not on PATH yet: npm install -g @google/gemini-cli');
  });

  it('configures the scripted agent only by name', () => {
    commit();
    const r = init(['--agent', 'scripted', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ created: true, agent: 'scripted', project: 'app' });
    expect(config().agents.default.adapter).toBe('scripted');
  });

  it('refuses an unknown --agent with a usage error', () => {
    commit();
    const r = init(['--agent', 'cursor']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      '--agent must be one of scripted, claude-code, codex, gemini, opencode, got cursor',
    );
    expect(written().files).toEqual([]);
  });

  it('keeps an existing orch.yaml and its agents, whatever it finds or is asked', () => {
    commit();
    writeFileSync(
      join(repo, 'orch.yaml'),
      'project: { name: app }\nagents: { default: { adapter: codex } }\n',
    );
    fakeCli('claude');
    const r = init(['--agent', 'gemini']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('kept ');
    expect(r.stdout).toContain('--agent gemini not applied');
    expect(config().agents.default.adapter).toBe('codex');
  });
});

describe('orch init checks the repository before writing anything', () => {
  it('refuses a repository without a commit', () => {
    fakeCli('claude');
    const r = init([]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('has no commit yet');
    expect(written()).toEqual({ files: [], excluded: false });
  });

  it('refuses a directory that is not a git repository', () => {
    rmSync(join(repo, '.git'), { recursive: true });
    fakeCli('claude');
    const r = init([]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is not a git repository');
    expect(readdirSync(repo)).toEqual([]);
  });

  it('refuses an invalid existing orch.yaml before creating .orch/', () => {
    commit();
    writeFileSync(join(repo, 'orch.yaml'), 'project: { name: [unclosed\n');
    const r = init([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/orch\.yaml:\d+:\d+/);
    expect(written()).toEqual({ files: ['orch.yaml'], excluded: false });
  });
});
