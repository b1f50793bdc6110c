/**
 * `GET /api/events`: rows of the events table with ids (resumable with
 * Last-Event-ID), runs started and finished, and log lines of running agents
 * tailed from their files, all read from the store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendFileSync } from 'node:fs';
import { apiFixture, fakeRun, sseReader, type ApiFixture } from './http-kit.ts';

let f: ApiFixture;
beforeAll(async () => {
  f = await apiFixture();
});
afterAll(async () => {
  await f.close();
});

const newTask = async (title: string): Promise<string> =>
  ((await (await f.post('/api/tasks', { title })).json()) as { key: string }).key;

describe('the event stream', () => {
  it('starts live, then delivers new events with their ids', async () => {
    const before = await newTask('Before the stream');
    const res = await f.get('/api/events');
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const s = sseReader(res);
    try {
      const ready = await s.next((e) => e.event === 'ready');
      const after = await newTask('After the stream');
      const created = await s.next((e) => e.event === 'task_created');
      expect(created.data).toMatchObject({ kind: 'task_created', task: after, payload: { key: after } });
      expect(Number(created.id)).toBeGreaterThan(Number(ready.data.last_event_id));
      // Nothing from before the stream opened.
      expect(s.seen.some((e) => e.data.task === before)).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('resumes after Last-Event-ID, replaying what came after it, in order', async () => {
    const first = await newTask('Resume one');
    const events = (await (await f.get(`/api/tasks/${first}/events`)).json()) as { id: number }[];
    const cursor = events.at(-1)!.id;
    const second = await newTask('Resume two');
    const third = await newTask('Resume three');
    const s = sseReader(await f.get('/api/events?logs=false', { 'Last-Event-ID': String(cursor) }));
    try {
      await s.next((e) => e.event === 'ready');
      const replayed = s.seen.filter((e) => e.event === 'task_created').map((e) => e.data.task);
      expect(replayed).toEqual([second, third]);
      const ids = s.seen.filter((e) => e.id !== null).map((e) => Number(e.id));
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      expect(ids.every((id) => id > cursor)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('filters by task', async () => {
    const mine = await newTask('Mine');
    const s = sseReader(await f.get(`/api/events?task=${mine}&after=0`));
    try {
      await s.next((e) => e.event === 'ready');
      await newTask('Someone else');
      const other = await f.post(`/api/tasks/${mine}/cancel`);
      expect(other.status).toBe(200);
      await s.next((e) => e.event === 'stage_changed' && e.data.task === mine);
      expect(s.seen.filter((e) => e.id !== null).every((e) => e.data.task === mine)).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('announces runs starting and finishing, and streams the log lines of a running agent', async () => {
    const key = await newTask('Streaming');
    const s = sseReader(await f.get(`/api/events?task=${key}`));
    try {
      await s.next((e) => e.event === 'ready');
      const { runId, logPath } = await fakeRun(f, key, {
        lines: ['{"type":"assistant","message":{"content":[{"type":"text","text":"step 1"}]}}'],
      });
      const started = await s.next((e) => e.event === 'run_started');
      expect(started.data).toMatchObject({
        run_id: runId,
        task: key,
        role: 'developer',
        stage: 'development',
      });
      const line1 = await s.next((e) => e.event === 'log');
      expect(line1.data).toMatchObject({
        run_id: runId,
        task: key,
        offset: 0,
        kind: 'message',
        text: 'step 1',
      });

      appendFileSync(logPath, 'step 2\n[stderr] warn');
      const line2 = await s.next((e) => e.event === 'log' && e.data.text === 'step 2');
      expect(line2.data.offset).toBe(line1.data.next_offset);
      // A line without its newline waits until the run ends, then arrives.
      await new Promise((r) => setTimeout(r, 100));
      expect(s.seen.some((e) => e.data.kind === 'stderr')).toBe(false);
      await f.ctx.store.recordUsage(runId, { inputTokens: 10, outputTokens: 5, costUsd: 0.01 });
      await f.ctx.store.finishRun(f.ctx.store.db, runId, {
        exitCode: 0,
        outcome: 'ok',
        resultText: 'done',
        error: null,
      });
      const last = await s.next((e) => e.event === 'log' && e.data.kind === 'stderr');
      expect(last.data.text).toBe('warn');
      const finished = await s.next((e) => e.event === 'run_finished');
      expect(finished.data).toMatchObject({
        run_id: runId,
        outcome: 'ok',
        exit_code: 0,
        input_tokens: 10,
        cost_usd: 0.01,
      });
      expect(s.seen.filter((e) => e.event === 'run_started')).toHaveLength(1);
    } finally {
      await s.close();
    }
  });

  it('follows an agent already running from where its log is, without repeating earlier lines', async () => {
    const key = await newTask('Already running');
    const { logPath } = await fakeRun(f, key, { lines: ['old line'] });
    const s = sseReader(await f.get(`/api/events?task=${key}`));
    try {
      await s.next((e) => e.event === 'ready');
      appendFileSync(logPath, 'new line\n');
      const line = await s.next((e) => e.event === 'log');
      expect(line.data).toMatchObject({ text: 'new line', offset: 'old line\n'.length });
      expect(s.seen.some((e) => e.data.text === 'old line')).toBe(false);
    } finally {
      await s.close();
    }
  });

  it('ends every stream when the server closes', async () => {
    const s = sseReader(await f.get('/api/events'));
    await s.next((e) => e.event === 'ready');
    f.api.pulse.close();
    await expect(s.next(() => false, 5_000)).rejects.toThrow(/stream ended/);
  });
});
