/**
 * Plane end to end, through the real CLI: a work item in `Todo` with the
 * `orch` label on a fake Plane (REST v1, cursor pages) is imported, runs
 * through the pipeline with the scripted agent and lands through a pull
 * request on a fake GitHub, which merges it with git in the project's origin.
 * The work item follows the `stages` mapping (states and a working label)
 * and ends `Done`, with a usage comment per agent run and the pull request's
 * link (Plane stores comments as HTML); items the filter leaves out are not
 * touched.
 */
import { describe, expect, it } from 'vitest';
import { disposeAfterEach } from '../../helpers/dispose.ts';
import { startPlaneFake } from '../../fakes/trackers/plane-server.ts';
import { startGitHubFake } from '../../fakes/trackers/github-server.ts';
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

const PLANE_TOKEN = 'plane_api_e2eFakeToken0123';
const GITHUB_TOKEN = 'ghp_e2eFakeToken0123456789';
const own = disposeAfterEach();

/** A Plane comment's HTML as the text orch wrote: paragraphs unwrapped, entities decoded. */
const text = (html: string) =>
  html
    .replace(/<br \/>/g, '\n')
    .replace(/<\/p><p>/g, '\n\n')
    .replace(/<[^>]+>/g, '')
    .replace(/&(lt|gt|quot|amp);/g, (_, e: string) => ({ lt: '<', gt: '>', quot: '"', amp: '&' })[e]!);

describe('Plane end to end', () => {
  it('imports a Todo work item labelled for orch, runs it to done, merges its pull request and moves the item to Done', async () => {
    const origin = own(makeOriginRepo());
    // Two items a page: the import follows Plane's cursors.
    const plane = own(await startPlaneFake({ token: PLANE_TOKEN, pageSize: 2 }));
    const forge = own(await startGitHubFake({ token: GITHUB_TOKEN, repoPath: origin.bare }));
    const project = own(
      makeForgeProject(origin, {
        tracker: {
          kind: 'plane',
          url: plane.url,
          workspace: plane.workspace,
          project: plane.projectId,
          import: { states: ['Todo'], labels: ['orch'] },
          stages: WORKFLOW_STAGES,
        },
        forge: { kind: 'github', url: forge.url, repo: forge.repo, merge_method: 'merge' },
      }),
    );
    const unlabelled = plane.createItem({ name: 'Not for orch', state: 'Todo' });
    const backlog = plane.createItem({ name: 'Not yet', state: 'Backlog', labels: ['orch'] });
    const wanted = plane.createItem({
      name: 'Add a greeting',
      description_html: '<p>Print <strong>hello</strong> &amp; wave.</p>',
      state: 'Todo',
      labels: ['orch'],
    });

    await runUntilIdle(project, { ORCH_PLANE_API_TOKEN: PLANE_TOKEN, ORCH_GITHUB_TOKEN: GITHUB_TOKEN });

    const rec = await recorded(project);
    expect(rec.tasks).toEqual([{ key: 'T-1', stage: 'done', status: 'done' }]);
    expect(rec.task).toMatchObject({
      title: 'Add a greeting',
      description: 'Print hello & wave.',
      external_source: 'plane',
      external_id: wanted.id,
      external_key: wanted.key,
    });

    const pull = expectOneLandedPull(forge.pulls(), project, origin);
    // The pull request links the work item.
    expectPullLinksTask(
      forge.service,
      `${plane.url}/${plane.workspace}/projects/${plane.projectId}/issues/${wanted.id}`,
    );

    const item = plane.item(wanted.id);
    expect(item.state).toBe('Done');
    expect(item.labels).toEqual(['orch']);
    const comments = item.comments.map(text);
    expectWrittenBack(comments, rec, `https://github.com/acme/app/pull/${pull.number}`);
    // The working label was created in the project when development began.
    expect(plane.service.served('POST', /\/labels\/$/)).toHaveLength(1);

    for (const left of [unlabelled, backlog]) expect(plane.item(left.id)).toEqual(left);
  });
});
