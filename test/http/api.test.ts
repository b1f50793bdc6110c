/**
 * The JSON API in-process (`app.request`, no socket): tasks and their actions,
 * validation (400 with details), the error mapping (404, 409, 415), runs and
 * log range reads, the queue and agents, the OpenAPI document, the dashboard's
 * static files.
 */
import type { Stage, TaskStatus } from '../../src/core/stages.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apiFixture, fakeRun, type ApiFixture } from './http-kit.ts';
import { createApp } from '../../src/http/app.ts';
import { HTTP_STATUS, errorResponse } from '../../src/http/errors.ts';
import { OrchError } from '../../src/errors.ts';
import { paths } from '../../src/runtime/context.ts';
import { taskReadiness } from '../../src/runtime/dependencies.ts';
import type { TaskDetailJson, TaskSummaryJson } from '../../src/http/types.ts';

let f: ApiFixture;
beforeAll(async () => {
  // Analysis waits for a person's approval, so a task can be left waiting for one.
  f = await apiFixture({ project: { config: { pipeline: { analysis: { approval: true } } } } });
});
afterAll(async () => {
  await f.close();
});

const json = async <T = Record<string, unknown>>(res: Response): Promise<T> => (await res.json()) as T;
const create = async (title: string, extra: Record<string, unknown> = {}): Promise<TaskSummaryJson> => {
  const res = await f.post('/api/tasks', { title, ...extra });
  expect(res.status, await res.clone().text()).toBe(201);
  return json<TaskSummaryJson>(res);
};
/** Leaves a task as the pipeline would: at `stage` with `status`, and no live job. */
const stopAt = async (key: string, stage: Stage, status: TaskStatus) => {
  const t = await f.ctx.store.getTaskByKey(key);
  await f.ctx.store.tx(async (tx) => {
    await f.ctx.store.cancelJobsOfTask(tx, t.id);
    if (stage !== t.stage) await f.ctx.store.advanceStage(tx, t, stage);
    await f.ctx.store.updateTask(tx, t.id, { status });
  });
};

