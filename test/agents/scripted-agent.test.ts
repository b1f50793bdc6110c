/**
 * The scripted agent as orch runs it: a real child process of this Node
 * binary, in a temporary worktree, its stdout read with the stream-json parser.
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentEvent, Usage } from '../../src/agents/events.ts';
import { parseStreamJsonLine } from '../../src/agents/stream-json.ts';
import { parseVerdict } from '../../src/core/verdict.ts';

// As orch starts it: this Node binary running the TypeScript entry point directly.
const node = process.execPath;
const agentPath = fileURLToPath(new URL('../../src/agents/scripted/agent.ts', import.meta.url));
const MODEL = 'claude-opus-4-8';
const PROMPT = 'You are the developer for DEMO-1. Make the change and keep the tests green.\n';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'orch-scripted-'));
  dirs.push(dir);
  return dir;
};

interface AgentRun {
  status: number | null;
  stdout: string;
  stderr: string;
  events: AgentEvent[];
  result: Extract<AgentEvent, { type: 'result' }> | undefined;
}

interface RunOptions {
  worktree: string;
  role: string;
  attempt?: number;
  key?: string;
  title?: string;
  /** YAML text, or an object written as JSON. */
  script?: string | object;
  prompt?: string;
  env?: Record<string, string>;
}

function agentEnv(o: RunOptions): Record<string, string> {
  const home = tempDir();
  const promptFile = join(home, 'prompt.md');
  writeFileSync(promptFile, o.prompt ?? PROMPT);
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    ORCH_TASK_KEY: o.key ?? 'DEMO-1',
    ORCH_TASK_TITLE: o.title ?? 'Handle zero in divide',
    ORCH_STAGE: 'development',
    ORCH_ROLE: o.role,
    ORCH_ATTEMPT: String(o.attempt ?? 1),
    ORCH_WORKTREE: o.worktree,
    ORCH_PROMPT_FILE: promptFile,
    ORCH_MODEL: MODEL,
    ORCH_EFFORT: 'xhigh',
  };
  if (o.script !== undefined) {
    const file = join(home, typeof o.script === 'string' ? 'script.yaml' : 'script.json');
    writeFileSync(file, typeof o.script === 'string' ? o.script : JSON.stringify(o.script));
    env.ORCH_SCRIPT_FILE = file;
  }
  return { ...env, ...o.env };
}

function runAgent(o: RunOptions): AgentRun {
  const run = spawnSync(node, [agentPath], {
    cwd: o.worktree,
    env: agentEnv(o),
    encoding: 'utf8',
    timeout: 30_000,
  });
  const events = run.stdout.split('\n').flatMap((line) => parseStreamJsonLine(line));
  const results = events.filter((e) => e.type === 'result');
  expect(results.length).toBeLessThanOrEqual(1);
  return { status: run.status, stdout: run.stdout, stderr: run.stderr, events, result: results[0] };
}

const read = (worktree: string, path: string): string => readFileSync(join(worktree, path), 'utf8');

/** The usage formula, written out independently of the agent's code. */
function expectedUsage(o: { steps: number; charsWritten: number; prompt?: string }): Partial<Usage> {
  const inputTokens = Math.ceil((o.prompt ?? PROMPT).length / 4) + 100;
  const outputTokens = 50 + 20 * o.steps + Math.ceil(o.charsWritten / 4);
  return {
    inputTokens,
    outputTokens,
    costUsd: Number((inputTokens * 0.000015 + outputTokens * 0.000075).toFixed(6)),
    model: MODEL,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
  };
}

