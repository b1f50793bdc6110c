/**
 * The sync's fault paths, against the fake trackers:
 * - polling under a rate limit and a 5xx storm: the next poll waits at least
 *   what the tracker asked for (or a doubling backoff), nothing is imported
 *   twice, and the task comes in once the tracker recovers;
 * - write-back while the tracker refuses every write: the task still runs to
 *   done, and once the tracker is back every write lands, in order, once;
 * - landing with `forge.require_ci`: a red check on the pull request's head
 *   is a failed `check_ci_green` whose summary goes to the developer, and the
 *   pull request merges once CI passes;
 * - webhooks of the non-GitHub kinds, through the route in process: a bad
 *   or missing signature is refused and changes nothing; a duplicate
 *   delivery is acknowledged and imports nothing.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { waitFor, type TempProject } from '../../helpers/kit.ts';
import { disposeAfterEach } from '../../helpers/dispose.ts';
import { startGiteaFake, type GiteaFake } from '../../fakes/trackers/gitea-server.ts';
import { startPlaneFake } from '../../fakes/trackers/plane-server.ts';
import { startLinearFake } from '../../fakes/trackers/linear-server.ts';
import { startJiraFake } from '../../fakes/trackers/jira-server.ts';
import { makeOriginRepo, type OriginRepo } from '../../fakes/trackers/git-merge.ts';
import { webhookRequest, type WebhookDeliveryInput } from '../../fakes/trackers/webhook-sender.ts';
import type { Fault } from '../../fakes/trackers/kit.ts';
import { TrackerPoller } from '../../../src/trackers/sync.ts';
import { createLogger } from '../../../src/runtime/logger.ts';
import type { OrchContext } from '../../../src/runtime/context.ts';
import {
  expectAllSent,
  expectLanded,
  expectPullRequestComments,
  expectUsagePerRun,
  expectWebhooksVerifiedOnce,
  makeForgeProject,
  recorded,
  runUntilIdle,
  webhookRoute,
} from './e2e-kit.ts';

const TOKEN = 'gitea_faults_token_0123456789';
const env = { ORCH_GITEA_TOKEN: TOKEN };
const own = disposeAfterEach();

/** A Gitea fake (tracker and forge) over a fresh origin, and a project using both. */
async function giteaProject(
  tracker: Record<string, unknown> = {},
  forge: Record<string, unknown> = {},
  fakeOpts: Parameters<typeof startGiteaFake>[0] = {},
): Promise<{ fake: GiteaFake; origin: OriginRepo; project: TempProject }> {
  const origin = own(makeOriginRepo());
  const fake = own(await startGiteaFake({ token: TOKEN, repoPath: origin.bare, ...fakeOpts }));
  const project = own(
    makeForgeProject(origin, {
      tracker: { kind: 'gitea', url: fake.url, repo: fake.repo, import: { labels: ['orch'] }, ...tracker },
      forge: { kind: 'gitea', url: fake.url, repo: fake.repo, ...forge },
    }),
  );
  return { fake, origin, project };
}

/** A project with `tracker` and no forge, over a fresh origin. */
function trackerProject(tracker: Record<string, unknown>): TempProject {
  const origin = own(makeOriginRepo());
  return own(makeForgeProject(origin, { tracker }));
}

/**
 * The fake trackers other than Gitea, each as orch.yaml's `tracker` with the
 * variables its token is in, and a way to add an item its import takes.
 */
const others = {
  async plane() {
    const fake = own(await startPlaneFake({ token: 'plane_token_abc' }));
    return {
      fake,
      tracker: { kind: 'plane', url: fake.url, workspace: fake.workspace, project: fake.projectId },
      vars: { ORCH_PLANE_API_TOKEN: 'plane_token_abc' },
      add: (title: string) => void fake.createItem({ name: title }),
    };
  },
  async linear() {
    const fake = own(await startLinearFake({ apiKey: 'lin_api_abc' }));
    return {
      fake,
      tracker: { kind: 'linear', url: fake.apiUrl, team: 'ENG' },
      vars: { ORCH_LINEAR_API_KEY: 'lin_api_abc' },
      add: (title: string) => void fake.createIssue({ title }),
    };
  },
  async jira() {
    const fake = own(await startJiraFake({ email: 'bot@example.com', token: 'jira_token_abc' }));
    return {
      fake,
      tracker: { kind: 'jira', url: fake.url, project: fake.project, email: 'bot@example.com' },
      vars: { ORCH_JIRA_TOKEN: 'jira_token_abc' },
      add: (title: string) => void fake.createIssue({ summary: title }),
    };
  },
};