describe('tasks', () => {
  it('creates a task at stage created with its first job queued, and lists it with filters', async () => {
    const t = await create('Add a parser', { description: 'parse things', priority: 3, labels: ['api'] });
    expect(t).toMatchObject({
      title: 'Add a parser',
      stage: 'created',
      status: 'queued',
      priority: 3,
      project: 'sample',
    });
    expect(t.key).toMatch(/^T-\d+$/);

    const detail = await json<TaskDetailJson>(await f.get(`/api/tasks/${t.key}`));
    expect(detail).toMatchObject({
      key: t.key,
      description: 'parse things',
      labels: ['api'],
      branch: `orch/${t.key}`,
    });

    const all = await json<TaskSummaryJson[]>(await f.get('/api/tasks'));
    expect(all.map((x) => x.key)).toContain(t.key);
    const created = await json<TaskSummaryJson[]>(await f.get('/api/tasks?stage=created&status=queued'));
    expect(created.map((x) => x.key)).toContain(t.key);
    const none = await json<TaskSummaryJson[]>(await f.get('/api/tasks?stage=done'));
    expect(none.map((x) => x.key)).not.toContain(t.key);

    const queue = await json<{ depth: number; jobs: { task: string; stage: string; due: boolean }[] }>(
      await f.get('/api/queue'),
    );
    expect(queue.jobs).toContainEqual(expect.objectContaining({ task: t.key, stage: 'created', due: true }));
    expect(queue.depth).toBeGreaterThanOrEqual(1);
  });

  it('lists the queue in the order workers take it: priority, then the oldest task', async () => {
    const low = await create('Queue low', { priority: -2 });
    const plain = await create('Queue plain');
    const urgent = await create('Queue urgent', { priority: 9 });
    const queue = await json<{ jobs: { task: string; priority: number }[] }>(
      await f.get('/api/queue?limit=500'),
    );
    const mine = queue.jobs.filter((j) => [low.key, plain.key, urgent.key].includes(j.task));
    expect(mine).toEqual([
      expect.objectContaining({ task: urgent.key, priority: 9 }),
      expect.objectContaining({ task: plain.key, priority: 0 }),
      expect.objectContaining({ task: low.key, priority: -2 }),
    ]);
    // What a worker takes next is the queue's first job.
    const first = await json<{ jobs: { task: string }[] }>(await f.get('/api/queue?limit=1'));
    const claimed = await f.ctx.store.claimJob('w', 60_000);
    expect(first.jobs[0]!.task).toBe((await f.ctx.store.getTask(claimed!.task_id)).key);
    await f.ctx.store.tx((tx) => f.ctx.store.requeueJob(tx, claimed!.id, 0, null, 'none'));
  });

  it('lists tasks a page at a time: limit, the X-Next-After cursor, Link rel=next, the last page without', async () => {
    for (let i = 0; i < 5; i += 1) await create(`Paged ${i}`, { labels: ['paged'] });
    const all = await json<TaskSummaryJson[]>(await f.get('/api/tasks?limit=500'));
    const keys = all.map((t) => t.key);
    expect(keys.length).toBeGreaterThanOrEqual(5);

    // Walk the whole list two at a time: every task once, in the same order as one big page.
    const walked: string[] = [];
    let path = '/api/tasks?limit=2';
    for (let pages = 0; ; pages += 1) {
      expect(pages, 'pages of two').toBeLessThanOrEqual(keys.length);
      const res = await f.get(path);
      expect(res.status).toBe(200);
      const page = await json<TaskSummaryJson[]>(res);
      walked.push(...page.map((t) => t.key));
      const after = res.headers.get('X-Next-After');
      if (!after) {
        expect(res.headers.get('Link')).toBeNull();
        break;
      }
      expect(page).toHaveLength(2);
      const link = res.headers.get('Link');
      expect(link).toBe(`</api/tasks?limit=2&after=${after}>; rel="next"`);
      path = /^<([^>]+)>/.exec(link!)![1]!;
    }
    expect(walked).toEqual(keys);

    // Without a limit, a page holds 100; filters and the cursor go together.
    const filtered = await json<TaskSummaryJson[]>(await f.get('/api/tasks?stage=created&limit=1'));
    expect(filtered).toHaveLength(1);
    expect((await f.get('/api/tasks?limit=501')).status).toBe(400);
    expect((await f.get('/api/tasks?limit=0')).status).toBe(400);
    expect((await f.get('/api/tasks?after=-1')).status).toBe(400);
    const last = await f.get(`/api/tasks?after=${Number.MAX_SAFE_INTEGER}`);
    expect(await json(last)).toEqual([]);
    expect(last.headers.get('X-Next-After')).toBeNull();
  });

  it('lists newest first with order=newest, paging towards the older, and only open tasks with open=true', async () => {
    const made = [];
    for (let i = 0; i < 3; i += 1) made.push(await create(`Newest ${i}`));
    const oldest = await json<TaskSummaryJson[]>(await f.get('/api/tasks?limit=500'));
    const newest = oldest.map((t) => t.key).reverse();
    const first = await f.get('/api/tasks?order=newest&limit=2');
    expect((await json<TaskSummaryJson[]>(first)).map((t) => t.key)).toEqual(newest.slice(0, 2));
    const after = first.headers.get('X-Next-After');
    expect(first.headers.get('Link')).toBe(`</api/tasks?order=newest&limit=2&after=${after}>; rel="next"`);
    const second = await json<TaskSummaryJson[]>(
      await f.get(`/api/tasks?order=newest&limit=2&after=${after}`),
    );
    expect(second.map((t) => t.key)).toEqual(newest.slice(2, 4));
    // A cancelled task leaves the open list; the others stay in it.
    expect((await f.post(`/api/tasks/${made[1]!.key}/cancel`)).status).toBe(200);
    const open = (await json<TaskSummaryJson[]>(await f.get('/api/tasks?open=true&limit=500'))).map(
      (t) => t.key,
    );
    expect(open).toEqual(expect.arrayContaining([made[0]!.key, made[2]!.key]));
    expect(open).not.toContain(made[1]!.key);
    expect((await f.get('/api/tasks?order=sideways')).status).toBe(400);
    expect((await f.get('/api/tasks?open=maybe')).status).toBe(400);
  });

  it('cancels a task once: a second cancel is a 409 invalid_state', async () => {
    const t = await create('Doomed');
    const res = await f.post(`/api/tasks/${t.key}/cancel`);
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ key: t.key, stage: 'cancelled', status: 'cancelled' });
    const again = await f.post(`/api/tasks/${t.key}/cancel`, {});
    expect(again.status).toBe(409);
    expect(await json(again)).toMatchObject({ error: { code: 'invalid_state' } });
  });

  it('retries an escalated task with a raised budget, and refuses one that is not escalated', async () => {
    const t = await create('Stuck');
    const refused = await f.post(`/api/tasks/${t.key}/retry`, { max_attempts: 8 });
    expect(refused.status).toBe(409);

    await stopAt(t.key, 'analysis', 'escalated');
    const res = await f.post(`/api/tasks/${t.key}/retry`, { max_attempts: 8, max_usd: 2.5 });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await json(res)).toMatchObject({ key: t.key, status: 'queued' });
    const stored = await f.ctx.store.getTaskByKey(t.key);
    expect(JSON.parse(stored.budget_json!)).toEqual({ maxAttempts: 8, maxUsd: 2.5 });
  });

  it('approves a task that waits for a human, and refuses one that does not', async () => {
    const t = await create('Needs sign-off');
    const refused = await f.post(`/api/tasks/${t.key}/approve`);
    expect(refused.status).toBe(409);
    await stopAt(t.key, 'analysis', 'waiting');
    const res = await f.post(`/api/tasks/${t.key}/approve`, { by: 'alice' });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await json(res)).toMatchObject({ status: 'queued' });
    const gates = await json<{ name: string; output_tail: string }[]>(
      await f.get(`/api/tasks/${t.key}/gates`),
    );
    expect(gates).toContainEqual(
      expect.objectContaining({ name: 'check_human_approval', output_tail: 'approved by alice' }),
    );
  });

  it('lists a task events, and serves its terminal packet once it exists', async () => {
    const t = await create('Packet');
    const events = await json<{ kind: string; task: string }[]>(await f.get(`/api/tasks/${t.key}/events`));
    expect(events[0]).toMatchObject({ kind: 'task_created', task: t.key });

    expect((await f.get(`/api/tasks/${t.key}/terminal-packet`)).status).toBe(404);
    const project = (await f.ctx.store.listProjects())[0]!;
    const dir = paths.artifacts(project, t);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'terminal-packet.md'), '# Terminal packet\n\n- **Reason:** `max_attempts`\n');
    const res = await f.get(`/api/tasks/${t.key}/terminal-packet`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/markdown/);
    expect(await res.text()).toContain('**Reason:** `max_attempts`');
  });
});