describe('built-in behaviour (no script)', () => {
  it.each([
    { role: 'analyst', files: ['docs/tasks/DEMO-1/requirements.md', 'docs/tasks/DEMO-1/test-plan.md'] },
    { role: 'architect', files: ['docs/tasks/DEMO-1/adr.md'] },
    { role: 'developer', files: ['changes/DEMO-1.md'] },
  ])('the $role writes files that name the task', ({ role, files }) => {
    const worktree = tempDir();
    const run = runAgent({ worktree, role });
    expect(run.status).toBe(0);
    expect(run.result).toMatchObject({ ok: true, subtype: 'success' });
    for (const file of files) {
      const text = read(worktree, file);
      expect(text).toContain('DEMO-1');
      expect(text).toContain('Handle zero in divide');
    }
    const written = run.events
      .filter((e) => e.type === 'tool_use')
      .map((e) => (e.input as { file_path: string }).file_path);
    expect(written).toEqual(files);
  });

  it('the developer appends a different line per attempt, so each diff differs', () => {
    const worktree = tempDir();
    expect(runAgent({ worktree, role: 'developer', attempt: 1 }).status).toBe(0);
    const afterFirst = read(worktree, 'changes/DEMO-1.md');
    const second = runAgent({ worktree, role: 'developer', attempt: 2 });
    expect(second.status).toBe(0);
    expect(second.result?.text).toContain('Attempt 2');
    const lines = read(worktree, 'changes/DEMO-1.md').trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(afterFirst.trimEnd());
    expect(lines[0]).toContain('attempt 1');
    expect(lines[1]).toContain('attempt 2');
  });

  it('the reviewer approves with a parseable verdict', () => {
    const run = runAgent({ worktree: tempDir(), role: 'reviewer' });
    expect(run.status).toBe(0);
    expect(parseVerdict(run.result?.text)).toEqual({
      verdict: 'approved',
      comments: 'looks good',
      parseError: null,
    });
  });

  it.each([
    { role: 'tester', text: 'tests passed (scripted)' },
    { role: 'deployer', text: 'deployed (scripted)' },
  ])('the $role reports "$text" and writes nothing', ({ role, text }) => {
    const worktree = tempDir();
    const run = runAgent({ worktree, role });
    expect(run.status).toBe(0);
    expect(run.result).toMatchObject({ ok: true, text });
    expect(existsSync(join(worktree, 'docs'))).toBe(false);
  });
});

describe('stdout follows the command agent contract', () => {
  it('parses into started, messages, tool use, tool results and one result with the computed usage', () => {
    const worktree = tempDir();
    const run = runAgent({ worktree, role: 'analyst' });
    expect(run.status).toBe(0);
    expect(run.events.filter((e) => e.type === 'error')).toEqual([]);
    expect(run.events.map((e) => e.type)).toEqual([
      'started',
      'message',
      'tool_use',
      'tool_result',
      'tool_use',
      'tool_result',
      'result',
    ]);
    const started = run.events[0];
    expect(started).toMatchObject({ type: 'started', model: MODEL });
    const charsWritten =
      read(worktree, 'docs/tasks/DEMO-1/requirements.md').length +
      read(worktree, 'docs/tasks/DEMO-1/test-plan.md').length;
    expect(run.result?.usage).toEqual({
      ...expectedUsage({ steps: 4, charsWritten }),
      sessionId: started?.type === 'started' ? started.sessionId : 'missing',
      numTurns: 4,
    });
    // The result line is the last line, and every line is JSON.
    const lines = run.stdout.trimEnd().split('\n');
    expect(JSON.parse(lines.at(-1) ?? '')).toMatchObject({ type: 'result', modelUsage: { [MODEL]: {} } });
  });

  it('derives the session id from key, role and attempt only', () => {
    const sessionOf = (o: Partial<RunOptions>): string | null => {
      const started = runAgent({ worktree: tempDir(), role: 'tester', ...o }).events[0];
      return started?.type === 'started' ? started.sessionId : null;
    };
    const first = sessionOf({});
    expect(first).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(sessionOf({ title: 'another title', prompt: 'x' })).toBe(first);
    expect(sessionOf({ attempt: 2 })).not.toBe(first);
    expect(sessionOf({ role: 'deployer' })).not.toBe(first);
    expect(sessionOf({ key: 'DEMO-2' })).not.toBe(first);
  });
});

