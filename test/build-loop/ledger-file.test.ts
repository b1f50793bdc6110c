/**
 * The attempt ledger file, written asynchronously now: syncs of one file take
 * turns (two jobs of a task finishing together must not both append a line),
 * a file an agent replaced with a FIFO or a symlink is replaced, not opened,
 * and the ADR hashed into the header is read like any worktree file.
 */
import { execFileSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handoffText, LEDGER_FILE, syncLedger, type LedgerHeader } from '../../src/runtime/ledger.ts';
import type { Attempt } from '../../src/store/schema.ts';

let dir = '';
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'orch-ledger-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const header: LedgerHeader = {
  type: 'header',
  schema_version: 'v1.0',
  policy_hash: 'p',
  handoff_hash: 'h',
  run_id: 'run',
};
const attempt = (n: number): Attempt => ({
  id: n,
  task_id: 1,
  n,
  diff_hash: `hash-${n}`,
  verdict: n === 3 ? 'approved' : 'rejected',
  feedback: '',
  input_tokens: 1,
  output_tokens: 1,
  cost_usd: null,
  duration_ms: 1,
  reason: null,
  dev_run_id: null,
  review_run_id: null,
  created_at: '2026-01-01T00:00:00.000Z',
});
const lines = (): { type: string; n?: number }[] =>
  readFileSync(join(dir, LEDGER_FILE), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; n?: number });

describe('syncLedger', () => {
  it('appends each missing line once, however many syncs run at the same time', async () => {
    await syncLedger(dir, header, [attempt(1)]);
    const two = [attempt(1), attempt(2)];
    await Promise.all([
      syncLedger(dir, header, two),
      syncLedger(dir, header, two),
      syncLedger(dir, header, two),
    ]);
    expect(lines().map((l) => l.n ?? l.type)).toEqual(['header', 1, 2]);
  });

  it('replaces a ledger an agent swapped for a FIFO or a symlink, without opening it', async () => {
    const path = join(dir, LEDGER_FILE);
    execFileSync('mkfifo', [path]);
    await syncLedger(dir, header, [attempt(1)]);
    expect(lines().map((l) => l.n ?? l.type)).toEqual(['header', 1]);
    const elsewhere = join(dir, 'elsewhere.txt');
    writeFileSync(elsewhere, 'untouched\n');
    rmSync(path);
    symlinkSync(elsewhere, path);
    await syncLedger(dir, header, [attempt(1), attempt(2)]);
    expect(lines().map((l) => l.n ?? l.type)).toEqual(['header', 1, 2]);
    expect(readFileSync(elsewhere, 'utf8')).toBe('untouched\n');
  });
});

describe('handoffText', () => {
  const task = { key: 'T-1', title: 'Title', description: 'Desc' };
  const adr = () => join(dir, 'docs', 'tasks', 'T-1', 'adr.md');

  it('is the ADR when there is one, else the title and description', async () => {
    expect(await handoffText(dir, task)).toBe('Title\nDesc');
    mkdirSync(join(dir, 'docs', 'tasks', 'T-1'), { recursive: true });
    writeFileSync(adr(), '# Decision\n');
    expect(await handoffText(dir, task)).toBe('# Decision\n');
  });

  it.each([
    ['a FIFO', () => execFileSync('mkfifo', [adr()]), /adr\.md is a FIFO \(named pipe\)/],
    [
      'a symlink to /dev/zero',
      () => symlinkSync('/dev/zero', adr()),
      /adr\.md leads to \/dev\/zero, outside/,
    ],
    [
      'a 10 GB sparse file',
      () => {
        writeFileSync(adr(), '');
        truncateSync(adr(), 10 * 1024 ** 3);
      },
      /adr\.md is 10737418240 bytes, over the cap/,
    ],
  ])('an ADR that is %s is named, not read', async (_what, make, said) => {
    mkdirSync(join(dir, 'docs', 'tasks', 'T-1'), { recursive: true });
    make();
    const text = await handoffText(dir, task);
    expect(text.startsWith('Title\nDesc\n[orch: ')).toBe(true);
    expect(text).toMatch(said);
  });
});
