/**
 * The real Claude Code CLI run by orch as the developer, against a fake
 * Anthropic Messages API on loopback. One project, five tasks worked at once
 * by `orch run --until-idle`; each task's description picks its conversation
 * on the fake: a plain run that writes, edits and runs a command; a 429 then
 * success; a 500 forever; a stream that stops mid-message; a result followed
 * by a hang (a SessionEnd hook that sleeps).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processesIn, type TempProject } from '../helpers/kit.ts';
import { startFakeAnthropic, type AnthropicUsage, type FakeAnthropic } from '../fakes/anthropic-server.ts';
import { pidNamespaceAvailable } from '../../src/runtime/process/run-agent-process.ts';
import {
  CHECK_COMMAND,
  FEATURE_DONE,
  FEATURE_V1,
  agentHome,
  closeAll,
  developerProject,
  expectDoneInOneRun,
  expectEscalatedInDevelopment,
  expectFeatureDone,
  expectScriptedRun,
  isRoot,
  lastLogged,
  requestsOf,
  runScriptedTasks,
  sumOf,
  taskRuns,
  type OrchResult,
} from './cli-kit.ts';

const STALL_TIMEOUT_S = 8;
// After the result line the stall watchdog still runs: it must outlast the grace.
const RESULT_GRACE_MS = 2_000;
const TASKS = {
  happy: { title: 'Add the feature module', marker: 'conversation:happy' },
  rateLimited: { title: 'Rate limited once', marker: 'conversation:rate-limited' },
  down: { title: 'Model API down', marker: 'conversation:down' },
  stalled: { title: 'Stream stalls once', marker: 'conversation:stalled' },
  hang: { title: 'Hangs after its result', marker: 'conversation:hang' },
} as const;

const TURN_USAGE: AnthropicUsage[] = [
  { input_tokens: 1200, output_tokens: 300, cache_read_input_tokens: 5000, cache_creation_input_tokens: 800 },
  { input_tokens: 40, output_tokens: 120, cache_read_input_tokens: 6100 },
  { input_tokens: 35, output_tokens: 90, cache_read_input_tokens: 6300 },
  { input_tokens: 20, output_tokens: 60, cache_read_input_tokens: 6500 },
];
const sum = sumOf(TURN_USAGE);
const small: AnthropicUsage = { input_tokens: 10, output_tokens: 5 };

let fake: FakeAnthropic;
let project: TempProject;
let run: OrchResult;
// Claude Code starts hooks in a session of their own: only a PID namespace ends a hook that outlives it.
const pidNamespace = await pidNamespaceAvailable();

beforeAll(async () => {
  fake = await startFakeAnthropic([
    {
      match: TASKS.happy.marker,
      turns: [
        {
          content: [
            { type: 'text', text: 'Writing the module.' },
            {
              type: 'tool_use',
              name: 'Write',
              input: { file_path: 'src/feature.mjs', content: FEATURE_V1 },
            },
          ],
          usage: TURN_USAGE[0]!,
        },
        {
          content: [
            {
              type: 'tool_use',
              name: 'Edit',
              input: { file_path: 'src/feature.mjs', old_string: '=> 1', new_string: '=> 2' },
            },
          ],
          usage: TURN_USAGE[1]!,
        },
        {
          content: [
            {
              type: 'tool_use',
              name: 'Bash',
              input: {
                command: CHECK_COMMAND,
                description: 'Check the feature',
              },
            },
          ],
          usage: TURN_USAGE[2]!,
        },
        { content: [{ type: 'text', text: FEATURE_DONE }], usage: TURN_USAGE[3]! },
      ],
    },
    {
      match: TASKS.rateLimited.marker,
      turns: [
        {
          faults: [{ kind: 'status', status: 429, retryAfterS: 1 }],
          content: [
            {
              type: 'tool_use',
              name: 'Write',
              input: { file_path: 'limited.txt', content: 'written after a 429\n' },
            },
          ],
          usage: small,
        },
        { content: [{ type: 'text', text: 'Done after a retry.' }], usage: small },
      ],
    },
    { match: TASKS.down.marker, turns: [], always: { kind: 'status', status: 500 } },
    {
      match: TASKS.stalled.marker,
      turns: [
        {
          faults: [{ kind: 'stall' }],
          content: [
            {
              type: 'tool_use',
              name: 'Write',
              input: { file_path: 'after-stall.txt', content: 'second try\n' },
            },
          ],
          usage: small,
        },
        { content: [{ type: 'text', text: 'Done on the second try.' }], usage: small },
      ],
    },
    {
      match: TASKS.hang.marker,
      turns: [
        {
          content: [
            {
              type: 'tool_use',
              name: 'Write',
              input: { file_path: 'hung.txt', content: 'written before the hang\n' },
            },
          ],
          usage: small,
        },
        { content: [{ type: 'text', text: 'Done, then my SessionEnd hook hangs.' }], usage: small },
      ],
    },
  ]);

  // The CLI's own HOME: no login or setting of this machine, and a SessionEnd hook that hangs for one task.
  const hook = 'case "$ORCH_TASK_TITLE" in *Hangs*) sleep 60 ;; esac';
  const home = agentHome({
    '.claude/settings.json': { hooks: { SessionEnd: [{ hooks: [{ type: 'command', command: hook }] }] } },
  });
  project = developerProject(
    {
      adapter: 'claude-code',
      effort: 'max',
      pid_namespace: pidNamespace,
      env: {
        HOME: home,
        ANTHROPIC_BASE_URL: fake.url,
        ANTHROPIC_API_KEY: 'sk-ant-fake-key-for-tests',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        CLAUDE_CODE_MAX_RETRIES: '1',
        CLAUDE_CODE_SESSIONEND_HOOKS_TIMEOUT_MS: '120000',
        ...(isRoot() ? { IS_SANDBOX: '1' } : {}),
      },
    },
    {
      timeouts: { stall_timeout_s: STALL_TIMEOUT_S, agent_kill_grace_seconds: 1 },
      retry: { max_retries: 1, base_ms: 100, max_ms: 500 },
    },
  );
  run = await runScriptedTasks(project, TASKS, { ORCH_RESULT_GRACE_MS: String(RESULT_GRACE_MS) });
}, 170_000);

afterAll(() => closeAll(fake, project, { killLeftovers: true }));

const conversationOf = (marker: string) => requestsOf(fake.requests, TASKS, marker);

describe('Claude Code through orch, against a fake Anthropic API', () => {
  it('runs every task to its end, every request answered by the script', () => {
    expectScriptedRun(run, fake.requests);
  });

  it.runIf(pidNamespace)(
    'leaves no process behind, not even the hook that escaped into its own session',
    () => {
      expect(processesIn(project.dir)).toEqual([]);
    },
  );

  it('commits what the CLI wrote, edited and ran, and records its tokens and cost exactly', async () => {
    const r = await expectFeatureDone(project, TASKS.happy.title, {
      adapter: 'claude-code',
      model: 'claude-opus-4-8',
      effort: 'max',
    });
    expect(project.git(['log', '--format=%s', 'main', '--', 'check.txt']).trim()).toMatch(
      /^T-\d+: development \(developer, run \d+\)$/,
    );
    const result = lastLogged(r!, 'result') as {
      total_cost_usd: number;
      session_id: string;
      num_turns: number;
      usage: Record<string, number>;
    };
    expect(result.total_cost_usd).toBeGreaterThan(0);
    expect(r).toMatchObject({
      input_tokens: sum((u) => u.input_tokens),
      output_tokens: sum((u) => u.output_tokens),
      cache_read_tokens: sum((u) => u.cache_read_input_tokens),
      cache_write_tokens: sum((u) => u.cache_creation_input_tokens),
      cost_usd: result.total_cost_usd,
      session_id: result.session_id,
      num_turns: 4,
      result_text: FEATURE_DONE,
    });
    expect(result.usage.input_tokens).toBe(r!.input_tokens);

    // The stamp reached the CLI: every model request asked for the stamped model at the stamped effort.
    const asked = conversationOf(TASKS.happy.marker).map((q) => {
      const body = q.body as { model: string; output_config?: { effort?: string } };
      return `${body.model} ${body.output_config?.effort}`;
    });
    expect(asked).toEqual(Array(4).fill('claude-opus-4-8 max'));
  });

  it('sees a 429 retried by the CLI and records the retry', async () => {
    const { dev, events } = await expectDoneInOneRun(
      project,
      TASKS.rateLimited.title,
      'limited.txt',
      'written after a 429\n',
    );
    const retries = events.filter((e) => e.kind === 'agent_retry');
    expect(retries).toEqual([
      {
        kind: 'agent_retry',
        payload: expect.objectContaining({
          run_id: dev[0]!.id,
          role: 'developer',
          attempt: 1,
          error: 'rate_limit (HTTP 429)',
        }) as object,
      },
    ]);
    expect(retries[0]!.payload.delay_ms).toBeGreaterThanOrEqual(1000);
    expect(conversationOf(TASKS.rateLimited.marker).map((q) => q.served)).toEqual(['fault', 'turn', 'turn']);
  });

  it('fails cleanly on a 500 forever: retried by orch per policy, then escalated as agent_failure', async () => {
    const { dev, events } = await expectEscalatedInDevelopment(project, TASKS.down.title);
    // max_retries 1: the first run and one retry, neither advancing the task.
    expect(dev).toHaveLength(2);
    for (const r of dev) {
      expect(r.outcome).not.toBe('ok');
      expect(r.exit_code).toBe(1);
      expect(r.result_text).toMatch(/^API Error: 500/);
    }
    // Each run: the request and the one retry CLAUDE_CODE_MAX_RETRIES allows.
    expect(conversationOf(TASKS.down.marker)).toHaveLength(4);
    expect(events.filter((e) => e.kind === 'agent_retry')).toHaveLength(2);
  });

  it('ends a stream that stops mid-message with the stall watchdog, and the retry finishes the task', async () => {
    const { task, dev } = await taskRuns(project, TASKS.stalled.title);
    expect(task.status).toBe('done');
    expect(dev.map((r) => r.outcome)).toEqual(['stalled', 'ok']);
    const [stalled] = dev;
    const seconds = (Date.parse(stalled!.finished_at!) - Date.parse(stalled!.started_at!)) / 1000;
    expect(seconds).toBeGreaterThanOrEqual(STALL_TIMEOUT_S);
    expect(seconds).toBeLessThan(STALL_TIMEOUT_S + 15);
    expect(stalled!.error).toMatch(/^stalled/);
    expect(project.git(['show', 'main:after-stall.txt'])).toBe('second try\n');
  });

  it('ends a CLI that hangs after its result once the grace is over, and counts the run as finished', async () => {
    const { task, dev } = await taskRuns(project, TASKS.hang.title);
    expect(task.status).toBe('done');
    expect(dev).toHaveLength(1);
    const [r] = dev;
    expect(r).toMatchObject({ outcome: 'ok', result_text: 'Done, then my SessionEnd hook hangs.' });
    expect(r!.exit_code).not.toBe(0);
    const ms = Date.parse(r!.finished_at!) - Date.parse(r!.started_at!);
    expect(ms).toBeGreaterThanOrEqual(RESULT_GRACE_MS);
    expect(ms).toBeLessThan(RESULT_GRACE_MS + 15_000);
    expect(project.git(['show', 'main:hung.txt'])).toBe('written before the hang\n');
  });
});
