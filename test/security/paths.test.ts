/**
 * Workspace names, branch names and the worktrees root: distinct keys never
 * share a directory or a branch, every name is one safe path segment and a
 * valid git ref, ordinary keys stay readable, and a symlink that leads out of
 * the root is refused before anything is created through it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_NAME_CHARS, safeName } from '../../src/runtime/safe-names.ts';
import { taskBranch } from '../../src/runtime/git.ts';
import { pathUnder, paths, type OrchContext } from '../../src/runtime/context.ts';
import { makeProject, type TempProject } from '../helpers/kit.ts';

const budget = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns,
  interruptAfterTimeLimit: 15_000,
  markInterruptAsFailure: false,
});

/** Keys over a small alphabet, so many of them sanitize to the same text. */
const lookalikeKey = fc.string({
  unit: fc.constantFrom('a', 'A', '1', '_', '-', '.', '/', '#', ' ', '"', 'é', '\n'),
  maxLength: 12,
});
const anyKey = fc.oneof(lookalikeKey, fc.string({ unit: 'binary', maxLength: 90 }));

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'orch-paths-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const validRef = (branch: string): boolean =>
  spawnSync('git', ['check-ref-format', '--branch', branch], { cwd: scratch }).status === 0;

describe('workspace and branch names', () => {
  it('keeps ordinary keys as they are', () => {
    for (const key of ['DEMO-1', 'T-1', 'ENG-42', 'sample', 'my_app', 'v1.2', 'A']) {
      expect(safeName(key)).toBe(key);
      expect(taskBranch(key)).toBe(`orch/${key}`);
    }
  });

  it('sanitizes foreign keys and adds a hash of the raw key', () => {
    const cases: [key: string, readable: string][] = [
      ['acme/app#12', 'acme_app_12'],
      ['../../etc', '______etc'],
      ['', '_'],
      ['.hidden', '_hidden'],
      ['a..b', 'a__b'],
      ['main.lock', 'main_lock'],
      ['-rf', '_-rf'],
      ['$(touch /tmp/x)', '__touch__tmp_x_'],
      // Plain, but shaped like a hashed name: hashed again, or it could equal another key's name.
      ['DEMO-1-0123456789', 'DEMO-1-0123456789'],
    ];
    for (const [key, readable] of cases) {
      const name = safeName(key);
      expect(name, key).toMatch(new RegExp(`^${readable.replace(/[.$()]/g, '\\$&')}-[0-9a-f]{10}$`));
      expect(taskBranch(key)).toBe(`orch/${name}`);
    }
    expect(safeName('x'.repeat(500))).toHaveLength(MAX_NAME_CHARS - 1);
  });

  it('keys that sanitize alike get different names', () => {
    const keys = ['acme/app#12', 'acme_app_12', 'acme app 12', 'acme#app/12', 'acme/app#12 '];
    expect(new Set(keys.map(safeName)).size).toBe(keys.length);
  });

  it('distinct keys never share a name (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(anyKey, { minLength: 2, maxLength: 30 }), (keys) => {
        // A key equal to another key's hashed name is the one collision a plain pass-through could make.
        const withNames = [...new Set([...keys, ...keys.map(safeName)])];
        expect(new Set(withNames.map(safeName)).size).toBe(withNames.length);
      }),
      budget(500),
    );
  });

  it('every name is one safe path segment (property)', () => {
    fc.assert(
      fc.property(anyKey, (key) => {
        const name = safeName(key);
        expect(name.length).toBeGreaterThan(0);
        expect(name.length).toBeLessThanOrEqual(MAX_NAME_CHARS);
        expect(name).toMatch(/^[A-Za-z0-9_][A-Za-z0-9._-]*$/);
        expect(name).not.toMatch(/\.\.|\.$|\.lock$/);
        expect(safeName(key)).toBe(name); // the same key always gets the same name
      }),
      budget(1000),
    );
  });

  it('every branch passes git check-ref-format --branch', () => {
    const keys = [
      ...fc.sample(anyKey, { numRuns: 120, seed: 42 }),
      'acme/app#12',
      'a@{b',
      '@',
      'x~1^2:3?*[',
      'back\\slash',
      'orch/..',
      'end.',
      'tab\tname',
      '\u007f',
    ];
    const invalid = keys.map(taskBranch).filter((b) => !validRef(b));
    expect(invalid).toEqual([]);
  });
});

