/**
 * Issue 17, the cases that hold only once the engine uses what the runtime
 * now offers (worktree-files.ts for the ADR, GitRefusal from commitAll, the
 * gate's abort signal and `interrupted` outcome, recoverOrphanedProcesses),
 * written against the behaviour the issue asks for:
 *
 * - an architect that leaves its ADR as a FIFO: the escalation's ledger must
 *   not read it (the event loop would stop: no API, no signals);
 * - a developer that leaves a nested repository or a 10 GB sparse file: the
 *   try fails with git's refusal as the developer's feedback, never as an
 *   internal error;
 * - SIGTERM while a gate that ignores SIGTERM runs: `orch run`, `orch worker`
 *   and `orch serve` end the gate (TERM, KILL after the grace), record it
 *   interrupted, requeue the job without counting the try, and exit 0 before
 *   the shutdown deadline;
 * - SIGKILL of orch during a gate, then a restart: the orphaned gate is ended,
 *   the gate runs once more (not twice side by side), and the tester that had
 *   finished is not run again.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processesIn, type TempProject } from '../helpers/kit.ts';
import type { OrchContext } from '../../src/runtime/context.ts';
import { processGroupAlive } from '../../src/runtime/process/process-group.ts';
import { bwrapStatus } from '../../src/runtime/process/sandbox.ts';
import {
  allSettled,
  ANSWER_WITHIN_MS,
  expectTerminalSafe,
  gatedProject,
  hostileProject,
  endTest,
  pipeline,
  serveUntil,
  startAndReachGate,
} from './hostile-kit.ts';

const bwrap = await bwrapStatus();

let project: TempProject | undefined;
let ctx: OrchContext | undefined;
let marks = '';
afterEach(async () => {
  const left = await endTest(project, ctx, [marks]);
  [project, ctx, marks] = [undefined, undefined, ''];
  expect(left, 'processes left running in the project').toEqual([]);
});

/** A project whose test gate ignores SIGTERM (hostile-kit.ts), with a task added. */
function gated(): { project: TempProject; mark: string } {
  marks = mkdtempSync(join(tmpdir(), 'orch-gate-marks-'));
  const made = gatedProject(marks);
  project = made.project;
  return made;
}

