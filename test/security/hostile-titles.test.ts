/**
 * Hostile task text through the real CLI: titles and descriptions full of
 * quotes, `$(...)`, backticks, `../`, option lookalikes, newlines and 10 KB of
 * text, plus keys as a tracker would bring them (`acme/app#12`, spaces,
 * quotes), are worked to done by the scripted agent. Nothing the text says is
 * ever run, every worktree stays under the worktrees root with a name of its
 * own, every branch is a valid ref, and the text is stored and shown verbatim.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { makeProject, type TempProject } from '../helpers/kit.ts';

let project: TempProject;
/** Where an injected command would leave its mark; must stay empty. */
const marker = mkdtempSync(join(tmpdir(), 'orch-pwned-'));
const pwned = (n: number): string => join(marker, `pwned-${n}`);

interface Shown {
  key: string;
  title: string;
  description: string;
  stage: string;
  status: string;
  branch: string;
}

const show = (key: string): Shown => {
  const r = project.orch(['task', 'show', key, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Shown;
};

const validBranch = (name: string): boolean =>
  spawnSync('git', ['check-ref-format', '--branch', name], { cwd: project.dir }).status === 0;

beforeAll(() => {
  project = makeProject({
    config: {
      // The two stages that matter: the developer writes, the reviewer judges; the rest only slows the test.
      pipeline: {
        analysis: { enabled: false },
        architecture: { enabled: false },
        testing: { enabled: false },
        'deploy-staging': { enabled: false },
        deploy: { enabled: false },
      },
      worktrees: { remove: 'never' },
    },
    script: {
      defaults: {
        developer: [
          // The title as one argv element of a real program: printed, never interpreted.
          { run: ['printf', '%s\n', '{{title}}'] },
          { append: { path: 'changes/{{key}}.md', content: '{{title}}\n' } },
          { result: 'recorded {{key}}' },
        ],
      },
    },
  });
});

afterAll(() => {
  project?.cleanup();
  rmSync(marker, { recursive: true, force: true });
});

describe('hostile titles, descriptions and keys, end to end', () => {
  const titles = [
    `Quotes "double" 'single' and \`touch ${pwned(1)}\``,
    `$(touch ${pwned(2)}) && touch ${pwned(3)}; rm -rf ~`,
    '../../etc/passwd',
    '-rf --no-verify --exec=sh',
    `first line\nsecond $(touch ${pwned(4)})\n\tthird | tee ${pwned(5)}`,
    '%s %n {{key}} ${HOME} \\ \\\\ \'"; DROP TABLE tasks; --',
  ];
  const description = (() => {
    const unit = `$(touch ${pwned(6)}) \`touch ${pwned(7)}\` "'\n../../`;
    return unit.repeat(Math.ceil(10_240 / unit.length)).slice(0, 10_240);
  })();
  /** Keys as a tracker brings them; the first two sanitize alike. */
  const foreignKeys = ['acme/app#12', 'acme_app_12', `ENG 42 "x" $(touch ${pwned(8)})`];
  const keys: string[] = [];

  it('adds every hostile title, with a 10 KB hostile description, and refuses a 10 KB title clearly', () => {
    for (const title of titles) {
      // `--` ends the options, so a title that looks like options is still a title.
      const r = project.orch(['task', 'add', `--description=${description}`, '--json', '--', title]);
      expect(r.code, r.stderr).toBe(0);
      keys.push((JSON.parse(r.stdout) as { key: string }).key);
    }
    const tooLong = project.orch(['task', 'add', '--', 'x'.repeat(10_240)]);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toContain('a task title is at most 500 characters (got 10240)');
    // An escape sequence would drive the terminal of whoever lists tasks.
    const escape = project.orch(['task', 'add', '--', 'red \u001b[31mtitle']);
    expect(escape.code).toBe(2);
    expect(escape.stderr).toContain('may not hold control characters');
    // So would its 8-bit form: C1's CSI.
    const c1 = project.orch(['task', 'add', '--', 'red \u009b31mtitle']);
    expect(c1.code).toBe(2);
    expect(c1.stderr).toContain('may not hold control characters');
    const list = project.orch(['task', 'list', '--json']);
    expect(JSON.parse(list.stdout)).toHaveLength(titles.length);
  });

  it('takes keys from outside (as tracker import will) for three more tasks', async () => {
    const ctx = await project.context();
    try {
      for (const key of foreignKeys) {
        const added = project.orch(['task', 'add', '--json', '--', `foreign key ${key}`]);
        expect(added.code, added.stderr).toBe(0);
        const generated = (JSON.parse(added.stdout) as { key: string }).key;
        await ctx.store.db.updateTable('tasks').set({ key }).where('key', '=', generated).execute();
        keys.push(key);
      }
    } finally {
      await ctx.close();
    }
  });

  it('works every task to done and runs nothing the text says', () => {
    const run = project.orch(['run', '--until-idle'], { timeoutMs: 300_000 });
    expect(run.code, run.stderr).toBe(0);
    for (const key of keys) expect(show(key), key).toMatchObject({ stage: 'done', status: 'done' });
    expect(readdirSync(marker)).toEqual([]);
  }, 320_000);

  it('stores and shows titles and descriptions verbatim, in the store, the commits and the landed files', () => {
    const log = project.git(['log', '--format=%B', 'main']);
    titles.forEach((title, i) => {
      const t = show(keys[i]!);
      expect(t.title).toBe(title);
      expect(t.description).toBe(description);
      expect(log).toContain(title);
      expect(project.git(['show', `main:changes/${keys[i]}.md`])).toBe(`${title}\n`);
    });
    // The human view shows the title too.
    const human = project.orch(['task', 'show', keys[0]!]);
    expect(human.stdout).toContain(titles[0]);
  });

  it('gives every task a worktree of its own under the worktrees root, and a valid branch of its own', () => {
    const root = realpathSync(join(project.dir, '.orch', 'worktrees', 'sample'));
    const porcelain = project.git(['worktree', 'list', '--porcelain']);
    const worktrees = porcelain
      .split('\n')
      .filter((l) => l.startsWith('worktree '))
      .map((l) => l.slice('worktree '.length))
      .filter((p) => realpathSync(p) !== realpathSync(project.dir));
    expect(worktrees).toHaveLength(keys.length);
    for (const path of worktrees) expect(dirname(realpathSync(path))).toBe(root);
    expect(new Set(worktrees).size).toBe(keys.length);

    const branches = keys.map((key) => show(key).branch);
    expect(new Set(branches).size).toBe(keys.length);
    for (const branch of branches) {
      expect(validBranch(branch), branch).toBe(true);
      expect(project.git(['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`]).trim()).toMatch(
        /^[0-9a-f]{40}$/,
      );
    }
    // Generated keys keep their readable names; foreign ones get a hash suffix only when needed.
    expect(branches.slice(0, titles.length)).toEqual(keys.slice(0, titles.length).map((k) => `orch/${k}`));
    expect(branches.slice(titles.length)).toEqual([
      expect.stringMatching(/^orch\/acme_app_12-[0-9a-f]{10}$/),
      'orch/acme_app_12',
      expect.stringMatching(/^orch\/ENG_42__x____touch__[\w-]*-[0-9a-f]{10}$/),
    ]);
    // Nothing landed outside the repository, whatever the keys said.
    expect(execFileSync('git', ['status', '--porcelain'], { cwd: project.dir, encoding: 'utf8' })).toBe('');
  });
});
