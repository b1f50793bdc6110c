/** Runs a gate in a worktree and stores its result. */
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { OrchContext } from './context.ts';
import type { Task } from '../store/schema.ts';
import { tail, type GateSpec } from '../core/gates.ts';
import { agentEnv } from './agent-env.ts';

export interface GateOutcome {
  name: string;
  passed: boolean;
  output: string;
}

function runCommand(
  argv: readonly string[],
  cwd: string,
  env: Record<string, string>,
  timeoutS: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise) => {
    let output = '';
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const onData = (chunk: Buffer) => {
      output = tail(output + chunk.toString('utf8'), 64_000);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      output += `\n[orch] gate timed out after ${timeoutS}s`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, timeoutS * 1000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolvePromise({ code: null, output: `cannot run ${argv[0]}: ${error.message}` });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output });
    });
  });
}

export async function runGate(
  ctx: OrchContext,
  task: Task,
  stage: string,
  spec: GateSpec,
  worktree: string,
): Promise<GateOutcome> {
  const startedAt = new Date().toISOString();
  let passed: boolean;
  let output: string;
  if (spec.name === 'check_artifacts_present') {
    const missing = spec.files.filter((f) => {
      try {
        return statSync(join(worktree, f)).size === 0;
      } catch {
        return true;
      }
    });
    passed = missing.length === 0;
    output = passed ? `present: ${spec.files.join(', ')}` : `missing or empty: ${missing.join(', ')}`;
  } else {
    const env = agentEnv(
      ctx.env,
      {
        ORCH_TASK_KEY: task.key,
        ORCH_TASK_TITLE: task.title,
        ORCH_STAGE: stage,
        ORCH_ROLE: 'gate',
        ORCH_ATTEMPT: String(task.attempt),
        ORCH_WORKTREE: worktree,
        ORCH_PROMPT_FILE: '',
        ORCH_MODEL: '',
        ORCH_EFFORT: '',
        ORCH_RUN_ID: '',
      },
      {},
    );
    const r = await runCommand(spec.command, worktree, env, spec.timeoutS ?? 900);
    passed = r.code === 0;
    output = tail(r.output);
  }
  await ctx.store.tx(async (tx) => {
    await ctx.store.recordGate(tx, {
      task_id: task.id,
      stage,
      name: spec.name,
      passed: passed ? 1 : 0,
      output_tail: output,
      started_at: startedAt,
      finished_at: new Date().toISOString(),
    });
    await ctx.store.appendEvent(tx, task.id, 'gate_result', { name: spec.name, stage, passed });
  });
  return { name: spec.name, passed, output };
}
