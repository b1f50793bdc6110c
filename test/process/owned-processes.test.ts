/**
 * Processes orch starts besides agents — gates' commands here — run through
 * the one runner: an aborted gate is ended with the kill ladder and reports
 * interrupted (not failed), a timed-out one is ended the same way, each is
 * recorded in the store from spawn to end; every live group is in the
 * registry for a second signal's killAllNow; and recoverOrphanedProcesses ends
 * what a dead orch left running, but never a group whose id was reused.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { WORKER_HOST } from '../../src/runtime/worker-id.ts';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeProject, waitFor, type TempProject } from '../helpers/kit.ts';
import type { OrchContext, ProjectRuntime } from '../../src/runtime/context.ts';
import type { Task } from '../../src/store/schema.ts';
import { runGate } from '../../src/runtime/gates.ts';
import { runOwnedProcess } from '../../src/runtime/owned-process.ts';
import { killAllNow, liveGroups } from '../../src/runtime/process/registry.ts';
import {
  killProcessGroup,
  processGroupAlive,
  processIdentity,
} from '../../src/runtime/process/process-group.ts';
import { recoverOrphanedProcesses } from '../../src/runtime/process-recovery.ts';
import { createLogger } from '../../src/runtime/logger.ts';

/** A command whose whole group ignores SIGTERM: only SIGKILL ends it. */
const IGNORES_TERM = ['sh', '-c', "trap '' TERM; echo started; sleep 300 & wait"];

let project: TempProject;
let ctx: OrchContext;
let rt: ProjectRuntime;
let task: Task;
let worktree = '';
/** Groups a test started outside the runner (left alive on purpose), killed after it. */
let strays: number[] = [];
const warnings: string[] = [];
const log = createLogger({ write: (line) => warnings.push(line), json: false });

beforeEach(async () => {
  project = makeProject({ config: { timeouts: { agent_kill_grace_seconds: 1 } } });
  ctx = await project.context();
  const [p] = await ctx.store.listProjects();
  rt = await ctx.projectRuntime(p!.id);
  task = await ctx.store.createTask({ projectId: p!.id, title: 'gated' });
  worktree = mkdtempSync(join(tmpdir(), 'orch-owned-'));
  strays = [];
  warnings.length = 0;
});

afterEach(async () => {
  const left = liveGroups()
    .map((g) => g.pgid)
    .filter((pgid) => processGroupAlive(pgid));
  const strayGroups = strays.filter((pgid) => processGroupAlive(pgid));
  await Promise.all([...left, ...strayGroups].map((pgid) => killProcessGroup(pgid, 0)));
  await ctx.close();
  project.cleanup();
  rmSync(worktree, { recursive: true, force: true });
  expect(left, 'process groups left running').toEqual([]);
});

const gate = (name: string, command: string[], timeoutS = 600) => ({ name, command, timeout_s: timeoutS });
const facts = { approved: false, lastVerdict: null };

describe('gates through the runner', () => {
  it('a passing command gate is recorded as a process and as a result, with its output', async () => {
    const outcome = await runGate(
      ctx,
      rt,
      task,
      'testing',
      gate('unit', ['sh', '-c', 'echo all green']),
      worktree,
      facts,
      {
        workerId: 'w-1',
        jobId: 3,
      },
    );
    expect(outcome).toMatchObject({ name: 'unit', passed: true });
    expect(outcome.output).toContain('all green');
    expect(await ctx.store.processes.ofTask(task.id)).toEqual([
      expect.objectContaining({
        kind: 'gate',
        name: 'unit',
        status: 'finished',
        outcome: 'ok',
        job_id: 3,
        worker_id: 'w-1',
      }),
    ]);
    expect(await ctx.store.gatesOfTask(task.id)).toEqual([
      expect.objectContaining({ name: 'unit', passed: 1 }),
    ]);
    expect(liveGroups()).toEqual([]);
  });

  it('an aborted gate whose processes ignore SIGTERM is killed after the grace and reports interrupted, not failed', async () => {
    const controller = new AbortController();
    const running = runGate(ctx, rt, task, 'testing', gate('slow', IGNORES_TERM), worktree, facts, {
      signal: controller.signal,
    });
    const [row] = await waitFor(
      async () => {
        const rows = (await ctx.store.processes.running()).filter((r) => r.name === 'slow');
        return rows.length ? rows : null;
      },
      20_000,
      'the gate to be recorded',
    );
    expect(liveGroups().map((g) => g.pgid)).toContain(row!.pgid);
    expect(liveGroups().find((g) => g.pgid === row!.pgid)?.label).toBe(`gate slow of ${task.key}`);
    controller.abort('shutdown');
    const outcome = await running;
    expect(outcome).toMatchObject({ name: 'slow', passed: false, interrupted: true });
    expect(outcome.output).toContain('interrupted: shutdown');
    expect(processGroupAlive(row!.pgid)).toBe(false);
    expect((await ctx.store.processes.ofTask(task.id))[0]).toMatchObject({
      status: 'finished',
      outcome: 'interrupted',
      exit_code: -9,
    });
    // An interrupted gate decided nothing: no result is stored for it.
    expect(await ctx.store.gatesOfTask(task.id)).toEqual([]);
  });

  it('a gate past its timeout is ended the same way and fails, saying so', async () => {
    const outcome = await runGate(ctx, rt, task, 'testing', gate('hangs', IGNORES_TERM, 1), worktree, facts);
    expect(outcome).toMatchObject({ name: 'hangs', passed: false });
    expect(outcome.interrupted).toBeUndefined();
    expect(outcome.output).toContain('started');
    expect(outcome.output).toContain('[orch] gate timed out after 1s');
    expect((await ctx.store.processes.ofTask(task.id))[0]).toMatchObject({ outcome: 'timeout' });
    expect(liveGroups()).toEqual([]);
  });

  it('a gate whose signal fired before it started runs nothing and is interrupted', async () => {
    const outcome = await runGate(
      ctx,
      rt,
      task,
      'testing',
      gate('never', ['sh', '-c', 'exit 0']),
      worktree,
      facts,
      {
        signal: AbortSignal.abort('shutdown'),
      },
    );
    expect(outcome).toMatchObject({ passed: false, interrupted: true });
    expect(await ctx.store.processes.ofTask(task.id)).toEqual([]);
  });
});

