/**
 * Dependencies people make, through the real CLI: a cycle is refused by
 * `orch task depend`, named, and nothing is added; `orch task add --after`
 * refuses a key that does not exist and makes no task; a blocker that
 * escalates leaves its dependent blocked with the reason in `orch task
 * show`, and `orch run --until-idle` exits (only a person can change that);
 * `orch task depend KEY --on X --remove` lets the blocked task go, and it
 * runs to done. A cancelled blocker leaves its dependent blocked too.
 */
import { describe, expect, it, vi } from 'vitest';
import { DEVELOP_AND_REVIEW, makeProject, type TempProject } from '../helpers/kit.ts';
import { disposeAfterEach } from '../helpers/dispose.ts';
import type { TaskDetail } from '../build-loop/loop-kit.ts';

const own = disposeAfterEach();
// Many CLI calls and two runs per test, on a shared machine.
vi.setConfig({ testTimeout: 150_000 });

/** `orch ARGS`, which must exit 0; its stdout. */
function ok(project: TempProject, args: string[]): string {
  const r = project.orch(args);
  expect(r.code, `orch ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r.stdout;
}

const show = (project: TempProject, key: string): TaskDetail =>
  JSON.parse(ok(project, ['task', 'show', key, '--json'])) as TaskDetail;

/** Adds a task (after `after`, when given); its key. */
function add(project: TempProject, title: string, after?: string): string {
  const out = ok(project, ['task', 'add', title, ...(after ? ['--after', after] : []), '--json']);
  return (JSON.parse(out) as { key: string }).key;
}

describe('dependencies people make', () => {
  it('a cycle is refused with the cycle named, and nothing is added; an unknown key makes no task', () => {
    const project = own(makeProject({ config: { pipeline: DEVELOP_AND_REVIEW } }));
    const a = add(project, 'A');
    const b = add(project, 'B', a);
    const c = add(project, 'C', b);
    expect([a, b, c]).toEqual(['T-1', 'T-2', 'T-3']);
    expect(show(project, 'T-3').depends_on.map((d) => d.key)).toEqual(['T-2']);

    const cycle = project.orch(['task', 'depend', 'T-1', '--on', 'T-3']);
    expect(cycle.code).toBe(2);
    expect(cycle.stderr).toContain(
      'T-1 → T-3 → T-2 → T-1 would be a dependency cycle (each task waits for the next)',
    );
    const self = project.orch(['task', 'depend', 'T-2', '--on', 'T-2']);
    expect(self.code).toBe(2);
    expect(self.stderr).toContain('T-2 → T-2 would be a dependency cycle');
    // Nothing was added by either.
    expect(show(project, 'T-1').depends_on).toEqual([]);
    expect(show(project, 'T-2').depends_on.map((d) => d.key)).toEqual(['T-1']);

    // A new task has no dependents, so `--after` cannot close a cycle; a key that does not exist is refused.
    const unknown = project.orch(['task', 'add', 'D', '--after', 'T-1,T-9']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('T-9');
    expect(JSON.parse(ok(project, ['task', 'list', '--json'])) as unknown[]).toHaveLength(3);
  });

  it('a cancelled blocker leaves its dependent blocked, saying so, and the run ends with no agent started', () => {
    const project = own(makeProject({ config: { pipeline: DEVELOP_AND_REVIEW } }));
    const blocker = add(project, 'Blocker');
    const dependent = add(project, 'Dependent', blocker);
    ok(project, ['task', 'cancel', blocker]);
    // A finished task waits for nothing: it cannot be given a blocker (and so close a false cycle).
    const late = project.orch(['task', 'depend', blocker, '--on', dependent]);
    expect(late.code).toBe(1);
    expect(late.stderr).toContain(`${blocker} is cancelled: a finished task waits for nothing`);
    const run = project.orch(['run', '--until-idle'], { timeoutMs: 90_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(show(project, dependent)).toMatchObject({
      status: 'blocked',
      status_detail: `blocked by ${blocker} (cancelled)`,
      runs: [],
    });
  });

  it('an escalated blocker leaves its dependent blocked, saying why; removing the dependency lets it go', () => {
    const project = own(
      makeProject({
        config: { pipeline: DEVELOP_AND_REVIEW, budget: { max_attempts: 1 } },
        // The blocker's reviewer rejects it: with one attempt, it escalates.
        script: {
          tasks: [
            {
              match: { title: 'Blocker' },
              roles: { reviewer: { default: [{ verdict: 'rejected', comments: 'not like this' }] } },
            },
          ],
        },
      }),
    );
    const blocker = add(project, 'Blocker');
    const dependent = add(project, 'Dependent', blocker);

    // Nothing orch polls can change an escalated blocker: the run ends.
    const first = project.orch(['run', '--until-idle'], { timeoutMs: 90_000 });
    expect(first.code, first.stderr).toBe(0);
    expect(show(project, blocker)).toMatchObject({ status: 'escalated', terminal_reason: 'max_attempts' });
    const waiting = show(project, dependent);
    expect(waiting).toMatchObject({
      stage: 'created',
      status: 'blocked',
      status_detail: `blocked by ${blocker} (escalated: max_attempts)`,
      runs: [],
    });
    const text = ok(project, ['task', 'show', dependent]);
    expect(text).toContain('status blocked');
    expect(text).toContain(`detail: blocked by ${blocker} (escalated: max_attempts)`);
    expect(text).toContain(`depends on: ${blocker}`);

    // A person unlinks it: the dependent is queued again and runs to done on its own.
    ok(project, ['task', 'depend', dependent, '--on', blocker, '--remove']);
    expect(show(project, dependent)).toMatchObject({ status: 'queued', status_detail: null, depends_on: [] });
    const second = project.orch(['run', '--until-idle'], { timeoutMs: 90_000 });
    expect(second.code, second.stderr).toBe(0);
    expect(show(project, dependent)).toMatchObject({ stage: 'done', status: 'done' });
    expect(show(project, blocker).status).toBe('escalated');
  });
});
