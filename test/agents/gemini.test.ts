/**
 * The real Gemini CLI run by orch as the developer, against a fake Gemini API
 * on loopback (`GOOGLE_GEMINI_BASE_URL`). Two tasks at once: a run that writes
 * a file, replaces text in it and runs it; a 429 then success, a retry the
 * CLI reports only on stderr.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processesIn, type TempProject } from '../helpers/kit.ts';
import { startFakeGemini, type FakeGemini, type GeminiUsage } from '../fakes/gemini-server.ts';
import { DEFAULT_PRICES, costAt } from '../../src/agents/prices.ts';
import {
  CHECK_COMMAND,
  FEATURE_DONE,
  FEATURE_V1,
  agentHome,
  closeAll,
  developerProject,
  expectDoneInOneRun,
  expectFeatureDone,
  expectScriptedRun,
  lastLogged,
  runScriptedTasks,
  sumOf,
  type OrchResult,
} from './cli-kit.ts';

const TASKS = {
  happy: { title: 'Add the feature module', marker: 'conversation:happy' },
  rateLimited: { title: 'Rate limited once', marker: 'conversation:rate-limited' },
} as const;

const TURN_USAGE: GeminiUsage[] = [
  {
    promptTokenCount: 3000,
    candidatesTokenCount: 200,
    cachedContentTokenCount: 1000,
    thoughtsTokenCount: 100,
  },
  {
    promptTokenCount: 3300,
    candidatesTokenCount: 150,
    cachedContentTokenCount: 2000,
    thoughtsTokenCount: 40,
  },
  { promptTokenCount: 3500, candidatesTokenCount: 100, cachedContentTokenCount: 3000 },
  { promptTokenCount: 3600, candidatesTokenCount: 50, cachedContentTokenCount: 3000 },
];
const sum = sumOf(TURN_USAGE);
const small: GeminiUsage = { promptTokenCount: 10, candidatesTokenCount: 5 };

let fake: FakeGemini;
let project: TempProject;
let run: OrchResult;

beforeAll(async () => {
  fake = await startFakeGemini([
    {
      match: TASKS.happy.marker,
      turns: [
        {
          parts: [
            { text: 'Writing the module.' },
            {
              functionCall: {
                name: 'write_file',
                args: { file_path: 'src/feature.mjs', content: FEATURE_V1 },
              },
            },
          ],
          usage: TURN_USAGE[0]!,
        },
        {
          parts: [
            {
              functionCall: {
                name: 'replace',
                args: {
                  file_path: 'src/feature.mjs',
                  old_string: '=> 1',
                  new_string: '=> 2',
                  instruction: 'return 2',
                },
              },
            },
          ],
          usage: TURN_USAGE[1]!,
        },
        {
          parts: [
            {
              functionCall: {
                name: 'run_shell_command',
                args: {
                  command: CHECK_COMMAND,
                  description: 'Check the feature',
                },
              },
            },
          ],
          usage: TURN_USAGE[2]!,
        },
        { parts: [{ text: FEATURE_DONE }], usage: TURN_USAGE[3]! },
      ],
    },
    {
      match: TASKS.rateLimited.marker,
      turns: [
        {
          faults: [{ kind: 'status', status: 429 }],
          parts: [
            {
              functionCall: { name: 'write_file', args: { file_path: 'limited.txt', content: 'limited\n' } },
            },
          ],
          usage: small,
        },
        { parts: [{ text: 'Done after a retry.' }], usage: small },
      ],
    },
  ]);
  // With a base URL, Gemini CLI needs the API-key auth type chosen in its settings.
  const home = agentHome({
    '.gemini/settings.json': { security: { auth: { selectedType: 'gemini-api-key' } } },
  });
  project = developerProject({
    adapter: 'gemini',
    model: 'gemini-2.5-pro',
    env: { HOME: home, GEMINI_API_KEY: 'fake-gemini-key-for-tests', GOOGLE_GEMINI_BASE_URL: fake.url },
  });
  run = await runScriptedTasks(project, TASKS);
}, 170_000);

afterAll(() => closeAll(fake, project));

describe('Gemini CLI through orch, against a fake Gemini API', () => {
  it('runs every task to its end, every request answered by the script, no process left', () => {
    expectScriptedRun(run, fake.requests);
    expect(processesIn(project.dir)).toEqual([]);
  });

  it('commits what the CLI wrote, replaced and ran; records its tokens, and prices them from the table', async () => {
    const r = await expectFeatureDone(project, TASKS.happy.title, {
      adapter: 'gemini',
      model: 'gemini-2.5-pro',
      effort: 'xhigh',
    });
    const { stats } = lastLogged(r!, 'result') as { stats: Record<string, number> };
    expect(stats).toMatchObject({
      input_tokens: sum((u) => u.promptTokenCount),
      cached: sum((u) => u.cachedContentTokenCount),
      output_tokens: sum((u) => u.candidatesTokenCount),
    });
    // Thinking tokens are only in the CLI's total; they are billed as output.
    const tokens = {
      inputTokens: stats.input!,
      cacheReadTokens: stats.cached!,
      outputTokens: stats.output_tokens! + sum((u) => u.thoughtsTokenCount),
      cacheWriteTokens: 0,
    };
    expect(stats.total_tokens! - stats.input_tokens! - stats.output_tokens!).toBe(
      sum((u) => u.thoughtsTokenCount),
    );
    expect(r).toMatchObject({
      input_tokens: tokens.inputTokens,
      cache_read_tokens: tokens.cacheReadTokens,
      output_tokens: tokens.outputTokens,
      cost_usd: costAt(tokens, DEFAULT_PRICES['gemini-2.5-pro']!),
      session_id: (lastLogged(r!, 'init') as { session_id: string }).session_id,
      result_text: FEATURE_DONE,
    });
    expect(
      fake.requests
        .filter((q) => q.served === 'turn')
        .every((q) => q.path.includes('/models/gemini-2.5-pro:')),
    ).toBe(true);
  });

  it('records the retry the CLI reported on stderr after a 429', async () => {
    const { dev, events } = await expectDoneInOneRun(
      project,
      TASKS.rateLimited.title,
      'limited.txt',
      'limited\n',
    );
    expect(events.filter((e) => e.kind === 'agent_retry').map((e) => e.payload)).toEqual([
      expect.objectContaining({ run_id: dev[0]!.id, attempt: 1, error: 'HTTP 429' }),
    ]);
  });
});