describe('dependencies', () => {
  it('creates a task after others, adds and removes dependencies, and shows both ends', async () => {
    const base = await create('Schema');
    const api = await create('Endpoints');
    const ui = await json<TaskDetailJson>(
      await f.post('/api/tasks', { title: 'Screens', after: [base.key, api.key] }),
    );
    expect(ui.depends_on.map((d) => d.key)).toEqual([base.key, api.key]);

    const res = await f.post(`/api/tasks/${api.key}/dependencies`, { on: [base.key] });
    expect(res.status, await res.clone().text()).toBe(200);
    const after = await json<TaskDetailJson>(res);
    expect(after.depends_on).toEqual([
      expect.objectContaining({ key: base.key, title: 'Schema', origin: 'orch' }),
    ]);
    expect(after.blocks).toEqual([expect.objectContaining({ key: ui.key, stage: 'created' })]);

    const detail = await json<TaskDetailJson>(await f.get(`/api/tasks/${base.key}`));
    expect(detail.blocks.map((b) => b.key)).toEqual([ui.key, api.key]);

    // The pipeline's question: may it start? Not before every task it waits for is done.
    const uiId = (await f.ctx.store.getTaskByKey(ui.key)).id;
    expect(await taskReadiness(f.ctx, uiId)).toEqual({
      ready: false,
      detail: `waiting for ${base.key} (created, queued), ${api.key} (created, queued)`,
      waitsOnPerson: false,
    });
    for (const key of [base.key, api.key]) {
      const t = await f.ctx.store.getTaskByKey(key);
      await f.ctx.store.tx((tx) => f.ctx.store.advanceStage(tx, t, 'done', { status: 'done' }));
    }
    expect(await taskReadiness(f.ctx, uiId)).toEqual({ ready: true });

    const removed = await f.post(`/api/tasks/${ui.key}/dependencies`, { on: [api.key], remove: true });
    expect((await json<TaskDetailJson>(removed)).depends_on.map((d) => d.key)).toEqual([base.key]);
    expect((await f.post(`/api/tasks/${ui.key}/dependencies`, { on: [api.key], remove: true })).status).toBe(
      409,
    );
  });

  it('refuses a cycle with the cycle named, and dependencies on tasks that do not exist', async () => {
    const a = await create('A');
    const b = await json<TaskDetailJson>(await f.post('/api/tasks', { title: 'B', after: [a.key] }));
    const cycle = await f.post(`/api/tasks/${a.key}/dependencies`, { on: [b.key] });
    expect(cycle.status).toBe(400);
    expect((await json<{ error: { message: string } }>(cycle)).error.message).toBe(
      `${a.key} → ${b.key} → ${a.key} would be a dependency cycle (each task waits for the next)`,
    );
    expect((await f.post(`/api/tasks/${a.key}/dependencies`, { on: ['T-999'] })).status).toBe(404);
    expect((await f.post('/api/tasks', { title: 'C', after: ['T-999'] })).status).toBe(404);
    expect((await f.post(`/api/tasks/${a.key}/dependencies`, { on: [] })).status).toBe(400);
    // Nothing was added by the refusals.
    expect((await json<TaskDetailJson>(await f.get(`/api/tasks/${a.key}`))).depends_on).toEqual([]);
  });
});

