/**
 * The decision function, row by row: every event against the states it can
 * meet, and the decision each must give. Pure: no store, no clock, no process.
 */
import { describe, expect, it } from 'vitest';
import {
  decide,
  arrivalJob,
  jobFor,
  nextStage,
  type Decision,
  type JobState,
  type PipelineEvent,
  type Plan,
  type StageRoute,
  type TaskState,
  type UsagePause,
  usagePauseDetail,
} from './pipeline.ts';
import type { AttemptRecord } from './build-loop.ts';
import type { Stage, WorkStage } from './stages.ts';

const agent = (name: WorkStage, role: StageRoute['role'], over: Partial<StageRoute> = {}): StageRoute => ({
  name,
  kind: 'agent',
  role,
  adapter: 'scripted',
  onFail: 'escalate',
  approval: false,
  ...over,
});

const PLAN: Plan = {
  stages: [
    agent('analysis', 'analyst'),
    agent('architecture', 'architect'),
    agent('development', 'developer', { adapter: 'claude-code', onFail: 'development' }),
    agent('review', 'reviewer', { adapter: 'codex', onFail: 'development' }),
    agent('testing', 'tester', { onFail: 'development' }),
    {
      name: 'deploy-staging',
      kind: 'command',
      role: null,
      adapter: null,
      onFail: 'escalate',
      approval: false,
    },
    agent('deploy', 'deployer', { approval: true, onFail: 'deploy-staging' }),
  ],
  retry: { maxRetries: 2, baseMs: 100, maxMs: 1000 },
  maxInterruptions: 2,
  maxLoops: 2,
  projectUsdPerDay: null,
};

const attempt = (n: number, verdict: 'approved' | 'rejected', diffHash = `d${n}`): AttemptRecord => ({
  n,
  diffHash,
  verdict,
  feedback: verdict === 'rejected' ? `fix ${n}` : '',
  inputTokens: 10,
  outputTokens: 5,
  costUsd: 0.01,
  durationMs: 1000,
  reason: null,
});

const task = (over: Partial<TaskState> = {}): TaskState => ({
  key: 'T-1',
  stage: 'development',
  status: 'running',
  attempts: [],
  budget: { maxAttempts: 3, maxTokens: null, maxUsd: null, maxWallS: null },
  spend: { tokens: 0, usd: 0, wallS: 0, projectUsdToday: 0 },
  loops: {},
  approved: false,
  terminalReason: null,
  hasLiveJob: true,
  readiness: { ready: true },
  ...over,
});

const job = (stage: Stage, over: Partial<JobState> = {}): JobState => ({
  stage,
  step: 'work',
  tries: 1,
  failures: 0,
  ...over,
});

const claimed = (
  stage: Stage,
  over: Partial<JobState> = {},
  extra: Partial<Extract<PipelineEvent, { kind: 'claimed' }>> = {},
): PipelineEvent => ({
  kind: 'claimed',
  job: job(stage, over),
  lastRun: null,
  ...extra,
});

const run = (plan: Plan, t: TaskState, e: PipelineEvent): Decision => decide(plan, t, e);

