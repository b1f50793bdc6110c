/**
 * Linear end to end, through the real CLI: an issue of the team in `Todo`
 * with the `orch` label on a fake Linear (GraphQL, answered to the SDK's own
 * documents) is imported, runs through the pipeline with the scripted agent
 * and lands through a pull request on a fake Gitea, which merges it with git
 * in the project's origin. The issue follows the `stages` mapping (states and
 * a working label) and ends `Done`, with a usage comment per agent run and
 * the pull request's link; issues the filter leaves out are not touched.
 */
import { describe, expect, it } from 'vitest';
import { disposeAfterEach } from '../../helpers/dispose.ts';
import { startLinearFake } from '../../fakes/trackers/linear-server.ts';
import { startGiteaFake } from '../../fakes/trackers/gitea-server.ts';
import { makeOriginRepo } from '../../fakes/trackers/git-merge.ts';
import {
  expectOneLandedPull,
  expectPullLinksTask,
  expectWrittenBack,
  makeForgeProject,
  recorded,
  runUntilIdle,
  WORKFLOW_STAGES,
} from './e2e-kit.ts';

const API_KEY = 'lin_api_e2eFakeKey0123456789';
const FORGE_TOKEN = 'gitea_e2e_token_0123456789';
const own = disposeAfterEach();

describe('Linear end to end', () => {
  it('imports a Todo issue labelled for orch, runs it to done, merges its pull request and moves the issue to Done', async () => {
    const origin = own(makeOriginRepo());
    // Two issues a page: the import follows Linear's cursors.
    const linear = own(await startLinearFake({ apiKey: API_KEY, pageSize: 2 }));
    const forge = own(await startGiteaFake({ token: FORGE_TOKEN, repoPath: origin.bare }));
    const project = own(
      makeForgeProject(origin, {
        tracker: {
          kind: 'linear',
          url: linear.apiUrl,
          team: 'ENG',
          import: { states: ['Todo'], labels: ['orch'] },
          stages: WORKFLOW_STAGES,
        },
        forge: { kind: 'gitea', url: forge.url, repo: forge.repo, merge_method: 'squash' },
      }),
    );
    const unlabelled = linear.createIssue({ title: 'Not for orch', state: 'Todo' });
    const backlog = linear.createIssue({ title: 'Not yet', state: 'Backlog', labels: ['orch'] });
    const otherTeam = linear.createIssue({ title: 'Ops work', state: 'Todo', labels: ['orch'], team: 'OPS' });
    const wanted = linear.createIssue({
      title: 'Add a greeting',
      description: 'Print **hello**.',
      state: 'Todo',
      labels: ['orch'],
    });

    await runUntilIdle(project, { ORCH_LINEAR_API_KEY: API_KEY, ORCH_GITEA_TOKEN: FORGE_TOKEN });

    const rec = await recorded(project);
    expect(rec.tasks).toEqual([{ key: 'T-1', stage: 'done', status: 'done' }]);
    expect(rec.task).toMatchObject({
      title: 'Add a greeting',
      description: 'Print **hello**.',
      external_source: 'linear',
      external_id: wanted.id,
      external_key: wanted.identifier,
      external_url: `https://linear.app/acme/issue/${wanted.identifier}`,
    });

    const pull = expectOneLandedPull(forge.pulls(), project, origin);
    // The pull request links the Linear issue.
    expectPullLinksTask(forge.service, `https://linear.app/acme/issue/${wanted.identifier}`);

    const issue = linear.issue(wanted.id);
    expect(issue.state).toBe('Done');
    // The working label was created on the team when development began, and taken off after it.
    expect(issue.labels).toEqual(['orch']);
    expectWrittenBack(issue.comments, rec, `${forge.url}/acme/app/pulls/${pull.number}`);
    // Writes went through the SDK's mutations.
    expect(linear.operations).toEqual(
      expect.arrayContaining(['updateIssue', 'createComment', 'createIssueLabel']),
    );

    for (const left of [unlabelled, backlog, otherTeam])
      expect(linear.issue(left.id)).toEqual({ ...left, comments: [] });
  });
});
