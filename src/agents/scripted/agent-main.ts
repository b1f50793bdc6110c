/**
 * The built-in deterministic `scripted` agent: a real child process that
 * follows the command agent contract (docs/agents.md), for demos and tests.
 *
 * Started as `[process.execPath, agent.ts]` (which loads this file after the bundled-deps hook)
 * with cwd = the task's worktree.
 * Reads the ORCH_* environment, runs the steps its script (ORCH_SCRIPT_FILE)
 * gives for the task, role and attempt, or the built-in steps for the role,
 * and prints Claude Code stream-json lines ending with one result line.
 *
 * Exit codes: 0 after a result line; 1 when a step fails (after an error
 * result line); 2 for a bad environment or an invalid script (nothing on
 * stdout, the reason on stderr); any code an `exit` step asks for.
 */
import { readFileSync, statSync } from 'node:fs';
import { ROLES, type Role } from '../../core/stages.ts';
import { BUILTIN_STEPS } from './builtin.ts';
import { computeUsage, lineWriter, sessionIdFor } from './lines.ts';
import { runSteps, type StepContext, type StepState } from './run-steps.ts';
import { loadScript, selectSteps, type Script } from './script.ts';

interface AgentEnv extends StepContext {
  role: Role;
  stage: string | null;
  prompt: string;
  model: string;
  effort: string | null;
  scriptFile: string | null;
}

const isRole = (value: string): value is Role => (ROLES as readonly string[]).includes(value);

function readEnv(env: NodeJS.ProcessEnv): AgentEnv | { error: string } {
  const key = env.ORCH_TASK_KEY?.trim();
  if (!key) return { error: 'ORCH_TASK_KEY is not set' };
  const role = env.ORCH_ROLE ?? '';
  if (!isRole(role))
    return { error: `ORCH_ROLE must be one of ${ROLES.join(', ')}, got ${JSON.stringify(role)}` };
  const attemptText = env.ORCH_ATTEMPT?.trim() || '1';
  if (!/^[1-9][0-9]*$/.test(attemptText)) {
    return { error: `ORCH_ATTEMPT must be an integer from 1, got ${JSON.stringify(attemptText)}` };
  }
  const candidateText = env.ORCH_CANDIDATE?.trim() || '';
  if (candidateText && !/^[1-9][0-9]*$/.test(candidateText))
    return { error: `ORCH_CANDIDATE must be an integer from 1, got ${JSON.stringify(candidateText)}` };
  const worktree = env.ORCH_WORKTREE || process.cwd();
  try {
    if (!statSync(worktree).isDirectory()) return { error: `ORCH_WORKTREE ${worktree} is not a directory` };
  } catch (error) {
    return { error: `ORCH_WORKTREE ${worktree}: ${error instanceof Error ? error.message : String(error)}` };
  }
  let prompt = '';
  if (env.ORCH_PROMPT_FILE) {
    try {
      prompt = readFileSync(env.ORCH_PROMPT_FILE, 'utf8');
    } catch (error) {
      return {
        error: `cannot read ORCH_PROMPT_FILE: ${error instanceof Error ? error.message : String(error)}`,
      };
    }
  }
  return {
    key,
    title: env.ORCH_TASK_TITLE ?? '',
    role,
    attempt: Number(attemptText),
    candidate: candidateText ? Number(candidateText) : null,
    worktree,
    stage: env.ORCH_STAGE || null,
    prompt,
    model: env.ORCH_MODEL || 'scripted',
    effort: env.ORCH_EFFORT || null,
    scriptFile: env.ORCH_SCRIPT_FILE || null,
  };
}

function resultText(state: StepState, env: AgentEnv): string {
  const { verdict } = state;
  const base =
    state.resultText ??
    (verdict
      ? `Review of ${env.key} (${env.title}), attempt ${env.attempt}: ${verdict.verdict}.`
      : `The scripted ${env.role} finished ${env.key}: ${env.title}.`);
  if (!verdict) return base;
  return `${base}\n\n\`\`\`json\n${JSON.stringify(verdict, null, 2)}\n\`\`\`\n`;
}

async function main(): Promise<number> {
  const startedAt = Date.now();
  const fail = (message: string): number => {
    process.stderr.write(`orch scripted agent: ${message}\n`);
    return 2;
  };
  const env = readEnv(process.env);
  if ('error' in env) return fail(env.error);
  let script: Script | null = null;
  if (env.scriptFile) {
    const loaded = loadScript(env.scriptFile);
    if (!loaded.ok) return fail(loaded.error);
    script = loaded.script;
  }
  const steps = selectSteps(script, env) ?? BUILTIN_STEPS[env.role];

  const out = lineWriter(sessionIdFor(env.key, env.role, env.attempt), env.model);
  const print = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  print(out.init(env.worktree, { effort: env.effort, orch_stage: env.stage, orch_role: env.role }));

  const state: StepState = {
    steps: 0,
    charsWritten: 0,
    resultText: null,
    verdict: null,
    usageOverride: null,
  };
  const outcome = await runSteps(steps, env, out, print, state);
  if (outcome.kind === 'exit') return outcome.code;

  const ok = outcome.kind !== 'failed';
  const usage = computeUsage({
    promptChars: env.prompt.length,
    steps: state.steps,
    charsWritten: state.charsWritten,
    model: env.model,
    override: state.usageOverride,
  });
  const text = outcome.kind === 'failed' ? outcome.error : resultText(state, env);
  print(
    out.result({ ok, text, usage, numTurns: Math.max(1, state.steps), durationMs: Date.now() - startedAt }),
  );
  if (outcome.kind === 'failed') {
    process.stderr.write(`orch scripted agent: ${outcome.error}\n`);
    return 1;
  }
  if (outcome.kind === 'hang') {
    // Simulates an agent that never exits after its answer; orch must end it.
    setInterval(() => {}, 1 << 30);
    await new Promise<never>(() => {});
  }
  return 0;
}

// A closed stdout (the reader went away) must not turn into an uncaught exception.
process.stdout.on('error', () => {
  process.exitCode = 1;
});

try {
  process.exitCode = await main();
} catch (error) {
  process.stderr.write(
    `orch scripted agent: unexpected failure: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exitCode = 1;
}