describe('the plan', () => {
  it('gives each stage its next enabled stage, and done after the last', () => {
    expect(nextStage(PLAN, 'created')).toBe('analysis');
    expect(nextStage(PLAN, 'review')).toBe('testing');
    expect(nextStage(PLAN, 'deploy')).toBe('done');
    const short: Plan = { ...PLAN, stages: PLAN.stages.filter((s) => s.name !== 'testing') };
    expect(nextStage(short, 'review')).toBe('deploy-staging');
  });

  it('gives a job the role and adapter of its stage, from the plan alone', () => {
    expect(jobFor(PLAN, 'development')).toEqual({
      stage: 'development',
      step: 'work',
      agent: 'developer',
      adapter: 'claude-code',
    });
    expect(jobFor(PLAN, 'review')).toEqual({
      stage: 'review',
      step: 'work',
      agent: 'reviewer',
      adapter: 'codex',
    });
    // An approved agent stage's job carries its adapter like any other.
    expect(jobFor(PLAN, 'deploy')).toEqual({
      stage: 'deploy',
      step: 'work',
      agent: 'deployer',
      adapter: 'scripted',
    });
    expect(jobFor(PLAN, 'deploy-staging')).toEqual({
      stage: 'deploy-staging',
      step: 'work',
      agent: 'command',
      adapter: null,
    });
    expect(jobFor(PLAN, 'created')).toEqual({ stage: 'created', step: 'work', agent: 'orch', adapter: null });
    expect(jobFor(PLAN, 'deploy', 'land')).toEqual({
      stage: 'deploy',
      step: 'land',
      agent: 'orch',
      adapter: null,
    });
    // Entering a stage that waits for an approval: anyone's job (the claim only records the
    // wait); once approved, the role's adapter again.
    expect(arrivalJob(PLAN, 'deploy')).toEqual({
      stage: 'deploy',
      step: 'work',
      agent: 'deployer',
      adapter: null,
    });
    expect(arrivalJob(PLAN, 'deploy', true)).toMatchObject({ adapter: 'scripted' });
    expect(arrivalJob(PLAN, 'development')).toMatchObject({ adapter: 'claude-code' });
    // A stage's configured role wins over the default one.
    const custom: Plan = { ...PLAN, stages: [agent('development', 'architect', { adapter: 'gemini' })] };
    expect(jobFor(custom, 'development')).toMatchObject({ agent: 'architect', adapter: 'gemini' });
  });
});

describe('claimed', () => {
  it.each<[string, TaskState, PipelineEvent, Partial<Decision>]>([
    [
      'a created job is worked',
      task({ stage: 'created' }),
      claimed('created'),
      { kind: 'work', from: 'run' },
    ],
    [
      'an agent stage is worked',
      task({ stage: 'analysis' }),
      claimed('analysis'),
      { kind: 'work', from: 'run' },
    ],
    [
      'a run that ended ok but was never decided resumes at its gates',
      task({ stage: 'testing' }),
      claimed('testing', { tries: 2 }, { lastRun: { outcome: 'ok', here: true } }),
      { kind: 'work', from: 'gates' },
    ],
    [
      'a run that ended ok in another worker’s worktree is run again: its work is not here',
      task({ stage: 'testing' }),
      claimed('testing', { tries: 2 }, { lastRun: { outcome: 'ok', here: false } }),
      { kind: 'work', from: 'run' },
    ],
    [
      'a failed last run is run again',
      task({ stage: 'testing' }),
      claimed('testing', { tries: 2, failures: 1 }, { lastRun: { outcome: 'failed', here: true } }),
      { kind: 'work', from: 'run' },
    ],
    [
      'a review already recorded resumes at the other gates',
      task({ stage: 'review' }),
      claimed('review', {}, { reviewDone: true }),
      { kind: 'work', from: 'gates' },
    ],
    [
      'a stage waiting for approval waits for a person, with no job',
      task({ stage: 'deploy' }),
      claimed('deploy'),
      { kind: 'wait', status: 'waiting', requeueInMs: null },
    ],
    [
      'an approved stage is worked',
      task({ stage: 'deploy', approved: true }),
      claimed('deploy'),
      { kind: 'work' },
    ],
    [
      'a landing is worked',
      task({ stage: 'deploy' }),
      claimed('deploy', { step: 'land' }),
      { kind: 'work', from: 'run' },
    ],
    [
      'a stale job of a cancelled task is dropped',
      task({ stage: 'cancelled', status: 'cancelled' }),
      claimed('development'),
      { kind: 'drop' },
    ],
    [
      'a job of a stage the task left is dropped',
      task({ stage: 'review' }),
      claimed('development'),
      { kind: 'drop' },
    ],
    [
      'an escalated task drops its job',
      task({ status: 'escalated' }),
      claimed('development'),
      { kind: 'drop' },
    ],
    [
      'development with every attempt used escalates',
      task({ attempts: [attempt(1, 'rejected'), attempt(2, 'rejected'), attempt(3, 'rejected')] }),
      claimed('development'),
      { kind: 'escalate', reason: 'max_attempts' },
    ],
    [
      'any agent stage over the USD budget escalates before it spends more',
      task({
        stage: 'testing',
        budget: { maxAttempts: 3, maxTokens: null, maxUsd: 1, maxWallS: null },
        spend: { tokens: 0, usd: 1.5, wallS: 0, projectUsdToday: 0 },
      }),
      claimed('testing'),
      { kind: 'escalate', reason: 'budget_exhausted' },
    ],
    [
      'interruptions within the cap are worked again',
      task(),
      claimed('development', { tries: 3, failures: 0 }),
      { kind: 'work' },
    ],
    [
      'past the interruption cap the task escalates',
      task(),
      claimed('development', { tries: 4, failures: 0 }),
      { kind: 'escalate', reason: 'runs_interrupted' },
    ],
    [
      'failed tries do not count as interruptions',
      task(),
      claimed('development', { tries: 4, failures: 2 }),
      { kind: 'work' },
    ],
  ])('%s', (_name, t, e, want) => {
    expect(run(PLAN, t, e)).toMatchObject(want);
  });

  it('a stage disabled since its job was queued is passed over', () => {
    const plan: Plan = { ...PLAN, stages: PLAN.stages.filter((s) => s.name !== 'analysis') };
    expect(run(plan, task({ stage: 'analysis' }), claimed('analysis'))).toMatchObject({
      kind: 'advance',
      to: 'architecture',
      job: { agent: 'architect' },
    });
  });
});