/** The project's context with the tokens in its environment, closed after the test. */
async function contextOf(project: TempProject, vars: Record<string, string>): Promise<OrchContext> {
  const ctx = own(await project.context());
  Object.assign(ctx.env, vars);
  return ctx;
}

const silent = createLogger({ write: () => {} });
const LIST = /\/repos\/acme\/app\/issues$/;

describe('polling under faults', () => {
  it('waits what a 429 asks, backs off through a 5xx storm, and imports once the tracker recovers', async () => {
    // One issue a page, so a list is two requests and can fail half way.
    const { fake, project } = await giteaProject({ poll_interval_s: 1 }, {}, { maxPageSize: 1 });
    const a = fake.createIssue({ title: 'First', labels: ['orch'] });
    const b = fake.createIssue({ title: 'Second', labels: ['orch'] });
    const ctx = await contextOf(project, env);
    const { id } = (await ctx.store.listProjects())[0]!;
    let imported = 0;
    const poller = new TrackerPoller({ ctx, log: silent, onImported: () => (imported += 1) });

    // Rate limited: the next poll is no sooner than Retry-After, even when the backoff is shorter.
    fake.service.fail({ status: 429, headers: { 'retry-after': '7' }, times: 1, path: LIST });
    expect(await poller.pollProject(id)).toBe(7_000);
    // A 5xx storm without a hint: the wait doubles from the interval (1 s) with each failure in a row.
    fake.service.fail({ status: 503, times: 3, path: LIST });
    const waits = [];
    for (let i = 0; i < 3; i += 1) waits.push(await poller.pollProject(id));
    expect(waits).toEqual([4_000, 8_000, 16_000]);
    // The second page fails after the first was read: nothing of the half list is imported.
    fake.service.fail({ status: 502, times: 1, skip: 1, path: LIST });
    expect(await poller.pollProject(id)).toBe(32_000);
    expect(await ctx.store.listTasks({})).toEqual([]);

    // Recovered: both issues come in, once, and the interval is back to normal.
    expect(await poller.pollProject(id)).toBe(1_000);
    expect(await poller.pollProject(id)).toBe(1_000);
    const tasks = await ctx.store.listTasks({});
    expect(tasks.map((t) => t.external_id).sort()).toEqual([String(a), String(b)]);
    expect(imported).toBe(1);
    expect(fake.service.requests.filter((r) => LIST.test(r.path)).map((r) => r.status)).toEqual([
      429, 503, 503, 503, 200, 502, 200, 200, 200, 200,
    ]);
  });

  it("schedules the next poll no sooner than the tracker's Retry-After", async () => {
    const { fake, project } = await giteaProject({ poll_interval_s: 1 });
    const n = fake.createIssue({ title: 'Rate limited', labels: ['orch'] });
    const ctx = await contextOf(project, env);
    const poller = own(new TrackerPoller({ ctx, log: silent }), (p) => p.stop());
    fake.service.fail({ status: 429, headers: { 'retry-after': '3' }, times: 1, path: LIST });

    await poller.start();
    expect(await ctx.store.listTasks({})).toEqual([]);
    const [task] = await waitFor(async () => {
      const tasks = await ctx.store.listTasks({});
      return tasks.length ? tasks : null;
    }, 60_000);
    expect(task).toMatchObject({ key: 'T-1', external_id: String(n) });
    const [refused, next] = fake.service.requests.filter((r) => LIST.test(r.path));
    expect(refused!.status).toBe(429);
    expect(next!.status).toBe(200);
    // Timers may fire a millisecond early by the wall clock.
    expect(next!.at - refused!.at).toBeGreaterThanOrEqual(3_000 - 5);
  });
});

