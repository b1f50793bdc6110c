/** The board: a column per stage, a card per task, moving live; and the form to add a task. */
import { useState } from 'preact/hooks';
import { STAGES } from '../../../src/core/stages.ts';
import type { ProjectJson, TaskSummaryJson } from '../../../src/http/types.ts';
import {
  BOARD_FINISHED_SHOWN,
  BOARD_FINISHED_TASKS,
  BOARD_OPEN_TASKS,
} from '../../../src/http/board-lists.ts';
import { failureText, getAllPages, getPage, postJson } from '../api.ts';
import { useEvents, useJson, useThrottled } from '../hooks.ts';
import { ErrorNote, StatusPill } from '../components/ui.tsx';
import { clock } from '../format.ts';

/** The board's tasks: every open one, and the newest of each finished column (`more`: older ones exist). */
async function boardTasks(): Promise<{ tasks: TaskSummaryJson[]; more: Set<string> }> {
  const [open, ...finished] = await Promise.all([
    getAllPages<TaskSummaryJson>(BOARD_OPEN_TASKS),
    ...BOARD_FINISHED_TASKS.map((path) => getPage<TaskSummaryJson>(path)),
  ]);
  const more = new Set(finished.filter((p) => p.more && p.items[0]).map((p) => p.items[0]!.stage));
  return { tasks: [...open, ...finished.flatMap((p) => p.items)], more };
}

export function Board() {
  // The board shows every task in the pipeline, and the newest finished ones.
  const board = useJson('/api/tasks', boardTasks);
  const tasks = { ...board, data: board.data?.tasks ?? null };
  const projects = useJson<ProjectJson[]>('/api/projects');
  const refresh = useThrottled(tasks.reload, 150);
  useEvents({ logs: 'false' }, (e) => e.event !== 'ready' && refresh());
  const [adding, setAdding] = useState(false);

  const byStage = new Map<string, TaskSummaryJson[]>(STAGES.map((s) => [s, []]));
  for (const t of tasks.data ?? []) (byStage.get(t.stage) ?? byStage.set(t.stage, []).get(t.stage)!).push(t);
  for (const [stage, list] of byStage)
    // Finished columns show the latest first; working columns the oldest first (the queue's order).
    if (stage === 'done' || stage === 'cancelled')
      list.sort((a, b) => b.updated_at.localeCompare(a.updated_at));

  return (
    <main class="page board-page">
      <div class="toolbar">
        <h1>Board</h1>
        <span class="muted">
          {tasks.data ? `${tasks.data.length} task${tasks.data.length === 1 ? '' : 's'}` : ''}
        </span>
        <button class="primary" onClick={() => setAdding(!adding)} aria-expanded={adding}>
          {adding ? 'Close' : 'New task'}
        </button>
      </div>
      {adding && (
        <NewTask
          projects={projects.data ?? []}
          onCreated={() => {
            setAdding(false);
            tasks.reload();
          }}
        />
      )}
      <ErrorNote error={tasks.error} />
      <div class="board" role="list">
        {[...byStage].map(([stage, list]) => (
          <section
            class={`column${list.length ? '' : ' empty'}`}
            data-stage={stage}
            key={stage}
            role="listitem"
          >
            <h2 title={board.data?.more.has(stage) ? `the newest ${BOARD_FINISHED_SHOWN}` : stage}>
              <span class="name">{stage}</span>{' '}
              {list.length > 0 && (
                <span class="count">
                  {list.length}
                  {board.data?.more.has(stage) ? '+' : ''}
                </span>
              )}
            </h2>
            {list.map((t) => (
              <a
                class={`task-card status-${t.status}`}
                href={`#/tasks/${encodeURIComponent(t.key)}`}
                key={t.key}
                data-key={t.key}
              >
                <div class="card-top">
                  <span class="key">{t.key}</span>
                  <StatusPill status={t.status} />
                </div>
                <div class="title">{t.title}</div>
                <div class="meta muted">
                  {t.terminal_reason && t.terminal_reason !== t.status && (
                    <span class="reason">{t.terminal_reason}</span>
                  )}
                  {t.attempt > 0 && <span>attempt {t.attempt}</span>}
                  <span>{clock(t.updated_at)}</span>
                </div>
              </a>
            ))}
          </section>
        ))}
      </div>
    </main>
  );
}

function NewTask(props: { projects: ProjectJson[]; onCreated: (key: string) => void }) {
  const [title, setTitle] = useState('');
  const [description, setDescription] = useState('');
  const [project, setProject] = useState('');
  const [priority, setPriority] = useState('0');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const t = await postJson<TaskSummaryJson>('/api/tasks', {
        title,
        ...(description.trim() ? { description } : {}),
        ...(project ? { project } : {}),
        ...(Number(priority) ? { priority: Number(priority) } : {}),
      });
      props.onCreated(t.key);
    } catch (err) {
      setError(failureText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card new-task" onSubmit={submit} aria-label="New task">
      <label>
        Title
        <input
          name="title"
          value={title}
          onInput={(e) => setTitle(e.currentTarget.value)}
          required
          maxLength={500}
          autoFocus
        />
      </label>
      <label>
        Description
        <textarea
          name="description"
          rows={3}
          value={description}
          onInput={(e) => setDescription(e.currentTarget.value)}
        />
      </label>
      <div class="row">
        {props.projects.length > 1 && (
          <label>
            Project
            <select
              name="project"
              value={project}
              onChange={(e) => setProject(e.currentTarget.value)}
              required
            >
              <option value="">choose…</option>
              {props.projects.map((p) => (
                <option value={p.name} key={p.name}>
                  {p.name}
                </option>
              ))}
            </select>
          </label>
        )}
        <label>
          Priority
          <input
            name="priority"
            type="number"
            value={priority}
            onInput={(e) => setPriority(e.currentTarget.value)}
          />
        </label>
        <button class="primary" type="submit" disabled={busy}>
          {busy ? 'Adding…' : 'Add task'}
        </button>
      </div>
      <ErrorNote error={error} />
    </form>
  );
}
