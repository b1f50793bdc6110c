/**
 * Talking to a task (issue 18 part 3): `orch task say` and `POST /api/tasks/{key}/messages`
 * record a person's message; the task's next agent run gets it in its prompt, after the stage's
 * instructions, once; later runs do not repeat it. Refusals: an unknown task, an empty or
 * over-long text, a task done or cancelled. `--now` stops the running agent and runs its stage
 * again at once with the message (here the scripted agent, which cannot resume a session: the new
 * run gets the instructions and the message; test/agents/claude-code-say-now.test.ts resumes one).
 */
import { once } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  cleanupAll,
  loopState,
  projectWithTask,
  promptOf,
  rewriteScript,
  runningRunOf,
  runUntilIdle,
  showTask,
  sleep,
  taskScript,
  verdict,
  withContext,
  write,
} from '../build-loop/loop-kit.ts';
import { DEVELOP_AND_REVIEW } from '../helpers/kit.ts';
import { apiFixture } from '../http/http-kit.ts';

afterEach(cleanupAll);
vi.setConfig({ testTimeout: 180_000 });

const HEADING = '## Messages from a person';

describe('orch task say', () => {
  it("puts a person's messages in the next run's prompt once, after the instructions; show --json lists them with the run", () => {
    const { project, key } = projectWithTask('steered', {
      config: { pipeline: DEVELOP_AND_REVIEW },
      script: taskScript('steered', {
        developer: { default: [write('src/a.txt', 'a\n')] },
        reviewer: {
          attempts: { 1: [verdict('rejected', 'name the file b.txt')] },
          default: [verdict('approved')],
        },
      }),
    });
    const first = project.orch(['task', 'say', key, 'Use tabs, not spaces.\nAnd keep it short.']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`${key}: message`);
    // An escape sequence is refused at the door; the CLI never prints one either.
    const escaped = project.orch(['task', 'say', key, 'evil \u001b]0;title\u0007']);
    expect(escaped.code).toBe(2);
    const second = project.orch(['task', 'say', key, 'Second thought: add a test.', '--json']);
    expect(second.code, second.stderr).toBe(0);
    const said = JSON.parse(second.stdout) as { key: string; id: number; text: string; by: string };
    expect(said).toMatchObject({ key, text: 'Second thought: add a test.' });

    const before = showTask(project, key);
    expect(before.messages.map((m) => [m.text, m.delivered_run_id])).toEqual([
      ['Use tabs, not spaces.\nAnd keep it short.', null],
      ['Second thought: add a test.', null],
    ]);

    runUntilIdle(project);
    const detail = showTask(project, key);
    expect(detail.stage).toBe('done');
    const runs = detail.runs;
    const dev1 = runs.find((r) => r.role === 'developer')!;
    const prompt = promptOf(project, key, dev1);
    // After the stage's instructions, each message quoted with its author and time, once.
    expect(prompt.indexOf(HEADING)).toBeGreaterThan(prompt.indexOf('## Your job: development'));
    expect(prompt.split(HEADING)).toHaveLength(2);
    expect(prompt).toContain('> Use tabs, not spaces.\n> And keep it short.');
    expect(prompt).toContain('> Second thought: add a test.');
    expect(prompt).toContain(`, from ${said.by}`);
    expect(prompt.indexOf('Use tabs')).toBeLessThan(prompt.indexOf('Second thought'));
    // No later run repeats them: the review, the second attempt and its review.
    const later = runs.filter((r) => r.id !== dev1.id);
    expect(later.length).toBeGreaterThanOrEqual(3);
    for (const run of later) expect(promptOf(project, key, run)).not.toContain(HEADING);

    expect(detail.messages.map((m) => [m.text, m.delivered_run_id])).toEqual([
      ['Use tabs, not spaces.\nAnd keep it short.', dev1.id],
      ['Second thought: add a test.', dev1.id],
    ]);
    const text = project.orch(['task', 'show', key]);
    expect(text.stdout).toContain(`read by run ${dev1.id}`);
    expect(text.stdout).toContain('  Second thought: add a test.');
  });

  it('refuses an unknown task, an empty or over-long text, and a task done or cancelled', () => {
    const { project, key } = projectWithTask('refusals', {
      config: { pipeline: DEVELOP_AND_REVIEW },
      script: taskScript('refusals', {
        developer: { default: [write('src/a.txt', 'a\n')] },
        reviewer: { default: [verdict('approved')] },
      }),
    });
    const unknown = project.orch(['task', 'say', 'T-999', 'hello']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('T-999');
    const empty = project.orch(['task', 'say', key, '   ']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('non-empty');
    const long = project.orch(['task', 'say', key, 'x'.repeat(10_001)]);
    expect(long.code).toBe(2);
    expect(long.stderr).toContain('at most 10000 characters');
    expect(showTask(project, key).messages).toEqual([]);

    runUntilIdle(project);
    expect(showTask(project, key).stage).toBe('done');
    const done = project.orch(['task', 'say', key, 'too late']);
    expect(done.code).toBe(1);
    expect(done.stderr).toContain(`${key} is already done`);

    const other = project.orch(['task', 'add', 'to cancel', '--json']);
    const cancelledKey = (JSON.parse(other.stdout) as { key: string }).key;
    expect(project.orch(['task', 'cancel', cancelledKey]).code).toBe(0);
    const cancelled = project.orch(['task', 'say', cancelledKey, 'too late']);
    expect(cancelled.code).toBe(1);
    expect(cancelled.stderr).toContain('already cancelled');
    expect(showTask(project, key).messages).toEqual([]);
  });
});

describe('orch task say --now', () => {
  it('only records without a running agent; stops a running one, whose stage runs again at once with the message, not counted as a try', async () => {
    const title = 'redirected';
    /** The script: the redirected task's developer as given, and an urgent task that just works. */
    const script = (developer: unknown[]) => ({
      tasks: [
        ...(taskScript(title, {
          developer: { default: developer },
          reviewer: { default: [verdict('approved')] },
        }).tasks as unknown[]),
        ...(taskScript('urgent', {
          developer: { default: [write('src/u.txt', 'u\n')] },
          reviewer: { default: [verdict('approved')] },
        }).tasks as unknown[]),
      ],
    });
    const { project, key } = projectWithTask(title, {
      config: { pipeline: DEVELOP_AND_REVIEW },
      script: script([sleep(120_000)]),
    });
    let urgentKey: string | undefined;
    const idle = project.orch(['task', 'say', key, 'Before any run.', '--now']);
    expect(idle.code, idle.stderr).toBe(0);
    expect(idle.stdout).toContain('no agent is running for it, so nothing was stopped');

    // One agent at a time, and heartbeats 40 s apart: the worker learns of the message from the
    // database's change, not from a heartbeat.
    const orch = project.spawnOrch(['run', '--until-idle', '-c', '1'], {
      env: { ORCH_LEASE_TTL_MS: '120000' },
    });
    let output = '';
    orch.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    orch.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = once(orch, 'exit');
    try {
      const first = await withContext(project, async (ctx) => {
        for (let i = 0; i < 600; i++) {
          const run = runningRunOf(await loopState(ctx, key), 'developer', 1);
          if (run) return run;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error(`the developer never started:\n${output}`);
      });
      // The agent at work has read its script: the run that follows writes instead of sleeping.
      rewriteScript(project, script([write('src/a.txt', 'a\n')]));
      // A task of a higher priority, queued meanwhile, takes the next free slot, but not before
      // the redirected stage runs again.
      const urgent = project.orch(['task', 'add', 'urgent', '--priority', '5', '--json']);
      expect(urgent.code, urgent.stderr).toBe(0);
      urgentKey = (JSON.parse(urgent.stdout) as { key: string }).key;
      const now = project.orch(['task', 'say', key, 'Change of plan: write src/a.txt.', '--now', '--json']);
      expect(now.code, now.stderr).toBe(0);
      expect(JSON.parse(now.stdout)).toMatchObject({ key, interrupted: true, interrupted_run_id: first.id });
      const [code] = (await Promise.race([
        exited,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`orch did not finish:\n${output}`)), 60_000),
        ),
      ])) as [number | null];
      expect(code, output).toBe(0);
    } finally {
      if (orch.exitCode === null && orch.signalCode === null) orch.kill('SIGKILL');
    }

    const detail = showTask(project, key);
    expect(detail.stage).toBe('done');
    const dev = detail.runs.filter((r) => r.role === 'developer');
    expect(dev.map((r) => r.outcome)).toEqual(['redirected', 'ok']);
    const other = showTask(project, urgentKey!);
    expect(other.stage).toBe('done');
    expect(
      dev[1]!.started_at! < other.runs[0]!.started_at!,
      'the urgent task ran before the redirected stage',
    ).toBe(true);
    // No session to resume: the new run has the stage's instructions, and the message after them.
    const prompt = promptOf(project, key, dev[1]!);
    expect(prompt).toContain('## Your job: development');
    expect(prompt).toContain('> Change of plan: write src/a.txt.');
    expect(prompt).not.toContain('Before any run.');
    expect(promptOf(project, key, dev[0]!)).toContain('> Before any run.');
    expect(detail.messages.map((m) => [m.text, m.delivered_run_id])).toEqual([
      ['Before any run.', dev[0]!.id],
      ['Change of plan: write src/a.txt.', dev[1]!.id],
    ]);
    // The stopped run was no try: one claim of the development job, no failure, no retry counted.
    await withContext(project, async (ctx) => {
      const task = await ctx.store.getTaskByKey(key);
      const jobs = await ctx.store.db
        .selectFrom('jobs')
        .selectAll()
        .where('task_id', '=', task.id)
        .where('stage', '=', 'development')
        .execute();
      expect(jobs.map((j) => [j.attempts, j.failures])).toEqual([[1, 0]]);
      expect((await ctx.store.attemptsOfTask(task.id)).map((a) => a.n)).toEqual([1]);
    });
  });
});