describe('scripts', () => {
  const buildLoop = `
tasks:
  - match: { key: DEMO-1 }
    roles:
      developer:
        default:
          - message: "fallback for {{key}}"
        attempts:
          1:
            - write: { path: src/divide.js, content: "export const divide = (a, b) => a / b;\\n" }
            - result: "first cut of {{title}}"
          2:
            - replace: { path: src/divide.js, find: "a / b", with: "(b === 0 ? 0 : a / b)" }
            - write: { path: "test/{{key}}-attempt-{{attempt}}.txt", content: "zero -> 0" }
      reviewer:
        attempts:
          1: [ { verdict: rejected, comments: "add a test for 0" } ]
          2: [ { verdict: approved } ]
`;

  it('runs a two-attempt build loop: steps per attempt, verdicts per attempt', () => {
    const worktree = tempDir();
    const dev1 = runAgent({ worktree, role: 'developer', attempt: 1, script: buildLoop });
    expect(dev1.status).toBe(0);
    expect(dev1.result?.text).toBe('first cut of Handle zero in divide');
    const content1 = 'export const divide = (a, b) => a / b;\n';
    expect(read(worktree, 'src/divide.js')).toBe(content1);
    expect(dev1.result?.usage).toMatchObject(expectedUsage({ steps: 2, charsWritten: content1.length }));

    const review1 = runAgent({ worktree, role: 'reviewer', attempt: 1, script: buildLoop });
    expect(parseVerdict(review1.result?.text)).toEqual({
      verdict: 'rejected',
      comments: 'add a test for 0',
      parseError: null,
    });
    expect(review1.result?.ok).toBe(true);

    const dev2 = runAgent({ worktree, role: 'developer', attempt: 2, script: buildLoop });
    expect(dev2.status).toBe(0);
    expect(read(worktree, 'src/divide.js')).toBe('export const divide = (a, b) => (b === 0 ? 0 : a / b);\n');
    expect(read(worktree, 'test/DEMO-1-attempt-2.txt')).toBe('zero -> 0');
    const replaced = '(b === 0 ? 0 : a / b)'.length;
    expect(dev2.result?.usage).toMatchObject(
      expectedUsage({ steps: 2, charsWritten: replaced + 'zero -> 0'.length }),
    );

    const review2 = runAgent({ worktree, role: 'reviewer', attempt: 2, script: buildLoop });
    expect(parseVerdict(review2.result?.text)).toMatchObject({ verdict: 'approved', parseError: null });

    const dev3 = runAgent({ worktree, role: 'developer', attempt: 3, script: buildLoop });
    expect(dev3.events).toContainEqual({ type: 'message', text: 'fallback for DEMO-1' });
  });

  it('falls back to the built-in behaviour for roles the script does not cover', () => {
    const worktree = tempDir();
    const run = runAgent({ worktree, role: 'architect', script: buildLoop });
    expect(run.status).toBe(0);
    expect(read(worktree, 'docs/tasks/DEMO-1/adr.md')).toContain('DEMO-1');
  });

  it('uses defaults for a task that matches nothing, and reads JSON scripts', () => {
    const run = runAgent({
      worktree: tempDir(),
      role: 'tester',
      key: 'OTHER-7',
      script: {
        tasks: [{ match: { key: 'DEMO-1' }, roles: {} }],
        defaults: { tester: [{ message: 'default tester for {{key}}' }] },
      },
    });
    expect(run.status).toBe(0);
    expect(run.events).toContainEqual({ type: 'message', text: 'default tester for OTHER-7' });
  });

  it('echoes the output of run steps as messages and records them as tool use', () => {
    const worktree = tempDir();
    const run = runAgent({
      worktree,
      role: 'tester',
      script: {
        defaults: {
          tester: [{ run: [node, '-e', 'console.log("3 passed in " + process.cwd())'] }, { sleep_ms: 20 }],
        },
      },
    });
    expect(run.status).toBe(0);
    expect(run.events).toContainEqual({
      type: 'tool_use',
      name: 'Bash',
      input: expect.objectContaining({ argv: expect.any(Array) }),
    });
    const echoed = run.events.find((e) => e.type === 'message' && e.text.startsWith('3 passed in '));
    expect(echoed).toBeDefined();
    expect(run.events).toContainEqual({ type: 'tool_result', isError: false, text: 'exited with code 0' });
  });

  it('ends with an error result and exit 1 when a run step fails', () => {
    const run = runAgent({
      worktree: tempDir(),
      role: 'tester',
      script: {
        defaults: {
          tester: [
            { run: [node, '-e', 'console.error("1 failed"); process.exit(4)'] },
            { message: 'never printed' },
          ],
        },
      },
    });
    expect(run.status).toBe(1);
    expect(run.result).toMatchObject({ ok: false, subtype: 'error_during_execution' });
    expect(run.result?.text).toMatch(/exited with code 4/);
    expect(run.events).toContainEqual({ type: 'message', text: '1 failed' });
    expect(run.events).not.toContainEqual({ type: 'message', text: 'never printed' });
    expect(run.result?.usage).toMatchObject(expectedUsage({ steps: 1, charsWritten: 0 }));
  });

  it('fails a run step whose program does not exist', () => {
    const run = runAgent({
      worktree: tempDir(),
      role: 'tester',
      script: { defaults: { tester: [{ run: ['no-such-program-orch'] }] } },
    });
    expect(run.status).toBe(1);
    expect(run.result?.text).toMatch(/could not start/);
  });

  it('ends with an error result and exit 1 when replace finds nothing', () => {
    const worktree = tempDir();
    writeFileSync(join(worktree, 'a.txt'), 'hello');
    const run = runAgent({
      worktree,
      role: 'developer',
      script: { defaults: { developer: [{ replace: { path: 'a.txt', find: 'bye', with: 'x' } }] } },
    });
    expect(run.status).toBe(1);
    expect(run.result).toMatchObject({ ok: false });
    expect(run.result?.text).toMatch(/a\.txt: text to replace not found: "bye"/);
    expect(run.events).toContainEqual(expect.objectContaining({ type: 'tool_result', isError: true }));
    expect(read(worktree, 'a.txt')).toBe('hello');
    expect(run.stderr).toMatch(/not found/);
  });

  it('lets a usage step override the computed figures', () => {
    const run = runAgent({
      worktree: tempDir(),
      role: 'deployer',
      script: {
        defaults: { deployer: [{ usage: { output_tokens: 1000, model: 'tokenator/claude-opus-4-8' } }] },
      },
    });
    const inputTokens = Math.ceil(PROMPT.length / 4) + 100;
    expect(run.result?.usage).toMatchObject({
      inputTokens,
      outputTokens: 1000,
      costUsd: Number((inputTokens * 0.000015 + 1000 * 0.000075).toFixed(6)),
      model: 'tokenator/claude-opus-4-8',
    });
    const withCost = runAgent({
      worktree: tempDir(),
      role: 'deployer',
      script: { defaults: { deployer: [{ usage: { input_tokens: 1, cost_usd: 2.5 } }] } },
    });
    expect(withCost.result?.usage).toMatchObject({ inputTokens: 1, costUsd: 2.5, model: MODEL });
  });

  it('exits with the code of an exit step and prints no result', () => {
    const worktree = tempDir();
    const run = runAgent({
      worktree,
      role: 'developer',
      script: {
        defaults: {
          developer: [{ message: 'about to crash' }, { exit: 3 }, { write: { path: 'x', content: 'y' } }],
        },
      },
    });
    expect(run.status).toBe(3);
    expect(run.result).toBeUndefined();
    expect(run.events.map((e) => e.type)).toEqual(['started', 'message']);
    expect(existsSync(join(worktree, 'x'))).toBe(false);
  });

  it('prints its result and then hangs on a hang step', async () => {
    const worktree = tempDir();
    const child = spawn(node, [agentPath], {
      cwd: worktree,
      env: agentEnv({
        worktree,
        role: 'reviewer',
        script: { defaults: { reviewer: [{ verdict: 'approved' }, { hang: true }] } },
      }),
    });
    try {
      let stdout = '';
      child.stdout.setEncoding('utf8');
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no result line; stdout so far: ${stdout}`)), 20_000);
        child.stdout.on('data', (chunk: string) => {
          stdout += chunk;
          if (stdout.includes('"type":"result"')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      const events = stdout.split('\n').flatMap((line) => parseStreamJsonLine(line));
      expect(events.at(-1)).toMatchObject({ type: 'result', ok: true });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(child.exitCode).toBeNull();
      expect(child.signalCode).toBeNull();
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('refusals', () => {
  it.each([
    {
      name: 'a step with a bad field',
      script: 'defaults:\n  developer:\n    - write: { path: a.txt }\n',
      error: /defaults\.developer\[0\]\.write\.content/,
    },
    {
      name: 'a parent path',
      script: 'defaults:\n  developer:\n    - write: { path: ../escape.txt, content: x }\n',
      error: /defaults\.developer\[0\]\.write\.path: .*\.\./,
    },
    {
      name: 'an absolute path',
      script: 'defaults:\n  developer:\n    - append: { path: /tmp/escape.txt, content: x }\n',
      error: /append\.path: .*absolute/,
    },
    { name: 'YAML that does not parse', script: 'tasks: [\n', error: /not valid YAML/ },
  ])(
    'an invalid script ($name) exits 2 naming the file and the path, printing nothing',
    ({ script, error }) => {
      const worktree = tempDir();
      const run = runAgent({ worktree, role: 'developer', script });
      expect(run.status).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toMatch(/invalid script .*script\.yaml/);
      expect(run.stderr).toMatch(error);
    },
  );

  it('exits 2 for a missing script file', () => {
    const run = runAgent({
      worktree: tempDir(),
      role: 'developer',
      env: { ORCH_SCRIPT_FILE: '/nonexistent/orch-script.yaml' },
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/cannot read script \/nonexistent\/orch-script\.yaml/);
  });

  it.each<{ name: string; env: Record<string, string>; error: RegExp }>([
    { name: 'an unknown role', env: { ORCH_ROLE: 'coder' }, error: /ORCH_ROLE must be one of/ },
    { name: 'no task key', env: { ORCH_TASK_KEY: '' }, error: /ORCH_TASK_KEY is not set/ },
    { name: 'attempt 0', env: { ORCH_ATTEMPT: '0' }, error: /ORCH_ATTEMPT must be an integer from 1/ },
    {
      name: 'a missing prompt file',
      env: { ORCH_PROMPT_FILE: '/nonexistent/prompt.md' },
      error: /cannot read ORCH_PROMPT_FILE/,
    },
  ])('exits 2 for $name', ({ env, error }) => {
    const run = runAgent({ worktree: tempDir(), role: 'developer', env });
    expect(run.status).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(error);
  });

  it('refuses a path that escapes through substitution, with an error result and exit 1', () => {
    const parent = tempDir();
    const worktree = join(parent, 'wt');
    mkdirSync(worktree);
    const run = runAgent({
      worktree,
      role: 'developer',
      title: '../../escaped',
      script: { defaults: { developer: [{ write: { path: 'notes/{{title}}.md', content: 'x' } }] } },
    });
    expect(run.status).toBe(1);
    expect(run.result).toMatchObject({ ok: false });
    expect(run.result?.text).toMatch(/contains "\.\."/);
    expect(existsSync(join(parent, 'escaped.md'))).toBe(false);
  });

  it('refuses a path that escapes through a symlink', () => {
    const outside = tempDir();
    const worktree = tempDir();
    symlinkSync(outside, join(worktree, 'link'));
    const run = runAgent({
      worktree,
      role: 'developer',
      script: { defaults: { developer: [{ write: { path: 'link/owned.txt', content: 'x' } }] } },
    });
    expect(run.status).toBe(1);
    expect(run.result?.text).toMatch(/outside the worktree through a symlink/);
    expect(existsSync(join(outside, 'owned.txt'))).toBe(false);
  });
});
