/**
 * The real Codex CLI run by orch as the developer, against a fake OpenAI
 * Responses API on loopback (a `local` model provider set with `-c` in the
 * role's `args`). One project, three tasks at once: a run that writes a file
 * with the shell tool, patches it with apply_patch and runs it; a 429 then
 * success; a 500 forever.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processesIn, type TempProject } from '../helpers/kit.ts';
import {
  startFakeResponses,
  type FakeResponses,
  type ResponsesUsage,
} from '../fakes/openai-responses-server.ts';
import { DEFAULT_PRICES, costAt } from '../../src/agents/prices.ts';
import {
  CHECK_COMMAND,
  FEATURE_DONE,
  agentHome,
  closeAll,
  developerProject,
  expectDoneInOneRun,
  expectEscalatedInDevelopment,
  expectFeatureDone,
  expectScriptedRun,
  lastLogged,
  requestsOf,
  runScriptedTasks,
  sumOf,
  type OrchResult,
} from './cli-kit.ts';

const TASKS = {
  happy: { title: 'Add the feature module', marker: 'conversation:happy' },
  rateLimited: { title: 'Rate limited once', marker: 'conversation:rate-limited' },
  down: { title: 'Model API down', marker: 'conversation:down' },
} as const;

const TURN_USAGE: ResponsesUsage[] = [
  { input_tokens: 2000, cached_tokens: 1500, output_tokens: 200, reasoning_tokens: 50 },
  { input_tokens: 2100, cached_tokens: 2000, output_tokens: 150, reasoning_tokens: 40 },
  { input_tokens: 2200, cached_tokens: 2100, output_tokens: 120 },
  { input_tokens: 2300, cached_tokens: 2200, output_tokens: 60 },
];
const sum = sumOf(TURN_USAGE);
const small: ResponsesUsage = { input_tokens: 10, output_tokens: 5 };
const PATCH = [
  '*** Begin Patch',
  '*** Update File: src/feature.mjs',
  '@@',
  '-export const feature = () => 1;',
  '+export const feature = () => 2;',
  '*** End Patch',
  '',
].join('\n');

let fake: FakeResponses;
let project: TempProject;
let run: OrchResult;

beforeAll(async () => {
  fake = await startFakeResponses([
    {
      match: TASKS.happy.marker,
      turns: [
        {
          output: [
            { type: 'message', text: 'Writing the module.' },
            {
              type: 'function_call',
              name: 'exec_command',
              arguments: {
                cmd: "mkdir -p src && printf 'export const feature = () => 1;\\n' > src/feature.mjs",
              },
            },
          ],
          usage: TURN_USAGE[0]!,
        },
        { output: [{ type: 'custom_tool_call', name: 'apply_patch', input: PATCH }], usage: TURN_USAGE[1]! },
        {
          output: [
            {
              type: 'function_call',
              name: 'exec_command',
              arguments: {
                cmd: CHECK_COMMAND,
              },
            },
          ],
          usage: TURN_USAGE[2]!,
        },
        { output: [{ type: 'message', text: FEATURE_DONE }], usage: TURN_USAGE[3]! },
      ],
    },
    {
      match: TASKS.rateLimited.marker,
      turns: [
        {
          faults: [{ kind: 'status', status: 429, retryAfterS: 1 }],
          output: [
            { type: 'function_call', name: 'exec_command', arguments: { cmd: 'echo limited > limited.txt' } },
          ],
          usage: small,
        },
        { output: [{ type: 'message', text: 'Done after a retry.' }], usage: small },
      ],
    },
    { match: TASKS.down.marker, turns: [], always: { kind: 'status', status: 500 } },
  ]);
  const home = agentHome();
  const provider = `model_providers.local={name="local",base_url="${fake.url}",wire_api="responses",env_key="OPENAI_API_KEY",request_max_retries=1,stream_max_retries=1}`;
  project = developerProject(
    {
      adapter: 'codex',
      model: 'gpt-5.5',
      effort: 'max',
      args: ['-c', 'model_provider=local', '-c', provider],
      env: { HOME: home, CODEX_HOME: home, OPENAI_API_KEY: 'sk-fake-key-for-tests' },
    },
    { retry: { max_retries: 1, base_ms: 100, max_ms: 500 } },
  );
  run = await runScriptedTasks(project, TASKS);
}, 170_000);

afterAll(() => closeAll(fake, project));

const conversationOf = (marker: string) => requestsOf(fake.requests, TASKS, marker);

describe('Codex through orch, against a fake Responses API', () => {
  it('runs every task to its end, every request answered by the script, no process left', () => {
    expectScriptedRun(run, fake.requests);
    expect(processesIn(project.dir)).toEqual([]);
  });

  it('commits what the CLI wrote, patched and ran; records its tokens, and prices them from the table', async () => {
    const r = await expectFeatureDone(project, TASKS.happy.title, {
      adapter: 'codex',
      model: 'gpt-5.5',
      effort: 'max',
    });
    // What the CLI reported: turn.completed usage, input including the cached part.
    const reported = lastLogged(r!, 'turn.completed') as { usage: Record<string, number> };
    expect(reported.usage).toMatchObject({
      input_tokens: sum((u) => u.input_tokens),
      cached_input_tokens: sum((u) => u.cached_tokens),
      output_tokens: sum((u) => u.output_tokens),
    });
    const tokens = {
      inputTokens: reported.usage.input_tokens! - reported.usage.cached_input_tokens!,
      cacheReadTokens: reported.usage.cached_input_tokens!,
      outputTokens: reported.usage.output_tokens!,
      cacheWriteTokens: 0,
    };
    expect(r).toMatchObject({
      input_tokens: tokens.inputTokens,
      cache_read_tokens: tokens.cacheReadTokens,
      output_tokens: tokens.outputTokens,
      cost_usd: costAt(tokens, DEFAULT_PRICES['gpt-5.5']!),
      session_id: (lastLogged(r!, 'thread.started') as { thread_id: string }).thread_id,
      result_text: FEATURE_DONE,
    });
    // 8600 input of which 7800 cached, 530 output, at $5 / $0.50 / $30 per million.
    expect(r!.cost_usd).toBeCloseTo((800 * 5 + 7800 * 0.5 + 530 * 30) / 1e6, 10);

    // The stamp reached the CLI: max effort is the Responses API's xhigh.
    const asked = conversationOf(TASKS.happy.marker).map((q) => {
      const body = q.body as { model: string; reasoning?: { effort?: string } };
      return `${body.model} ${body.reasoning?.effort}`;
    });
    expect(asked).toEqual(Array(4).fill('gpt-5.5 xhigh'));
  });

  it('sees a 429 retried by the CLI and records the retry', async () => {
    const { dev, events } = await expectDoneInOneRun(
      project,
      TASKS.rateLimited.title,
      'limited.txt',
      'limited\n',
    );
    const retries = events.filter((e) => e.kind === 'agent_retry');
    expect(retries).toHaveLength(1);
    expect(retries[0]!.payload).toMatchObject({ run_id: dev[0]!.id, attempt: 1 });
    expect(String(retries[0]!.payload.error)).toContain('429');
  });

  it('fails cleanly on a 500 forever: retried by orch per policy, then escalated as agent_failure', async () => {
    const { dev, events } = await expectEscalatedInDevelopment(project, TASKS.down.title);
    expect(dev).toHaveLength(2);
    for (const r of dev) {
      expect(r.outcome).toBe('failed');
      expect(r.exit_code).toBe(1);
      expect(r.result_text).toMatch(/high demand/);
    }
    expect(conversationOf(TASKS.down.marker).length).toBeGreaterThanOrEqual(4);
    expect(events.filter((e) => e.kind === 'agent_retry').length).toBeGreaterThanOrEqual(2);
  });
});
