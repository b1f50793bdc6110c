/**
 * Dependencies imported from trackers, end to end through the real CLI: an
 * issue blocked by another (GitHub's issue dependencies API; Linear's
 * `blocks` relation) is imported with its edge, waits `blocked` (the detail
 * naming the blocker) while the blocker works, and starts its first run only
 * after the blocker's `done`. The blocker's developer is held until the test
 * lets it go, so the dependent is seen waiting; `orch run --until-idle`
 * keeps working all the while, and ends with both done.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { DEVELOP_AND_REVIEW, waitFor, type TempProject } from '../../helpers/kit.ts';
import { disposeAfterEach } from '../../helpers/dispose.ts';
import { startGitHubFake } from '../../fakes/trackers/github-server.ts';
import { startLinearFake } from '../../fakes/trackers/linear-server.ts';
import { makeOriginRepo, type OriginRepo } from '../../fakes/trackers/git-merge.ts';
import type { Task } from '../../../src/store/schema.ts';
import type { TaskDetail } from '../../build-loop/loop-kit.ts';
import { makeForgeProject, runInBackground } from './e2e-kit.ts';

const own = disposeAfterEach();
// A whole pipeline or two per test, on a shared machine.
vi.setConfig({ testTimeout: 180_000 });

/**
 * The scripted agent's script: the developer of the task titled `Blocker`
 * waits until the file `release` exists, then makes its change.
 */
function heldBlocker(release: string): Record<string, unknown> {
  return {
    tasks: [
      {
        match: { title: 'Blocker' },
        roles: {
          developer: {
            default: [
              { run: ['sh', '-c', 'while [ ! -e "$0" ]; do sleep 0.1; done', release] },
              { append: { path: 'changes/{{key}}.md', content: '- scripted change for {{key}}\n' } },
              { result: 'Recorded the change once let go.' },
            ],
          },
        },
      },
    ],
  };
}

/** A file that does not exist yet, in a directory removed after the test. */
function releaseFile(): string {
  const dir = own(mkdtempSync(join(tmpdir(), 'orch-release-')), (d) =>
    rmSync(d, { recursive: true, force: true }),
  );
  return join(dir, 'release');
}

/**
 * Runs the project until idle with `env`: the task titled `Dependent` is
 * seen blocked by `Blocker` (through `orch task show --json`) while the
 * blocker's developer is held, then the blocker is let go. Answers both
 * tasks as they ended, and the events of the run, in order.
 */
async function blockedUntilDone(project: TempProject, env: Record<string, string>, release: string) {
  const run = runInBackground(project, env);
  const ctx = own(await project.context());
  const byTitle = async (title: string): Promise<Task | undefined> =>
    (await ctx.store.listTasks({})).find((t) => t.title === title);

  const dependent = await waitFor(
    async () => {
      run.alive();
      const t = await byTitle('Dependent');
      return t?.status === 'blocked' ? t : null;
    },
    90_000,
    'the dependent to be blocked',
  );
  const blocker = (await byTitle('Blocker'))!;
  // The blocker is working (its developer is held), and has not finished.
  expect(blocker.status).not.toBe('done');

  const shown = await project.orchAsync(['task', 'show', dependent.key, '--json'], { env });
  expect(shown.code, shown.stderr).toBe(0);
  const detail = JSON.parse(shown.stdout) as TaskDetail;
  expect(detail).toMatchObject({ status: 'blocked', stage: 'created', runs: [] });
  expect(detail.status_detail).toMatch(new RegExp(`^waiting for ${blocker.key} \\(`));
  expect(detail.depends_on.map((d) => d.key)).toEqual([blocker.key]);

  writeFileSync(release, '');
  await run.finish();

  const events = await ctx.store.eventsAfter(0, 10_000);
  return {
    blocker: await ctx.store.getTask(blocker.id),
    dependent: await ctx.store.getTask(dependent.id),
    events,
  };
}

type Outcome = Awaited<ReturnType<typeof blockedUntilDone>>;

