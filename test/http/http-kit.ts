/**
 * Helpers for the API tests: a temporary project with its context and an app
 * served in-process (`app.request`, no socket), runs with log files, and a
 * reader of server-sent events.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeProject, type TempProject, type ProjectOptions } from '../helpers/kit.ts';
import { openContext, type OrchContext } from '../../src/runtime/context.ts';
import { createApp, type AppOptions, type OrchApp } from '../../src/http/app.ts';

export interface ApiFixture {
  project: TempProject;
  ctx: OrchContext;
  api: OrchApp;
  /** `app.request` with JSON helpers. */
  get(path: string, headers?: Record<string, string>): Promise<Response>;
  post(path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
  close(): Promise<void>;
}

export async function apiFixture(
  opts: { app?: AppOptions; env?: Record<string, string>; project?: ProjectOptions } = {},
): Promise<ApiFixture> {
  const project = makeProject(opts.project);
  const ctx = await openContext(project.dir, { ...project.env, ...opts.env });
  const api = createApp(ctx, { webDir: null, ssePollMs: 20, ...opts.app });
  return {
    project,
    ctx,
    api,
    get: async (path, headers = {}) => api.app.request(path, { headers }),
    post: async (path, body, headers = {}) =>
      api.app.request(path, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      }),
    close: async () => {
      api.pulse.close();
      await ctx.close();
      project.cleanup();
    },
  };
}

/** Creates a run of `role` for the task `key`, with a log file holding `lines`. */
export async function fakeRun(
  f: ApiFixture,
  key: string,
  opts: { role?: string; stage?: string; lines?: string[]; jobId?: number | null } = {},
): Promise<{ runId: number; logPath: string }> {
  const task = await f.ctx.store.getTaskByKey(key);
  const dir = join(f.project.dir, '.orch', 'logs', key);
  mkdirSync(dir, { recursive: true });
  const runId = await f.ctx.store.createRun({
    taskId: task.id,
    jobId: opts.jobId ?? null,
    agent: opts.role ?? 'developer',
    stage: opts.stage ?? 'development',
    attempt: 1,
    adapter: 'scripted',
    timeoutS: 3600,
    logPath: '',
    workerId: 'test',
  });
  const logPath = join(dir, `${runId}.log`);
  writeFileSync(logPath, (opts.lines ?? []).map((l) => l + '\n').join(''));
  await f.ctx.store.db.updateTable('agent_runs').set({ log_path: logPath }).where('id', '=', runId).execute();
  return { runId, logPath };
}

export interface SseEvent {
  event: string;
  id: string | null;
  data: Record<string, unknown>;
}

/** Reads server-sent events from a response; `next(pred)` waits for the first match. */
export function sseReader(res: Response) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const seen: SseEvent[] = [];
  const parse = (frame: string): SseEvent | null => {
    let event = 'message';
    let id: string | null = null;
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) continue;
      const [field, ...rest] = line.split(':');
      const value = rest.join(':').replace(/^ /, '');
      if (field === 'event') event = value;
      if (field === 'id') id = value;
      if (field === 'data') data.push(value);
    }
    return data.length ? { event, id, data: JSON.parse(data.join('\n')) as Record<string, unknown> } : null;
  };
  return {
    seen,
    async next(pred: (e: SseEvent) => boolean, timeoutMs = 10_000): Promise<SseEvent> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const e = parse(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (!e) continue;
          seen.push(e);
          if (pred(e)) return e;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no matching event; saw ${seen.map((e) => e.event).join(', ')}`);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const chunk = await Promise.race([
          reader.read(),
          new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), left))),
        ]);
        clearTimeout(timer);
        if (chunk === 'timeout') continue;
        if (chunk.done) throw new Error(`stream ended; saw ${seen.map((e) => e.event).join(', ')}`);
        buffer += chunk.value;
      }
    },
    close: () => reader.cancel().catch(() => {}),
  };
}
