/**
 * The contract every forge adapter keeps, run against each fake forge
 * (GitHub, Gitea, Forgejo, GitLab) with a real bare repository as origin:
 * pull requests opened once, merges that land on the base, and the review
 * loop's reads and answers — reviews and line comments as a person submits
 * them on the fake, read back as one decision, answered so they are not
 * read as new again, and review webhooks naming the pull request.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { answerReview, readReview } from '../../src/trackers/review.ts';
import type { Forge, PullRequest, WebhookReceiver } from '../../src/trackers/types.ts';
import { makeOriginRepo, type OriginRepo } from '../fakes/trackers/git-merge.ts';
import type { FakeService } from '../fakes/trackers/kit.ts';
import type { NewReview } from '../fakes/trackers/forge-kit.ts';

/** What the contract needs of a fake forge. */
export interface ContractFake {
  service: FakeService;
  review(n: number, r: NewReview): { id: number; comments: number[] };
  reply(n: number, to: number, author: string, body: string): number;
  reviewWebhook(n: number): { event: string; payload: Record<string, unknown> };
  close(): Promise<void>;
}

export interface ForgeHarness {
  fake: ContractFake;
  forge: Forge;
  hooks: WebhookReceiver;
  /** The headers and body of a signed delivery of `event`. */
  delivery(event: string, payload: unknown): { headers: Headers; body: string };
}

/** Runs the contract; `start` makes a fake over `origin` and the adapters talking to it. */
export function forgeContract(name: string, start: (origin: OriginRepo) => Promise<ForgeHarness>): void {
  describe(`${name} forge contract`, () => {
    let origin: OriginRepo;
    let h: ForgeHarness;
    let n = 0;
    const branch = () => `orch/T-${name}-${++n}`;

    beforeAll(() => {
      origin = makeOriginRepo();
    });
    afterAll(() => origin.cleanup());
    beforeEach(async () => {
      h = await start(origin);
    });
    afterEach(() => h.fake.close());

    async function openPull(files: Record<string, string> = { 'src/a.ts': 'export const a = 1;\n' }) {
      const head = branch();
      origin.commit(head, files);
      return h.forge.openPullRequest({ head, base: 'main', title: head, body: 'Task: T' });
    }
    const posts = () => h.fake.service.requests.filter((r) => r.method !== 'GET').length;

    it('opens one pull request however often asked, and merging lands it on the base', async () => {
      const head = branch();
      const sha = origin.commit(head, { [`${head}.txt`]: 'landed\n' });
      const first = await h.forge.openPullRequest({ head, base: 'main', title: 't', body: 'b' });
      const again = await h.forge.openPullRequest({ head, base: 'main', title: 't', body: 'b' });
      expect(again).toEqual(first);
      expect(first).toMatchObject({ head, base: 'main', state: 'open' });
      expect(await h.forge.mergePullRequest(first.number, 'merge')).toMatchObject({ merged: true });
      expect(origin.contains('main', sha)).toBe(true);
      expect(origin.show('main', `${head}.txt`)).toBe('landed');
    });

    it('a pull request nobody reviewed waits for a review', async () => {
      const pr = await openPull();
      expect(await readReview(h.forge, pr)).toEqual({
        kind: 'waiting',
        detail: `waiting for review on ${pr.url}`,
      });
    });

    it("changes requested with line comments: the reviewer's text and each comment as file:line: body", async () => {
      const pr = await openPull();
      h.fake.review(pr.number, {
        author: 'alice',
        state: 'changes_requested',
        body: 'Please rename the constant.',
        comments: [
          { path: 'src/a.ts', line: 1, body: 'Use a longer name.' },
          { path: 'README.md', line: 1, body: 'Mention the flag.' },
        ],
      });
      const decision = await readReview(h.forge, pr);
      if (decision.kind !== 'changes_requested') throw new Error(`expected changes, got ${decision.kind}`);
      expect(decision.feedback).toContain('alice requested changes');
      expect(decision.feedback).toContain('Please rename the constant.');
      expect(decision.feedback).toContain('src/a.ts:1: Use a longer name.');
      expect(decision.feedback).toContain('README.md:1: Mention the flag.');
      expect(decision.handled).toHaveLength(3);
    });

    it('answered feedback is not sent again: the pull request waits for a new review', async () => {
      const pr = await openPull();
      h.fake.review(pr.number, {
        author: 'alice',
        state: 'changes_requested',
        body: 'No.',
        comments: [{ path: 'src/a.ts', line: 1, body: 'Wrong.' }],
      });
      const first = await readReview(h.forge, pr);
      if (first.kind !== 'changes_requested') throw new Error(`expected changes, got ${first.kind}`);
      await answerReview(h.forge, pr, first.handled, 'Addressed in the new commits.');
      const after = await readReview(h.forge, pr);
      expect(after).toMatchObject({ kind: 'waiting' });
      expect(after.kind === 'waiting' && after.detail).toContain('alice');
      // Answering again sends nothing: what is answered is skipped.
      const before = posts();
      await answerReview(h.forge, pr, first.handled, 'Addressed in the new commits.');
      expect(posts()).toBe(before);
    });

    it("a reviewer's reply after orch's answer is new feedback", async () => {
      const pr = await openPull();
      const { comments } = h.fake.review(pr.number, {
        author: 'alice',
        state: 'commented',
        comments: [{ path: 'src/a.ts', line: 1, body: 'Rename it.' }],
      });
      const first = await readReview(h.forge, pr);
      if (first.kind !== 'changes_requested') throw new Error(`expected changes, got ${first.kind}`);
      await answerReview(h.forge, pr, first.handled, 'Renamed.');
      expect((await readReview(h.forge, pr)).kind).toBe('waiting');
      h.fake.reply(pr.number, comments[0]!, 'alice', 'Still too short.');
      const again = await readReview(h.forge, pr);
      expect(again).toMatchObject({ kind: 'changes_requested' });
      expect(again.kind === 'changes_requested' && again.feedback).toContain('Still too short.');
    });

    it('an approval approves, and a change request submitted after it undoes it', async () => {
      const pr = await openPull();
      h.fake.review(pr.number, { author: 'bob', state: 'approved', body: 'LGTM' });
      expect(await readReview(h.forge, pr)).toEqual({ kind: 'approved', by: ['bob'] });
      h.fake.review(pr.number, { author: 'alice', state: 'changes_requested', body: 'Wait.' });
      expect((await readReview(h.forge, pr)).kind).toBe('changes_requested');
    });

    it('a review delivery names the pull request and its head branch', async () => {
      const pr: PullRequest = await openPull();
      h.fake.review(pr.number, { author: 'alice', state: 'changes_requested', body: 'No.' });
      const { event, payload } = h.fake.reviewWebhook(pr.number);
      const d = h.delivery(event, payload);
      expect(await h.hooks.verify(d.headers, d.body)).toBe(true);
      expect(h.hooks.parse(d.headers, d.body)).toEqual({
        deliveryId: expect.any(String),
        taskIds: [],
        reviews: [{ pullRequest: pr.number, head: pr.head, action: expect.any(String) }],
      });
    });
  });
}
