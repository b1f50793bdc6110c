import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ORCH_BIN_DIR, resolveAgentBinary } from './binary.ts';

const dir = mkdtempSync(join(tmpdir(), 'orch-binary-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const exe = (path: string): string => {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, '#!/bin/sh\n');
  chmodSync(path, 0o755);
  return path;
};

describe('agent binary resolution', () => {
  const onPathDir = join(dir, 'path-bin');
  const bundled = join(dir, 'orch-bin');
  const where = { pathVar: onPathDir, projectRoot: join(dir, 'project'), orchBinDir: bundled };
  exe(join(onPathDir, 'claude'));
  exe(join(bundled, 'claude'));
  exe(join(bundled, 'codex'));
  const local = exe(join(dir, 'project', 'tools', 'my-claude'));

  it.each([
    [
      'the CLI on PATH first',
      { binaryName: 'claude' },
      {},
      { path: join(onPathDir, 'claude'), found: true, source: 'path' },
    ],
    [
      "then orch's node_modules/.bin",
      { binaryName: 'codex' },
      {},
      { path: join(bundled, 'codex'), found: true, source: 'orch' },
    ],
    [
      'a binary: path relative to the project',
      { binaryName: 'claude' },
      { binary: 'tools/my-claude' },
      { path: local, found: true, source: 'config' },
    ],
    [
      'a binary: name on PATH',
      { binaryName: 'codex' },
      { binary: 'claude' },
      { path: join(onPathDir, 'claude'), found: true, source: 'config' },
    ],
    [
      'a missing binary: keeps the name',
      { binaryName: 'gemini' },
      {},
      { path: 'gemini', found: false, source: 'path' },
    ],
    [
      'a missing binary: path',
      { binaryName: 'gemini' },
      { binary: '/nope/gemini' },
      { path: '/nope/gemini', found: false, source: 'config' },
    ],
  ])('finds %s', (_what, adapter, cfg, want) => {
    expect(resolveAgentBinary(adapter, cfg, where)).toEqual(want);
  });

  it('has nothing to resolve for adapters that bring their own argv', () => {
    expect(resolveAgentBinary({ binaryName: null }, {}, where)).toBeNull();
  });

  it("points at orch's own node_modules/.bin", () => {
    expect(ORCH_BIN_DIR).toMatch(/node_modules\/\.bin$/);
  });
});