describe('run_failed', () => {
  const failed = (
    over: Partial<JobState>,
    outcome: Extract<PipelineEvent, { kind: 'run_failed' }>['outcome'] = 'failed',
  ): PipelineEvent => ({
    kind: 'run_failed',
    job: job('testing', over),
    outcome,
    runId: 7,
    error: 'exit 1',
  });

  it('retries with backoff, counting a failure, up to retry.max_retries', () => {
    expect(run(PLAN, task({ stage: 'testing' }), failed({ failures: 0 }))).toMatchObject({
      kind: 'retry',
      delayMs: 100,
      count: 'failure',
    });
    expect(run(PLAN, task({ stage: 'testing' }), failed({ tries: 2, failures: 1 }))).toMatchObject({
      kind: 'retry',
      delayMs: 200,
    });
    expect(run(PLAN, task({ stage: 'testing' }), failed({ tries: 3, failures: 2 }))).toMatchObject({
      kind: 'escalate',
      reason: 'agent_failure',
    });
  });

  it.each(['failed', 'killed', 'timeout', 'stalled', 'no_result', 'error_result', 'spawn_error'] as const)(
    'a %s run is never salvaged: it retries',
    (outcome) => {
      expect(run(PLAN, task({ stage: 'testing' }), failed({}, outcome))).toMatchObject({ kind: 'retry' });
    },
  );

  it('a run stopped at the budget escalates, naming the run', () => {
    const d = run(PLAN, task({ stage: 'testing' }), failed({}, 'over_budget'));
    expect(d).toMatchObject({ kind: 'escalate', reason: 'budget_exhausted' });
    expect((d as { detail: string }).detail).toContain('run 7');
  });

  it('passes feedback on (git refused the commit)', () => {
    const e = { ...failed({}), feedback: 'nested repository' } as PipelineEvent;
    expect(run(PLAN, task({ stage: 'testing' }), e)).toMatchObject({
      kind: 'retry',
      feedback: 'nested repository',
    });
  });
});