describe('paths under a root', () => {
  let root: string;
  let outside: string;
  beforeAll(() => {
    root = join(scratch, 'worktrees');
    outside = join(scratch, 'outside');
    mkdirSync(join(root, 'inside-target'), { recursive: true });
    mkdirSync(outside, { recursive: true });
    symlinkSync(outside, join(root, 'escape-project'));
    mkdirSync(join(root, 'sample'), { recursive: true });
    symlinkSync(outside, join(root, 'sample', 'T-9'));
    symlinkSync(join(scratch, 'nowhere'), join(root, 'sample', 'T-10'));
    symlinkSync(join(root, 'inside-target'), join(root, 'sample', 'T-11'));
    symlinkSync(root, join(scratch, 'root-link'));
  });

  it('accepts a path that does not exist yet, or stays inside through a symlink', () => {
    expect(pathUnder(root, 'sample', 'T-1')).toBe(join(root, 'sample', 'T-1'));
    expect(pathUnder(root, 'new-project', 'T-1')).toBe(join(root, 'new-project', 'T-1'));
    expect(pathUnder(root, 'sample', 'T-11')).toBe(join(root, 'sample', 'T-11'));
    // The root itself may be a symlink (worktrees moved to another disk).
    expect(pathUnder(join(scratch, 'root-link'), 'sample', 'T-1')).toBe(
      join(scratch, 'root-link', 'sample', 'T-1'),
    );
  });

  it('refuses a symlink that leads out of the root, at any level, naming where it leads', () => {
    expect(() => pathUnder(root, 'escape-project', 'T-1')).toThrow(
      `refusing ${join(root, 'escape-project', 'T-1')}: it resolves to ${join(outside, 'T-1')}, outside ${root}`,
    );
    expect(() => pathUnder(root, 'sample', 'T-9')).toThrow(/outside .*a symlink leads out of it/);
  });

  it('refuses a broken symlink, which creating the path would follow', () => {
    expect(() => pathUnder(root, 'sample', 'T-10')).toThrow(/T-10 is a broken symlink/);
  });
});

describe('paths.worktree in a real home', () => {
  let project: TempProject;
  let ctx: OrchContext;
  let outside: string;
  beforeAll(async () => {
    project = makeProject();
    ctx = await project.context();
    outside = mkdtempSync(join(tmpdir(), 'orch-outside-'));
  });
  afterAll(async () => {
    await ctx.close();
    project.cleanup();
    rmSync(outside, { recursive: true, force: true });
  });

  it('puts worktrees, logs and artifacts in directories named by safeName', async () => {
    const p = await ctx.store.getProject(1);
    const key = 'acme/app#12';
    const name = safeName(key);
    expect(paths.worktree(ctx, p, { key })).toBe(join(project.dir, '.orch', 'worktrees', 'sample', name));
    expect(paths.logsDir(ctx, { key })).toBe(join(project.dir, '.orch', 'logs', name));
    expect(paths.artifacts(p, { key })).toBe(join(project.dir, '.orch', 'artifacts', name));
    expect(paths.worktree(ctx, p, { key: 'T-1' })).toBe(
      join(project.dir, '.orch', 'worktrees', 'sample', 'T-1'),
    );
  });

  it('refuses a worktree whose project directory is a symlink out of the worktrees root; the run creates nothing there', async () => {
    mkdirSync(join(project.dir, '.orch', 'worktrees'), { recursive: true });
    symlinkSync(outside, join(project.dir, '.orch', 'worktrees', 'sample'));
    const added = project.orch(['task', 'add', 'through the symlink']);
    expect(added.code, added.stderr).toBe(0);
    // The refusal fails the stage (an internal error): its job is tried again a few times, then
    // the task escalates with internal_error instead of looping forever.
    const run = await project.orchAsync(['run', '--until-idle'], { timeoutMs: 80_000 });
    expect(run.code, run.stderr).toBe(0);
    const output = run.stdout + run.stderr;
    expect(output).toContain(`refusing ${join(project.dir, '.orch', 'worktrees', 'sample', 'T-1')}`);
    const shown = JSON.parse(project.orch(['task', 'show', 'T-1', '--json']).stdout) as {
      status: string;
      terminal_reason: string;
    };
    expect(shown).toMatchObject({ status: 'escalated', terminal_reason: 'internal_error' });
    expect(readdirSync(outside)).toEqual([]);
  }, 90_000);
});
