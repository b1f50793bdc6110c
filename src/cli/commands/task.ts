/** `orch task list|show` as text or JSON; add, cancel and retry live in runtime/tasks.ts. */
import type { OrchContext } from '../../runtime/context.ts';
import { taskDetail, taskSummary } from '../../runtime/views.ts';
import { json, table, duration, usd, label } from '../../core/format.ts';
import { elapsedMs, TASK_STATUSES, type TaskStatus } from '../../core/stages.ts';
import { OrchError } from '../../errors.ts';
import { pickProject } from '../../runtime/tasks.ts';
import { trackerMessage } from '../../notify/outbox.ts';
import type { Locale } from '../../notify/tracker.ts';
import { taskDependencies } from '../../runtime/dependencies.ts';
import type { LinkedTask } from '../../store/dependency-store.ts';
import type { Task } from '../../store/schema.ts';

/** How many tasks `orch task list` shows unless told: the newest. */
export const TASK_LIST_LIMIT = 100;

/**
 * The newest `limit` tasks (default {@link TASK_LIST_LIMIT}; `all`: every one), oldest first, so the
 * newest is printed last; one more is read to know whether older ones were left out. Reading
 * newest first by id keeps it as fast at 100 k tasks as at 1 k.
 */
export async function listTasksText(
  ctx: OrchContext,
  filter: { project?: string; status?: string; limit?: number; all?: boolean },
  asJson: boolean,
): Promise<string> {
  const projects = await ctx.store.listProjects();
  const byId = new Map(projects.map((p) => [p.id, p]));
  const project = filter.project ? await pickProject(ctx, filter.project) : undefined;
  const status = filter.status;
  if (status !== undefined && !(TASK_STATUSES as readonly string[]).includes(status))
    throw new OrchError(
      'invalid_argument',
      `--status must be one of ${TASK_STATUSES.join(', ')} (got ${JSON.stringify(status)})`,
    );
  const limit = filter.all ? undefined : (filter.limit ?? TASK_LIST_LIMIT);
  const rows = await ctx.store.listTasks({
    ...(project ? { projectId: project.id } : {}),
    ...(status ? { status: status as TaskStatus } : {}),
    ...(limit !== undefined ? { newest: true, limit: limit + 1 } : {}),
  });
  const more = limit !== undefined && rows.length > limit;
  const tasks = limit !== undefined ? rows.slice(0, limit).reverse() : rows;
  if (asJson) return json(tasks.map((t) => taskSummary(t, byId.get(t.project_id))));
  if (!tasks.length) return 'no tasks';
  const note = more ? `\n(the newest ${limit}: --limit N or --all for more)` : '';
  return (
    table(
      ['KEY', 'STAGE', 'STATUS', 'ATTEMPT', 'TITLE'],
      tasks.map((t) => [
        t.key,
        t.stage,
        t.status + (t.terminal_reason ? ` (${t.terminal_reason})` : ''),
        t.attempt || '–',
        t.title,
      ]),
    ) + note
  );
}

export async function showTaskText(ctx: OrchContext, key: string, asJson: boolean): Promise<string> {
  const detail = await taskDetail(ctx, await ctx.store.getTaskByKey(key));
  if (asJson) return json(detail);
  const lines = [
    `${detail.key}  ${detail.title}`,
    `project ${detail.project}  stage ${detail.stage}  status ${detail.status}${detail.terminal_reason ? ` (${detail.terminal_reason})` : ''}  branch ${detail.branch}`,
  ];
  if (detail.status_detail) lines.push(`detail: ${detail.status_detail}`);
  if (detail.depends_on.length) lines.push(`depends on: ${detail.depends_on.map(linked).join(', ')}`);
  if (detail.blocks.length) lines.push(`blocks: ${detail.blocks.map(linked).join(', ')}`);
  lines.push(
    `total: ${detail.totals.input_tokens + detail.totals.output_tokens} tokens, ${usd(detail.totals.cost_usd)}`,
    '',
  );
  if (detail.runs.length) {
    lines.push(
      table(
        ['RUN', 'ROLE', 'STAGE', 'MODEL · EFFORT', 'OUTCOME', 'EXIT', 'DURATION', 'TOKENS', 'COST'],
        detail.runs.map((r) => [
          r.id,
          r.role,
          r.stage ?? '–',
          `${label(r.model, r.effort)}${r.variant ? ` (${r.variant})` : ''}`,
          r.outcome ?? r.status,
          r.exit_code ?? '–',
          duration(elapsedMs(r)),
          (r.input_tokens ?? 0) + (r.output_tokens ?? 0),
          usd(r.cost_usd),
        ]),
      ),
      '',
    );
  }
  if (detail.attempts.length) {
    lines.push(
      table(
        ['ATTEMPT', 'DIFF', 'VERDICT', 'TOKENS', 'COST', 'REASON'],
        detail.attempts.map((a) => [
          a.n,
          a.diff_hash.slice(0, 12),
          a.verdict,
          a.input_tokens + a.output_tokens,
          usd(a.cost_usd),
          a.reason ?? '',
        ]),
      ),
      '',
    );
  }
  for (const g of detail.gates) lines.push(`gate ${g.name} (${g.stage}): ${g.passed ? 'passed' : 'FAILED'}`);
  for (const h of detail.hook_failures)
    lines.push(
      `hook ${h.hook} (${h.stage ?? '–'}) FAILED at ${h.created_at}${h.fatal ? ', failing the try' : ', not fatal'}: ${h.summary}`,
    );
  // A person's words, shown as text: out() neutralises anything a terminal would act on.
  for (const m of detail.messages)
    lines.push(
      `message ${m.id} from ${m.by} at ${m.created_at} (${m.delivered_run_id === null ? 'for the next run' : `read by run ${m.delivered_run_id}`}):`,
      ...m.text.split('\n').map((line) => `  ${line}`),
    );
  if (detail.artifacts.terminal_packet) lines.push(`terminal packet: ${detail.artifacts.terminal_packet}`);
  if (detail.artifacts.ledger) lines.push(`attempt ledger: ${detail.artifacts.ledger}`);
  return lines.join('\n').trimEnd();
}

/** A task at the other end of a dependency: its key and where it stands. */
const linked = (t: LinkedTask): string =>
  `${t.key} (${t.stage === null ? 'not imported yet' : `${t.stage}, ${t.status}${t.terminal_reason ? `: ${t.terminal_reason}` : ''}`})`;

/** `orch task add TITLE --after …` and `orch task depend KEY --on …`: the task and what it now waits for. */
export async function dependencyText(ctx: OrchContext, task: Task, asJson: boolean): Promise<string> {
  const deps = await taskDependencies(ctx, task);
  if (asJson) return json({ ...taskSummary(task, await ctx.store.getProject(task.project_id)), ...deps });
  const waits = deps.depends_on.length ? deps.depends_on.map(linked).join(', ') : 'nothing';
  return `${task.key}  ${task.title}
waits for: ${waits}`;
}

/** `orch task show KEY --tracker`: the tracker message chat channels show, in the project's locale unless told. */
export async function trackerText(
  ctx: OrchContext,
  key: string,
  locale: Locale | undefined,
  asJson: boolean,
): Promise<string> {
  const task = await ctx.store.getTaskByKey(key);
  const rt = await ctx.projectRuntime(task.project_id);
  const chosen = locale ?? rt.raw.locale;
  const live = ctx.settings.trackerLiveStatus ? { env: ctx.env } : undefined;
  const text = await trackerMessage(ctx.store, task.id, rt, chosen, live);
  return asJson ? json({ key: task.key, locale: chosen, text }) : text;
}
