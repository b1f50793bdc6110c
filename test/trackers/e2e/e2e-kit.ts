/**
 * What the trackers' end-to-end tests share: a project whose `origin` is the
 * bare repository a fake forge merges into, `orch run --until-idle` through
 * the real CLI (asynchronously, so the fakes living in the test process keep
 * answering), what orch recorded about a task read back from its store, and
 * the assertions every scenario makes about what landed and was written back.
 * What a test starts is ended after it by `disposeAfterEach` (helpers/dispose.ts).
 */
import { expect } from 'vitest';
import { makeProject, waitFor, type TempProject } from '../../helpers/kit.ts';
import type { OriginRepo } from '../../fakes/trackers/git-merge.ts';
import type { FakeService } from '../../fakes/trackers/kit.ts';
import type { AgentRun, Attempt, OutboxItem, Task } from '../../../src/store/schema.ts';
import type { OrchContext } from '../../../src/runtime/context.ts';
import { createApp } from '../../../src/http/app.ts';

/** An orch project with `config` merged into orch.yaml (and the scripted agent's `script`), its `main` pushed to `origin`. */
export function makeForgeProject(
  origin: OriginRepo,
  config: Record<string, unknown>,
  script?: Record<string, unknown>,
): TempProject {
  const project = makeProject({ config, ...(script ? { script } : {}) });
  project.git(['remote', 'add', 'origin', origin.bare]);
  project.git(['push', '-q', '--force', 'origin', 'main']);
  return project;
}

/** `orch run --until-idle`, which must exit 0 (its stderr is the failure message). */
export async function runUntilIdle(
  project: TempProject,
  env: Record<string, string>,
  timeoutMs = 240_000,
): Promise<{ stdout: string; stderr: string }> {
  const run = await project.orchAsync(['run', '--until-idle'], { env, timeoutMs });
  expect(run.code, run.stderr).toBe(0);
  return run;
}

/** `orch run --until-idle` started in the background, for a test that acts while it works. */
export interface BackgroundRun {
  /** Throws, with its output, once the run has exited: a check made while it should still be working. */
  alive(): void;
  /** Waits for the run to exit, which must be 0. */
  finish(): Promise<{ stdout: string; stderr: string }>;
}

export function runInBackground(
  project: TempProject,
  env: Record<string, string>,
  timeoutMs = 240_000,
): BackgroundRun {
  let exited: { code: number; stdout: string; stderr: string } | null = null;
  const running = project.orchAsync(['run', '--until-idle'], { env, timeoutMs }).then((r) => (exited = r));
  return {
    alive() {
      if (exited)
        throw new Error(
          `orch run --until-idle exited (${exited.code}) while the test waited for it:\n${exited.stdout}\n${exited.stderr}`,
        );
    },
    async finish() {
      const r = await running;
      expect(r.code, r.stderr).toBe(0);
      return r;
    },
  };
}

/**
 * Waits until task `key`, as the store holds it now, passes `ok` (it may not
 * exist yet); `alive` is called on every look (a run that must still be working).
 */
export async function waitForTask(
  ctx: OrchContext,
  key: string,
  ok: (t: Task) => boolean,
  what: string,
  alive: () => void = () => {},
  timeoutMs = 90_000,
): Promise<Task> {
  let last: Task | null = null;
  try {
    return await waitFor(
      async () => {
        alive();
        const t = await ctx.store.getTaskByKey(key).catch(() => null);
        last = t ?? last;
        return t && ok(t) ? t : null;
      },
      timeoutMs,
      `${key}: ${what}`,
    );
  } catch (error) {
    // Where the task was instead: what a failure under load needs to be understood.
    const t = last as Task | null;
    if (!t) throw error;
    throw new Error(
      `${(error as Error).message}; it was at stage ${t.stage}, status ${t.status} (${t.status_detail ?? 'no detail'})`,
      { cause: error },
    );
  }
}

/** What orch holds after a run: every task, and one task's runs, attempts, gates and outbox deliveries. */
export interface Recorded {
  tasks: { key: string; stage: string; status: string }[];
  task: Task;
  /** In the order they ran. */
  runs: AgentRun[];
  attempts: Attempt[];
  gates: { name: string; passed: number; output_tail: string }[];
  outbox: OutboxItem[];
}

export async function recorded(project: TempProject, key = 'T-1'): Promise<Recorded> {
  const ctx = await project.context();
  try {
    const { store } = ctx;
    const tasks = (await store.listTasks({})).map(({ key, stage, status }) => ({ key, stage, status }));
    const task = await store.getTaskByKey(key);
    const runs = (await store.runsOfTask(task.id)).sort((a, b) => a.id - b.id);
    return {
      tasks,
      task,
      runs,
      attempts: await store.attemptsOfTask(task.id),
      gates: await store.gatesOfTask(task.id),
      outbox: await store.outbox.items({ taskId: task.id }),
    };
  } finally {
    await ctx.close();
  }
}

/** The usage comments orch posted about `key`: `**orch** · KEY · stage (role) · … tokens …`. */
export function usageComments(comments: string[], key = 'T-1'): string[] {
  const head = new RegExp(`^\\*\\*orch\\*\\* · ${key} · [\\w-]+ \\(\\w+\\)`);
  return comments.filter((c) => head.test(c) && c.includes('tokens'));
}

/**
 * One usage comment per agent run, in the order the runs finished, none
 * lost or repeated: each names its run's stage and role.
 */