describe('POST /api/tasks/{key}/messages', () => {
  it('records a message (201), refuses a bad body (400), an unknown task (404), a cancelled one (409)', async () => {
    const f = await apiFixture();
    try {
      const created = await f.post('/api/tasks', { title: 'via api' });
      const { key } = (await created.json()) as { key: string };
      const ok = await f.post(`/api/tasks/${key}/messages`, { text: 'from the dashboard', by: 'alice' });
      expect(ok.status, await ok.clone().text()).toBe(201);
      expect(await ok.json()).toMatchObject({
        key,
        text: 'from the dashboard',
        by: 'alice',
        interrupted: false,
      });
      // `now` with no agent running: recorded like any message, and the answer says nothing stopped.
      const now = await f.post(`/api/tasks/${key}/messages`, { text: 'right now', now: true });
      expect(now.status, await now.clone().text()).toBe(201);
      expect(await now.json()).toMatchObject({ key, interrupted: false, interrupted_run_id: null });

      const bad = [{}, { text: '' }, { text: '  ' }, { text: 'x'.repeat(10_001) }, { text: 1 }];
      for (const body of bad) {
        const bad = await f.post(`/api/tasks/${key}/messages`, body);
        expect(bad.status, JSON.stringify(body)).toBe(400);
        const err = (await bad.json()) as { error: { details: { path: string }[] } };
        expect(err.error.details[0]!.path).toBe('body.text');
      }
      const extra = await f.post(`/api/tasks/${key}/messages`, { text: 'hi', urgent: true });
      expect(extra.status).toBe(400);
      const controls = await f.post(`/api/tasks/${key}/messages`, { text: 'a\u0000b' });
      expect(controls.status).toBe(400);

      expect((await f.post('/api/tasks/T-999/messages', { text: 'hi' })).status).toBe(404);

      const detail = (await (await f.get(`/api/tasks/${key}`)).json()) as {
        messages: { text: string; by: string; delivered_run_id: number | null }[];
      };
      expect(detail.messages).toEqual([
        expect.objectContaining({ text: 'from the dashboard', by: 'alice', delivered_run_id: null }),
        expect.objectContaining({ text: 'right now', by: 'api', delivered_run_id: null }),
      ]);
      const notBoolean = await f.post(`/api/tasks/${key}/messages`, { text: 'hi', now: 'yes' });
      expect(notBoolean.status).toBe(400);
      expect(
        ((await notBoolean.json()) as { error: { details: { path: string }[] } }).error.details[0]!.path,
      ).toBe('body.now');

      expect((await f.post(`/api/tasks/${key}/cancel`)).status).toBe(200);
      const late = await f.post(`/api/tasks/${key}/messages`, { text: 'hi' });
      expect(late.status).toBe(409);
      expect(((await late.json()) as { error: { message: string } }).error.message).toContain('cancelled');
    } finally {
      await f.close();
    }
  });
});
