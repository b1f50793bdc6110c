/**
 * The bash agent in docs/agents.md is run as written, so the documented
 * contract example cannot drift from what the parser accepts.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseStreamJsonLine } from '../../src/agents/stream-json.ts';
import { parseVerdict } from '../../src/core/verdict.ts';

const doc = readFileSync(new URL('../../docs/agents.md', import.meta.url), 'utf8');
const section = doc.slice(doc.indexOf('### A minimal agent in bash'));
const example = /(`{3,})bash\n([\s\S]*?)\n\1\n/.exec(section)?.[2];

const dir = mkdtempSync(join(tmpdir(), 'orch-doc-agent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runExample(role: string) {
  const worktree = mkdtempSync(join(dir, 'wt-'));
  const script = join(dir, 'my-agent.sh');
  const promptFile = join(dir, 'prompt.md');
  writeFileSync(script, example ?? '');
  writeFileSync(promptFile, 'Do the work.\n');
  const run = spawnSync('bash', [script], {
    cwd: worktree,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '',
      ORCH_TASK_KEY: 'DEMO-1',
      ORCH_TASK_TITLE: 'Handle zero',
      ORCH_STAGE: 'review',
      ORCH_ROLE: role,
      ORCH_ATTEMPT: '2',
      ORCH_WORKTREE: worktree,
      ORCH_PROMPT_FILE: promptFile,
      ORCH_MODEL: 'my-model',
      ORCH_EFFORT: 'high',
    },
  });
  return { ...run, worktree, events: run.stdout.split('\n').flatMap((line) => parseStreamJsonLine(line)) };
}

describe('the minimal bash agent of docs/agents.md', () => {
  it('is in the doc', () => {
    expect(example).toMatch(/^#!\/usr\/bin\/env bash/);
  });

  it('follows the contract as a developer', () => {
    const run = runExample('developer');
    expect(run.status, run.stderr).toBe(0);
    expect(run.events).toEqual([
      { type: 'started', sessionId: 'my-agent-DEMO-1-developer-2', model: 'my-model' },
      { type: 'message', text: expect.stringMatching(/^read +13 bytes of prompt for DEMO-1$/) },
      {
        type: 'result',
        ok: true,
        text: 'Recorded the attempt in notes/log.md.',
        subtype: 'success',
        usage: null,
      },
    ]);
    expect(readFileSync(join(run.worktree, 'notes/log.md'), 'utf8')).toBe('- DEMO-1 attempt 2 (developer)\n');
  });

  it('gives a verdict orch can read as a reviewer', () => {
    const run = runExample('reviewer');
    expect(run.status, run.stderr).toBe(0);
    const result = run.events.find((e) => e.type === 'result');
    expect(result).toMatchObject({ ok: true });
    expect(parseVerdict(result?.type === 'result' ? result.text : '')).toEqual({
      verdict: 'approved',
      comments: 'ok',
      parseError: null,
    });
  });
});
