/**
 * What a worktree can hold that orch cannot commit, at the git level: a
 * repository of its own (with and without a commit: git fails on the one and
 * silently stages a gitlink for the other), a file over the size limit (a
 * sparse 10 GB file would be hashed for minutes), and git refusing on its own
 * account. Each is a GitRefusal with feedback for the developer, never a
 * half-made commit; the next try's discard removes what was left.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commitAll, discardUncommitted, GitRefusal, MAX_COMMIT_FILE_BYTES } from '../../src/runtime/git.ts';
import { machineTrouble, parseStatusZ } from '../../src/runtime/git-refusal.ts';
import { exitCodeFor } from '../../src/errors.ts';

let repo = '';
const git = (args: string[], cwd = repo): string =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@localhost', ...args], {
    cwd,
    encoding: 'utf8',
  });

beforeEach(() => {
  repo = mkdtempSync(join(tmpdir(), 'orch-git-refusal-'));
  git(['init', '-q', '-b', 'main']);
  writeFileSync(join(repo, 'README.md'), '# r\n');
  git(['add', '-A']);
  git(['commit', '-q', '-m', 'initial']);
});
afterEach(() => rmSync(repo, { recursive: true, force: true }));

const head = (): string => git(['rev-parse', 'HEAD']).trim();

/** commitAll's refusal, or a failure of the test when it commits. */
async function refusal(): Promise<GitRefusal> {
  const before = head();
  const error = await commitAll(repo, 'stage work').then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GitRefusal);
  expect(head(), 'nothing is committed').toBe(before);
  return error as GitRefusal;
}

describe('commitAll refuses what cannot be committed', () => {
  it('a nested repository without a commit (git add -A itself fails on it)', async () => {
    mkdirSync(join(repo, 'sub'));
    git(['init', '-q'], join(repo, 'sub'));
    writeFileSync(join(repo, 'sub', 'lib.js'), 'x\n');
    writeFileSync(join(repo, 'work.txt'), 'the real work\n');
    const error = await refusal();
    expect(error.paths).toEqual([{ path: 'sub/', why: 'nested_repository' }]);
    expect(error.feedback).toContain('sub/ is a git repository of its own');
    expect(error.feedback).toContain('Remove sub/.git and keep the files');
    expect(error.code).toBe('git_refused');
    expect(exitCodeFor(error)).toBe(1);
  });

  it('a nested repository with a commit (git would stage a gitlink, losing its files), deep in new directories', async () => {
    const nested = join(repo, 'a', 'b', 'vendor');
    mkdirSync(nested, { recursive: true });
    git(['init', '-q'], nested);
    writeFileSync(join(nested, 'dep.js'), 'y\n');
    git(['add', '-A'], nested);
    git(['commit', '-q', '-m', 'vendored'], nested);
    writeFileSync(join(repo, 'a', 'keep.txt'), 'k\n');
    const error = await refusal();
    expect(error.paths.map((p) => p.path)).toEqual(['a/b/vendor/']);
    // Nothing was staged: the index still matches HEAD.
    expect(git(['diff', '--cached', '--name-only'])).toBe('');
  });

  it('a file over the size limit, without git reading it', async () => {
    const big = join(repo, 'data.bin');
    writeFileSync(big, '');
    truncateSync(big, 10 * 1024 ** 3);
    const error = await refusal();
    expect(error.paths).toEqual([{ path: 'data.bin', why: 'too_large', bytes: 10 * 1024 ** 3 }]);
    expect(error.feedback).toContain(
      `data.bin is 10737418240 bytes, over the ${MAX_COMMIT_FILE_BYTES} bytes`,
    );
  });

  it("git's own refusal carries git's message (a signing config planted in the repository)", async () => {
    git(['config', 'commit.gpgsign', 'true']);
    git(['config', 'gpg.program', 'false']);
    writeFileSync(join(repo, 'work.txt'), 'w\n');
    const error = await refusal();
    expect(error.gitMessage).toMatch(/gpg failed to sign/);
    expect(error.feedback).toMatch(/^git refused to commit the work: .*gpg failed to sign/s);
  });

  it('a FIFO is skipped by git, not refused; a symlink to /dev/zero is committed as a link', async () => {
    execFileSync('mkfifo', [join(repo, 'pipe')]);
    execFileSync('ln', ['-s', '/dev/zero', join(repo, 'zero')]);
    writeFileSync(join(repo, 'work.txt'), 'w\n');
    expect(await commitAll(repo, 'work')).toBe(head());
    expect(git(['show', '--name-only', '--format=', 'HEAD']).trim().split('\n').sort()).toEqual([
      'work.txt',
      'zero',
    ]);
  });

  it('the next try starts clean: the discard removes a nested repository too', async () => {
    mkdirSync(join(repo, 'sub'));
    git(['init', '-q'], join(repo, 'sub'));
    writeFileSync(join(repo, 'sub', 'f'), 'f\n');
    await refusal();
    expect(await discardUncommitted(repo)).toBe(true);
    expect(existsSync(join(repo, 'sub'))).toBe(false);
    expect(await commitAll(repo, 'nothing')).toBeNull();
  });
});

describe('parsing and classification', () => {
  it('parses porcelain -z with renames', () => {
    expect(parseStatusZ('R  new.txt\0old.txt\0?? dir/\0 M a b.txt\0')).toEqual([
      { xy: 'R ', path: 'new.txt' },
      { xy: '??', path: 'dir/' },
      { xy: ' M', path: 'a b.txt' },
    ]);
  });

  it.each([
    ['fatal: unable to write new index file: No space left on device', true],
    ['error: insufficient permission: Read-only file system', true],
    ["fatal: Unable to create '/r/.git/index.lock': File exists.", true],
    ['', true],
    ["error: 'sub/' does not have a commit checked out\nfatal: adding files failed", false],
    ['error: gpg failed to sign the data', false],
  ])('%j is machine trouble: %s', (stderr, trouble) => {
    expect(machineTrouble(stderr)).toBe(trouble);
  });
});
