/**
 * io/worktree-files.ts against what a hostile agent leaves in its
 * worktree: each refusal names the file and why, and comes back at once — a
 * FIFO with no writer would hang a blocking open forever, so a test that
 * finishes is a test that did not block.
 */
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appendToRegularFile,
  inspectWorktreeFile,
  openRegularFile,
  readRange,
  readWorktreeFile,
  replaceFile,
  replaceFileSync,
} from '../../src/io/worktree-files.ts';

let root = '';
let outside = '';
let socket: Server;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'orch-wt-files-'));
  outside = mkdtempSync(join(tmpdir(), 'orch-wt-outside-'));
  writeFileSync(join(outside, 'secret.txt'), 'OUTSIDE-SECRET\n');
  mkdirSync(join(root, 'docs'));
  writeFileSync(join(root, 'docs', 'adr.md'), '# ADR\n');
  writeFileSync(join(root, 'empty.md'), '');
  execFileSync('mkfifo', [join(root, 'fifo.md')]);
  symlinkSync('/dev/zero', join(root, 'zero.md'));
  symlinkSync(join(outside, 'secret.txt'), join(root, 'secret.md'));
  symlinkSync(outside, join(root, 'out-dir'));
  symlinkSync('docs/adr.md', join(root, 'inside-link.md'));
  symlinkSync(join(root, 'nowhere'), join(root, 'dangling.md'));
  writeFileSync(join(root, 'sparse.bin'), '');
  truncateSync(join(root, 'sparse.bin'), 10 * 1024 ** 3);
  socket = createServer();
  await new Promise<void>((resolve) => socket.listen(join(root, 'agent.sock'), resolve));
});