describe('interrupted, internal errors', () => {
  const cut = (
    cause: Extract<PipelineEvent, { kind: 'interrupted' }>['cause'],
    over: Partial<JobState> = {},
  ): PipelineEvent => ({
    kind: 'interrupted',
    job: job('development', over),
    cause,
    runId: 3,
  });

  it('a shutdown gives the try back, as often as the interruption cap; then it counts', () => {
    expect(run(PLAN, task(), cut('shutdown', { tries: 9, givenBack: 1 }))).toMatchObject({
      kind: 'retry',
      count: 'none',
      delayMs: 0,
    });
    // A run that stops orch at every start (an agent that signals it) is not run forever.
    expect(run(PLAN, task(), cut('shutdown', { tries: 1, givenBack: 2 }))).toMatchObject({
      kind: 'retry',
      count: 'interruption',
    });
    expect(run(PLAN, task(), cut('shutdown', { tries: 3, givenBack: 2 }))).toMatchObject({
      kind: 'escalate',
      reason: 'runs_interrupted',
    });
  });

  it('a run a person stopped with a message runs again at once, and is no try at all', () => {
    // Whatever the job's tries, failures and given-back shutdowns, even past every cap.
    for (const over of [{}, { tries: 9, failures: 2 }, { tries: 3, givenBack: 2 }]) {
      expect(run(PLAN, task(), cut('human_message', over))).toEqual({
        kind: 'retry',
        delayMs: 0,
        count: 'none',
        detail: "run 3 was stopped for a person's message: running development again with it",
        redirected: true,
      });
    }
    // A task that moved on or ended meanwhile is not run again for it.
    expect(run(PLAN, task({ status: 'cancelled', stage: 'cancelled' }), cut('human_message'))).toMatchObject({
      kind: 'drop',
    });
    expect(run(PLAN, task({ stage: 'review' }), cut('human_message'))).toMatchObject({ kind: 'drop' });
  });

  it('a lost lease writes nothing: the job is another worker’s now', () => {
    expect(run(PLAN, task(), cut('lease_lost'))).toEqual({ kind: 'release' });
  });

  it.each(['reaped', 'worker_lost'] as const)('%s counts against the interruption cap', (cause) => {
    expect(run(PLAN, task(), cut(cause, { tries: 2 }))).toMatchObject({
      kind: 'retry',
      count: 'interruption',
    });
    expect(run(PLAN, task(), cut(cause, { tries: 3 }))).toMatchObject({
      kind: 'escalate',
      reason: 'runs_interrupted',
    });
  });

  it('orch’s own errors retry in 5 s, then escalate as internal_error', () => {
    const e = (tries: number): PipelineEvent => ({
      kind: 'internal_error',
      job: job('development', { tries }),
      message: 'boom',
    });
    expect(run(PLAN, task(), e(1))).toMatchObject({ kind: 'retry', delayMs: 5000, count: 'interruption' });
    expect(run(PLAN, task(), e(3))).toMatchObject({ kind: 'escalate', reason: 'internal_error' });
  });
});

describe('usage limits', () => {
  const pause = (over: Partial<UsagePause> = {}): UsagePause => ({
    credential: '',
    ms: 90_000,
    resumesAt: '2026-12-07T13:13:00.000Z',
    now: '2026-12-07T13:11:30.000Z',
    strikes: 1,
    window: 'five_hour',
    message: 'the five_hour limit was reached',
    ...over,
  });
  const limited = (stage: Stage, over: Partial<JobState> = {}, adapter = 'codex'): PipelineEvent => ({
    kind: 'usage_limited',
    job: job(stage, over),
    runId: 7,
    adapter,
    pause: pause(),
  });
  it('the job waits for the reset, uncounted, and the adapter’s credential is paused', () => {
    const d = run(
      PLAN,
      task({ stage: 'development' }),
      limited('development', { tries: 3, failures: 2 }, 'claude-code'),
    );
    expect(d).toEqual({
      kind: 'wait',
      status: 'waiting',
      detail: 'usage limit of claude-code (five_hour): resumes at 13:13 UTC',
      requeueInMs: 90_000,
      pause: { adapter: 'claude-code', ...pause() },
    });
  });
  it('a reset more than a day ahead is shown with its date', () => {
    expect(usagePauseDetail('codex', pause({ window: null, resumesAt: '2026-12-10T20:38:00.000Z' }))).toBe(
      'usage limit of codex: resumes at 2026-12-10 20:38 UTC',
    );
  });
  it('even past every retry cap a limit never escalates; a task that moved on drops it', () => {
    expect(run(PLAN, task({ stage: 'review' }), limited('review', { tries: 9, failures: 9 })).kind).toBe(
      'wait',
    );
    expect(run(PLAN, task({ stage: 'testing' }), limited('review')).kind).toBe('drop');
    expect(run(PLAN, task({ stage: 'review', status: 'cancelled' }), limited('review')).kind).toBe('drop');
  });
});

