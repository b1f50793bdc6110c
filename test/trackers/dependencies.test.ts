/**
 * Dependencies imported from trackers by the poller, into a real project's
 * store: GitHub's issue dependencies and sub-issues, and Linear's blocks
 * relations, become edges between the imported tasks; an edge to an issue
 * not imported yet is kept under the tracker's key and resolved when it is
 * imported; a blocker closed on the tracker stops blocking; and an imported
 * edge that would close a cycle is dropped with a warning.
 */
import { describe, expect, it } from 'vitest';
import { disposeAfterEach } from '../helpers/dispose.ts';
import { startGitHubFake } from '../fakes/trackers/github-server.ts';
import { startLinearFake } from '../fakes/trackers/linear-server.ts';
import { makeOriginRepo } from '../fakes/trackers/git-merge.ts';
import { makeForgeProject } from './e2e/e2e-kit.ts';
import { TrackerPoller } from '../../src/runtime/tracker-sync.ts';
import { createLogger } from '../../src/runtime/logger.ts';
import type { OrchContext } from '../../src/runtime/context.ts';

const own = disposeAfterEach();

async function poller(tracker: Record<string, unknown>, vars: Record<string, string>) {
  const project = own(makeForgeProject(own(makeOriginRepo()), { tracker }));
  const ctx: OrchContext = own(await project.context());
  Object.assign(ctx.env, vars);
  const warnings: string[] = [];
  const log = createLogger({ write: (line: string) => void warnings.push(line) });
  const p = new TrackerPoller({ ctx, log });
  const { id } = (await ctx.store.listProjects())[0]!;
  const key = async (externalId: string) =>
    (await ctx.store.taskByExternal(ctx.store.db, id, String(tracker.kind), externalId))!;
  const waitsFor = async (externalId: string) =>
    (await ctx.store.dependencies.dependsOn((await key(externalId)).id)).map((l) => l.key);
  return { poll: () => p.pollProject(id), ctx, key, waitsFor, warnings };
}

describe('dependencies from GitHub', () => {
  const TOKEN = 'ghp_deps_token';
  const setup = async () => {
    const fake = own(await startGitHubFake({ token: TOKEN }));
    const p = await poller(
      { kind: 'github', url: fake.url, repo: 'acme/app', import: { labels: ['orch'] } },
      { ORCH_GITHUB_TOKEN: TOKEN },
    );
    return { fake, ...p };
  };

  it('blocked-by issues and open sub-issues become edges; one not imported yet is resolved when it is', async () => {
    const { fake, poll, key, waitsFor } = await setup();
    const parent = fake.createIssue({ title: 'Parent', labels: ['orch'] });
    const child = fake.createIssue({ title: 'Child', labels: ['orch'] });
    const blocker = fake.createIssue({ title: 'Blocker, not for orch yet' });
    fake.addSubIssue(parent, child);
    fake.block(blocker, parent);

    await poll();
    const childTask = await key(String(child));
    expect(await waitsFor(String(parent))).toEqual([`acme/app#${blocker}`, childTask.key]);

    // The blocker gets the label: imported, and the waiting edge now points at its task.
    await fakeLabel(fake, blocker);
    await poll();
    expect(await waitsFor(String(parent))).toEqual([(await key(String(blocker))).key, childTask.key]);
  });

  it('a blocker closed on GitHub stops blocking at the next poll', async () => {
    const { fake, poll, waitsFor } = await setup();
    const blocked = fake.createIssue({ title: 'Blocked', labels: ['orch'] });
    const blocker = fake.createIssue({ title: 'Blocker' });
    fake.block(blocker, blocked);
    await poll();
    expect(await waitsFor(String(blocked))).toEqual([`acme/app#${blocker}`]);
    await closeIssue(fake, blocker);
    await poll();
    expect(await waitsFor(String(blocked))).toEqual([]);
  });

  it('an imported edge that would close a cycle is dropped, with a warning naming it', async () => {
    const { fake, poll, waitsFor, warnings } = await setup();
    const a = fake.createIssue({ title: 'A', labels: ['orch'] });
    const b = fake.createIssue({ title: 'B', labels: ['orch'] });
    fake.block(b, a);
    fake.block(a, b);
    await poll();
    const edges = [...(await waitsFor(String(a))), ...(await waitsFor(String(b)))];
    expect(edges).toHaveLength(1);
    expect(warnings.join('\n')).toMatch(/would be a dependency cycle/);
  });
});

describe('dependencies from Linear', () => {
  it("blocks relations become edges between the team's imported issues", async () => {
    const fake = own(await startLinearFake({ apiKey: 'lin_api_deps' }));
    const { poll, key, waitsFor } = await poller(
      { kind: 'linear', url: fake.apiUrl, team: 'ENG', import: { states: ['Todo'] } },
      { ORCH_LINEAR_API_KEY: 'lin_api_deps' },
    );
    const blocked = fake.createIssue({ title: 'Blocked', state: 'Todo' });
    const blocker = fake.createIssue({ title: 'Blocker', state: 'Todo' });
    fake.block(blocker.identifier, blocked.identifier);
    await poll();
    expect(await waitsFor(blocked.id)).toEqual([(await key(blocker.id)).key]);
    expect(await waitsFor(blocker.id)).toEqual([]);
  });
});

/** A person labels the issue for orch. */
async function fakeLabel(fake: { url: string; service: { url: string } }, n: number): Promise<void> {
  const res = await fetch(`${fake.url}/repos/acme/app/issues/${n}/labels`, {
    method: 'POST',
    headers: { authorization: 'token ghp_deps_token', 'content-type': 'application/json' },
    body: JSON.stringify({ labels: ['orch'] }),
  });
  expect(res.status).toBe(200);
}

/** A person closes the issue. */
async function closeIssue(fake: { url: string }, n: number): Promise<void> {
  const res = await fetch(`${fake.url}/repos/acme/app/issues/${n}`, {
    method: 'PATCH',
    headers: { authorization: 'token ghp_deps_token', 'content-type': 'application/json' },
    body: JSON.stringify({ state: 'closed' }),
  });
  expect(res.status).toBe(200);
}