describe("each tracker's own rate-limit answer", () => {
  /** The answer each vendor gives when rate limiting (made when the test starts: resets are absolute). */
  const limits: Record<keyof typeof others, () => Omit<Fault, 'times'>> = {
    // Plane: 429 with its throttle's headers, the reset in epoch seconds.
    plane: () => ({
      status: 429,
      headers: {
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(Math.ceil(Date.now() / 1000) + 60),
      },
      path: /\/work-items\/$/,
    }),
    // Linear: HTTP 400 with a RATELIMITED GraphQL error, the exhausted budget's reset in epoch milliseconds.
    linear: () => ({
      status: 400,
      body: {
        errors: [
          {
            message: 'Rate limit exceeded',
            extensions: {
              code: 'RATELIMITED',
              type: 'ratelimited',
              userPresentableMessage: 'Too many requests',
            },
          },
        ],
      },
      headers: {
        'x-ratelimit-requests-remaining': '0',
        'x-ratelimit-requests-reset': String(Date.now() + 60_000),
      },
      path: /\/graphql$/,
    }),
    // Jira: 429 with Retry-After.
    jira: () => ({ status: 429, headers: { 'retry-after': '60' }, path: /\/search\/jql$/ }),
  };

  it.each(Object.keys(limits) as (keyof typeof limits)[])(
    '%s: the next poll waits for the reset the tracker names, then imports',
    async (kind) => {
      const t = await others[kind]();
      const project = trackerProject({ ...t.tracker, poll_interval_s: 1 });
      const ctx = await contextOf(project, t.vars);
      const { id } = (await ctx.store.listProjects())[0]!;
      const poller = new TrackerPoller({ ctx, log: silent });
      t.add('Rate limited');

      t.fake.service.fail({ ...limits[kind](), times: 1 });
      // A minute asked for, far over the backoff (2 s); a little of it passed before the poller read it.
      const wait = await poller.pollProject(id);
      expect(wait).toBeGreaterThan(50_000);
      expect(wait).toBeLessThanOrEqual(61_000);
      expect(await ctx.store.listTasks({})).toEqual([]);
      expect(await poller.pollProject(id)).toBe(1_000);
      expect((await ctx.store.listTasks({})).map((t) => t.key)).toEqual(['T-1']);
    },
  );
});