describe('reviewed', () => {
  const reviewed = (t: TaskState, a: AttemptRecord) =>
    run(PLAN, { ...t, stage: 'review' }, { kind: 'reviewed', job: job('review'), attempt: a });

  it('an approval is recorded and the review’s other gates go on', () => {
    expect(reviewed(task(), attempt(1, 'approved'))).toMatchObject({
      kind: 'continue',
      attempt: { n: 1, verdict: 'approved' },
    });
  });

  it('a rejection goes back to development with the comments', () => {
    expect(reviewed(task(), attempt(1, 'rejected'))).toMatchObject({
      kind: 'advance',
      to: 'development',
      feedback: 'fix 1',
      job: { agent: 'developer', adapter: 'claude-code' },
      attempt: { n: 1 },
    });
  });

  it('the same diff twice is no progress; A, B, A is oscillation; never a rejected design', () => {
    const first = attempt(1, 'rejected', 'A');
    expect(reviewed(task({ attempts: [first] }), attempt(2, 'rejected', 'A'))).toMatchObject({
      kind: 'escalate',
      reason: 'no_progress',
    });
    expect(
      reviewed(task({ attempts: [first, attempt(2, 'rejected', 'B')] }), attempt(3, 'rejected', 'A')),
    ).toMatchObject({
      kind: 'escalate',
      reason: 'oscillation_detected',
    });
  });

  it('the last attempt rejected stops at max_attempts, with the attempt recorded', () => {
    const t = task({ attempts: [attempt(1, 'rejected'), attempt(2, 'rejected')] });
    expect(reviewed(t, attempt(3, 'rejected'))).toMatchObject({
      kind: 'escalate',
      reason: 'max_attempts',
      attempt: { n: 3 },
    });
  });
});

describe('gates and stages passed', () => {
  const failed = (stage: Stage, t: TaskState = task({ stage })): Decision =>
    run(PLAN, t, { kind: 'gate_failed', job: job(stage), gate: 'check_x', output: 'out', diffHash: 'D' });

  it('a failing architecture gate is a rejected design; another escalating gate a gate failure', () => {
    expect(failed('architecture')).toMatchObject({ kind: 'escalate', reason: 'design_rejected' });
    expect(failed('analysis')).toMatchObject({ kind: 'escalate', reason: 'gate_failure' });
  });

  it('a failing development gate judges the attempt and reworks it', () => {
    expect(failed('development')).toMatchObject({
      kind: 'advance',
      to: 'development',
      attempt: { n: 1, verdict: 'rejected', reason: 'check_x' },
    });
  });

  it('a late failure goes back to development with feedback, and records no attempt', () => {
    const d = failed('testing', task({ stage: 'testing', attempts: [attempt(1, 'approved')] }));
    expect(d).toMatchObject({ kind: 'advance', to: 'development' });
    expect((d as { attempt?: unknown }).attempt).toBeUndefined();
    expect((d as { feedback: string }).feedback).toContain('check_x');
  });

  it('a late failure with every attempt used escalates: attempts never exceed the budget', () => {
    const t = task({
      stage: 'testing',
      attempts: [attempt(1, 'approved'), attempt(2, 'approved'), attempt(3, 'approved')],
    });
    const d = failed('testing', t);
    expect(d).toMatchObject({ kind: 'escalate', reason: 'max_attempts' });
    expect((d as { detail: string }).detail).toContain('3 of 3 attempts used; the last was approved');
  });

  it('a route to another stage is a loop: counted, capped, and paid from the budget', () => {
    const at = (loops: Record<string, number>, usd = 0) =>
      failed(
        'deploy',
        task({
          stage: 'deploy',
          loops,
          budget: { maxAttempts: 3, maxTokens: null, maxUsd: 1, maxWallS: null },
          spend: { tokens: 0, usd, wallS: 0, projectUsdToday: 0 },
        }),
      );
    expect(at({})).toMatchObject({
      kind: 'advance',
      to: 'deploy-staging',
      loop: 'deploy>deploy-staging',
      job: { agent: 'command' },
    });
    expect(at({ 'deploy>deploy-staging': 1 })).toMatchObject({ kind: 'advance' });
    expect(at({ 'deploy>deploy-staging': 2 })).toMatchObject({ kind: 'escalate', reason: 'gate_failure' });
    expect(at({}, 2)).toMatchObject({ kind: 'escalate', reason: 'budget_exhausted' });
  });

  it('a passed stage advances; the last one lands', () => {
    expect(
      run(PLAN, task({ stage: 'created' }), { kind: 'stage_passed', job: job('created') }),
    ).toMatchObject({ kind: 'advance', to: 'analysis', job: { agent: 'analyst' } });
    expect(
      run(PLAN, task({ stage: 'testing' }), { kind: 'stage_passed', job: job('testing') }),
    ).toMatchObject({ kind: 'advance', to: 'deploy-staging' });
    expect(run(PLAN, task({ stage: 'deploy' }), { kind: 'stage_passed', job: job('deploy') })).toMatchObject({
      kind: 'land',
      job: { stage: 'deploy', step: 'land' },
    });
  });

  it('without a review stage, development’s gates judge the attempt', () => {
    const plan: Plan = { ...PLAN, stages: PLAN.stages.filter((s) => s.name !== 'review') };
    const d = run(plan, task(), {
      kind: 'stage_passed',
      job: job('development'),
      diffHash: 'D',
      totals: { inputTokens: 1, outputTokens: 2, costUsd: null, durationMs: 3 },
    });
    expect(d).toMatchObject({
      kind: 'advance',
      to: 'testing',
      attempt: { n: 1, verdict: 'approved', diffHash: 'D' },
    });
  });

  it('development over its budget escalates after the run, before review', () => {
    const t = task({
      budget: { maxAttempts: 3, maxTokens: 10, maxUsd: null, maxWallS: null },
      spend: { tokens: 20, usd: 0, wallS: 0, projectUsdToday: 0 },
    });
    expect(run(PLAN, t, { kind: 'stage_passed', job: job('development') })).toMatchObject({
      kind: 'escalate',
      reason: 'budget_exhausted',
    });
  });
});

