/**
 * `orch task list` shows the newest tasks, not the whole history: 100 unless
 * told (`--limit`), every one with `--all`, oldest first so the newest is
 * printed last, and a note when older ones were left out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeProject, type TempProject } from '../helpers/kit.ts';
import { addTask } from '../../src/runtime/tasks.ts';

let project: TempProject;
beforeAll(async () => {
  project = makeProject();
  const ctx = await project.context();
  for (const title of ['first', 'second', 'third']) await addTask(ctx, title, {});
  await ctx.close();
});
afterAll(() => project.cleanup());

const keys = (out: string) => [...out.matchAll(/^(T-\d+)\s/gm)].map((m) => m[1]);

describe('orch task list', () => {
  it('shows the newest --limit tasks, oldest of them first, and says older ones exist', () => {
    const r = project.orch(['task', 'list', '--limit', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(keys(r.stdout)).toEqual(['T-2', 'T-3']);
    expect(r.stdout).toContain('(the newest 2: --limit N or --all for more)');
    const json = project.orch(['task', 'list', '--limit', '2', '--json']);
    expect((JSON.parse(json.stdout) as { key: string }[]).map((t) => t.key)).toEqual(['T-2', 'T-3']);
  });

  it('shows every task under the limit, or with --all, without the note', () => {
    for (const args of [[], ['--all'], ['--limit', '3']]) {
      const r = project.orch(['task', 'list', ...args]);
      expect(keys(r.stdout)).toEqual(['T-1', 'T-2', 'T-3']);
      expect(r.stdout).not.toContain('the newest');
    }
  });

  it('refuses a limit that is not a positive whole number, naming the option', () => {
    const r = project.orch(['task', 'list', '--limit', '0']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--limit/);
  });
});
