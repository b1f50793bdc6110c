/**
 * Executes a scripted agent's steps in the worktree, printing stream-json
 * lines as it goes. The outcome is a value; the entry point (agent.ts) turns
 * it into the final result line and the exit code.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, lstatSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LineWriter, UsageInput } from './lines.ts';
import { pathEscapeReason, type Step } from './script.ts';

/** The task facts steps may use; `{{key}}`, `{{title}}`, `{{attempt}}`, `{{candidate}}` in step strings. */
export interface StepContext {
  key: string;
  title: string;
  attempt: number;
  /** The development candidate (`ORCH_CANDIDATE`), when the stage runs several. */
  candidate?: number | null;
  worktree: string;
}

/** What the steps did, for the result line. */
export interface StepState {
  steps: number;
  charsWritten: number;
  resultText: string | null;
  verdict: { verdict: 'approved' | 'rejected'; comments: string; chosen?: number } | null;
  usageOverride: UsageInput['override'];
}

export type StepsOutcome =
  | { kind: 'done' }
  | { kind: 'failed'; error: string }
  /** An `exit` step: end now with this code and no result line. */
  | { kind: 'exit'; code: number }
  /** A `hang` step: print the result line, then never exit. */
  | { kind: 'hang' };

/** Longest command output echoed back as one message, in characters. */
const MAX_ECHO_CHARS = 100_000;

export const substitute = (text: string, ctx: StepContext): string =>
  text.replace(/\{\{\s*(key|title|attempt|candidate)\s*\}\}/g, (_m, name: string) =>
    name === 'key'
      ? ctx.key
      : name === 'title'
        ? ctx.title
        : name === 'candidate'
          ? String(ctx.candidate ?? 1)
          : String(ctx.attempt),
  );

const isInside = (root: string, path: string): boolean => {
  const rel = relative(root, path);
  return rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
};

/**
 * The absolute path of `rel` in the worktree, or why it is refused. Checked
 * again after substitution (a title may contain `..`) and through symlinks.
 */
function resolveInWorktree(worktree: string, rel: string): { path: string } | { error: string } {
  const reason = pathEscapeReason(rel);
  if (reason) return { error: reason };
  const root = realpathSync(worktree);
  const path = resolve(root, rel);
  if (!isInside(root, path) || path === root) return { error: `path "${rel}" is outside the worktree` };
  // The deepest existing part of the path decides where a write really lands.
  for (let probe = path; ; probe = dirname(probe)) {
    try {
      lstatSync(probe);
    } catch {
      continue;
    }
    let real: string;
    try {
      real = realpathSync(probe);
    } catch {
      return { error: `path "${rel}" goes through a broken symlink` };
    }
    return isInside(root, real)
      ? { path }
      : { error: `path "${rel}" leads outside the worktree through a symlink` };
  }
}

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Runs the steps in order; stops at the first failure, `exit` or `hang`. */
export async function runSteps(
  steps: readonly Step[],
  ctx: StepContext,
  out: LineWriter,
  print: (line: string) => void,
  state: StepState,
): Promise<StepsOutcome> {
  const sub = (text: string): string => substitute(text, ctx);

  const fileStep = (
    tool: string,
    rel: string,
    input: Record<string, unknown>,
    act: (path: string) => string,
  ): StepsOutcome | null => {
    const target = sub(rel);
    const use = out.toolUse(tool, { file_path: target, ...input });
    print(use.line);
    try {
      const resolved = resolveInWorktree(ctx.worktree, target);
      if ('error' in resolved) throw new Error(resolved.error);
      print(out.toolResult(use.id, act(resolved.path), false));
      return null;
    } catch (error) {
      const message = `${tool} ${target}: ${errorText(error)}`;
      print(out.toolResult(use.id, message, true));
      return { kind: 'failed', error: message };
    }
  };

  for (const step of steps) {
    state.steps += 1;
    let outcome: StepsOutcome | null = null;
    if ('write' in step) {
      const content = sub(step.write.content);
      outcome = fileStep('Write', step.write.path, { content }, (path) => {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, content);
        state.charsWritten += content.length;
        return `Wrote ${content.length} characters to ${sub(step.write.path)}`;
      });
    } else if ('append' in step) {
      const content = sub(step.append.content);
      outcome = fileStep('Append', step.append.path, { content }, (path) => {
        mkdirSync(dirname(path), { recursive: true });
        appendFileSync(path, content);
        state.charsWritten += content.length;
        return `Appended ${content.length} characters to ${sub(step.append.path)}`;
      });
    } else if ('replace' in step) {
      const find = sub(step.replace.find);
      const replacement = sub(step.replace.with);
      outcome = fileStep(
        'Edit',
        step.replace.path,
        { old_string: find, new_string: replacement, replace_all: true },
        (path) => {
          const text = readFileSync(path, 'utf8');
          const parts = text.split(find);
          if (parts.length === 1) throw new Error(`text to replace not found: ${JSON.stringify(find)}`);
          writeFileSync(path, parts.join(replacement));
          state.charsWritten += replacement.length * (parts.length - 1);
          return `Replaced ${parts.length - 1} occurrence(s) in ${sub(step.replace.path)}`;
        },
      );
    } else if ('run' in step) {
      outcome = runCommand(step.run.map(sub), ctx, out, print);
    } else if ('message' in step) {
      print(out.text(sub(step.message)));
    } else if ('sleep_ms' in step) {
      await sleep(step.sleep_ms);
    } else if ('verdict' in step) {
      state.verdict = {
        verdict: step.verdict,
        comments: sub(step.comments ?? ''),
        ...(step.chosen !== undefined ? { chosen: step.chosen } : {}),
      };
      print(
        out.text(`Verdict: ${step.verdict}${state.verdict.comments ? ` (${state.verdict.comments})` : ''}`),
      );
    } else if ('result' in step) {
      state.resultText = sub(step.result);
    } else if ('exit' in step) {
      outcome = { kind: 'exit', code: step.exit };
    } else if ('hang' in step) {
      outcome = { kind: 'hang' };
    } else {
      const { model, ...tokens } = step.usage;
      state.usageOverride = { ...state.usageOverride, ...tokens, ...(model ? { model: sub(model) } : {}) };
      // Streamed at once, as a CLI reports usage while it works: orch can stop a run that spends too much.
      if (tokens.input_tokens !== undefined || tokens.output_tokens !== undefined)
        print(out.usage(tokens.input_tokens ?? 0, tokens.output_tokens ?? 0));
    }
    if (outcome) return outcome;
  }
  return { kind: 'done' };
}

function runCommand(
  argv: string[],
  ctx: StepContext,
  out: LineWriter,
  print: (line: string) => void,
): StepsOutcome | null {
  const [program = '', ...args] = argv;
  const command = argv.join(' ');
  const use = out.toolUse('Bash', { command, argv });
  print(use.line);
  const run = spawnSync(program, args, { cwd: ctx.worktree, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const output = `${run.stdout ?? ''}${run.stderr ?? ''}`.trimEnd();
  if (output)
    print(out.text(output.length > MAX_ECHO_CHARS ? `${output.slice(0, MAX_ECHO_CHARS)}…` : output));
  const failure = run.error
    ? `could not start: ${run.error.message}`
    : run.signal
      ? `killed by ${run.signal}`
      : run.status !== 0
        ? `exited with code ${run.status}`
        : null;
  print(out.toolResult(use.id, failure ?? 'exited with code 0', failure !== null));
  return failure ? { kind: 'failed', error: `run ${command}: ${failure}` } : null;
}
