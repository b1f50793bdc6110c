/**
 * The reaper under a real orch: a worker that freezes (SIGSTOP) mid-run stops
 * heartbeating, another orch reclaims its job when the lease expires and kills
 * the frozen run; a run older than ORCH_REAPER_MAX_RUNNING_S is killed and
 * finalized whoever owns it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { WORKER_HOST } from '../../src/runtime/worker-id.ts';
import { makeProject, groupAlive, waitFor, type TempProject } from '../helpers/kit.ts';

let project: TempProject | undefined;
afterEach(() => {
  project?.cleanup();
  project = undefined;
});

const env = {
  ORCH_LEASE_TTL_MS: '1500',
  ORCH_REAPER_INTERVAL_MS: '300',
  ORCH_AGENT_TIMEOUT_SECONDS: '3',
  ORCH_AGENT_TIMEOUT_DEVELOPER_S: '3',
  ORCH_AGENT_TIMEOUT_REVIEWER_S: '3',
  ORCH_AGENT_KILL_GRACE_SECONDS: '1',
  // Well above the 3 s timeouts: the frozen run must be taken back by its lease, not by its age.
  ORCH_REAPER_MAX_RUNNING_S: '20',
  ORCH_RETRY_MAX: '0',
};

describe('reaper', () => {
  it('reclaims a frozen worker’s job after its lease and kills the run it left', async () => {
    project = makeProject({ script: { defaults: { developer: [{ sleep_ms: 60000 }] } } });
    expect(project.orch(['task', 'add', 'frozen']).code).toBe(0);
    const frozen = project.spawnOrch(['run'], { env });
    const ctx = await project.context();
    let rescuer: ReturnType<TempProject['spawnOrch']> | null = null;
    try {
      const stuck = await waitFor(
        async () => (await ctx.store.getRunningAgents()).find((a) => a.agent === 'developer' && a.pgid),
        30_000,
        'the developer',
      );
      frozen.kill('SIGSTOP'); // alive but silent: no heartbeat, no timeout of its own
      rescuer = project.spawnOrch(['run'], { env });
      const finalized = await waitFor(
        async () =>
          (await ctx.store.runsOfTask(1)).find((r) => r.id === stuck.run_id && r.status === 'finished'),
        30_000,
        'the frozen run to be finalized',
      );
      expect(finalized).toMatchObject({ outcome: 'interrupted', exit_code: -9 });
      expect(groupAlive(stuck.pgid!)).toBe(false);
      // The rescuer worked the job again (its own run timed out, and with no retry left it escalated).
      const task = await waitFor(
        async () => {
          const t = await ctx.store.getTaskByKey('T-1');
          return t.status === 'escalated' ? t : null;
        },
        30_000,
        'the escalation',
      );
      expect(task.terminal_reason).toBe('agent_failure');
      const devRuns = (await ctx.store.runsOfTask(1)).filter((r) => r.agent === 'developer');
      expect(devRuns.length).toBe(2);
      expect(devRuns.filter((r) => r.status === 'running')).toEqual([]);
    } finally {
      frozen.kill('SIGKILL');
      rescuer?.kill('SIGTERM');
      if (rescuer) await new Promise((r) => rescuer!.once('exit', r));
      await ctx.close();
    }
  });

  it('kills and finalizes a run older than ORCH_REAPER_MAX_RUNNING_S even while its lease is alive', async () => {
    project = makeProject();
    expect(project.orch(['task', 'add', 'ancient']).code).toBe(0);
    const ctx = await project.context();
    // A run some live worker (this test process) still holds, started two hours ago, its agent alive.
    const agent = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
    const orch = { proc: null as ReturnType<TempProject['spawnOrch']> | null };
    try {
      const owner = `${WORKER_HOST}:${process.pid}:test`;
      const job = await ctx.store.db.selectFrom('jobs').selectAll().executeTakeFirstOrThrow();
      const longAgo = new Date(Date.now() - 2 * 3600_000).toISOString();
      const far = new Date(Date.now() + 3600_000).toISOString();
      await ctx.store.db
        .updateTable('jobs')
        .set({ status: 'running', lease_owner: owner, lease_expires_at: far })
        .where('id', '=', job.id)
        .execute();
      const run = await ctx.store.db
        .insertInto('agent_runs')
        .values({
          task_id: job.task_id,
          job_id: job.id,
          agent: 'analyst',
          stage: 'created',
          status: 'running',
          started_at: longAgo,
          pid: agent.pid!,
          pgid: agent.pid!,
          worker_id: owner,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await ctx.store.db.updateTable('jobs').set({ run_id: run.id }).where('id', '=', job.id).execute();
      orch.proc = project.spawnOrch(['run'], { env });
      const reaped = await waitFor(
        async () => (await ctx.store.getRun(run.id))?.outcome === 'reaped',
        30_000,
        'the reaper',
      );
      expect(reaped).toBe(true);
      expect((await ctx.store.getRun(run.id))?.exit_code).toBe(-9);
      expect(groupAlive(agent.pid!)).toBe(false);
    } finally {
      agent.kill('SIGKILL');
      orch.proc?.kill('SIGTERM');
      if (orch.proc) await new Promise((r) => orch.proc!.once('exit', r));
      await ctx.close();
    }
  });
});