describe('write-back under faults', () => {
  it('runs the task to done while the tracker refuses every write, then lands every write in order, once', async () => {
    const { fake, origin, project } = await giteaProject();
    const n = fake.createIssue({ title: 'Add a greeting', labels: ['orch'] });
    // Down for writes (comments, labels, state), asking to be retried in a second; reads still work.
    const down = { status: 503, headers: { 'retry-after': '1' }, times: 1_000_000 };
    fake.service.fail({ ...down, method: 'POST', path: /\/issues\/\d+\/(comments|labels)$/ });
    fake.service.fail({ ...down, method: 'DELETE', path: /\/issues\/\d+\/labels\/\d+$/ });
    fake.service.fail({ ...down, method: 'PATCH', path: /\/issues\/\d+$/ });

    const orch = project.spawnOrch(['run'], { env });
    const exited = new Promise<number | null>((resolve) => orch.on('exit', (code) => resolve(code)));
    let stderr = '';
    orch.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    own(orch, (o) => o.kill('SIGKILL'));
    const ctx = await contextOf(project, env);

    // The pipeline does not wait for the tracker: the task is done with nothing written back yet.
    await waitFor(
      async () => (await ctx.store.listTasks({}))[0]?.status === 'done',
      180_000,
      'T-1 done',
    ).catch((error: Error) => {
      throw new Error(`${error.message}; orch said: ${stderr.slice(-2000)}`);
    });
    expect(fake.issue(n)).toMatchObject({ state: 'open', labels: ['orch'], comments: [] });
    const task = await ctx.store.getTaskByKey('T-1');
    const waiting = await ctx.store.outbox.items({ taskId: task.id });
    expect(waiting.filter((i) => i.status === 'pending').length).toBeGreaterThan(0);
    expect(waiting.some((i) => i.attempts > 0 && /503/.test(i.last_error ?? ''))).toBe(true);

    fake.service.recover();
    // Every event fanned out (the last ones may still be on their way), and every delivery sent.
    await waitFor(
      async () =>
        (await ctx.store.outbox.pendingEvents(1)).length === 0 &&
        (await ctx.store.outbox.items({ taskId: task.id })).every((i) => i.status === 'sent'),
      120_000,
      'every tracker write sent',
    );
    orch.kill('SIGTERM');
    expect(await exited).toBe(0);

    const rec = await recorded(project);
    const pulls = fake.pulls();
    expectLanded(project, origin, pulls[0]!.mergeCommitSha);
    const issue = fake.issue(n);
    // The labels were written in order: had `development` landed after `done`, it would still be there.
    expect(issue).toMatchObject({ state: 'closed', labels: ['orch'] });
    expectUsagePerRun(issue.comments, rec.runs);
    expectPullRequestComments(issue.comments, `${fake.url}/acme/app/pulls/${pulls[0]!.number}`);
    // Comments in the order of the events they report, runs and pull request interleaved.
    const events = (await ctx.store.eventsAfter(0)).filter(
      (e) => e.task_id === task.id && (e.kind === 'run_finished' || e.kind === 'pull_request'),
    );
    const runStage = new Map(rec.runs.map((r) => [r.id, `${r.stage} (${r.agent})`]));
    const expected = events.map((e) => {
      const p = JSON.parse(e.payload) as { run_id?: number; state?: string };
      if (e.kind === 'run_finished') return runStage.get(Number(p.run_id));
      return `pull request ${p.state === 'merged' ? 'merged' : 'opened'}`;
    });
    const said = issue.comments.map(
      (c) => /^\*\*orch\*\* · T-1 · ([\w-]+ \(\w+\)|pull request \w+)/.exec(c)?.[1],
    );
    expect(said).toEqual(expected);
  });
});

describe('landing with required CI', () => {
  it('a red check on the pull request fails check_ci_green with its summary for the developer; a green one merges', async () => {
    const { fake, origin, project } = await giteaProject(
      {},
      { require_ci: true, ci_poll_s: 0.2, merge_method: 'squash' },
      { ciContext: 'ci/build' },
    );
    const n = fake.createIssue({ title: 'Add a greeting', labels: ['orch'] });
    const run = runUntilIdle(project, env);
    const heads: string[] = [];
    /** The next head commit orch reads the CI of (the pull request's head after each push). */
    const nextHead = () =>
      waitFor(
        () => {
          const head = fake.service.requests
            .map((r) => /\/commits\/([0-9a-f]{40})\/status$/.exec(r.path)?.[1])
            .find((sha) => sha && !heads.includes(sha));
          if (head) heads.push(head);
          return head;
        },
        180_000,
        'orch reading the CI of a new head',
      );

    await fake.setStatus(await nextHead(), {
      context: 'ci/build',
      state: 'failure',
      description: '2 tests failed',
    });
    await fake.setStatus(await nextHead(), { context: 'ci/build', state: 'success' });
    await run;

    const rec = await recorded(project);
    expect(rec.tasks).toEqual([{ key: 'T-1', stage: 'done', status: 'done' }]);
    const pulls = fake.pulls();
    expect(pulls).toHaveLength(1);
    const url = `${fake.url}/acme/app/pulls/${pulls[0]!.number}`;
    // The landing's gates (the testing stage runs its own check_ci_green: the test command).
    const landings = rec.gates.filter((g) => g.output_tail.includes(url));
    expect(landings.map((g) => [g.name, g.passed])).toEqual([
      ['check_ci_green', 0],
      ['check_merge_clean', 1],
    ]);
    expect(landings[0]!.output_tail).toContain(`CI failed on ${url}: failing: ci/build`);
    // The failure after the approval is paid for by the next attempt (as a local landing's is,
    // test/pipeline/gates.test.ts), and its summary is in the developer's next prompt.
    expect(rec.attempts.map((a) => [a.n, a.verdict, a.reason])).toEqual([
      [1, 'approved', null],
      [2, 'approved', null],
    ]);
    const developers = rec.runs.filter((r) => r.agent === 'developer');
    expect(developers).toHaveLength(2);
    const prompt = readFileSync(developers[1]!.log_path!.replace(/\.log$/, '.prompt.md'), 'utf8');
    expect(prompt).toContain('failing: ci/build');

    // The second attempt's commit is what merged; the pull request was opened once and reused.
    expectLanded(project, origin, pulls[0]!.mergeCommitSha);
    expect(origin.show('main', 'changes/T-1.md')?.split('\n')).toHaveLength(2);
    expectPullRequestComments(fake.issue(n).comments, url);
    expectAllSent(rec.outbox);
  });
});

