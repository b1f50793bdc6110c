/**
 * The scripted agent's script: which steps each role performs for which task
 * and attempt. Loaded from YAML or JSON (`ORCH_SCRIPT_FILE`), validated here,
 * and pure apart from {@link loadScript} reading the file.
 *
 * Glossary: a *step* is one object with one key (`write`, `run`, `verdict`...);
 * a *step list* is what one agent run executes, in order.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ROLES, type Role } from '../../core/stages.ts';

/** A path relative to the worktree that cannot leave it: no `..` segment, not absolute. */
export function pathEscapeReason(path: string): string | null {
  if (!path.trim()) return 'path is empty';
  if (path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:/.test(path)) {
    return `path "${path}" is absolute; paths are relative to the worktree`;
  }
  if (path.split(/[\\/]/).includes('..')) return `path "${path}" contains ".." and could leave the worktree`;
  return null;
}

const relativePath = z.string().superRefine((path, ctx) => {
  const reason = pathEscapeReason(path);
  if (reason) ctx.addIssue({ code: 'custom', message: reason });
});

const fileContent = z.strictObject({ path: relativePath, content: z.string() });

const stepVariants = {
  write: z.strictObject({ write: fileContent }),
  append: z.strictObject({ append: fileContent }),
  replace: z.strictObject({
    replace: z.strictObject({ path: relativePath, find: z.string().min(1), with: z.string() }),
  }),
  run: z.strictObject({ run: z.array(z.string()).min(1, 'run needs at least the program to start') }),
  message: z.strictObject({ message: z.string() }),
  sleep_ms: z.strictObject({ sleep_ms: z.number().int().nonnegative() }),
  verdict: z.strictObject({
    verdict: z.enum(['approved', 'rejected']),
    comments: z.string().optional(),
    /** The development candidate an approval picks (`pipeline.development.candidates`). */
    chosen: z.number().int().positive().optional(),
  }),
  result: z.strictObject({ result: z.string() }),
  exit: z.strictObject({ exit: z.number().int().min(0).max(255) }),
  hang: z.strictObject({ hang: z.literal(true) }),
  usage: z.strictObject({
    usage: z.strictObject({
      input_tokens: z.number().int().nonnegative().optional(),
      output_tokens: z.number().int().nonnegative().optional(),
      cost_usd: z.number().nonnegative().optional(),
      model: z.string().min(1).optional(),
    }),
  }),
};

type StepKind = keyof typeof stepVariants;
const STEP_KINDS = Object.keys(stepVariants) as StepKind[];

/** One step of a scripted run. */
export type Step = { [K in StepKind]: z.infer<(typeof stepVariants)[K]> }[StepKind];

const isStepKind = (key: string): key is StepKind => (STEP_KINDS as string[]).includes(key);

// Dispatch on the step's key, so a mistake inside `write` is reported as
// `write.path: ...` instead of as "matches none of eleven alternatives".
const stepSchema = z.record(z.string(), z.unknown()).transform((raw, ctx): Step => {
  const kind = Object.keys(raw).find(isStepKind);
  if (!kind) {
    ctx.addIssue({
      code: 'custom',
      message: `unknown step ${JSON.stringify(Object.keys(raw))}; a step has one key out of: ${STEP_KINDS.join(', ')}`,
    });
    return z.NEVER;
  }
  const parsed = stepVariants[kind].safeParse(raw);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const extra = issue.code === 'unrecognized_keys' ? ` (a step has exactly one key; "${kind}" step)` : '';
      ctx.addIssue({ code: 'custom', message: `${issue.message}${extra}`, path: issue.path });
    }
    return z.NEVER;
  }
  return parsed.data;
});

const stepList = z.array(stepSchema);

/** Steps by a number from 1 (an attempt, a candidate). */
const numbered = (what: string) =>
  z
    .record(z.string(), stepList)
    .superRefine((entries, ctx) => {
      for (const key of Object.keys(entries)) {
        if (!/^[1-9][0-9]*$/.test(key)) {
          ctx.addIssue({
            code: 'custom',
            message: `${what} numbers are integers from 1, got "${key}"`,
            path: [key],
          });
        }
      }
    })
    .optional();

const roleScript = z.strictObject({
  /** Used when there is no entry for the attempt. */
  default: stepList.optional(),
  /** Steps per build-loop attempt number (1-based). */
  attempts: numbered('attempt'),
  /** Steps per development candidate (`ORCH_CANDIDATE`, 1-based), before those of the attempt. */
  candidates: numbered('candidate'),
});

const roleMap = <T extends z.ZodType>(value: T) =>
  z.strictObject(
    Object.fromEntries(ROLES.map((role) => [role, value.optional()])) as Record<Role, z.ZodOptional<T>>,
  );

const taskMatch = z
  .strictObject({
    key: z.union([z.string(), z.number()]).transform(String).optional(),
    title: z.string().optional(),
  })
  .refine((m) => m.key !== undefined || m.title !== undefined, 'match needs a key or a title');

export const scriptSchema = z.strictObject({
  tasks: z.array(z.strictObject({ match: taskMatch, roles: roleMap(roleScript) })).default([]),
  /** Steps per role for a task that no `tasks` entry gives steps for. */
  defaults: roleMap(stepList).optional(),
});

export type Script = z.infer<typeof scriptSchema>;

/** What a run needs to pick its steps. */
export interface StepQuery {
  key: string;
  title: string;
  role: Role;
  attempt: number;
  candidate?: number | null;
}

/**
 * The steps for a run. The first task entry that matches (key equal, title
 * substring; both when both are given) wins; its role's steps for the candidate
 * (a development run of several side by side), else for the attempt,
 * else its role's `default`; failing those, `defaults` for the role; else null,
 * which means the built-in behaviour. An explicit empty list means "no steps".
 */
export function selectSteps(script: Script | null, q: StepQuery): Step[] | null {
  if (!script) return null;
  const task = script.tasks.find(
    ({ match }) =>
      (match.key === undefined || match.key === q.key) &&
      (match.title === undefined || q.title.includes(match.title)),
  );
  const forRole = task?.roles[q.role];
  const fromTask =
    (q.candidate ? forRole?.candidates?.[String(q.candidate)] : undefined) ??
    forRole?.attempts?.[String(q.attempt)] ??
    forRole?.default;
  return fromTask ?? script.defaults?.[q.role] ?? null;
}

const formatPath = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>(
    (out, part) =>
      typeof part === 'number' ? `${out}[${part}]` : out ? `${out}.${String(part)}` : String(part),
    '',
  ) || '(top level)';

export type LoadedScript = { ok: true; script: Script } | { ok: false; error: string };

/** Parses script text; `file` only names the script in errors. JSON for `.json`, YAML otherwise. */
export function parseScript(text: string, file: string): LoadedScript {
  let value: unknown;
  try {
    value = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return {
      ok: false,
      error: `invalid script ${file}: not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${why}`,
    };
  }
  const parsed = scriptSchema.safeParse(value ?? {});
  if (parsed.success) return { ok: true, script: parsed.data };
  const issues = parsed.error.issues.map((issue) => `  ${formatPath(issue.path)}: ${issue.message}`);
  return { ok: false, error: `invalid script ${file}:\n${issues.join('\n')}` };
}

/** Reads and parses a script file; a missing or unreadable file is an error value. */
export function loadScript(file: string): LoadedScript {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return { ok: false, error: `cannot read script ${file}: ${why}` };
  }
  return parseScript(text, file);
}
