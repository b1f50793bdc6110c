/**
 * GitHub end to end, through the real CLI: an issue labelled for orch on a
 * fake GitHub is imported, runs through the pipeline with the scripted agent,
 * and lands through a pull request the fake merges with git in the project's
 * origin; the issue ends closed, with a usage comment per agent run and the
 * pull request's link. Webhooks are verified, and a duplicate has no effect.
 */
import { describe, expect, it } from 'vitest';
import { disposeAfterEach } from '../../helpers/dispose.ts';
import { startGitHubFake } from '../../fakes/trackers/github-server.ts';
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

const TOKEN = 'ghp_e2eFakeToken0123456789';
const SECRET = 'hook-secret-123';
const env = { ORCH_GITHUB_TOKEN: TOKEN, ORCH_GITHUB_WEBHOOK_SECRET: SECRET };
const own = disposeAfterEach();

/** A project whose origin is the fake's bare repository, with GitHub as tracker (`tracker` merged in) and forge. */
async function setup(tracker: Record<string, unknown> = {}) {
  const origin = own(makeOriginRepo());
  const fake = own(await startGitHubFake({ token: TOKEN, repoPath: origin.bare, maxPerPage: 2 }));
  const project = own(
    makeForgeProject(origin, {
      tracker: {
        kind: 'github',
        url: fake.url,
        repo: 'acme/app',
        import: { labels: ['orch'] },
        webhook_secret_env: 'ORCH_GITHUB_WEBHOOK_SECRET',
        ...tracker,
      },
      forge: { kind: 'github', url: fake.url, repo: 'acme/app', merge_method: 'squash' },
    }),
  );
  return { fake, origin, project };
}

describe('GitHub end to end', () => {
  it('imports a labelled issue, runs it to done, merges its pull request and writes the issue back', async () => {
    const { fake, origin, project } = await setup();
    const wanted = fake.createIssue({ title: 'Add a greeting', body: 'Print hello.', labels: ['orch'] });
    const other = fake.createIssue({ title: 'Not for orch', labels: ['bug'] });
    for (let i = 0; i < 3; i += 1)
      fake.createIssue({ title: `closed ${i}`, labels: ['orch'], state: 'closed' });

    await runUntilIdle(project, env);

    const rec = await recorded(project);
    expect(rec.tasks).toEqual([{ key: 'T-1', stage: 'done', status: 'done' }]);
    expect(rec.task).toMatchObject({
      external_source: 'github',
      external_id: String(wanted),
      external_key: `acme/app#${wanted}`,
    });

    // The squashed change is on origin's main, and the project's main followed it.
    const pull = expectOneLandedPull(fake.pulls(), project, origin);

    const issue = fake.issue(wanted);
    expect(issue.state).toBe('closed');
    expect(issue.labels.filter((l) => l.startsWith('orch:'))).toEqual([]);
    expectWrittenBack(issue.comments, rec, `https://github.com/acme/app/pull/${pull.number}`);
    expect(fake.issue(other).comments).toEqual([]);
  });

  it('a webhook with a bad signature changes nothing; a good one imports once, however often it is delivered', async () => {
    // Polling off: only webhooks bring tasks.
    const { fake, project } = await setup({ poll_interval_s: 0 });
    const n = fake.createIssue({ title: 'From a hook', labels: ['orch'] });
    const ctx = own(await project.context());
    Object.assign(ctx.env, env);
    const hook = webhookRoute(ctx);
    const payload = fake.webhookPayload('issues', n, 'labeled');
    const delivery = (d: Partial<WebhookDeliveryInput>) =>
      webhookRequest({ kind: 'github', secret: SECRET, event: 'issues', payload, ...d });

    // `another`: a new delivery about the same issue (GitHub resends, or another event) imports nothing new.
    await expectWebhooksVerifiedOnce(hook, {
      forged: delivery({ signWith: 'wrong' }),
      unsigned: delivery({ secret: null }),
      first: delivery({ deliveryId: 'd-1' }),
      another: delivery({ deliveryId: 'd-2' }),
    });
    expect(await hook.post(delivery({ event: 'ping', payload: { zen: 'hi' } }))).toEqual({
      status: 202,
      body: { ignored: true },
    });
    expect((await hook.post(delivery({ payload: '{not json' }))).status).toBe(400);
  });

  it('a review delivery names the pull request it is about, once', async () => {
    const { fake, origin, project } = await setup({ poll_interval_s: 0 });
    origin.commit('orch/T-1', { 'x.txt': 'x\n' });
    const pr = await fake.createPull({ head: 'orch/T-1', base: 'main', title: 'T-1' });
    fake.review(pr, { author: 'alice', state: 'changes_requested', body: 'No.' });
    const ctx = own(await project.context());
    Object.assign(ctx.env, env);
    const hook = webhookRoute(ctx);
    const { event, payload } = fake.reviewWebhook(pr);
    const d = webhookRequest({ kind: 'github', secret: SECRET, event, payload, deliveryId: 'r-1' });
    expect(await hook.post(d)).toEqual({
      status: 202,
      body: { reviews: [{ pull_request: pr, head: 'orch/T-1' }] },
    });
    expect(await hook.post(d)).toEqual({ status: 200, body: { duplicate: true } });
    expect(await hook.keys()).toEqual([]);
  });
});