describe('webhooks of the other trackers', () => {
  const SECRET = 'hook-secret-456';

  /** The route in process, for a project whose tracker takes webhooks only. */
  const route = async (project: TempProject, vars: Record<string, string>) =>
    webhookRoute(await contextOf(project, { ...vars, ORCH_HOOK_SECRET: SECRET }));

  const hooks = { webhook_secret_env: 'ORCH_HOOK_SECRET', poll_interval_s: 0 };

  it('forgejo: a bad or missing signature is refused; a duplicate delivery imports nothing more', async () => {
    const { fake, project } = await giteaProject({ kind: 'forgejo', ...hooks }, {}, { kind: 'forgejo' });
    const hook = await route(project, env);
    const n = fake.createIssue({ title: 'From a hook', labels: ['orch'] });
    const off = fake.createIssue({ title: 'Not for orch', labels: ['bug'] });
    const payload = fake.webhookPayload('issues', n, 'label_updated');
    const delivery = (d: Partial<WebhookDeliveryInput>) =>
      webhookRequest({ kind: 'forgejo', secret: SECRET, event: 'issues', payload, ...d });

    await expectWebhooksVerifiedOnce(hook, {
      forged: delivery({ signWith: 'wrong' }),
      unsigned: delivery({ secret: null }),
      first: delivery({ deliveryId: 'fj-1' }),
      another: delivery({ deliveryId: 'fj-2' }),
    });
    // A delivery about an issue the filter leaves out imports nothing.
    const other = delivery({ deliveryId: 'fj-3', payload: fake.webhookPayload('issues', off, 'opened') });
    expect(await hook.post(other)).toEqual({ status: 202, body: { imported: [] } });
    expect(await hook.keys()).toEqual(['T-1']);
  });

  it('plane: a bad or missing signature is refused; a duplicate delivery imports nothing more', async () => {
    const { fake: plane, tracker, vars } = await others.plane();
    const project = trackerProject({ ...tracker, import: { states: ['Todo'] }, ...hooks });
    const item = plane.createItem({ name: 'From a hook', state: 'Todo' });
    const unsigned = plane.webhook(SECRET, item.id);
    unsigned.headers.delete('x-plane-signature');

    await expectWebhooksVerifiedOnce(await route(project, vars), {
      forged: plane.webhook('wrong', item.id),
      unsigned,
      first: plane.webhook(SECRET, item.id),
      another: plane.webhook(SECRET, item.id),
    });
  });

  it('jira: a bad or missing signature is refused; a duplicate delivery imports nothing more', async () => {
    const { fake: jira, tracker, vars } = await others.jira();
    const project = trackerProject({ ...tracker, import: { labels: ['orch'] }, ...hooks });
    const issue = jira.createIssue({ summary: 'From a hook', labels: ['orch'] });

    // Jira's retry of the same delivery carries the same identifier: `first` posted twice is that retry.
    await expectWebhooksVerifiedOnce(await route(project, vars), {
      forged: jira.webhook('wrong', issue.key),
      unsigned: jira.webhook(null, issue.key),
      first: jira.webhook(SECRET, issue.key, 'jira:issue_created'),
      another: jira.webhook(SECRET, issue.key),
    });
  });
});