describe('landing', () => {
  const land = job('deploy', { step: 'land' });
  it('landed is done; pending waits and polls; failed is a late failure', () => {
    expect(run(PLAN, task({ stage: 'deploy' }), { kind: 'landed', job: land })).toEqual({ kind: 'done' });
    expect(
      run(PLAN, task({ stage: 'deploy' }), { kind: 'land_pending', job: land, detail: 'CI', pollMs: 500 }),
    ).toMatchObject({ kind: 'wait', requeueInMs: 500 });
    expect(
      run(PLAN, task({ stage: 'deploy', attempts: [attempt(1, 'approved')] }), {
        kind: 'land_failed',
        job: land,
        gate: 'check_ci_green',
        output: 'red',
        feedback: 'CI red',
      }),
    ).toMatchObject({ kind: 'advance', to: 'development', feedback: 'CI red' });
  });
  it('a cancel that came first wins: the landing’s result is dropped', () => {
    expect(
      run(PLAN, task({ stage: 'cancelled', status: 'cancelled' }), { kind: 'landed', job: land }),
    ).toMatchObject({ kind: 'drop' });
  });
});

describe('a person’s commands', () => {
  it('approve resumes a waiting stage with its role’s job, and refuses anything else', () => {
    expect(
      run(PLAN, task({ stage: 'deploy', status: 'waiting', hasLiveJob: false }), {
        kind: 'approve',
        by: 'x',
      }),
    ).toEqual({
      kind: 'resume',
      job: { stage: 'deploy', step: 'work', agent: 'deployer', adapter: 'scripted' },
    });
    expect(
      run(PLAN, task({ stage: 'deploy', status: 'running' }), { kind: 'approve', by: 'x' }),
    ).toMatchObject({ kind: 'refuse' });
    // Waiting on CI (a job polls) is not waiting for a person.
    expect(
      run(PLAN, task({ stage: 'deploy', status: 'waiting', hasLiveJob: true }), { kind: 'approve', by: 'x' }),
    ).toMatchObject({ kind: 'refuse' });
    expect(
      run(PLAN, task({ stage: 'testing', status: 'waiting', hasLiveJob: false }), {
        kind: 'approve',
        by: 'x',
      }),
    ).toMatchObject({ kind: 'refuse' });
  });

  it('retry resumes an escalated task: a loop’s stop at development, others at their stage', () => {
    expect(
      run(PLAN, task({ stage: 'review', status: 'escalated', terminalReason: 'max_attempts' }), {
        kind: 'retry',
      }),
    ).toMatchObject({ kind: 'resume', job: { stage: 'development' } });
    expect(
      run(PLAN, task({ stage: 'testing', status: 'escalated', terminalReason: 'max_attempts' }), {
        kind: 'retry',
      }),
    ).toMatchObject({ kind: 'resume', job: { stage: 'development' } });
    expect(
      run(PLAN, task({ stage: 'testing', status: 'escalated', terminalReason: 'agent_failure' }), {
        kind: 'retry',
      }),
    ).toMatchObject({ kind: 'resume', job: { stage: 'testing', agent: 'tester' } });
    expect(run(PLAN, task({ status: 'running' }), { kind: 'retry' })).toMatchObject({ kind: 'refuse' });
  });

  it('cancel is final, and refused once a task is done or cancelled', () => {
    expect(run(PLAN, task({ stage: 'testing' }), { kind: 'cancel' })).toEqual({ kind: 'cancel' });
    expect(run(PLAN, task({ stage: 'done', status: 'done' }), { kind: 'cancel' })).toMatchObject({
      kind: 'refuse',
    });
    // Once the landing moves the base, the work is merged: a cancel then would be a lie.
    expect(run(PLAN, task({ stage: 'deploy', landing: true }), { kind: 'cancel' })).toMatchObject({
      kind: 'refuse',
      message: expect.stringContaining('is landing'),
    });
  });
});

