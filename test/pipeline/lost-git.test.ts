/**
 * An agent that deletes its worktree's `.git` file: git, kept from looking above the worktree,
 * never reaches the project's own checkout, so nothing of the run is committed there and the
 * person's uncommitted work in it stays as it was. The try fails with feedback saying why, the
 * worktree is made again for the next one, and past the retries the task escalates.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { makeProject, ONLY_DEVELOPMENT, type TempProject } from '../helpers/kit.ts';

let project: TempProject | undefined;
afterEach(() => project?.cleanup());

it("a run that deletes its worktree's .git commits nothing into the project's checkout", async () => {
  project = makeProject({
    config: {
      pipeline: ONLY_DEVELOPMENT,
      retry: { max_retries: 1, base_ms: 100, max_ms: 200 },
    },
    script: {
      defaults: {
        developer: [{ write: { path: 'feature.txt', content: 'work\n' } }, { run: ['rm', '-f', '.git'] }],
      },
    },
  });
  const p = project;
  // The person's own uncommitted work in the checkout orch was started from.
  writeFileSync(join(p.dir, 'userwork.txt'), 'mine, not committed\n');
  writeFileSync(join(p.dir, 'README.md'), `${readFileSync(join(p.dir, 'README.md'), 'utf8')}my edit\n`);
  const head = p.git(['rev-parse', 'HEAD']);
  const status = p.git(['status', '--porcelain']);
  expect(p.orch(['task', 'add', 'lose the link']).code).toBe(0);
  const r = await p.orchAsync(['run', '--until-idle'], { timeoutMs: 90_000 });
  expect(r.code, r.stderr).toBe(0);
  expect(p.git(['rev-parse', 'HEAD'])).toBe(head);
  expect(p.git(['status', '--porcelain'])).toBe(status);
  expect(p.git(['log', '--all', '--format=%s'])).not.toContain('lose the link');
  const shown = JSON.parse(p.orch(['task', 'show', 'T-1', '--json']).stdout) as {
    status: string;
    terminal_reason: string;
    feedback: string;
    runs: { role: string }[];
  };
  expect(shown).toMatchObject({ status: 'escalated', terminal_reason: 'agent_failure' });
  expect(shown.feedback).toContain('.git was removed');
  // The worktree was made again for the second try: the agent ran twice.
  expect(shown.runs.filter((run) => run.role === 'developer')).toHaveLength(2);
}, 120_000);