describe('killAllNow', () => {
  it('SIGKILLs every live group at once, SIGTERM-ignoring ones included, and forgets them', async () => {
    const runs = ['one', 'two'].map((name) =>
      runOwnedProcess({
        ctx,
        kind: 'hook',
        name,
        taskId: task.id,
        jobId: null,
        spec: {
          argv: IGNORES_TERM,
          cwd: worktree,
          env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
          timeoutS: 600,
          killGraceS: 600,
          stallTimeoutS: 0,
          resultGraceMs: 0,
          drainMs: 100,
          maxLineBytes: 1024,
        },
      }),
    );
    const groups = await waitFor(
      () => (liveGroups().length === 2 ? liveGroups() : null),
      20_000,
      'two live groups',
    );
    const killed = killAllNow();
    expect(killed.map((g) => g.pgid).sort()).toEqual(groups.map((g) => g.pgid).sort());
    expect(liveGroups()).toEqual([]);
    const outcomes = await Promise.all(runs);
    for (const o of outcomes) expect(o).toMatchObject({ signal: 'SIGKILL', exitCode: -9 });
    for (const g of groups) expect(processGroupAlive(g.pgid)).toBe(false);
  });
});

describe('recoverOrphanedProcesses', () => {
  /** A pid on this host that no process has any more. */
  function deadPid(): number {
    const child = spawnSync('sh', ['-c', 'echo $$']);
    return Number(child.stdout.toString().trim());
  }

  /** A detached group ignoring SIGTERM, as a gate of a SIGKILLed orch would be left. */
  async function orphanGroup(): Promise<number> {
    const child = spawn(IGNORES_TERM[0]!, IGNORES_TERM.slice(1), { detached: true, stdio: 'ignore' });
    child.unref();
    const pgid = child.pid!;
    strays.push(pgid);
    await waitFor(() => processGroupAlive(pgid), 10_000, 'the orphan to start');
    return pgid;
  }

  const record = (pgid: number, workerId: string, identity: string | null, name = 'check_ci_green') =>
    ctx.store.processes.start({
      taskId: task.id,
      jobId: 1,
      kind: 'gate',
      name,
      pid: pgid,
      pgid,
      identity,
      workerId,
    });

  it('ends the groups a dead orch left running and marks them interrupted; leaves a live owner and a reused pgid alone', async () => {
    const dead = `${WORKER_HOST}:${deadPid()}:gone`;
    const orphan = await orphanGroup();
    const reused = await orphanGroup();
    const alive = await orphanGroup();
    const orphanRow = await record(orphan, dead, processIdentity(orphan));
    // Recorded with another identity: the recorded process ended and its pid went to this one.
    const reusedRow = await record(reused, dead, 'another-boot:1', 'reused');
    // Owned by a process that lives (this one): not ours to end.
    const aliveRow = await record(
      alive,
      `${WORKER_HOST}:${process.pid}:mine`,
      processIdentity(alive),
      'alive',
    );
    // Owned by another host: never signalled from here.
    await record(alive, `elsewhere.example:${deadPid()}:x`, null, 'remote');

    const recovered = await recoverOrphanedProcesses(ctx, { log, killGraceS: 1 });

    expect(recovered.map((r) => [r.id, r.killed]).sort()).toEqual(
      [
        [orphanRow, true],
        [reusedRow, false],
      ].sort(),
    );
    expect(processGroupAlive(orphan)).toBe(false);
    expect(processGroupAlive(reused)).toBe(true);
    expect(processGroupAlive(alive)).toBe(true);
    const rows = await ctx.store.processes.ofTask(task.id);
    expect(rows.find((r) => r.id === orphanRow)).toMatchObject({
      status: 'finished',
      outcome: 'interrupted',
      exit_code: -9,
    });
    expect(rows.find((r) => r.id === reusedRow)).toMatchObject({
      status: 'finished',
      outcome: 'interrupted',
      exit_code: null,
    });
    expect((await ctx.store.processes.running()).map((r) => r.name).sort()).toEqual(['alive', 'remote']);
    expect(rows.find((r) => r.id === aliveRow)?.status).toBe('running');
    expect(warnings.join('\n')).toContain(
      `gate check_ci_green (process group ${orphan}) finalized as interrupted`,
    );
    // Called again (another worker's reaper, a second start), it finds nothing more to do.
    expect(await recoverOrphanedProcesses(ctx, { log, killGraceS: 1 })).toEqual([]);
  });
});