describe('dependencies', () => {
  const blocked = {
    ready: false as const,
    detail: 'waiting for T-2 (development, running)',
    waitsOnPerson: false,
  };

  it('a task is not dispatched while a task it depends on is not done: it waits, blocked, with no job', () => {
    expect(run(PLAN, task({ stage: 'created', readiness: blocked }), claimed('created'))).toEqual({
      kind: 'wait',
      status: 'blocked',
      detail: blocked.detail,
      requeueInMs: null,
    });
    // A landing already under way is not held back.
    expect(
      run(PLAN, task({ stage: 'deploy', readiness: blocked }), claimed('deploy', { step: 'land' })),
    ).toMatchObject({ kind: 'work' });
  });

  it('when its blockers settle, a blocked task resumes at its stage once all are done, else says why now', () => {
    const waiting = task({ stage: 'created', status: 'blocked', hasLiveJob: false });
    expect(run(PLAN, waiting, { kind: 'blockers_changed' })).toEqual({
      kind: 'resume',
      job: jobFor(PLAN, 'created'),
    });
    const stuck = {
      ready: false as const,
      detail: 'blocked by T-2 (escalated: max_attempts)',
      waitsOnPerson: true,
    };
    expect(run(PLAN, { ...waiting, readiness: stuck }, { kind: 'blockers_changed' })).toMatchObject({
      kind: 'wait',
      status: 'blocked',
      detail: stuck.detail,
    });
    expect(run(PLAN, task({ status: 'running' }), { kind: 'blockers_changed' })).toMatchObject({
      kind: 'refuse',
    });
  });
});

describe('a review on the forge', () => {
  const land = job('deploy', { step: 'land' });
  const asked = (t: TaskState): Decision =>
    run(PLAN, t, {
      kind: 'changes_requested',
      job: land,
      url: 'http://pr/1',
      feedback: 'rename it',
      handled: ['review:1'],
    });

  it('changes requested judge the last attempt again: rejected, and back to development with the words', () => {
    const d = asked(task({ stage: 'deploy', attempts: [attempt(1, 'approved', 'A')] }));
    expect(d).toMatchObject({
      kind: 'advance',
      to: 'development',
      feedback: 'rename it',
      amend: { n: 1, verdict: 'rejected', reason: 'changes_requested', feedback: 'rename it' },
      review: { url: 'http://pr/1', handled: ['review:1'] },
    });
    expect((d as { attempt?: unknown }).attempt).toBeUndefined();
  });

  it('and as a review’s rejection would be: the same diff as the attempt before is no progress', () => {
    const t = task({ stage: 'deploy', attempts: [attempt(1, 'rejected', 'A'), attempt(2, 'approved', 'A')] });
    expect(asked(t)).toMatchObject({
      kind: 'escalate',
      reason: 'no_progress',
      amend: { n: 2, reason: 'no_progress' },
    });
    const used = task({
      stage: 'deploy',
      attempts: [attempt(1, 'rejected', 'A'), attempt(2, 'rejected', 'B'), attempt(3, 'approved', 'C')],
    });
    expect(asked(used)).toMatchObject({ kind: 'escalate', reason: 'max_attempts' });
  });
});