export function expectUsagePerRun(comments: string[], runs: AgentRun[], key = 'T-1'): void {
  expect(runs.length).toBeGreaterThan(0);
  const usage = usageComments(comments, key).map((c) => /· ([\w-]+ \(\w+\))/.exec(c)![1]);
  expect(usage, comments.join('\n')).toEqual(runs.map((r) => `${r.stage ?? r.agent} (${r.agent})`));
}

/**
 * The pull request comments, in order: opened, then merged, each once and
 * with the pull request's link.
 */
export function expectPullRequestComments(comments: string[], url: string, key = 'T-1'): void {
  const pr = comments.filter((c) => c.startsWith(`**orch** · ${key} · pull request `));
  expect(pr).toEqual([
    `**orch** · ${key} · pull request opened: ${url}`,
    `**orch** · ${key} · pull request merged: ${url}`,
  ]);
}

/**
 * The task's change landed through the forge: origin's `main` is the merge
 * commit and holds the developer's file, and the project's `main` followed it.
 */
export function expectLanded(
  project: TempProject,
  origin: OriginRepo,
  mergeSha: string | null,
  key = 'T-1',
): void {
  expect(mergeSha).toBeTruthy();
  expect(origin.rev('main')).toBe(mergeSha);
  expect(origin.show('main', `changes/${key}.md`)).toContain(`scripted change for ${key}`);
  expect(project.git(['rev-parse', 'main']).trim()).toBe(origin.rev('main'));
}

/** Every tracker write of the task was delivered. */
export function expectAllSent(outbox: OutboxItem[]): void {
  expect(outbox.length).toBeGreaterThan(0);
  expect(outbox.filter((i) => i.status !== 'sent').map((i) => [i.kind, i.status, i.last_error])).toEqual([]);
}

/**
 * What orch wrote on the task's issue besides its state and labels: a usage
 * comment per run and the pull request's comments (with `prUrl`), every
 * delivery sent.
 */
export function expectWrittenBack(comments: string[], rec: Recorded, prUrl: string, key = 'T-1'): void {
  expectUsagePerRun(comments, rec.runs, key);
  expectPullRequestComments(comments, prUrl, key);
  expectAllSent(rec.outbox);
}

/** A pull request as the fake forges show it. */
interface PullView {
  number: number;
  head: string;
  base: string;
  merged: boolean;
  mergeCommitSha: string | null;
}

/** The forge holds one pull request, T-1's, merged into `main`, and its change landed. Answers it. */
export function expectOneLandedPull<P extends PullView>(
  pulls: P[],
  project: TempProject,
  origin: OriginRepo,
): P {
  expect(pulls).toHaveLength(1);
  expect(pulls[0]).toMatchObject({ head: 'orch/T-1', base: 'main', merged: true });
  expectLanded(project, origin, pulls[0]!.mergeCommitSha);
  return pulls[0]!;
}

/** The pull request orch opened (the first it asked the forge for) links the task at `taskUrl`. */
export function expectPullLinksTask(forge: FakeService, taskUrl: string): void {
  const opened = JSON.parse(forge.served('POST', /\/pulls$/)[0]!.body) as { body: string };
  expect(opened.body).toContain(`Task: ${taskUrl}`);
}

/**
 * The `stages` mapping the trackers with a workflow of states (Linear, Plane,
 * Jira) are given: a state per stage, and a working label while development runs.
 */
export const WORKFLOW_STAGES = {
  development: { state: 'In Progress', labels: ['orch-working'] },
  review: { state: 'In Review' },
  done: { state: 'Done', labels: [] },
};

/** A webhook delivery as a sender makes it: the headers, and the body they sign. */
export interface HookDelivery {
  headers: Headers | Record<string, string>;
  body: string;
}

export interface WebhookRoute {
  post(d: HookDelivery): Promise<{ status: number; body: unknown }>;
  keys(): Promise<string[]>;
}

/**
 * The webhook route, in process, over a project's context: `post` a delivery
 * (headers and the body they sign) and read the answer; `keys` of the tasks
 * orch holds.
 */
export function webhookRoute(ctx: OrchContext): WebhookRoute {
  const { app } = createApp(ctx, { webDir: null });
  const post = async (d: HookDelivery) => {
    const res = await app.request('http://127.0.0.1/api/webhooks/sample', {
      method: 'POST',
      headers: d.headers,
      body: d.body,
    });
    return { status: res.status, body: (await res.json()) as unknown };
  };
  const keys = async () => (await ctx.store.listTasks({})).map((t) => t.key);
  return { post, keys };
}

/**
 * What every tracker's webhooks must do, for one item the import filter
 * takes, T-1 once imported: a delivery signed with the wrong secret and one
 * with no signature are refused (401) and import nothing; a good one imports
 * the item, the same delivery again is acknowledged as a duplicate, and
 * another delivery about the item finds it imported.
 */
export async function expectWebhooksVerifiedOnce(
  route: WebhookRoute,
  d: { forged: HookDelivery; unsigned: HookDelivery; first: HookDelivery; another: HookDelivery },
): Promise<void> {
  expect((await route.post(d.forged)).status).toBe(401);
  expect((await route.post(d.unsigned)).status).toBe(401);
  expect(await route.keys()).toEqual([]);
  expect(await route.post(d.first)).toEqual({ status: 202, body: { imported: ['T-1'] } });
  expect(await route.post(d.first)).toEqual({ status: 200, body: { duplicate: true } });
  expect(await route.post(d.another)).toEqual({ status: 202, body: { imported: ['T-1'] } });
  expect(await route.keys()).toEqual(['T-1']);
}
