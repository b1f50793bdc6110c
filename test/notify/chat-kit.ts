/**
 * Helpers for the chat channel tests: a delivery as the outbox hands it to a
 * channel, tools that keep the channel's ref in memory (what the outbox keeps
 * in `channel_refs`), the scripted-agent scripts the end-to-end runs use, and
 * what those runs check of every chat service.
 */
import { expect } from 'vitest';
import { NOTIFY_EVENTS } from '../../src/trackers/config.ts';
import type { Delivery, DeliveryTools } from '../../src/notify/channel.ts';
import type { Locale } from '../../src/notify/tracker.ts';
import type { OutboxItem, Project, Task } from '../../src/store/schema.ts';
import type { TempProject } from '../helpers/kit.ts';

export const ALL_EVENTS: ReadonlySet<string> = new Set(NOTIFY_EVENTS);

export function taskRow(t: Partial<Task> = {}): Task {
  return {
    id: 1,
    project_id: 1,
    key: 'T-1',
    title: 'Add <parser> & "printer"',
    description: '',
    priority: 0,
    labels: '[]',
    stage: 'development',
    status: 'running',
    terminal_reason: null,
    status_detail: null,
    version: 1,
    attempt: 1,
    feedback: null,
    budget_json: null,
    loop_run_id: null,
    loops: '{}',
    created_at: '2026-06-14T09:00:00.000Z',
    updated_at: '2026-06-14T09:00:00.000Z',
    started_at: '2026-06-14T09:00:00.000Z',
    finished_at: null,
    external_source: null,
    external_id: null,
    external_key: null,
    external_url: null,
    external_updated_at: null,
    ...t,
  };
}

export const escalatedTask = (finishedAt = '2026-06-14T10:00:00.000Z'): Task =>
  taskRow({
    stage: 'review',
    status: 'escalated',
    terminal_reason: 'oscillation_detected',
    status_detail: 'attempt 3 returned to the diff of attempt 1',
    finished_at: finishedAt,
  });

const project: Project = {
  id: 1,
  name: 'sample',
  root_path: '/nowhere',
  base_branch: 'main',
  key_prefix: 'T',
  next_task_number: 2,
  created_at: '2026-06-14T09:00:00.000Z',
  remote_url: null,
};

let nextItem = 1;
/** A delivery of `kind` for `task`, as the outbox passes it. */
export function delivery(kind: string, task: Task): Delivery {
  const id = nextItem++;
  return {
    item: {
      id,
      channel: 'sample/team',
      event_id: id,
      task_id: task.id,
      kind,
      payload: '{}',
      status: 'pending',
      attempts: 0,
      next_attempt_at: '2026-06-14T09:00:00.000Z',
      lease_owner: 'test',
      lease_expires_at: null,
      last_error: null,
      created_at: '2026-06-14T09:00:00.000Z',
      sent_at: null,
    },
    payload: {},
    task,
    project,
  };
}

/** Delivery tools whose message and packet the test sets, with the ref kept in memory. */
export class MemoryTools implements DeliveryTools {
  text = 'T-1 — tracker';
  packet =
    '# Terminal packet: T-1\n\n- **Reason:** `oscillation_detected`\n\n## To continue\n\norch task retry T-1';
  ref: unknown = null;
  taskUrl: string | null = 'https://tracker.example/T-1';
  locale: Locale = 'en';
  lines: string[] = [];
  log = {
    debug: (m: string) => void this.lines.push(m),
    info: (m: string) => void this.lines.push(m),
    warn: (m: string) => void this.lines.push(m),
    error: (m: string) => void this.lines.push(m),
  };
  message = () => Promise.resolve(this.text);
  terminalPacket = () => Promise.resolve(this.packet);
  getRef = <T>() => Promise.resolve(this.ref as T | null);
  setRef = (ref: unknown) => {
    this.ref = JSON.parse(JSON.stringify(ref)) as unknown;
    return Promise.resolve();
  };
}

/** What a delivery threw, or null. */
export async function thrown(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  if (!err) throw new Error('expected the delivery to fail');
  return err as Error & Record<string, unknown>;
}

// ------------------------------------------------------------- scripted agent

const write = (path: string, content: string) => ({ write: { path, content } });

/**
 * Scripts for the end-to-end runs: a task titled `oscillation …` writes A, B,
 * A and is rejected each time (escalated as oscillation_detected); a task
 * titled `paced …` pauses in review, testing and deploy so the outbox sees
 * the task between stages.
 */
export const chatScript = {
  tasks: [
    {
      match: { title: 'oscillation' },
      roles: {
        developer: {
          attempts: {
            1: [write('src/round.js', 'export const round = (x) => Math.floor(x + 0.5);\n')],
            2: [write('src/round.js', 'export const round = (x) => Math.round(x);\n')],
            3: [write('src/round.js', 'export const round = (x) => Math.floor(x + 0.5);\n')],
          },
        },
        reviewer: { default: [{ verdict: 'rejected', comments: 'Use the other rounding mode.' }] },
      },
    },
    {
      match: { title: 'paced' },
      roles: {
        reviewer: { default: [{ sleep_ms: 400 }, { verdict: 'approved', comments: 'fine' }] },
        tester: { default: [{ sleep_ms: 400 }, { result: 'tests passed (scripted)' }] },
        deployer: { default: [{ sleep_ms: 400 }, { result: 'deployed (scripted)' }] },
      },
    },
  ],
};

