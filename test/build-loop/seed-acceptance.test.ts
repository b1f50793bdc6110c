/**
 * The second seed's acceptance tests (test_loop_acceptance.py: crash and
 * resume, oscillation, terminal packet), in orch's form: a real `orch run`
 * over a temporary project, with the scripted agent playing developer and
 * reviewer, checked through the CLI, the database and the artifact files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { groupAlive, waitFor } from '../helpers/kit.ts';
import {
  cleanupAll,
  expectLoopConsistent,
  killWhen,
  ledgerLines,
  packetPath,
  projectWithTask,
  rewriteScript,
  runningRunOf,
  runUntilIdle,
  showTask,
  sleep,
  startOrch,
  taskScript,
  verdict,
  withContext,
  loopState,
  write,
} from './loop-kit.ts';

afterEach(cleanupAll);

describe('seed: autonomous build cycle acceptance', () => {
  it('test_crash_and_resume: a crash after attempt 1 resumes at attempt 2, never repeating attempt 1', async () => {
    const script = (slowAttempt2: boolean) =>
      taskScript('resume', {
        developer: {
          attempts: {
            1: [write('src/feature.txt', 'first try\n')],
            2: [...(slowAttempt2 ? [sleep(20_000)] : []), write('src/feature.txt', 'second try\n')],
          },
        },
        reviewer: {
          attempts: {
            1: [verdict('rejected', 'Handle the empty input.')],
            2: [verdict('approved', 'Handles it now.')],
          },
        },
      });
    const { project, key } = projectWithTask('resume test', { script: script(true) });

    // Run 1: attempt 1 is rejected and recorded; orch dies while attempt 2's developer works.
    const orch = startOrch(project);
    const atKill = await killWhen(
      project,
      key,
      orch,
      'attempt 1 recorded and attempt 2 developing',
      (s) => s.attempts.length === 1 && runningRunOf(s, 'developer', 2) !== undefined,
    );
    const killedRun = runningRunOf(atKill, 'developer', 2)!;
    expect(atKill.attempts.map((a) => [a.n, a.verdict])).toEqual([[1, 'rejected']]);

    // The ledger holds the header and attempt 1: written before attempt 2 began.
    const before = ledgerLines(project, key);
    expect(before).toHaveLength(2);
    const header = JSON.parse(before[0]!) as Record<string, unknown>;
    expect(Object.keys(header).sort()).toEqual(
      ['handoff_hash', 'policy_hash', 'run_id', 'schema_version', 'type'].sort(),
    );
    expect(header).toMatchObject({
      type: 'header',
      schema_version: 'v1.0',
      policy_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      handoff_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      run_id: atKill.task.loop_run_id,
    });
    expect(JSON.parse(before[1]!)).toMatchObject({
      type: 'attempt',
      n: 1,
      verdict: 'rejected',
      diff_hash: atKill.attempts[0]!.diff_hash,
      feedback: 'Handle the empty input.',
    });
    // The orphaned agent outlives orch (its own process group) until the restart ends it.
    expect(groupAlive(killedRun.pgid!)).toBe(true);

    // Run 2: attempt 2 is fast now and approved.
    rewriteScript(project, script(false));
    const resumed = runUntilIdle(project);
    expect(resumed).toContain('developer started (development, attempt 2');
    expect(resumed).not.toMatch(/attempt 1[,)]/);

    const detail = showTask(project, key);
    expect(detail.status).toBe('done');
    expect(detail.attempts.map((a) => [a.n, a.verdict])).toEqual([
      [1, 'rejected'],
      [2, 'approved'],
    ]);
    // The attempt recorded before the crash is the same row, not a repeat.
    expect(detail.attempts[0]!.created_at).toBe(atKill.attempts[0]!.created_at);

    // The killed run is kept, finalized by the restart's recovery as interrupted and killed.
    const killed = detail.runs.find((r) => r.id === killedRun.id)!;
    expect(killed).toMatchObject({ status: 'finished', outcome: 'interrupted', exit_code: -9, attempt: 2 });
    await waitFor(() => !groupAlive(killedRun.pgid!), 5_000, 'the killed run’s process group to be reaped');
    expect(detail.runs.filter((r) => r.role === 'developer').map((r) => [r.attempt, r.outcome])).toEqual([
      [1, 'ok'],
      [2, 'interrupted'],
      [2, 'ok'],
    ]);

    // The ledger kept its first two lines byte for byte and gained attempt 2.
    const after = ledgerLines(project, key);
    expect(after).toHaveLength(3);
    expect(after.slice(0, 2)).toEqual(before);
    expect(JSON.parse(after[2]!)).toMatchObject({ type: 'attempt', n: 2, verdict: 'approved' });
    await expectLoopConsistent(project, key);
  });

  it('test_acceptance_oscillation: diff A, B, A, all rejected, stops as oscillation_detected', async () => {
    const A = write('src/round.js', 'export const round = (x) => Math.floor(x + 0.5);\n');
    const B = write('src/round.js', 'export const round = (x) => Math.round(x);\n');
    const { project, key } = projectWithTask('oscillation test', {
      script: taskScript('oscillation', {
        developer: { attempts: { 1: [A], 2: [B], 3: [A] } },
        reviewer: { default: [verdict('rejected', 'Use the other rounding mode.')] },
      }),
    });
    const out = runUntilIdle(project);
    expect(out).toContain('escalated: oscillation_detected');

    const detail = showTask(project, key);
    expect(detail.status).toBe('escalated');
    expect(detail.terminal_reason).toBe('oscillation_detected');
    expect(detail.terminal_reason).not.toBe('design_rejected');
    expect(detail.status_detail).toMatch(/attempt 3 returned to the diff of attempt 1/);
    const hashes = detail.attempts.map((a) => a.diff_hash);
    expect(detail.attempts.map((a) => a.n)).toEqual([1, 2, 3]);
    expect(hashes[2]).toBe(hashes[0]);
    expect(hashes[1]).not.toBe(hashes[0]);
    expect(detail.attempts.map((a) => a.verdict)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(detail.attempts[2]!.reason).toBe('oscillation_detected');
    // The design passed its own gate: the build's rejection is not the design's.
    expect(detail.gates).toContainEqual(
      expect.objectContaining({ name: 'check_artifacts_present', passed: true }),
    );

    const packet = readFileSync(packetPath(project, key), 'utf8');
    expect(packet).toContain('- **Reason:** `oscillation_detected`');
    expect(packet).not.toContain('design_rejected');
    expect(ledgerLines(project, key)).toHaveLength(4);
    await expectLoopConsistent(project, key);
  });

  it('test_verify_terminal_packet_structure: an exhausted budget escalates with a complete terminal packet', async () => {
    const { project, key } = projectWithTask('packet test', {
      config: { budget: { max_usd: 0.0001 } },
      script: taskScript('packet', {
        developer: { default: [write('src/u.txt', 'u\n')] },
        reviewer: { default: [verdict('rejected', 'Not yet.')] },
      }),
    });
    const out = runUntilIdle(project);
    expect(out).toContain('escalated: budget_exhausted');

    const detail = showTask(project, key);
    expect(detail.status).toBe('escalated');
    expect(detail.terminal_reason).toBe('budget_exhausted');
    expect(detail.status_detail).toMatch(/reached the task budget of \$0\.0001/);
    // The analysis already spent the budget: the budget is checked before every agent run, so
    // neither the architect nor a developer was started to spend more.
    expect(detail.runs.map((r) => r.role)).toEqual(['analyst']);
    expect(detail.artifacts.terminal_packet).toBe(packetPath(project, key));

    const path = packetPath(project, key);
    expect(existsSync(path)).toBe(true);
    const packet = readFileSync(path, 'utf8');
    expect(packet).toContain(`# Terminal packet: ${key}`);
    expect(packet).toContain(`- **Task:** ${key} — packet test`);
    expect(packet).toContain('- **Reason:** `budget_exhausted`');
    expect(packet).toContain('| # | diff hash | verdict | tokens | cost | duration | reason |');
    expect(packet).toContain('## Last feedback');
    expect(packet).toContain('## What a human must decide');
    expect(packet).toContain('The budget ran out.');
    expect(packet).toContain(`orch task retry ${key}`);

    // The task stopped for good: nothing is queued or running for it.
    await withContext(project, async (ctx) => {
      expect(await ctx.store.countJobs('queued')).toBe(0);
      expect(await ctx.store.countJobs('running')).toBe(0);
      expect((await loopState(ctx, key)).attempts).toEqual([]);
    });
  });
});
