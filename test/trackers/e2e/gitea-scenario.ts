/**
 * The Gitea and Forgejo end-to-end scenario (they share one API and one
 * fake, which is tracker and forge at once): an issue labelled for orch is
 * imported, runs through the pipeline with the scripted agent and lands
 * through a pull request the fake merges with git in the project's origin.
 * With no `stages` mapping, the issue carries an `orch:<stage>` label while
 * it works and ends closed without one, with a usage comment per agent run
 * and the pull request's link.
 */
import { describe, expect, it } from 'vitest';
import { disposeAfterEach } from '../../helpers/dispose.ts';
import { startGiteaFake } from '../../fakes/trackers/gitea-server.ts';
import { makeOriginRepo } from '../../fakes/trackers/git-merge.ts';
import {
  expectOneLandedPull,
  expectWrittenBack,
  makeForgeProject,
  recorded,
  runUntilIdle,
} from './e2e-kit.ts';

const TOKEN = 'gitea_e2e_token_0123456789';

export function giteaEndToEnd(kind: 'gitea' | 'forgejo', mergeMethod: 'merge' | 'squash' | 'rebase'): void {
  const own = disposeAfterEach();

  describe(`${kind} end to end`, () => {
    it('imports a labelled issue, runs it to done, merges its pull request and writes the issue back', async () => {
      const origin = own(makeOriginRepo());
      // Two items a page: the import and the label lookups follow pages.
      const fake = own(await startGiteaFake({ kind, token: TOKEN, repoPath: origin.bare, maxPageSize: 2 }));
      const project = own(
        makeForgeProject(origin, {
          tracker: { kind, url: fake.url, repo: fake.repo, import: { labels: ['orch'] } },
          forge: { kind, url: fake.url, repo: fake.repo, merge_method: mergeMethod },
        }),
      );
      const other = fake.createIssue({ title: 'Not for orch', labels: ['bug'] });
      const wanted = fake.createIssue({
        title: 'Add a greeting',
        body: 'Print hello.',
        labels: ['orch', 'feature'],
      });
      for (let i = 0; i < 3; i += 1)
        fake.createIssue({ title: `closed ${i}`, labels: ['orch'], state: 'closed' });

      await runUntilIdle(project, { ORCH_GITEA_TOKEN: TOKEN });

      const rec = await recorded(project);
      expect(rec.tasks).toEqual([{ key: 'T-1', stage: 'done', status: 'done' }]);
      expect(rec.task).toMatchObject({
        title: 'Add a greeting',
        description: 'Print hello.',
        external_source: kind,
        external_id: String(wanted),
        external_key: `acme/app#${wanted}`,
      });

      const pull = expectOneLandedPull(fake.pulls(), project, origin);
      expect(pull.state).toBe('closed');

      const issue = fake.issue(wanted);
      expect(issue.state).toBe('closed');
      // The stage labels came and went (created on the repository on first use); the team's stay.
      expect(issue.labels.sort()).toEqual(['feature', 'orch']);
      expect(fake.labels()).toEqual(expect.arrayContaining(['orch:development', 'orch:review']));
      expectWrittenBack(issue.comments, rec, `${fake.url}/acme/app/pulls/${pull.number}`);

      expect(fake.issue(other)).toMatchObject({ state: 'open', labels: ['bug'], comments: [] });
    });
  });
}