/** Both tasks done; the dependent's first run started after the blocker's `done` event, and it had waited `blocked`. */
function expectRanAfterBlocker({ blocker, dependent, events }: Outcome): void {
  expect([blocker.status, dependent.status]).toEqual(['done', 'done']);
  const of = (t: Task, kind: string) => events.filter((e) => e.task_id === t.id && e.kind === kind);
  const blockerDone = of(blocker, 'done');
  expect(blockerDone).toHaveLength(1);
  const firstRun = of(dependent, 'run_started')[0]!;
  expect(firstRun).toBeDefined();
  expect(firstRun.id).toBeGreaterThan(blockerDone[0]!.id);
  const waited = of(dependent, 'blocked');
  expect(waited.length).toBeGreaterThan(0);
  expect(waited[0]!.id).toBeLessThan(blockerDone[0]!.id);
  expect(JSON.parse(waited[0]!.payload).detail).toContain(blocker.key);
}

/** The change each task made is where `show` reads (a branch of a repository). */
function expectBothChanges(show: (path: string) => string | null, o: Outcome): void {
  for (const t of [o.blocker, o.dependent]) expect(show(`changes/${t.key}.md`)).toContain(t.key);
}

describe('dependencies from trackers, end to end', () => {
  it("GitHub: an issue blocked by another (its dependencies API) runs only once the blocker's pull request merged", async () => {
    const token = 'ghp_depsE2eToken0123456789';
    const origin: OriginRepo = own(makeOriginRepo());
    const fake = own(await startGitHubFake({ token, repoPath: origin.bare }));
    const release = releaseFile();
    const at = { url: fake.url, repo: 'acme/app' };
    const project = own(
      makeForgeProject(
        origin,
        {
          tracker: { kind: 'github', ...at, import: { labels: ['orch'] } },
          forge: { kind: 'github', ...at, merge_method: 'squash' },
          pipeline: DEVELOP_AND_REVIEW,
        },
        heldBlocker(release),
      ),
    );
    // The dependent is the older issue: without its edge it would be imported, and run, first.
    const dependent = fake.createIssue({ title: 'Dependent', labels: ['orch'] });
    const blocker = fake.createIssue({ title: 'Blocker', labels: ['orch'] });
    fake.block(blocker, dependent);

    const o = await blockedUntilDone(project, { ORCH_GITHUB_TOKEN: token }, release);
    expectRanAfterBlocker(o);
    expect(o.dependent.external_id).toBe(String(dependent));
    expect(o.blocker.external_id).toBe(String(blocker));
    // Each landed through its own pull request, the blocker's first.
    const pulls = fake.pulls();
    expect(pulls.map((p) => [p.head, p.merged])).toEqual([
      [`orch/${o.blocker.key}`, true],
      [`orch/${o.dependent.key}`, true],
    ]);
    expectBothChanges((path) => origin.show('main', path), o);
  });

  it('Linear: an issue another blocks (a blocks relation) runs only once the blocker is done', async () => {
    const apiKey = 'lin_api_depsE2eKey0123456789';
    const linear = own(await startLinearFake({ apiKey }));
    const release = releaseFile();
    const project = own(
      makeForgeProject(
        own(makeOriginRepo()),
        {
          tracker: { kind: 'linear', url: linear.apiUrl, team: 'ENG', import: { states: ['Todo'] } },
          pipeline: DEVELOP_AND_REVIEW,
        },
        heldBlocker(release),
      ),
    );
    const dependent = linear.createIssue({ title: 'Dependent', state: 'Todo' });
    const blocker = linear.createIssue({ title: 'Blocker', state: 'Todo' });
    linear.block(blocker.identifier, dependent.identifier);

    const o = await blockedUntilDone(project, { ORCH_LINEAR_API_KEY: apiKey }, release);
    expectRanAfterBlocker(o);
    expect([o.blocker.external_id, o.dependent.external_id]).toEqual([blocker.id, dependent.id]);
    // No forge: both landed on the project's own main.
    expectBothChanges((path) => project.git(['show', `main:${path}`]), o);
  });
});
