/**
 * Usage limits pause, never fail: the real Claude Code and Codex CLIs, run by
 * orch against fake model APIs on loopback that refuse work for a usage limit.
 * - Claude Code on a subscription (`CLAUDE_CODE_OAUTH_TOKEN`): the fake answers
 *   429 with the unified rate-limit headers and a reset a few seconds ahead.
 *   The task waits, no request reaches the API before the reset, and the task
 *   finishes after it, with the limited run not counted (`max_retries: 0`).
 * - Codex with an API key: 429s until its retries run out ("exceeded retry
 *   limit, last status: 429"), no reset named: the doubling backoff pauses it.
 * - Codex on a subscription: `usage_limit_reached` with `resets_at` two hours
 *   ahead: the pause ends at the reset Codex prints (to the minute), shown by
 *   `orch status` with the task's status line.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { TempProject } from '../helpers/kit.ts';
import { startFakeAnthropic, type FakeAnthropic } from '../fakes/anthropic-server.ts';
import { startFakeResponses, type FakeResponses } from '../fakes/openai-responses-server.ts';
import { agentHome, closeAll, developerProject, isRoot, runOrch, taskRuns } from './cli-kit.ts';

const small = { input_tokens: 10, output_tokens: 5 };
let fake: FakeAnthropic | FakeResponses | undefined;
let project: TempProject | undefined;

afterEach(async () => {
  await closeAll(fake, project, { killLeftovers: true });
  fake = undefined;
  project = undefined;
});

/** The status JSON of the project's home, read without blocking the fakes in this process. */
async function status(p: TempProject): Promise<{ paused_adapters: Record<string, unknown>[] }> {
  const res = await runOrch(p, ['status', '--json'], { timeoutMs: 20_000 });
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as { paused_adapters: Record<string, unknown>[] };
}

/** Polls until `check` returns a value, or fails after `ms`. */
async function eventually<T>(check: () => Promise<T | null>, ms: number): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== null) return value;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 200));
  }
}

const addTask = (p: TempProject, title: string, marker: string) => {
  const added = p.orch(['task', 'add', title, '--description', `Scripted by the fake (${marker}).`]);
  expect(added.code, added.stderr).toBe(0);
};

describe('Claude Code on a subscription hits its 5-hour limit', () => {
  it('pauses the adapter until the reset, starts nothing before it, then finishes uncounted', async () => {
    // The reset is 8 s after the refusal, in whole seconds as Claude Code reads it.
    let resetS = 0;
    const limit = {
      kind: 'status' as const,
      status: 429,
      retryAfterS: 8,
      headers: () => {
        resetS = Math.ceil((Date.now() + 8_000) / 1000);
        return {
          'anthropic-ratelimit-unified-status': 'rejected',
          'anthropic-ratelimit-unified-reset': String(resetS),
          'anthropic-ratelimit-unified-representative-claim': 'five_hour',
        };
      },
      body: { type: 'error', error: { type: 'rate_limit_error', message: 'usage limit reached' } },
    };
    const write = (file: string) => ({
      content: [
        { type: 'tool_use' as const, name: 'Write', input: { file_path: file, content: `${file}\n` } },
      ],
      usage: small,
    });
    fake = await startFakeAnthropic([
      {
        match: 'conversation:limited',
        turns: [
          { ...write('limited.txt'), faults: [limit] },
          { content: [{ type: 'text', text: 'Done.' }], usage: small },
        ],
      },
      {
        match: 'conversation:other',
        turns: [write('other.txt'), { content: [{ type: 'text', text: 'Done too.' }], usage: small }],
      },
    ]);
    const home = agentHome();
    project = developerProject(
      {
        adapter: 'claude-code',
        env: {
          HOME: home,
          ANTHROPIC_BASE_URL: fake.url,
          CLAUDE_CODE_OAUTH_TOKEN: 'sk-ant-oat-fake-token-for-tests',
          CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
          CLAUDE_CODE_MAX_RETRIES: '1',
          ...(isRoot() ? { IS_SANDBOX: '1' } : {}),
        },
      },
      // A limited run counted as a failure would escalate at once.
      { retry: { max_retries: 0, base_ms: 100, max_ms: 500 } },
    );
    addTask(project, 'Limited', 'conversation:limited');
    addTask(project, 'Other', 'conversation:other');
    const running = runOrch(project, ['run', '--until-idle'], { env: { ORCH_CONCURRENCY: '1' } });

    // While paused: `orch status` names the adapter, its window and when it resumes.
    const p = project;
    const paused = await eventually(async () => (await status(p)).paused_adapters[0] ?? null, 60_000);
    expect(paused).toMatchObject({
      adapter: 'claude-code',
      window: 'five_hour',
      task: expect.stringMatching(/-1$/),
    });
    expect(paused.credential).toMatch(/^env:[0-9a-f]{12}$/);
    const until = Date.parse(paused.until as string);
    expect(until).toBeGreaterThanOrEqual(resetS * 1000);
    expect(until).toBeLessThan(resetS * 1000 + 5_000);

    const run = await running;
    expect(run.code, run.stderr).toBe(0);

    const limited = await taskRuns(project, 'Limited');
    const other = await taskRuns(project, 'Other');
    expect(limited.task.status).toBe('done');
    expect(other.task.status).toBe('done');
    expect(limited.dev.map((r) => r.outcome)).toEqual(['usage_limited', 'ok']);
    expect(limited.dev[0]!.error).toMatch(/limit/);
    // The task waited with the reset in its status line, and the pause was announced once.
    const waited = limited.events.find((e) => e.kind === 'waiting');
    expect(String(waited?.payload.detail)).toMatch(
      /^usage limit of claude-code \(five_hour\): resumes at \d\d:\d\d UTC$/,
    );
    const announced = [...limited.events, ...other.events].filter((e) => e.kind === 'usage_limited');
    expect(announced).toHaveLength(1);
    expect(announced[0]!.payload).toMatchObject({ adapter: 'claude-code', window: 'five_hour' });
    // Nothing reached the API between the refusal and the reset: not this task's retry, not the other task.
    const refused = fake.requests.find((r) => r.served === 'fault')!;
    const during = fake.requests.filter((r) => r.at > refused.at && r.at < resetS * 1000);
    expect(during).toEqual([]);
    expect(fake.requests.filter((r) => r.at > refused.at && r.served === 'turn').length).toBeGreaterThan(0);
  }, 180_000);
});

