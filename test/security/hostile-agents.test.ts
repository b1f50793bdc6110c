/**
 * Issue 17, hostile agents: real scripts as agents that leave a FIFO, a
 * symlink to /dev/zero and one to a file outside the worktree where orch reads
 * an artifact, and print escape sequences (a clipboard write, a window title,
 * clear screen) on stdout and stderr. Through the real CLI, with and without
 * the sandbox: `orch serve` works them while `/api/status` keeps answering
 * within a second, each task ends with a reason that names what the agent
 * did, nothing is left running, nothing of the outside file is stored, and no
 * raw escape byte reaches the terminal — while the run's log keeps them.
 *
 * What needs the engine to use these pieces (an ADR left as a FIFO, a nested
 * repository, a sparse file, signals during a gate) is in hard-stops.test.ts.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { processesIn, waitFor, type TempProject } from '../helpers/kit.ts';
import type { OrchContext } from '../../src/runtime/context.ts';
import { processGroupAlive } from '../../src/runtime/process/process-group.ts';
import { bwrapStatus } from '../../src/runtime/process/sandbox.ts';
import {
  allSettled,
  expectTerminalSafe,
  gatedProject,
  hostileProject,
  endTest,
  serveUntil,
  startAndReachGate,
  ANSWER_WITHIN_MS,
} from './hostile-kit.ts';

const bwrap = await bwrapStatus();

let project: TempProject | undefined;
let ctx: OrchContext | undefined;
let outside = '';
afterEach(async () => {
  const left = await endTest(project, ctx, [outside]);
  [project, ctx, outside] = [undefined, undefined, ''];
  expect(left, 'processes left running in the project').toEqual([]);
});

interface Shown {
  key: string;
  title: string;
  status: string;
  terminal_reason: string | null;
  status_detail: string | null;
  runs: { id: number; role: string; outcome: string | null; error: string | null }[];
}

const SECRET = 'OUTSIDE-SECRET-7d1f';

describe.each([
  { sandbox: false, name: 'without the sandbox' },
  { sandbox: true, name: bwrap.ok ? 'in the sandbox' : `in the sandbox (skipped: ${bwrap.error})` },
])('hostile agents $name', ({ sandbox }) => {
  it.skipIf(sandbox && !bwrap.ok)(
    'a FIFO, /dev/zero and an outside file as artifacts, and escape sequences: each task ends with a clear reason, orch keeps answering',
    async () => {
      const p = (project = hostileProject({ sandbox }));
      outside = mkdtempSync(join(tmpdir(), 'orch-outside-'));
      const secret = join(outside, 'secret.txt');
      writeFileSync(secret, `${SECRET}\n`);
      const titles = ['fifo', 'devzero', `outside ${secret}`, 'escapes', 'clean'];
      for (const title of titles) expect(p.orch(['task', 'add', title]).code).toBe(0);

      const served = await serveUntil(p, (get) => allSettled(get, titles.length));

      expect(served.code, served.stderr).toBe(0);
      expect(served.polls).toBeGreaterThan(0);
      expect(served.unanswered, `/api/status went unanswered for ${ANSWER_WITHIN_MS} ms`).toEqual([]);
      expect(served.stderr).not.toContain('event loop was blocked');
      expect(processesIn(p.dir)).toEqual([]);

      const show = (key: string): Shown => {
        const r = p.orch(['task', 'show', key, '--json']);
        expect(r.code, r.stderr).toBe(0);
        return JSON.parse(r.stdout) as Shown;
      };
      const [fifo, devzero, out, escapes, clean] = ['T-1', 'T-2', 'T-3', 'T-4', 'T-5'].map(show);
      const docs = (key: string) => `docs/tasks/${key}/requirements.md`;
      expect(fifo).toMatchObject({ status: 'escalated', terminal_reason: 'gate_failure' });
      expect(fifo!.status_detail).toContain(`${docs('T-1')} is a FIFO (named pipe), not a regular file`);
      expect(devzero).toMatchObject({ status: 'escalated', terminal_reason: 'gate_failure' });
      expect(devzero!.status_detail).toMatch(new RegExp(`${docs('T-2')} leads to /dev/zero, outside `));
      expect(out).toMatchObject({ status: 'escalated', terminal_reason: 'gate_failure' });
      expect(out!.status_detail).toContain(`${docs('T-3')} leads to ${secret}, outside `);
      expect(escapes).toMatchObject({ status: 'escalated', terminal_reason: 'agent_failure' });
      expect(escapes!.status_detail).toContain('boom');
      expect(clean).toMatchObject({ status: 'done' });

      // Nothing of the file outside was read into the store.
      expect(p.orch(['task', 'show', 'T-3', '--json']).stdout).not.toContain(SECRET);
      expect(JSON.stringify(await p.orchAsync(['logs', 'T-3']))).not.toContain(SECRET);

      // The terminal sees no escape sequence: orch serve's progress and log, and every command.
      expectTerminalSafe('orch serve stdout', served.stdout);
      expectTerminalSafe('orch serve stderr', served.stderr);
      expect(served.stdout).toContain('T-4  ↻ analyst will retry');
      for (const args of [
        ['logs', 'T-4'],
        ['task', 'show', 'T-4'],
        ['task', 'show', 'T-4', '--json'],
        ['task', 'list'],
        ['status'],
        ['status', '--json'],
      ]) {
        const r = p.orch(args);
        expect(r.code, `orch ${args.join(' ')}: ${r.stderr}`).toBe(0);
        expectTerminalSafe(`orch ${args.join(' ')}`, r.stdout + r.stderr);
      }
      const logs = p.orch(['logs', 'T-4']).stdout;
      expect(logs).toContain('red text');
      expect(logs).toContain('[stderr] boom');
      expect(logs).not.toContain('pwned-title');
      // The stored log keeps every byte the agent printed.
      const logFile = join(p.dir, '.orch', 'logs', 'T-4', `${escapes!.runs[0]!.id}-analyst.log`);
      const raw = readFileSync(logFile, 'latin1');
      expect(raw).toContain('\u001b]52;c;cm0gLXJmIH4K\u0007');
      expect(raw).toContain('[stderr] \u001b]0;stderr-title\u0007');
    },
    300_000,
  );
});

describe.each([{ command: ['run'] }, { command: ['worker'] }, { command: ['serve', '--port', '0'] }])(
  'a second signal: orch $command.0',
  ({ command }) => {
    it('SIGKILLs every process group it started at once, says so, and exits 130', async () => {
      outside = mkdtempSync(join(tmpdir(), 'orch-gate-marks-'));
      // A long grace: the gate is still there, ending, when the second signal comes.
      const made = gatedProject(outside, { killGraceS: 120 });
      const p = (project = made.project);
      ctx = await p.context();
      const { child, exited, gate, output } = await startAndReachGate(p, command, ctx, made.mark);
      child.kill('SIGTERM');
      await waitFor(() => output().includes('stopping'), 30_000, 'the first signal to be handled');
      // The gate ignores the first SIGTERM; the second one cannot wait for its grace.
      child.kill('SIGTERM');
      expect(await exited, output()).toBe(130);
      expect(output()).toMatch(
        new RegExp(
          `SIGTERM again: killed 1 process group at once \\(gate check_ci_green of T-1, group ${gate.pgid}\\)`,
        ),
      );
      expect(processGroupAlive(gate.pgid)).toBe(false);
      expect(processesIn(p.dir)).toEqual([]);
      expectTerminalSafe('orch output', output());
    }, 240_000);
  },
);