describe('bad requests', () => {
  it.each([
    ['an empty title', { title: '   ' }, [{ path: 'body.title', message: 'must not be empty' }]],
    ['a missing title', {}, [{ path: 'body.title' }]],
    ['a wrong type', { title: 'x', priority: 'high' }, [{ path: 'body.priority' }]],
    ['an unknown field', { title: 'x', titel: 'y' }, [{ path: 'body.titel', message: 'unknown field' }]],
    ['labels of the wrong kind', { title: 'x', labels: [1] }, [{ path: 'body.labels.0' }]],
  ])('refuses %s with 400 and details', async (_what, body, details) => {
    const res = await f.post('/api/tasks', body);
    expect(res.status).toBe(400);
    const b = await json<{ error: { code: string; details: { path: string; message: string }[] } }>(res);
    expect(b.error.code).toBe('bad_request');
    for (const d of details) expect(b.error.details).toContainEqual(expect.objectContaining(d));
  });

  it('refuses a retry budget that is not positive, naming each field', async () => {
    const res = await f.post('/api/tasks/T-1/retry', { max_attempts: 0, max_usd: -1 });
    expect(res.status).toBe(400);
    const paths = (await json<{ error: { details: { path: string }[] } }>(res)).error.details.map(
      (d) => d.path,
    );
    expect(paths).toEqual(expect.arrayContaining(['body.max_attempts', 'body.max_usd']));
  });

  it('refuses a body that is not JSON (400) or not sent as JSON (415)', async () => {
    const broken = await f.post('/api/tasks', '{"title": ');
    expect(broken.status).toBe(400);
    expect(await json(broken)).toMatchObject({ error: { code: 'bad_request', details: [{ path: 'body' }] } });
    const form = await f.post('/api/tasks', 'title=x', {
      'Content-Type': 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(415);
    expect(await json(form)).toMatchObject({ error: { code: 'unsupported_media_type' } });
  });

  it('refuses bad query parameters with their path', async () => {
    const res = await f.get('/api/tasks?stage=nowhere');
    expect(res.status).toBe(400);
    expect(await json(res)).toMatchObject({ error: { details: [{ path: 'query.stage' }] } });
    expect((await f.get('/api/runs?limit=0')).status).toBe(400);
  });

  it.each([
    ['GET', '/api/tasks/NOPE-404'],
    ['GET', '/api/tasks/NOPE-404/runs'],
    ['POST', '/api/tasks/NOPE-404/cancel'],
    ['POST', '/api/tasks/NOPE-404/retry'],
    ['GET', '/api/events?task=NOPE-404'],
  ])('answers %s %s for an unknown task with 404 unknown_task', async (method, path) => {
    const res = method === 'GET' ? await f.get(path) : await f.post(path, {});
    expect(res.status).toBe(404);
    expect(await json(res)).toMatchObject({
      error: { code: 'unknown_task', message: expect.stringContaining('NOPE-404') },
    });
  });

  it('answers unknown runs and routes with 404 not_found, as JSON', async () => {
    for (const path of ['/api/runs/99999', '/api/runs/abc/log', '/api/nothing-here', '/api']) {
      const res = await f.get(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expect(await json(res)).toMatchObject({ error: { code: 'not_found' } });
    }
  });

  it('refuses a write from another origin, and a Host that is not loopback while open', async () => {
    const cross = await f.post('/api/tasks', { title: 'csrf' }, { Origin: 'http://evil.example' });
    expect(cross.status).toBe(403);
    const rebound = await f.api.app.request('http://evil.example:7700/api/tasks');
    expect(rebound.status).toBe(403);
    expect(await json(rebound)).toMatchObject({ error: { code: 'forbidden' } });
    const same = await f.post('/api/tasks', { title: 'same origin' }, { Origin: 'http://localhost' });
    expect(same.status).toBe(201);
  });
});

describe('error mapping', () => {
  it('maps every orch error code to a status, and hides the text of unexpected errors', () => {
    expect(errorResponse(new OrchError('unknown_task', 'no task X')).status).toBe(404);
    expect(errorResponse(new OrchError('invalid_state', 'done')).status).toBe(409);
    expect(errorResponse(new OrchError('invalid_argument', 'bad')).status).toBe(400);
    expect(errorResponse(new OrchError('config_invalid', 'bad')).status).toBe(400);
    for (const status of Object.values(HTTP_STATUS)) expect(status).toBeGreaterThanOrEqual(400);
    const hidden = errorResponse(new Error('SELECT * FROM secrets failed'));
    expect(hidden).toEqual({
      status: 500,
      body: { error: { code: 'internal', message: expect.not.stringContaining('SELECT') } },
    });
  });
});

describe('runs and logs', () => {
  it('lists runs with model · effort, and reads a log by byte ranges that end on whole lines', async () => {
    const t = await create('Logged');
    const lines = [
      'first line',
      'second line',
      'third: ünïcode ✓',
      '{"type":"assistant","message":{"content":[{"type":"text","text":"hello"}]}}',
    ];
    const { runId, logPath } = await fakeRun(f, t.key, { lines });
    await f.ctx.store.stampRun(runId, 'claude-opus-4-8', 'xhigh');

    const runs = await json<{ id: number; label: string; task: string }[]>(
      await f.get(`/api/tasks/${t.key}/runs`),
    );
    expect(runs).toEqual([expect.objectContaining({ id: runId, task: t.key, label: 'opus-4-8 · xhigh' })]);
    const running = await json<{ id: number }[]>(await f.get('/api/runs?status=running'));
    expect(running.map((r) => r.id)).toContain(runId);

    // A window of 15 bytes holds "first line\n" (11) but not the whole second line.
    const a = await json<{
      lines: { text: string; offset: number; next_offset: number }[];
      next_offset: number;
      size: number;
      running: boolean;
    }>(await f.get(`/api/runs/${runId}/log?offset=0&limit=15`));
    expect(a.lines.map((l) => l.text)).toEqual(['first line']);
    expect(a.next_offset).toBe(11);
    expect(a.running).toBe(true);
    const b = await json<{ lines: { text: string; kind: string }[]; next_offset: number; size: number }>(
      await f.get(`/api/runs/${runId}/log?offset=${a.next_offset}`),
    );
    expect(b.lines.map((l) => l.text)).toEqual(['second line', 'third: ünïcode ✓', 'hello']);
    expect(b.lines.at(-1)!.kind).toBe('message');
    expect(b.next_offset).toBe(b.size);

    // A line still being written is left for the next read until the run finishes.
    appendFileSync(logPath, 'partial');
    const c = await json<{ lines: unknown[]; next_offset: number }>(
      await f.get(`/api/runs/${runId}/log?offset=${b.next_offset}`),
    );
    expect(c.lines).toEqual([]);
    expect(c.next_offset).toBe(b.next_offset);
    await f.ctx.store.finishRun(f.ctx.store.db, runId, {
      exitCode: 0,
      outcome: 'ok',
      resultText: 'ok',
      error: null,
    });
    const d = await json<{ lines: { text: string }[] }>(
      await f.get(`/api/runs/${runId}/log?offset=${b.next_offset}`),
    );
    expect(d.lines.map((l) => l.text)).toEqual(['partial']);

    const tail = await json<{ lines: { text: string }[]; offset: number }>(
      await f.get(`/api/runs/${runId}/log?tail=20`),
    );
    expect(tail.lines.map((l) => l.text)).toEqual(['partial']);

    const raw = await f.get(`/api/runs/${runId}/log?offset=0&limit=11&format=raw`);
    expect(await raw.text()).toBe('first line\n');
    expect(raw.headers.get('x-log-next-offset')).toBe('11');

    const one = await json<{ id: number; outcome: string; result_text: string }>(
      await f.get(`/api/runs/${runId}`),
    );
    expect(one).toMatchObject({ id: runId, outcome: 'ok', result_text: 'ok' });
  });

  it('lists agents in flight with model and effort', async () => {
    const t = await create('In flight');
    const job = await f.ctx.store.claimJob('test-worker', 60_000);
    expect(job).not.toBeNull();
    const { runId } = await fakeRun(f, (await f.ctx.store.getTask(job!.task_id)).key, { jobId: job!.id });
    await f.ctx.store.stampRun(runId, 'tokenator/claude-sonnet-4-6', 'high');
    const agents = await json<{ run_id: number; label: string; model: string; effort: string }[]>(
      await f.get('/api/agents'),
    );
    expect(agents).toContainEqual(
      expect.objectContaining({
        run_id: runId,
        model: 'tokenator/claude-sonnet-4-6',
        effort: 'high',
        label: 'sonnet-4-6 · high',
      }),
    );
    expect(t.key).toBeTruthy();
  });

  it('reports spend per day, model and role', async () => {
    const t = await create('Costly');
    const { runId } = await fakeRun(f, t.key, { role: 'reviewer', stage: 'review' });
    await f.ctx.store.recordUsage(runId, {
      inputTokens: 100,
      outputTokens: 50,
      costUsd: 0.25,
      model: 'claude-opus-4-8',
    });
    const r = await json<{
      by_day: { day: string; cost_usd: number }[];
      by_role: { role: string; cost_usd: number }[];
      by_model: { model: string }[];
    }>(await f.get('/api/costs?days=7'));
    expect(r.by_day).toHaveLength(7);
    expect(r.by_day.at(-1)!.day).toBe(new Date().toISOString().slice(0, 10));
    expect(r.by_day.at(-1)!.cost_usd).toBeGreaterThanOrEqual(0.25);
    expect(r.by_role).toContainEqual(expect.objectContaining({ role: 'reviewer', cost_usd: 0.25 }));
    expect(r.by_model.map((m) => m.model)).toContain('claude-opus-4-8');
  });
});

describe('status and the OpenAPI document', () => {
  it('reports status with projects, counts and the server', async () => {
    const s = await json<{
      projects: { name: string }[];
      tasks: { total: number };
      server: { workers: number; version: string };
    }>(await f.get('/api/status'));
    expect(s.projects.map((p) => p.name)).toEqual(['sample']);
    expect(s.tasks.total).toBeGreaterThan(0);
    expect(s.server.workers).toBe(0);
    // The version is package.json's, as `orch --version` prints it.
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    expect(s.server.version).toBe(pkg.version);
  });

  it('documents every route the app serves, with the request schemas', async () => {
    const doc = await json<{
      openapi: string;
      paths: Record<
        string,
        Record<string, { requestBody?: { content: Record<string, { schema: { required?: string[] } }> } }>
      >;
    }>(await f.get('/api/openapi.json'));
    expect(doc.openapi).toBe('3.1.0');
    const served = f.api.app.routes
      .filter((r) => (r.path.startsWith('/api/') && !r.path.endsWith('*')) || r.path === '/metrics')
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`);
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m} ${p}`),
    );
    expect(new Set(served)).toEqual(new Set(documented));
    expect(documented).toEqual(
      expect.arrayContaining(['post /api/tasks', 'get /api/events', 'post /api/tasks/{key}/retry']),
    );
    expect(doc.paths['/api/tasks']!.post!.requestBody!.content['application/json']!.schema.required).toEqual([
      'title',
    ]);
  });
});

describe('the dashboard files', () => {
  it('serves the built files, index.html for client routes, and nothing outside its directory', async () => {
    const web = mkdtempSync(join(tmpdir(), 'orch-web-'));
    try {
      mkdirSync(join(web, 'assets'));
      writeFileSync(join(web, 'index.html'), '<!doctype html><title>orch</title>');
      writeFileSync(join(web, 'assets', 'app-1234.js'), 'console.log(1)');
      const { app, pulse } = createApp(f.ctx, { webDir: web });
      const index = await app.request('/');
      expect(index.status).toBe(200);
      expect(index.headers.get('content-type')).toMatch(/text\/html/);
      expect(await index.text()).toContain('<title>orch</title>');
      const js = await app.request('/assets/app-1234.js');
      expect(js.headers.get('content-type')).toMatch(/javascript/);
      expect(js.headers.get('cache-control')).toContain('immutable');
      expect(await (await app.request('/tasks/T-1')).text()).toContain('<title>orch</title>');
      const escape = await app.request('/..%2f..%2f..%2fetc%2fpasswd');
      expect(await escape.text()).not.toContain('root:');
      rmSync(join(web, 'index.html'));
      const missing = await app.request('/');
      expect(missing.status).toBe(503);
      expect(await missing.text()).toContain('npm run build:web');
      pulse.close();
    } finally {
      rmSync(web, { recursive: true, force: true });
    }
  });
});