describe('development candidates', () => {
  const totals = { inputTokens: 30, outputTokens: 15, costUsd: 0.03, durationMs: 3000 };
  const cand = (
    n: number,
    result: 'passed' | 'gate_failed' | 'run_failed',
    gate: string | null = null,
  ): Extract<PipelineEvent, { kind: 'candidates_ran' }>['candidates'][number] => ({
    n,
    runId: 10 + n,
    result,
    gate,
    output: result === 'passed' ? '' : `out ${n}`,
    diffHash: result === 'run_failed' ? null : `h${n}`,
  });
  const ran = (
    candidates: Extract<PipelineEvent, { kind: 'candidates_ran' }>['candidates'],
    t: TaskState = task(),
    plan: Plan = PLAN,
  ): Decision => run(plan, t, { kind: 'candidates_ran', job: job('development'), candidates, totals });

  it('goes on to the review when one candidate passed, recording no attempt yet', () => {
    const d = ran([cand(1, 'gate_failed', 'check_x'), cand(2, 'passed'), cand(3, 'run_failed', 'failed')]);
    expect(d).toMatchObject({ kind: 'advance', to: 'review' });
    expect(d).not.toHaveProperty('attempt');
  });

  it('stops when the budget ran out, counting every candidate run', () => {
    const t = task({
      budget: { maxAttempts: 3, maxTokens: 100, maxUsd: null, maxWallS: null },
      spend: { tokens: 120, usd: 0, wallS: 0, projectUsdToday: 0 },
    });
    expect(ran([cand(1, 'passed')], t)).toMatchObject({ kind: 'escalate', reason: 'budget_exhausted' });
  });

  it('judges the attempt rejected with every failed gate as feedback when none passed', () => {
    const d = ran([
      cand(1, 'gate_failed', 'check_x'),
      cand(2, 'run_failed', 'failed'),
      cand(3, 'gate_failed', 'check_y'),
    ]);
    expect(d).toMatchObject({
      kind: 'advance',
      to: 'development',
      attempt: { n: 1, verdict: 'rejected', reason: 'check_x', diffHash: 'h1+h3', inputTokens: 30 },
    });
    const feedback = (d as Extract<Decision, { kind: 'advance' }>).feedback ?? '';
    expect(feedback).toContain('Candidate 1: the gate check_x failed');
    expect(feedback).toContain('Candidate 3: the gate check_y failed');
  });

  it('takes the same failing candidates twice as no progress', () => {
    const t = task({ attempts: [{ ...attempt(1, 'rejected'), diffHash: 'h1+h2' }] });
    expect(ran([cand(1, 'gate_failed', 'g'), cand(2, 'gate_failed', 'g')], t)).toMatchObject({
      kind: 'escalate',
      reason: 'no_progress',
    });
  });

  it('fails the try when every candidate run failed, and escalates a run over budget', () => {
    expect(ran([cand(1, 'run_failed', 'failed'), cand(2, 'run_failed', 'timeout')])).toMatchObject({
      kind: 'retry',
      count: 'failure',
    });
    expect(ran([cand(1, 'run_failed', 'over_budget')])).toMatchObject({
      kind: 'escalate',
      reason: 'budget_exhausted',
    });
  });

  it('escalates passing candidates when no review stage is left to choose one', () => {
    const noReview: Plan = { ...PLAN, stages: PLAN.stages.filter((s) => s.name !== 'review') };
    expect(ran([cand(1, 'passed')], task(), noReview)).toMatchObject({
      kind: 'escalate',
      reason: 'gate_failure',
    });
  });
});
