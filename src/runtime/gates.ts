/**
 * Evaluates a stage's gates in a worktree and stores each result, so
 * `task show`, the API and the terminal packet can show them.
 */
import { redact, secretValues } from './secrets.ts';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { OrchContext, ProjectRuntime } from './context.ts';
import type { Task } from '../store/schema.ts';
import { DEFAULT_ARTIFACTS, tail } from '../core/gates.ts';
import type { GateRef } from '../config/pipeline-config.ts';
import { agentEnv, contractEnv } from './agent-env.ts';
import { gitRaw } from './git.ts';
import { renderPath } from './prompts.ts';

export interface GateOutcome {
  name: string;
  passed: boolean;
  output: string;
}

/** Facts a gate may need that only the engine knows. */
export interface GateFacts {
  approved: boolean;
  lastVerdict: string | null;
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

async function evaluate(
  ctx: OrchContext,
  rt: ProjectRuntime,
  task: Task,
  stage: string,
  ref: GateRef,
  worktree: string,
  facts: GateFacts,
): Promise<GateOutcome> {
  const vars = {
    task: { key: task.key, title: task.title, description: task.description },
    stage,
    role: '',
    attempt: task.attempt,
    feedback: '',
    artifacts_dir: '',
    test_command: rt.config.testCommand?.join(' ') ?? '',
  };
  const command = async (name: string, argv: readonly string[], timeoutS: number): Promise<GateOutcome> => {
    const env = agentEnv(ctx.env, contractEnv(task, stage, 'gate', worktree), {});
    const r = await runCommand(argv, worktree, env, timeoutS);
    // A test that prints a secret must not put it in the store, the feedback or the developer's prompt.
    return {
      name,
      passed: r.code === 0,
      output: redact(
        tail(`$ ${argv.join(' ')}  (exit ${r.code ?? 'none'})\n${r.output}`),
        secretValues(ctx.env),
      ),
    };
  };
  if (typeof ref === 'object') {
    if ('command' in ref) return command(ref.name, ref.command, ref.timeout_s ?? 900);
    return artifacts(
      ref.files.map((f) => renderPath(f, vars)),
      worktree,
    );
  }
  switch (ref) {
    case 'check_ci_green':
      if (!rt.config.testCommand)
        return { name: ref, passed: true, output: 'no project.test_command configured: nothing to run' };
      return command(ref, rt.config.testCommand, 900);
    case 'check_artifacts_present':
      return artifacts(
        (DEFAULT_ARTIFACTS[stage] ?? []).map((f) => renderPath(f, vars)),
        worktree,
      );
    case 'check_diff_nonempty': {
      const base = (await gitRaw(worktree, ['merge-base', rt.project.base_branch, 'HEAD'])).stdout.trim();
      // The pipeline's own task documents (requirements, ADR) are not the change a developer owes.
      const stat = await gitRaw(worktree, [
        'diff',
        '--stat',
        base,
        'HEAD',
        '--',
        '.',
        `:(exclude)docs/tasks/${task.key}`,
      ]);
      const passed = stat.code === 0 && stat.stdout.trim() !== '';
      return {
        name: ref,
        passed,
        output: passed
          ? tail(stat.stdout)
          : `no change against ${rt.project.base_branch} outside docs/tasks/${task.key}/`,
      };
    }
    case 'check_merge_clean': {
      const r = await gitRaw(worktree, [
        'merge-tree',
        '--write-tree',
        '--name-only',
        rt.project.base_branch,
        'HEAD',
      ]);
      return {
        name: ref,
        passed: r.code === 0,
        output:
          r.code === 0
            ? `merges cleanly onto ${rt.project.base_branch}`
            : tail(r.stdout.split('\n').slice(1).join('\n')),
      };
    }
    case 'check_human_approval':
      return {
        name: ref,
        passed: facts.approved,
        output: facts.approved ? 'approved' : `waiting for: orch task approve ${task.key}`,
      };
    case 'check_reviewer_verdict':
      return {
        name: ref,
        passed: facts.lastVerdict === 'approved',
        output: `last verdict: ${facts.lastVerdict ?? 'none'}`,
      };
  }
}

function artifacts(files: readonly string[], worktree: string): GateOutcome {
  const missing = files.filter((f) => {
    try {
      return statSync(join(worktree, f)).size === 0;
    } catch {
      return true;
    }
  });
  const passed = missing.length === 0;
  return {
    name: 'check_artifacts_present',
    passed,
    output: passed
      ? `present: ${files.join(', ') || '(none required)'}`
      : `missing or empty: ${missing.join(', ')}`,
  };
}

/** Evaluates a gate and stores its result. */
export async function runGate(
  ctx: OrchContext,
  rt: ProjectRuntime,
  task: Task,
  stage: string,
  ref: GateRef,
  worktree: string,
  facts: GateFacts,
): Promise<GateOutcome> {
  const startedAt = new Date().toISOString();
  const outcome = await evaluate(ctx, rt, task, stage, ref, worktree, facts);
  await recordGate(ctx, task, stage, outcome, startedAt);
  return outcome;
}

export async function recordGate(
  ctx: OrchContext,
  task: Pick<Task, 'id'>,
  stage: string,
  outcome: GateOutcome,
  startedAt: string,
): Promise<void> {
  await ctx.store.tx(async (tx) => {
    await ctx.store.recordGate(tx, {
      task_id: task.id,
      stage,
      name: outcome.name,
      passed: outcome.passed ? 1 : 0,
      output_tail: outcome.output,
      started_at: startedAt,
      finished_at: new Date().toISOString(),
    });
    await ctx.store.appendEvent(tx, task.id, 'gate_result', {
      name: outcome.name,
      stage,
      passed: outcome.passed,
    });
  });
}