/** A project whose developer is the real Codex CLI against the fake Responses API. */
function codexProject(url: string, config: Record<string, unknown> = {}): TempProject {
  const home = agentHome();
  const provider = `model_providers.local={name="local",base_url="${url}",wire_api="responses",env_key="OPENAI_API_KEY",request_max_retries=1,stream_max_retries=1}`;
  return developerProject(
    {
      adapter: 'codex',
      args: ['-c', 'model_provider=local', '-c', provider],
      env: { HOME: home, CODEX_HOME: home, OPENAI_API_KEY: 'sk-fake-key-for-tests' },
    },
    { retry: { max_retries: 0, base_ms: 100, max_ms: 500 }, ...config },
  );
}

describe('Codex', () => {
  it('with an API key, 429s until its retries run out: paused by the backoff, then done, uncounted', async () => {
    fake = await startFakeResponses([
      {
        match: 'conversation:codex-429',
        turns: [
          {
            faults: [
              { kind: 'status', status: 429 },
              { kind: 'status', status: 429 },
            ],
            output: [{ type: 'function_call', name: 'exec_command', arguments: { cmd: 'echo ok > ok.txt' } }],
            usage: small,
          },
          { output: [{ type: 'message', text: 'Done after the limit.' }], usage: small },
        ],
      },
    ]);
    project = codexProject(fake.url);
    addTask(project, 'Rate limited', 'conversation:codex-429');
    const run = await runOrch(project, ['run', '--until-idle'], {
      env: { ORCH_USAGE_LIMIT_BACKOFF_S: '3' },
    });
    expect(run.code, run.stderr).toBe(0);
    const runs = await taskRuns(project, 'Rate limited');
    expect(runs.task.status).toBe('done');
    // Each run that Codex gave up on for the 429 was paused for, uncounted; then the one after ran.
    const outcomes = runs.dev.map((r) => r.outcome);
    expect(outcomes.at(-1)).toBe('ok');
    expect(outcomes.slice(0, -1)).toContain('usage_limited');
    expect(new Set(outcomes.slice(0, -1))).toEqual(new Set(['usage_limited']));
    expect(runs.dev[0]!.error).toMatch(/429/);
    const detail = String(runs.events.find((e) => e.kind === 'waiting')?.payload.detail);
    expect(detail).toMatch(/^usage limit of codex: resumes at \d\d:\d\d UTC$/);
    // The next request came no sooner than the backoff after the last refused one.
    const faults = fake.requests.filter((r) => r.served === 'fault');
    const next = fake.requests.find((r) => r.at > faults.at(-1)!.at && r.served === 'turn')!;
    expect(next.at - faults.at(-1)!.at).toBeGreaterThanOrEqual(3_000);
  }, 180_000);

  it('on a subscription, "try again at" pauses the adapter until the reset it names', async () => {
    const resetS = Math.floor(Date.now() / 1000) + 2 * 3600;
    fake = await startFakeResponses([
      {
        match: 'conversation:codex-usage',
        turns: [],
        always: {
          kind: 'status',
          status: 429,
          body: {
            error: {
              type: 'usage_limit_reached',
              message: 'The usage limit has been reached',
              plan_type: 'plus',
              resets_at: resetS,
            },
          },
        },
      },
    ]);
    project = codexProject(fake.url);
    addTask(project, 'Subscription limited', 'conversation:codex-usage');
    const running = runOrch(project, ['run']);
    const p = project;
    const paused = await eventually(async () => (await status(p)).paused_adapters[0] ?? null, 60_000);
    // Codex prints the reset to the minute: the pause ends within that minute, never before it.
    const until = Date.parse(paused.until as string);
    expect(until).toBeGreaterThanOrEqual(Math.floor(resetS / 60) * 60_000);
    expect(until).toBeLessThanOrEqual((Math.floor(resetS / 60) + 1) * 60_000 + 2_000);
    expect(paused).toMatchObject({ adapter: 'codex', credential: expect.stringMatching(/^env:/) });
    expect(String(paused.message)).toMatch(/hit your usage limit/);
    const runs = await taskRuns(p, 'Subscription limited');
    expect(runs.dev.map((r) => r.outcome)).toEqual(['usage_limited']);
    expect(runs.task.status).toBe('waiting');
    expect(runs.task.status_detail).toMatch(/^usage limit of codex: resumes at \d\d:\d\d UTC$/);
    const refusals = fake.requests.length;
    // orch does not call the API again while paused; SIGTERM ends it cleanly.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(fake.requests.length).toBe(refusals);
    const pidOf = (await import('../helpers/kit.ts')).processesIn;
    for (const pid of pidOf(p.dir)) process.kill(pid, 'SIGTERM');
    await running;
  }, 180_000);
});