afterAll(async () => {
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

describe('readWorktreeFile', () => {
  it('reads a regular file, and one a symlink inside the worktree leads to', async () => {
    expect(await readWorktreeFile(root, 'docs/adr.md')).toMatchObject({
      ok: true,
      text: '# ADR\n',
      bytes: 6,
    });
    expect(await readWorktreeFile(root, 'inside-link.md')).toMatchObject({ ok: true, text: '# ADR\n' });
    expect(await readWorktreeFile(root, 'empty.md')).toMatchObject({ ok: true, text: '' });
  });

  const refusals: [string, string, string, RegExp][] = [
    ['a FIFO', 'fifo.md', 'not_regular', /^fifo\.md is a FIFO \(named pipe\), not a regular file$/],
    ['a socket', 'agent.sock', 'not_regular', /^agent\.sock is a socket, not a regular file$/],
    ['a directory', 'docs', 'not_regular', /^docs is a directory, not a regular file$/],
    ['a symlink to /dev/zero', 'zero.md', 'outside', /^zero\.md leads to \/dev\/zero, outside /],
    ['a symlink to a file outside', 'secret.md', 'outside', /^secret\.md leads to .*secret\.txt, outside /],
    ['a path through a symlinked directory', 'out-dir/secret.txt', 'outside', /leads to .*, outside/],
    ['a symlink to nothing', 'dangling.md', 'missing', /^dangling\.md is a symlink to nothing$/],
    ['a missing file', 'nope.md', 'missing', /^nope\.md does not exist$/],
    ['a path with ..', '../etc/passwd', 'outside', /is not a path inside/],
    ['an absolute path', '/etc/passwd', 'outside', /is not a path inside/],
    [
      'a 10 GB sparse file',
      'sparse.bin',
      'too_large',
      /^sparse\.bin is 10737418240 bytes, over the cap of 1048576 bytes on a file orch reads from a worktree$/,
    ],
  ];
  it.each(refusals)('refuses %s, naming the file and why', async (_what, name, reason, message) => {
    const got = await readWorktreeFile(root, name);
    expect(got).toMatchObject({ ok: false, reason });
    expect(got.ok ? '' : got.message).toMatch(message);
    // Nothing of the secret is ever read.
    expect(JSON.stringify(got)).not.toContain('OUTSIDE-SECRET');
  });

  it('applies the cap to the exact byte', async () => {
    writeFileSync(join(root, 'ten.txt'), '0123456789');
    expect(await readWorktreeFile(root, 'ten.txt', { maxBytes: 10 })).toMatchObject({ ok: true, bytes: 10 });
    expect(await readWorktreeFile(root, 'ten.txt', { maxBytes: 9 })).toMatchObject({
      ok: false,
      reason: 'too_large',
      message: 'ten.txt is 10 bytes, over the cap of 9 bytes on a file orch reads from a worktree',
    });
  });

  it('inspects without opening: a FIFO is refused, a file has its size', async () => {
    expect(await inspectWorktreeFile(root, 'fifo.md')).toMatchObject({ ok: false, reason: 'not_regular' });
    expect(await inspectWorktreeFile(root, 'docs/adr.md')).toMatchObject({ ok: true, size: 6 });
    expect(await inspectWorktreeFile(root, 'empty.md')).toMatchObject({ ok: true, size: 0 });
  });
});

describe('opening and writing orch files an agent could have replaced', () => {
  it('openRegularFile and readRange refuse a FIFO and a symlink at once', async () => {
    expect(await openRegularFile(join(root, 'fifo.md'))).toMatchObject({ ok: false, reason: 'not_regular' });
    expect(await openRegularFile(join(root, 'zero.md'))).toMatchObject({ ok: false, reason: 'not_regular' });
    expect((await readRange(join(root, 'fifo.md'), 0, 100)).length).toBe(0);
    expect((await readRange(join(root, 'zero.md'), 0, 100)).length).toBe(0);
    expect((await readRange(join(root, 'docs', 'adr.md'), 2, 3)).toString()).toBe('ADR');
  });

  it('replaceFile replaces a FIFO and a symlink out without opening them, and never leaves a temporary', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'orch-wt-replace-'));
    try {
      const fifo = join(dir, 'ledger.jsonl');
      execFileSync('mkfifo', [fifo]);
      await replaceFile(fifo, 'one\n');
      expect(readFileSync(fifo, 'utf8')).toBe('one\n');
      const link = join(dir, 'packet.md');
      symlinkSync(join(outside, 'secret.txt'), link);
      await replaceFile(link, 'packet\n');
      expect(readFileSync(link, 'utf8')).toBe('packet\n');
      // Replacements of one file at once each use a temporary of their own; the last one wins.
      await Promise.all(['a', 'b', 'c', 'd'].map((t) => replaceFile(link, t)));
      expect(['a', 'b', 'c', 'd']).toContain(readFileSync(link, 'utf8'));
      expect(readdirSync(dir).sort()).toEqual(['ledger.jsonl', 'packet.md']);
      expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('OUTSIDE-SECRET\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replaceFileSync (a prompt before its spawn) does the same: no FIFO or symlink opened, no temporary left', () => {
    const dir = mkdtempSync(join(tmpdir(), 'orch-wt-replace-sync-'));
    try {
      const fifo = join(dir, 'prompt.md');
      execFileSync('mkfifo', [fifo]);
      replaceFileSync(fifo, 'one\n');
      expect(readFileSync(fifo, 'utf8')).toBe('one\n');
      const link = join(dir, 'other.md');
      symlinkSync(join(outside, 'secret.txt'), link);
      replaceFileSync(link, 'two\n');
      expect(readFileSync(link, 'utf8')).toBe('two\n');
      // A missing directory is made; a directory in the way fails the rename, and the temporary goes.
      replaceFileSync(join(dir, 'sub', 'new.md'), 'three\n');
      expect(readFileSync(join(dir, 'sub', 'new.md'), 'utf8')).toBe('three\n');
      mkdirSync(join(dir, 'taken.md', 'x'), { recursive: true });
      expect(() => replaceFileSync(join(dir, 'taken.md'), 'four\n')).toThrow(/EISDIR|ENOTEMPTY|EEXIST/);
      expect(readdirSync(dir).sort()).toEqual(['other.md', 'prompt.md', 'sub', 'taken.md']);
      expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('OUTSIDE-SECRET\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('appendToRegularFile appends to a file and refuses a FIFO and a symlink, writing nothing', async () => {
    const file = join(root, 'log.txt');
    writeFileSync(file, 'a\n');
    await appendToRegularFile(file, 'b\n');
    expect(readFileSync(file, 'utf8')).toBe('a\nb\n');
    await expect(appendToRegularFile(join(root, 'fifo.md'), 'x')).rejects.toThrow(/ENXIO|FIFO/);
    await expect(appendToRegularFile(join(root, 'secret.md'), 'x')).rejects.toThrow(/ELOOP/);
    expect(readFileSync(join(outside, 'secret.txt'), 'utf8')).toBe('OUTSIDE-SECRET\n');
  });
});