interface Shown {
  status: string;
  stage: string;
  terminal_reason: string | null;
  status_detail: string | null;
  runs: { id: number; role: string; outcome: string | null }[];
  gates: { name: string; passed: boolean }[];
}
const show = (p: TempProject, key: string): Shown => {
  const r = p.orch(['task', 'show', key, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as Shown;
};

describe.each([
  { sandbox: false, name: 'without the sandbox' },
  { sandbox: true, name: bwrap.ok ? 'in the sandbox' : `in the sandbox (skipped: ${bwrap.error})` },
])('an ADR left as a FIFO, $name', ({ sandbox }) => {
  it.skipIf(sandbox && !bwrap.ok)(
    'the design is rejected naming the FIFO, and orch answers, stops on SIGTERM and leaves nothing',
    async () => {
      const p = (project = hostileProject({
        sandbox,
        config: { pipeline: pipeline(['analysis', 'architecture']) },
      }));
      expect(p.orch(['task', 'add', 'fifo-adr']).code).toBe(0);
      const served = await serveUntil(p, (get) => allSettled(get, 1), { timeoutMs: 180_000 });
      expect(served.unanswered, `/api/status went unanswered for ${ANSWER_WITHIN_MS} ms`).toEqual([]);
      expect(served.code, served.stderr).toBe(0);
      expect(served.stderr).not.toContain('event loop was blocked');
      const task = show(p, 'T-1');
      expect(task).toMatchObject({ status: 'escalated', terminal_reason: 'design_rejected' });
      expect(task.status_detail).toContain(
        'docs/tasks/T-1/adr.md is a FIFO (named pipe), not a regular file',
      );
      // The escalation wrote its packet and ledger regardless.
      const artifacts = join(p.dir, '.orch', 'artifacts', 'T-1');
      expect(readFileSync(join(artifacts, 'terminal-packet.md'), 'utf8')).toContain('design_rejected');
      expect(processesIn(p.dir)).toEqual([]);
    },
    240_000,
  );
});

describe('what git refuses to commit', () => {
  it('a nested repository and a 10 GB sparse file fail the try with the refusal as the developer feedback, not an internal error', async () => {
    const p = (project = hostileProject({ sandbox: false, config: { pipeline: pipeline([]) } }));
    for (const title of ['nested', 'sparse']) expect(p.orch(['task', 'add', title]).code).toBe(0);
    const served = await serveUntil(p, (get) => allSettled(get, 2), { timeoutMs: 240_000 });
    expect(served.code, served.stderr).toBe(0);
    expectTerminalSafe('orch serve stdout', served.stdout);
    const cases: [string, string][] = [
      ['T-1', 'vendor/lib/ is a git repository of its own'],
      ['T-2', 'data.bin is 10737418240 bytes'],
    ];
    for (const [key, refusal] of cases) {
      const task = show(p, key);
      expect(task.status, key).toBe('escalated');
      expect(task.terminal_reason, `${key}: ${task.status_detail}`).not.toBe('internal_error');
      expect(`${task.status_detail}`).toContain(refusal);
      // The developer was told why its work could not be committed, in its next prompt.
      const logs = join(p.dir, '.orch', 'logs', key);
      const prompts = readdirSync(logs)
        .filter((f) => f.endsWith('-developer.prompt.md'))
        .sort((a, b) => parseInt(a) - parseInt(b));
      expect(prompts.length, key).toBeGreaterThan(1);
      expect(readFileSync(join(logs, prompts.at(-1)!), 'utf8')).toContain(refusal);
      expect(task.runs.filter((r) => r.role === 'developer').every((r) => r.outcome !== 'running')).toBe(
        true,
      );
    }
    expect(processesIn(p.dir)).toEqual([]);
  }, 300_000);
});

describe.each([{ command: ['run'] }, { command: ['worker'] }, { command: ['serve', '--port', '0'] }])(
  'SIGTERM during a gate that ignores SIGTERM: orch $command.0',
  ({ command }) => {
    it('ends the gate after the kill grace, records it interrupted, requeues the job uncounted, and exits 0', async () => {
      const { project: p, mark } = gated();
      ctx = await p.context();
      const { child, exited, gate, output } = await startAndReachGate(p, command, ctx, mark);
      child.kill('SIGTERM');
      const code = await exited;
      // 0: a clean stop. The shutdown deadline (kill grace + margin) would have exited 1.
      expect(code, output()).toBe(0);
      expect(processGroupAlive(gate.pgid)).toBe(false);
      expect(processesIn(p.dir)).toEqual([]);
      const rows = await ctx!.store.processes.ofTask(gate.task_id!);
      expect(rows.find((r) => r.id === gate.id)).toMatchObject({
        status: 'finished',
        outcome: 'interrupted',
      });
      const task = show(p, 'T-1');
      expect(task).toMatchObject({ stage: 'testing', status: 'queued' });
      // An interrupted gate decided nothing: no failed result, and the try does not count.
      expect(task.gates.filter((g) => g.name === 'check_ci_green')).toEqual([]);
      const job = await ctx!.store.db
        .selectFrom('jobs')
        .selectAll()
        .where('task_id', '=', gate.task_id!)
        .where('stage', '=', 'testing')
        .executeTakeFirstOrThrow();
      expect(job).toMatchObject({ status: 'queued', attempts: 0 });
      expectTerminalSafe('orch output', output());
    }, 240_000);
  },
);

describe('SIGKILL during a gate, then a restart', () => {
  it('ends the orphaned gate, runs the gate once more, and does not run the finished tester again', async () => {
    const { project: p, mark } = gated();
    ctx = await p.context();
    const { child, exited, gate } = await startAndReachGate(p, ['run'], ctx, mark);
    child.kill('SIGKILL');
    await exited;
    // The gate's group outlives the orch that started it…
    expect(processGroupAlive(gate.pgid)).toBe(true);
    const restarted = await p.orchAsync(['run', '--until-idle'], { timeoutMs: 180_000 });
    expect(restarted.code, restarted.stderr).toBe(0);
    // …until the restart ends it, before running the gate again.
    expect(processGroupAlive(gate.pgid)).toBe(false);
    expect(readFileSync(mark, 'utf8')).toBe('first\nagain\n');
    const task = show(p, 'T-1');
    expect(task.status).toBe('done');
    const testers = task.runs.filter((r) => r.role === 'tester');
    expect(testers.map((r) => r.outcome)).toEqual(['ok']);
    const rows = await ctx!.store.processes.ofTask(gate.task_id!);
    expect(rows.map((r) => r.outcome)).toEqual(['interrupted', 'ok']);
    expect(processesIn(p.dir)).toEqual([]);
  }, 300_000);
});