/** The icons of a tracker message's stage lines, in order (header and totals left out). */
export const stageIcons = (text: string): string[] =>
  text
    .split('\n')
    .slice(1, -1)
    .map((l) => l.split(' ')[0]!);

// ------------------------------------------------------------------ orch run

/** `orch task add`, which must succeed; answers the task's key. */
export function addTask(project: TempProject, title: string): string {
  const r = project.orch(['task', 'add', title, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { key: string }).key;
}

/** `orch run --until-idle` with the bot's token in `env`: it exits 0 and never prints the token. */
export async function runUntilIdle(
  project: TempProject,
  env: Record<string, string>,
  token: string,
  timeoutMs: number,
): Promise<void> {
  const r = await project.orchAsync(['run', '--until-idle'], { env, timeoutMs });
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0);
  expect(`${r.stdout}${r.stderr}`).not.toContain(token);
}

/** A fake answered a call 429, and held the channel: the next call came no sooner than `retryAfterMs`. */
export function expectHeldAfter429(calls: { status: number; at: number }[], retryAfterMs: number): void {
  const limited = calls.findIndex((c) => c.status === 429);
  expect(limited, 'the fake answered 429').toBeGreaterThanOrEqual(0);
  const next = calls[limited + 1];
  expect(next, 'a call after the 429').toBeDefined();
  expect(next!.at - calls[limited]!.at).toBeGreaterThanOrEqual(retryAfterMs);
}

/** The tracker message of a task: the one message whose first line starts with its key. */
export function trackerMessage<M extends { text: string }>(messages: M[], key: string): M {
  const found = messages.filter((m) => m.text.startsWith(`${key} — `));
  expect(found, `one tracker message for ${key}`).toHaveLength(1);
  return found[0]!;
}

/** The two tasks of a chat end-to-end run (see chatScript): one that runs to done, one that escalates. */
export function addChatTasks(project: TempProject): { done: string; stuck: string } {
  return { done: addTask(project, 'paced parser'), stuck: addTask(project, 'oscillation test') };
}

/** The words of each locale the run's checks look for. */
const WORDS: Record<Locale, { development: string; total: string; escalated: string }> = {
  en: { development: 'Development', total: 'Total', escalated: 'escalated' },
  ru: { development: 'Разработка', total: 'Итого', escalated: 'эскалация' },
};

/**
 * What a chat shows after `orch run` of the addChatTasks tasks, in the
 * project's `locale`: the done task's message created once, edited as the
 * task moved and never backwards, every stage done with its figures, and the
 * totals; the stuck task's stopped at review; one escalation message, with
 * the reason and the command to continue; and `orch task show --tracker`
 * printing what the chat shows. Answers the messages, for each service's own checks.
 */
export function expectChatShowsRun<M extends { text: string; history: string[] }>(
  project: TempProject,
  messages: M[],
  tasks: { done: string; stuck: string },
  locale: Locale,
): { doneMsg: M; stuckMsg: M; escalation: M } {
  const words = WORDS[locale];
  const doneMsg = trackerMessage(messages, tasks.done);
  expect(doneMsg.history.length).toBeGreaterThanOrEqual(2);
  const doneCounts = doneMsg.history.map((t) => stageIcons(t).filter((i) => i === '✅').length);
  expect(doneCounts).toEqual([...doneCounts].sort((a, b) => a - b));
  expect(stageIcons(doneMsg.text)).toEqual(Array(8).fill('✅'));
  const developmentLine = `^✅ ${words.development} — \\S+ · \\$\\d+\\.\\d\\d · opus-4-8 · xhigh$`;
  expect(doneMsg.text).toMatch(new RegExp(developmentLine, 'm'));
  expect(doneMsg.text.split('\n').at(-1)).toMatch(new RegExp(`^${words.total}: `));

  // The escalated task: stopped at review, the stages before it done, the rest pending.
  const stuckMsg = trackerMessage(messages, tasks.stuck);
  expect(stageIcons(stuckMsg.text)).toEqual(['✅', '✅', '✅', '❌', '▫️', '▫️', '▫️', '▫️']);
  const escalations = messages.filter((m) => m.text.startsWith('⚠️'));
  expect(escalations).toHaveLength(1);
  const escalation = escalations[0]!;
  expect(escalation.text).toContain(
    `⚠️ ${tasks.stuck} — oscillation test\n${words.escalated}: oscillation_detected`,
  );
  expect(escalation.text).toContain(`orch task retry ${tasks.stuck}`);

  // `orch task show --tracker` defaults to the project's locale and prints what the chat shows.
  const shown = project.orch(['task', 'show', tasks.done, '--tracker']);
  expect(shown.code, shown.stderr).toBe(0);
  expect(shown.stdout.trimEnd()).toBe(doneMsg.text);
  return { doneMsg, stuckMsg, escalation };
}

/** Every delivery of the run was sent: none left pending, none given up. Answers them. */
export async function expectAllSent(project: TempProject): Promise<OutboxItem[]> {
  const ctx = await project.context();
  try {
    const items = await ctx.store.outbox.items();
    expect(items.length).toBeGreaterThan(0);
    expect(items.filter((i) => i.status !== 'sent')).toEqual([]);
    return items;
  } finally {
    await ctx.close();
  }
}
