/**
 * `orch task say --now` with the real Claude Code CLI as the developer, against the fake
 * Anthropic Messages API on loopback. The developer's run writes a file, then its next model
 * request hangs; a person's `orch task say KEY TEXT --now` (the real CLI, beside `orch run`) stops
 * it. The stage runs again at once, resuming the same CLI session (`--resume`): the fake's next
 * request carries the earlier conversation (the task's prompt, the write and its result) and the
 * message, and the task then finishes. The stopped run is `redirected` and not counted as a try.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TempProject } from '../helpers/kit.ts';
import {
  startFakeAnthropic,
  type AnthropicBlock,
  type FakeAnthropic,
  type RecordedRequest,
} from '../fakes/anthropic-server.ts';
import { pidNamespaceAvailable } from '../../src/runtime/process/run-agent-process.ts';
import {
  agentHome,
  closeAll,
  developerProject,
  isRoot,
  runOrch,
  taskRuns,
  type OrchResult,
  type TaskRuns,
} from './cli-kit.ts';

const TITLE = 'Steered mid-run';
const MARKER = 'conversation:say-now';
const MESSAGE = 'Stop there: also write after.txt saying steered.';
const small = { input_tokens: 10, output_tokens: 5 };
const STEERED: AnthropicBlock = {
  type: 'tool_use',
  name: 'Write',
  input: { file_path: 'after.txt', content: 'steered\n' },
};

interface Block {
  type: string;
  text?: string;
  name?: string;
  content?: unknown;
}
interface Message {
  role: string;
  content: string | Block[];
}
const messagesOf = (r: RecordedRequest): Message[] => (r.body as { messages: Message[] }).messages;
const textOf = (m: Message): string =>
  typeof m.content === 'string' ? m.content : m.content.map((b) => b.text ?? JSON.stringify(b)).join('\n');

let fake: FakeAnthropic;
let project: TempProject;
let run: OrchResult;
let said: OrchResult;
let runs: TaskRuns;
let key: string;

const waitFor = async (what: string, ok: () => boolean, ms = 90_000): Promise<void> => {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
};

beforeAll(async () => {
  fake = await startFakeAnthropic({
    match: MARKER,
    turns: [
      {
        content: [
          { type: 'text', text: 'Writing the notes first.' },
          {
            type: 'tool_use',
            name: 'Write',
            input: { file_path: 'notes.txt', content: 'before the stop\n' },
          },
        ],
        usage: small,
      },
      {
        // The first run's second request hangs mid-message: the agent is running when the person writes.
        faults: [{ kind: 'stall' }],
        content: [STEERED],
        usage: small,
      },
      // The resumed session closes the cut-off turn with a reply of its own, so it asks for this turn.
      { content: [STEERED], usage: small },
      { content: [{ type: 'text', text: 'Wrote after.txt as asked.' }], usage: small },
    ],
  });
  project = developerProject(
    {
      adapter: 'claude-code',
      pid_namespace: await pidNamespaceAvailable(),
      env: {
        HOME: agentHome(),
        ANTHROPIC_BASE_URL: fake.url,
        ANTHROPIC_API_KEY: 'sk-ant-fake-key-for-tests',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        CLAUDE_CODE_MAX_RETRIES: '0',
        ...(isRoot() ? { IS_SANDBOX: '1' } : {}),
      },
    },
    {
      // The hang is ended by the person, long before the stall watchdog would.
      timeouts: { stall_timeout_s: 120, agent_kill_grace_seconds: 2 },
      retry: { max_retries: 0, base_ms: 100, max_ms: 500 },
    },
  );
  const added = project.orch([
    'task',
    'add',
    TITLE,
    '--description',
    `Scripted by the fake (${MARKER}).`,
    '--json',
  ]);
  expect(added.code, added.stderr).toBe(0);
  key = (JSON.parse(added.stdout) as { key: string }).key;
  // Heartbeats every second: the worker learns of the message within one.
  const working = runOrch(project, ['run', '--until-idle'], { env: { ORCH_LEASE_TTL_MS: '3000' } });
  await waitFor('the first run to hang', () => fake.requests.some((r) => r.served === 'fault'));
  said = await runOrch(project, ['task', 'say', key, MESSAGE, '--now']);
  run = await working;
  runs = await taskRuns(project, TITLE);
}, 170_000);

afterAll(() => closeAll(fake, project, { killLeftovers: true }));

describe('orch task say --now with Claude Code', () => {
  it('says the running agent is being stopped, and the task then finishes', () => {
    expect(said.code, said.stderr).toBe(0);
    expect(said.stdout).toContain(`${key}: message`);
    expect(said.stdout).toContain(`its running agent (run ${runs.dev[0]!.id}) is being stopped`);
    expect(run.code, run.stderr).toBe(0);
    expect(runs.task.status).toBe('done');
    expect(fake.requests.filter((r) => r.served === 'unmatched' || r.served === 'not_found')).toEqual([]);
  });

  it('resumes the same session: the next request carries the earlier conversation and the message', () => {
    const scripted = fake.requests.filter((r) => r.conversation === 0);
    const stall = scripted.findIndex((r) => r.served === 'fault');
    const [first] = scripted;
    const resumed = scripted[stall + 1]!;
    const before = messagesOf(first!);
    const after = messagesOf(resumed);
    // The task's prompt opens the resumed conversation as it opened the first one.
    expect(textOf(after[0]!)).toBe(textOf(before[0]!));
    expect(textOf(after[0]!)).toContain('## Your job: development');
    // The write of the first run and its result are there, then the person's message, as the user's.
    const wrote = after.findIndex((m) => m.role === 'assistant' && textOf(m).includes('before the stop'));
    const result = after.findIndex(
      (m) => Array.isArray(m.content) && m.content.some((b) => b.type === 'tool_result'),
    );
    const told = after.findIndex((m) => textOf(m).includes('## Messages from a person'));
    expect(wrote).toBeGreaterThan(0);
    expect(result).toBeGreaterThan(wrote);
    expect(told).toBeGreaterThan(result);
    expect(after[told]!.role).toBe('user');
    expect(textOf(after[told]!)).toContain(`> ${MESSAGE}`);
    // Only the message: the instructions are not sent a second time.
    expect(after.map(textOf).join('\n').split('## Your job: development')).toHaveLength(2);
  });

  it('records the stopped run as redirected, not counted as a try, and keeps its edits', async () => {
    const [stopped, resumed] = runs.dev;
    expect(runs.dev.map((r) => r.outcome)).toEqual(['redirected', 'ok']);
    expect(stopped!.session_id).toBeTruthy();
    expect(resumed!.session_id).toBe(stopped!.session_id);
    const kinds = runs.events.map((e) => e.kind);
    expect(kinds).toContain('run_redirected');
    for (const counted of ['run_failed', 'job_requeued', 'try_given_back'])
      expect(kinds).not.toContain(counted);
    const ctx = await project.context();
    try {
      const jobs = await ctx.store.db
        .selectFrom('jobs')
        .selectAll()
        .where('task_id', '=', runs.task.id)
        .where('stage', '=', 'development')
        .execute();
      expect(jobs.map((j) => [j.attempts, j.failures])).toEqual([[1, 0]]);
    } finally {
      await ctx.close();
    }
    // What the first run wrote before the stop stayed for the resumed session, and was committed.
    expect(project.git(['show', 'main:notes.txt'])).toBe('before the stop\n');
    expect(project.git(['show', 'main:after.txt'])).toBe('steered\n');
    // show --json lists the message, read by the resumed run.
    const shown = JSON.parse(project.orch(['task', 'show', key, '--json']).stdout) as {
      messages: { text: string; delivered_run_id: number | null }[];
    };
    expect(shown.messages).toEqual([
      expect.objectContaining({ text: MESSAGE, delivered_run_id: resumed!.id }),
    ]);
  });
});
