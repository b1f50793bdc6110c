/**
 * The order work is taken in, through the real CLI: with one agent at a time, a task added
 * with a higher `--priority` runs first, and a task once started is carried to done before
 * the next one starts (depth first), although every task was queued before any ran.
 */
import { describe, expect, it, vi } from 'vitest';
import { DEVELOP_AND_REVIEW, makeProject } from '../helpers/kit.ts';
import { disposeAfterEach } from '../helpers/dispose.ts';
import { showTask } from '../build-loop/loop-kit.ts';

const own = disposeAfterEach();
vi.setConfig({ testTimeout: 150_000 });

describe('claim order', () => {
  it('takes the higher priority first, then carries each task to done before starting the next', () => {
    const project = own(makeProject({ config: { pipeline: DEVELOP_AND_REVIEW } }));
    const add = (title: string, priority?: number): string => {
      const r = project.orch([
        'task',
        'add',
        title,
        ...(priority === undefined ? [] : ['--priority', String(priority)]),
        '--json',
      ]);
      expect(r.code, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { key: string }).key;
    };
    const keys = [add('first in'), add('second in'), add('later but urgent', 5), add('not now', -1)];
    const run = project.orch(['run', '--until-idle', '-c', '1'], { timeoutMs: 120_000 });
    expect(run.code, run.stderr).toBe(0);

    const tasks = keys.map((key) => showTask(project, key));
    for (const t of tasks) {
      expect(t.stage, `${t.key}: ${t.status_detail}`).toBe('done');
      expect(t.runs.map((r) => r.role)).toEqual(['developer', 'reviewer']);
    }
    // Every run in the order it started, by task: one block per task, in claim order.
    const order = tasks
      .flatMap((t) => t.runs.map((r) => ({ key: t.key, at: r.started_at!, id: r.id })))
      .sort((a, b) => a.at.localeCompare(b.at) || a.id - b.id)
      .map((r) => r.key);
    const [first, second, urgent, notNow] = keys as [string, string, string, string];
    expect(order).toEqual([urgent, urgent, first, first, second, second, notNow, notNow]);
    // Each task was done (landed) before the next one's developer started.
    const byKey = new Map(tasks.map((t) => [t.key, t]));
    const inOrder = [urgent, first, second, notNow].map((k) => byKey.get(k)!);
    for (let i = 1; i < inOrder.length; i += 1) {
      expect(inOrder[i - 1]!.finished_at! <= inOrder[i]!.runs[0]!.started_at!, `${inOrder[i]!.key}`).toBe(
        true,
      );
    }
  });
});
