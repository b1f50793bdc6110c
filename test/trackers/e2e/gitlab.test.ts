/**
 * GitLab end to end, through the real CLI: an issue labelled for orch on a
 * fake GitLab is imported, runs through the pipeline with the scripted
 * agent, and lands through a merge request the fake merges with git in the
 * project's origin; the issue ends closed without its stage labels, with a
 * usage note per agent run and the merge request's link. Webhooks are
 * checked by their secret token, and a duplicate has no effect.
 */
import { describe, expect, it } from 'vitest';
import { disposeAfterEach } from '../../helpers/dispose.ts';
import { startGitLabFake } from '../../fakes/trackers/gitlab-server.ts';
import { makeOriginRepo } from '../../fakes/trackers/git-merge.ts';
import { webhookRequest, type WebhookDeliveryInput } from '../../fakes/trackers/webhook-sender.ts';
import {
  expectOneLandedPull,
  expectWebhooksVerifiedOnce,
  expectWrittenBack,
  makeForgeProject,
  recorded,
  runUntilIdle,
  webhookRoute,
} from './e2e-kit.ts';

const TOKEN = 'glpat-e2eFakeToken0123456789';
const SECRET = 'gitlab-hook-token-123';
const env = { ORCH_GITLAB_TOKEN: TOKEN, ORCH_GITLAB_WEBHOOK_SECRET: SECRET };
const own = disposeAfterEach();

async function setup(tracker: Record<string, unknown> = {}) {
  const origin = own(makeOriginRepo());
  const fake = own(await startGitLabFake({ token: TOKEN, repoPath: origin.bare, maxPerPage: 2 }));
  const project = own(
    makeForgeProject(origin, {
      tracker: {
        kind: 'gitlab',
        url: fake.url,
        project: 'acme/app',
        import: { labels: ['orch'] },
        webhook_secret_env: 'ORCH_GITLAB_WEBHOOK_SECRET',
        ...tracker,
      },
      forge: { kind: 'gitlab', url: fake.url, project: 'acme/app', merge_method: 'squash' },
    }),
  );
  return { fake, origin, project };
}

describe('GitLab end to end', () => {
  it('imports a labelled issue, runs it to done, merges its merge request and writes the issue back', async () => {
    const { fake, origin, project } = await setup();
    const other = fake.createIssue({ title: 'Not for orch', labels: ['bug'] });
    const wanted = fake.createIssue({ title: 'Add a greeting', body: 'Print hello.', labels: ['orch'] });
    for (let i = 0; i < 3; i += 1)
      fake.createIssue({ title: `closed ${i}`, labels: ['orch'], state: 'closed' });

    await runUntilIdle(project, env);

    const rec = await recorded(project);
    expect(rec.tasks).toEqual([{ key: 'T-1', stage: 'done', status: 'done' }]);
    expect(rec.task).toMatchObject({
      title: 'Add a greeting',
      external_source: 'gitlab',
      external_id: String(wanted),
      external_key: `acme/app#${wanted}`,
    });

    const pull = expectOneLandedPull(fake.pulls(), project, origin);
    const issue = fake.issue(wanted);
    expect(issue.state).toBe('closed');
    expect(issue.labels).toEqual(['orch']);
    expectWrittenBack(issue.comments, rec, `${fake.url}/acme/app/-/merge_requests/${pull.number}`);
    expect(fake.issue(other)).toMatchObject({ state: 'open', labels: ['bug'], comments: [] });
  });

  it('a webhook with a wrong token changes nothing; a good one imports once, however often it is delivered', async () => {
    const { fake, project } = await setup({ poll_interval_s: 0 });
    const n = fake.createIssue({ title: 'From a hook', labels: ['orch'] });
    const ctx = own(await project.context());
    Object.assign(ctx.env, env);
    const hook = webhookRoute(ctx);
    const payload = fake.webhookPayload('issues', n, 'open');
    const delivery = (d: Partial<WebhookDeliveryInput>) =>
      webhookRequest({ kind: 'gitlab', secret: SECRET, event: 'Issue Hook', payload, ...d });

    await expectWebhooksVerifiedOnce(hook, {
      forged: delivery({ signWith: 'wrong' }),
      unsigned: delivery({ secret: null }),
      first: delivery({ deliveryId: 'd-1' }),
      another: delivery({ deliveryId: 'd-2' }),
    });
    expect(await hook.post(delivery({ event: 'Push Hook', payload: { ref: 'refs/heads/main' } }))).toEqual({
      status: 202,
      body: { ignored: true },
    });
  });
});
