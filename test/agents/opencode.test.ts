/**
 * The real OpenCode CLI run by orch as the developer. OpenCode speaks to
 * Anthropic through its bundled provider, so it is pointed at the same fake
 * Anthropic Messages API as Claude Code (`provider.anthropic.options.baseURL`
 * in OPENCODE_CONFIG_CONTENT). Two tasks at once: a run that writes, edits
 * and runs a command; a model API error OpenCode does not retry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentRun } from '../../src/store/schema.ts';
import { readFileSync } from 'node:fs';
import { processesIn, type TempProject } from '../helpers/kit.ts';
import { startFakeAnthropic, type AnthropicUsage, type FakeAnthropic } from '../fakes/anthropic-server.ts';
import {
  CHECK_COMMAND,
  FEATURE_DONE,
  FEATURE_V1,
  agentHome,
  closeAll,
  developerProject,
  expectFeatureDone,
  expectScriptedRun,
  loggedObjects,
  runScriptedTasks,
  sumOf,
  taskRuns,
  type OrchResult,
} from './cli-kit.ts';

const TASKS = {
  happy: { title: 'Add the feature module', marker: 'conversation:happy' },
  rejected: { title: 'Request rejected', marker: 'conversation:rejected' },
} as const;

const TURN_USAGE: AnthropicUsage[] = [
  { input_tokens: 900, output_tokens: 250, cache_read_input_tokens: 4000, cache_creation_input_tokens: 600 },
  { input_tokens: 30, output_tokens: 100, cache_read_input_tokens: 4600 },
  { input_tokens: 25, output_tokens: 80, cache_read_input_tokens: 4700 },
  { input_tokens: 20, output_tokens: 40, cache_read_input_tokens: 4800 },
];
const sum = sumOf(TURN_USAGE);

let fake: FakeAnthropic;
let project: TempProject;
let run: OrchResult;

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
              name: 'write',
              input: { filePath: 'src/feature.mjs', content: FEATURE_V1 },
            },
          ],
          usage: TURN_USAGE[0]!,
        },
        {
          content: [
            {
              type: 'tool_use',
              name: 'edit',
              input: { filePath: 'src/feature.mjs', oldString: '=> 1', newString: '=> 2' },
            },
          ],
          usage: TURN_USAGE[1]!,
        },
        {
          content: [
            {
              type: 'tool_use',
              name: 'bash',
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
    { match: TASKS.rejected.marker, turns: [], always: { kind: 'status', status: 400 } },
  ]);
  const home = agentHome();
  project = developerProject(
    {
      adapter: 'opencode',
      model: 'claude-sonnet-4-5',
      effort: 'max',
      env: {
        HOME: home,
        ANTHROPIC_API_KEY: 'sk-ant-fake-key-for-tests',
        OPENCODE_DISABLE_MODELS_FETCH: '1',
        OPENCODE_CONFIG_CONTENT: JSON.stringify({
          provider: { anthropic: { options: { baseURL: `${fake.url}/v1` } } },
        }),
      },
    },
    { retry: { max_retries: 0 } },
  );
  run = await runScriptedTasks(project, TASKS);
}, 170_000);

afterAll(() => closeAll(fake, project));

describe('OpenCode through orch, against a fake Anthropic API', () => {
  it('runs every task to its end, every request answered by the script, no process left', () => {
    expectScriptedRun(run, fake.requests);
    expect(processesIn(project.dir)).toEqual([]);
  });

  it('commits what the CLI wrote, edited and ran, and records the tokens and cost it reported', async () => {
    const why = (dev: AgentRun[]) =>
      dev
        .map((r) => `${r.outcome}: ${r.error}\n${readFileSync(r.log_path!, 'utf8').slice(-3000)}`)
        .join('\n');
    const r = await expectFeatureDone(
      project,
      TASKS.happy.title,
      { adapter: 'opencode', model: 'claude-sonnet-4-5', effort: 'max' },
      why,
    );
    const steps = loggedObjects(r!).filter((o) => o.type === 'step_finish') as { part: { cost: number } }[];
    expect(steps).toHaveLength(4);
    const reportedCost = steps.reduce((s, step) => s + step.part.cost, 0);
    expect(reportedCost).toBeGreaterThan(0);
    expect(r).toMatchObject({
      input_tokens: sum((u) => u.input_tokens),
      output_tokens: sum((u) => u.output_tokens),
      cache_read_tokens: sum((u) => u.cache_read_input_tokens),
      cache_write_tokens: sum((u) => u.cache_creation_input_tokens),
      num_turns: 4,
      result_text: FEATURE_DONE,
    });
    expect(r!.cost_usd).toBeCloseTo(reportedCost, 10);
    expect(r!.session_id).toMatch(/^ses_/);

    // The model went out as anthropic/claude-sonnet-4-5, and effort max as OpenCode's `max` variant (a thinking budget).
    const main = fake.requests.filter((q) => q.served === 'turn');
    expect(main.map((q) => q.model)).toEqual(Array(4).fill('claude-sonnet-4-5'));
    expect(main.every((q) => (q.body as { thinking?: { type?: string } }).thinking?.type === 'enabled')).toBe(
      true,
    );
  });

  it('fails a run whose model API rejects the request, and escalates it as agent_failure', async () => {
    const { task, dev } = await taskRuns(project, TASKS.rejected.title);
    expect(task).toMatchObject({ status: 'escalated', terminal_reason: 'agent_failure' });
    expect(dev).toHaveLength(1);
    expect(dev[0]).toMatchObject({ outcome: 'failed', exit_code: 1 });
    const log = readFileSync(dev[0]!.log_path!, 'utf8');
    expect(
      loggedObjects(dev[0]!).some((o) => o.type === 'error'),
      log,
    ).toBe(true);
  });
});
