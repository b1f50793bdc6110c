/**
 * The JSON API: tasks, runs and their logs, attempts, gates, the queue, the
 * agents in flight, spend, status, and the event stream. Each endpoint is a
 * thin call into the runtime; shapes are the CLI's `--json` views.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { paths } from '../runtime/context.ts';
import { attemptView, gateView, runView, taskDetail, taskSummary } from '../runtime/views.ts';
import { addTask, approveTask, cancelTask, pickProject, retryTask, sayToTask } from '../runtime/tasks.ts';
import {
  addDependencies,
  addTaskAfter,
  removeDependency,
  taskDependencies,
} from '../runtime/dependencies.ts';
import { pausedAdapters, statusData } from '../runtime/status.ts';
import { statsReport } from '../runtime/stats.ts';
import { modelEffortLabel } from '../core/model.ts';
import type { AgentRun, Task } from '../store/schema.ts';
import { ApiError } from './errors.ts';
import { endpoint, type Endpoint } from './endpoint.ts';
import { ORCH_VERSION } from '../version.ts';
import {
  ApproveBody,
  CostsQuery,
  CreateTaskBody,
  DependencyBody,
  EmptyBody,
  LogQuery,
  MessageBody,
  QueueQuery,
  RetryBody,
  RunListQuery,
  StatsQuery,
  TaskListQuery,
} from './schemas.ts';
import { eventRowData } from './events.ts';
import { eventStreamEndpoint } from './event-stream.ts';
import { fileSize, readBytes, readLogRange } from './log-lines.ts';
import { costReport, reportStart } from './costs.ts';
import { redact, redactDeep } from './redact.ts';
import { readWorktreeFile } from '../io/worktree-files.ts';
import type { AgentJson, LogResponse, QueueJson, RouteDeps } from './types.ts';

export type { RouteDeps } from './types.ts';

const KEY = { key: 'task key, e.g. `ORCH-7`' };
const RUN = { id: 'run id' };
const ERR = { 400: 'invalid input (details list each problem)', 404: 'no such task' };

export function apiEndpoints(d: RouteDeps): Endpoint[] {
  const { ctx, secrets } = d;
  const send = (c: Context, data: unknown, status: ContentfulStatusCode = 200) =>
    c.json(redactDeep(data, secrets) as object, status);
  const taskOf = (key: string): Promise<Task> => ctx.store.getTaskByKey(key);
  const summaryOf = async (t: Task) => taskSummary(t, await ctx.store.getProject(t.project_id));
  const runOf = async (id: string) => {
    const run = /^\d+$/.test(id) ? await ctx.store.reports.runWithTask(Number(id)) : undefined;
    if (!run) throw new ApiError('not_found', `no run with id ${JSON.stringify(id)}`);
    return run;
  };
  const runJson = (r: AgentRun & { task_key: string }) => ({
    task: r.task_key,
    ...runView(r),
    label: modelEffortLabel(r.model, r.effort),
  });

  return [
    endpoint({
      method: 'get',
      path: '/api/status',
      summary: 'Home, projects, task counts, queue, agents in flight, configuration errors',
      tag: 'status',
      handle: async (c) =>
        send(c, { ...(await statusData(ctx)), server: { workers: d.workers, version: ORCH_VERSION } }),
    }),
    endpoint({
      method: 'get',
      path: '/api/projects',
      summary: 'Projects served by this home',
      tag: 'status',
      handle: async (c) =>
        send(
          c,
          (await ctx.store.listProjects()).map((p) => ({
            name: p.name,
            root: p.root_path,
            base_branch: p.base_branch,
            key_prefix: p.key_prefix,
          })),
        ),
    }),
    endpoint({
      method: 'get',
      path: '/api/tasks',
      summary:
        'Task summaries, oldest first (`order=newest`: newest first), filtered by project, status and stage (`open=true`: not at done or cancelled); one page of `limit` (default 100, at most 500) after the cursor `after`; the `X-Next-After` header (and a `Link` rel="next") gives the next page\'s cursor while there is one',
      tag: 'tasks',
      query: TaskListQuery,
      responses: { 200: 'task summaries', ...ERR },
      handle: async (c, { query }) => {
        const projects = new Map((await ctx.store.listProjects()).map((p) => [p.id, p]));
        const project = query.project ? await pickProject(ctx, query.project) : undefined;
        // One more than the page: whether it is there says if another page follows.
        const rows = await ctx.store.listTasks({
          ...(project ? { projectId: project.id } : {}),
          ...(query.status ? { status: query.status } : {}),
          ...(query.stage ? { stage: query.stage } : {}),
          open: query.open,
          newest: query.order === 'newest',
          ...(query.after !== undefined ? { after: query.after } : {}),
          limit: query.limit + 1,
        });
        const page = rows.slice(0, query.limit);
        if (rows.length > query.limit) {
          const after = String(page.at(-1)!.id);
          const next = new URL(c.req.url);
          next.searchParams.set('after', after);
          c.header('X-Next-After', after);
          c.header('Link', `<${next.pathname}${next.search}>; rel="next"`);
        }
        return send(
          c,
          page.map((t) => taskSummary(t, projects.get(t.project_id))),
        );
      },
    }),
    endpoint({
      method: 'post',
      path: '/api/tasks',
      summary:
        'Create a task at stage created; its first job is queued. With `after`, it starts only once those tasks are done',
      tag: 'tasks',
      body: CreateTaskBody,
      responses: {
        201: 'the new task summary (with `depends_on` and `blocks` when `after` was given)',
        400: ERR[400],
        404: 'no such project, or no task named in `after`',
      },
      handle: async (c, { body }) => {
        const opts = {
          ...(body.description !== undefined ? { description: body.description } : {}),
          ...(body.project !== undefined ? { project: body.project } : {}),
          ...(body.priority !== undefined ? { priority: body.priority } : {}),
          ...(body.labels !== undefined ? { labels: body.labels } : {}),
        };
        if (!body.after) {
          const task = await addTask(ctx, body.title, opts);
          d.onWorkQueued();
          return send(c, await summaryOf(task), 201);
        }
        const task = await addTaskAfter(ctx, body.title, opts, body.after);
        d.onWorkQueued();
        return send(c, { ...(await summaryOf(task)), ...(await taskDependencies(ctx, task)) }, 201);
      },
    }),
    endpoint({
      method: 'post',
      path: '/api/tasks/{key}/dependencies',
      summary:
        'Make a task wait until other tasks of its project are done (`remove: true` drops those dependencies); a cycle is refused with the cycle named',
      tag: 'tasks',
      params: KEY,
      body: DependencyBody,
      responses: {
        200: 'the task summary with `depends_on` and `blocks`',
        400: 'invalid input, a task of another project, or a cycle (the message names it)',
        404: 'no such task',
        409: 'removing a dependency the task does not have',
      },
      handle: async (c, { params, body }) => {
        let task: Task;
        if (body.remove) {
          for (const on of body.on) await removeDependency(ctx, params.key!, on);
          task = await taskOf(params.key!);
        } else task = await addDependencies(ctx, params.key!, body.on);
        // A dependency removed may let a waiting task start.
        d.onWorkQueued();
        return send(c, { ...(await summaryOf(task)), ...(await taskDependencies(ctx, task)) });
      },
    }),
    endpoint({
      method: 'get',
      path: '/api/tasks/{key}',
      summary: 'A task with its runs, attempts, gates, totals and artifacts',
      tag: 'tasks',
      params: KEY,
      responses: { 200: 'task detail', 404: ERR[404] },
      handle: async (c, { params }) => send(c, await taskDetail(ctx, await taskOf(params.key!))),
    }),
    endpoint({
      method: 'post',
      path: '/api/tasks/{key}/cancel',
      summary: 'Cancel a task: stage cancelled, jobs ended, its running agent stopped',
      tag: 'tasks',
      params: KEY,
      body: EmptyBody,
      responses: { 200: 'the task summary', ...ERR, 409: 'already done or cancelled' },
      handle: async (c, { params }) => send(c, await summaryOf(await cancelTask(ctx, params.key!))),
    }),
    endpoint({
      method: 'post',
      path: '/api/tasks/{key}/retry',
      summary: 'Requeue an escalated task, raising its budget with the limits given',
      tag: 'tasks',
      params: KEY,
      body: RetryBody,
      responses: { 200: 'the task summary', ...ERR, 409: 'the task is not escalated' },
      handle: async (c, { params, body }) => {
        const task = await retryTask(ctx, params.key!, {
          ...(body.max_attempts !== undefined ? { maxAttempts: body.max_attempts } : {}),
          ...(body.max_usd !== undefined ? { maxUsd: body.max_usd } : {}),
          ...(body.max_tokens !== undefined ? { maxTokens: body.max_tokens } : {}),
          ...(body.max_wall_s !== undefined ? { maxWallS: body.max_wall_s } : {}),
        });
        d.onWorkQueued();
        return send(c, await summaryOf(task));
      },
    }),
    endpoint({
      method: 'post',
      path: '/api/tasks/{key}/approve',
      summary: 'Approve a task waiting for a human; its stage is queued again',
      tag: 'tasks',
      params: KEY,
      body: ApproveBody,
      responses: { 200: 'the task summary', ...ERR, 409: 'the task is not waiting for an approval' },
      handle: async (c, { params, body }) => {
        const task = await approveTask(ctx, params.key!, body.by ?? 'api');
        d.onWorkQueued();
        return send(c, await summaryOf(task));
      },
    }),
    endpoint({
      method: 'post',
      path: '/api/tasks/{key}/messages',
      summary:
        "A person's message to the task: recorded on its timeline and put in its next agent run's prompt, once; with `now`, its running agent is stopped and the stage runs again at once with it",
      tag: 'tasks',
      params: KEY,
      body: MessageBody,
      responses: {
        201: 'the message as recorded, and whether a running agent was asked to stop for it',
        ...ERR,
        409: 'the task is done or cancelled',
      },
      handle: async (c, { params, body }) =>
        send(
          c,
          await sayToTask(ctx, params.key!, body.text, body.by ?? 'api', { now: body.now ?? false }),
          201,
        ),
    }),
    endpoint({
      method: 'get',
      path: '/api/tasks/{key}/runs',
      summary: "A task's runs, in order",
      tag: 'runs',
      params: KEY,
      responses: { 200: 'runs', 404: ERR[404] },
      handle: async (c, { params }) => {
        const task = await taskOf(params.key!);
        return send(
          c,
          (await ctx.store.runsOfTask(task.id)).map((r) => runJson({ ...r, task_key: task.key })),
        );
      },
    }),
    endpoint({
      method: 'get',
      path: '/api/tasks/{key}/attempts',
      summary: "A task's attempt ledger (development + review passes)",
      tag: 'tasks',
      params: KEY,
      responses: { 200: 'attempts', 404: ERR[404] },
      handle: async (c, { params }) =>
        send(c, (await ctx.store.attemptsOfTask((await taskOf(params.key!)).id)).map(attemptView)),
    }),
    endpoint({
      method: 'get',
      path: '/api/tasks/{key}/gates',
      summary: "A task's gate results with their output",
      tag: 'tasks',
      params: KEY,
      responses: { 200: 'gate results', 404: ERR[404] },
      handle: async (c, { params }) =>
        send(c, (await ctx.store.gatesOfTask((await taskOf(params.key!)).id)).map(gateView)),
    }),
    endpoint({
      method: 'get',
      path: '/api/tasks/{key}/events',
      summary: "A task's events (stage changes, gate results, failures), oldest first",
      tag: 'tasks',
      params: KEY,
      responses: { 200: 'events', 404: ERR[404] },
      handle: async (c, { params }) => {
        const task = await taskOf(params.key!);
        return send(c, (await ctx.store.reports.eventsAfter(0, 10_000, task.id)).map(eventRowData));
      },
    }),
    endpoint({
      method: 'get',
      path: '/api/tasks/{key}/terminal-packet',
      summary: "The task's terminal packet (Markdown), written when its loop stopped without success",
      tag: 'tasks',
      params: KEY,
      produces: 'text/markdown',
      responses: { 200: 'the packet', 404: 'no such task, or no packet' },
      handle: async (c, { params }) => {
        const task = await taskOf(params.key!);
        const dir = paths.artifacts(await ctx.store.getProject(task.project_id), task);
        // Read like a worktree file: a FIFO or a huge file there must not stop the server.
        const packet = await readWorktreeFile(dir, 'terminal-packet.md');
        if (!packet.ok && packet.reason === 'missing')
          throw new ApiError('not_found', `${task.key} has no terminal packet`);
        if (!packet.ok) throw new ApiError('not_found', `${task.key}'s terminal packet: ${packet.message}`);
        return c.body(redact(packet.text, secrets), 200, {
          'Content-Type': 'text/markdown; charset=utf-8',
        });
      },
    }),
    endpoint({
      method: 'get',
      path: '/api/runs',
      summary: 'Runs, newest first, filtered by status, task and role',
      tag: 'runs',
      query: RunListQuery,
      responses: { 200: 'runs', ...ERR },
      handle: async (c, { query }) => {
        const taskId = query.task ? (await taskOf(query.task)).id : undefined;
        const runs = await ctx.store.reports.listRuns({
          status: query.status,
          taskId,
          role: query.role,
          limit: query.limit,
        });
        return send(c, runs.map(runJson));
      },
    }),
    endpoint({
      method: 'get',
      path: '/api/runs/{id}',
      summary: 'One run, with its result text',
      tag: 'runs',
      params: RUN,
      responses: { 200: 'the run', 404: 'no such run' },
      handle: async (c, { params }) => {
        const run = await runOf(params.id!);
        return send(c, { ...runJson(run), result_text: run.result_text });
      },
    }),
    endpoint({
      method: 'get',
      path: '/api/runs/{id}/log',
      summary: "A byte range of a run's log, cut at line boundaries (`format=raw` for the bytes)",
      tag: 'runs',
      params: RUN,
      query: LogQuery,
      responses: { 200: 'lines, offsets and the file size', 400: ERR[400], 404: 'no such run' },
      handle: async (c, { params, query }) => {
        const run = await runOf(params.id!);
        const path = run.log_path;
        const size = await fileSize(path);
        let offset = query.offset;
        if (query.tail !== undefined) {
          // Start at the first line that begins inside the last `tail` bytes.
          offset = Math.max(0, size - query.tail);
          if (offset > 0 && path) {
            const head = await readBytes(path, offset - 1, Math.min(query.tail + 1, size - offset + 1));
            const nl = head.indexOf(0x0a);
            offset = nl === -1 ? size : offset + nl;
          }
        }
        const running = run.status === 'running';
        if (query.format === 'raw') {
          const bytes =
            path && offset < size
              ? await readBytes(path, offset, Math.min(query.limit, size - offset))
              : Buffer.alloc(0);
          return c.body(redact(bytes.toString('utf8'), secrets), 200, {
            'Content-Type': 'text/plain; charset=utf-8',
            'X-Log-Offset': String(offset),
            'X-Log-Next-Offset': String(offset + bytes.length),
            'X-Log-Size': String(size),
          });
        }
        const range = await readLogRange(path, offset, query.limit, !running);
        const body: LogResponse = { run_id: run.id, task: run.task_key, running, ...range };
        return send(c, body);
      },
    }),
    endpoint({
      method: 'get',
      path: '/api/queue',
      summary: 'Jobs waiting to be claimed, in the order workers take them',
      tag: 'agents',
      query: QueueQuery,
      handle: async (c, { query }) => {
        const jobs = await ctx.store.reports.queuedJobs(query.limit);
        const now = new Date().toISOString();
        const body: QueueJson = {
          depth: await ctx.store.countJobs('queued'),
          jobs: jobs.map((j) => ({ ...j, due: j.run_after <= now })),
          paused_adapters: await pausedAdapters(ctx),
        };
        return send(c, body);
      },
    }),
    endpoint({
      method: 'get',
      path: '/api/agents',
      summary: 'Agents in flight, with model and effort',
      tag: 'agents',
      handle: async (c) => {
        const now = Date.now();
        return send(
          c,
          (await ctx.store.getRunningAgents()).map((r): AgentJson => ({
            run_id: r.run_id,
            job_id: r.job_id,
            task: r.task_key,
            role: r.agent,
            stage: r.stage,
            model: r.model,
            effort: r.effort,
            label: modelEffortLabel(r.model, r.effort),
            pid: r.pid,
            started_at: r.started_at,
            elapsed_s: r.started_at ? Math.round((now - Date.parse(r.started_at)) / 1000) : null,
            timeout_s: r.timeout_s,
            worker: r.worker_id,
          })),
        );
      },
    }),
    endpoint({
      method: 'get',
      path: '/api/costs',
      summary: 'Runs, tokens and USD per UTC day, model and role over the last `days` days',
      tag: 'status',
      query: CostsQuery,
      handle: async (c, { query }) => {
        const now = new Date();
        const runs = await ctx.store.reports.runFigures(reportStart(now, query.days).toISOString());
        return send(c, costReport(runs, query.days, now));
      },
    }),
    endpoint({
      method: 'get',
      path: '/api/stats',
      summary:
        'Outcome analytics per group of runs (`by` role, adapter, model, effort, variant; default role,model,effort) started `since` (default 30d): tasks done and escalated with reasons, runs by outcome, first-pass approval rate with its 95% interval, mean attempts and cost per done task, p50/p90 run time, human interventions; with `variant`, the variants compared',
      tag: 'status',
      query: StatsQuery,
      responses: { 200: 'the report', 400: ERR[400], 404: 'no such project' },
      handle: async (c, { query }) => send(c, await statsReport(ctx, query)),
    }),
    eventStreamEndpoint(d),
  ];
}
