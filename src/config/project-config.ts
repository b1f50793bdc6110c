/**
 * `orch.yaml`: a project's pipeline configuration. Parsed with positions so
 * every problem is reported at once with file, line and key.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isScalar, isSeq, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { ROLES } from '../core/stages.ts';
import { EFFORT_LEVELS } from '../core/model.ts';
import type { Variant } from '../core/variants.ts';
import { OrchError } from '../errors.ts';
import { ADAPTER_NAMES, PERMISSION_MODES } from '../core/adapters.ts';
import {
  MergeSchema,
  PipelineSchema,
  WorktreesSchema,
  pipelineProblems,
  resolvePipeline,
} from './pipeline-config.ts';
import { checkPromptTemplate } from './prompts.ts';
import { ForgeSchema, NotifySchema, TrackerSchema } from '../trackers/config.ts';

/** A problem the schema cannot see, at a key of the file. */
export interface Problem {
  key: string;
  message: string;
}

/** What the schema cannot see: pipeline routes, and prompt templates that would fail to render. */
function semanticProblems(cfg: ProjectConfig): Problem[] {
  const problems = pipelineProblems(resolvePipeline(cfg.pipeline, cfg.merge, cfg.worktrees));
  for (const [stage, c] of Object.entries(cfg.pipeline)) {
    if (!c?.prompt) continue;
    const error = checkPromptTemplate(c.prompt);
    if (error) problems.push({ key: `pipeline.${stage}.prompt`, message: error });
  }
  return problems;
}

const positiveInt = z.number().int().positive();
/** The longest pause a usage limit may set, in seconds (8 days: a week's window and a day to spare). */
const MAX_PAUSE_S = 8 * 24 * 3600;
const argv = z.array(z.string().min(1)).min(1);

/** A sandbox path: `~/…` (the agent's HOME), absolute, or relative to the task's worktree. */
const sandboxPath = z
  .string()
  .min(1)
  .refine((p) => !p.includes('\0') && !p.includes('\n'), 'a path, without NUL or newline characters');
const notRoot = (paths: string[]): boolean => !paths.some((p) => p.replace(/\/+$/, '') === '');
const SANDBOX_OFF = {
  enabled: false,
  network: false,
  writable_paths: [] as string[],
  read_only_paths: [] as string[],
  hidden_paths: [] as string[],
};

/**
 * `sandbox: true`, or `{ network, writable_paths, read_only_paths, hidden_paths }` (enabled unless
 * `enabled: false`): the agent runs under bubblewrap (docs/security.md#agent-sandbox). A role's
 * `sandbox` replaces `default:`'s whole, and an object without `enabled` is on, so a role never
 * drops out of the sandbox by setting one key.
 */
export const SandboxConfigSchema = z
  .union(
    [
      z.boolean(),
      z
        .object({
          enabled: z.boolean().default(true),
          /** Network access; off gives the agent a network namespace of its own (no connection leaves it). */
          network: z.boolean().default(false),
          /** Made writable besides the worktree (e.g. `~/.cache`); a missing one is skipped. */
          writable_paths: z
            .array(sandboxPath)
            .refine(notRoot, "'/' would make the whole system writable")
            .default([]),
          /** Made read-only (inside the worktree too, e.g. `.github`); a missing one is skipped. */
          read_only_paths: z.array(sandboxPath).default([]),
          /** Made invisible (an empty directory, or an empty file), besides orch's own and HOME's secrets. */
          hidden_paths: z
            .array(sandboxPath)
            .refine(notRoot, "'/' cannot be hidden: the agent needs a system to run on")
            .default([]),
        })
        .strict(),
    ],
    { error: 'true, false, or a map of enabled, network, writable_paths, read_only_paths, hidden_paths' },
  )
  .transform((v) => (typeof v === 'boolean' ? { ...SANDBOX_OFF, enabled: v } : v));

const variantName = z
  .string()
  .max(64, 'at most 64 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, dot, dash, underscore');

/**
 * One A/B variant of a role (`agents.<role>.variants[]`): a name, a weight,
 * and the keys of `VARIANT_KEYS` that replace the role's for the tasks it gets.
 */
export const VariantSchema = z
  .object({
    /** Stamped on every run of the variant; unique within the role. */
    name: variantName,
    /** Relative share of tasks, a positive number. Default 1. */
    weight: z.number().positive().default(1),
    model: z.string().min(1).optional(),
    effort: z.enum(EFFORT_LEVELS).optional(),
    max_turns: z.number().int().positive().optional(),
    args: z.array(z.string()).optional(),
    allowed_tools: z.array(z.string().min(1)).optional(),
    system_prompt_append: z.string().optional(),
    script: z.string().optional(),
  })
  .strict() satisfies z.ZodType<Variant, unknown>;

const VariantsSchema = z
  .array(VariantSchema)
  .min(1, 'at least one variant (leave the key out for none)')
  .superRefine((variants, ctx) => {
    const seen = new Set<string>();
    variants.forEach((v, i) => {
      if (seen.has(v.name))
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${v.name} is named twice` });
      seen.add(v.name);
    });
  });

/** One role's agent: which adapter runs it and how. */
export const AgentConfigSchema = z
  .object({
    /** Which agent CLI runs the role (docs/agents.md has a table per adapter). */
    adapter: z.enum(ADAPTER_NAMES).default('scripted'),
    /** argv of a command agent. */
    command: argv.optional(),
    /** Executable of a CLI adapter: a path (relative to the project root) or a name on PATH; default the CLI's own name on PATH, else orch's node_modules/.bin. */
    binary: z.string().min(1).optional(),
    /** Extra arguments appended to the adapter's argv (before the prompt). */
    args: z.array(z.string()).optional(),
    /** Most model turns a run may take (CLIs without a turn limit ignore it). */
    max_turns: positiveInt.optional(),
    /** Tools the agent may use without asking, in the CLI's own names (e.g. `Bash(git *)`, `Edit`). */
    allowed_tools: z.array(z.string().min(1)).optional(),
    /** Text added to the CLI's system prompt (put before the prompt where the CLI has no flag for it). */
    system_prompt_append: z.string().optional(),
    /** How much the agent may do without asking: bypass (default), edits, read_only. */
    permission_mode: z.enum(PERMISSION_MODES).optional(),
    /** Script file of the scripted agent, relative to the project root. */
    script: z.string().optional(),
    model: z.string().optional(),
    effort: z.enum(EFFORT_LEVELS).optional(),
    timeout_s: positiveInt.optional(),
    /** Extra environment for the agent process. */
    env: z.record(z.string(), z.string()).default({}),
    /** Run the agent in its own PID namespace (needs root), so even descendants that escaped with setsid die with it. */
    pid_namespace: z.boolean().default(false),
    /** Run the agent under bubblewrap: only its worktree writable, orch's state and secrets invisible. */
    sandbox: SandboxConfigSchema.default(SANDBOX_OFF),
    /** A/B variants of the role: each task gets one by weight, from its key (docs/analytics.md). Default none. */
    variants: VariantsSchema.optional(),
    /** Names of orch's own environment variables passed through (e.g. the agent's API key); never `ORCH_*`. */
    pass_env: z
      .array(
        z.string().regex(/^(?!ORCH_)[A-Za-z_][A-Za-z0-9_]*$/, 'a variable name, not starting with ORCH_'),
      )
      .default([]),
  })
  .strict();
export type AgentConfig = z.infer<typeof AgentConfigSchema>;

/**
 * An `agents.<role>` (or `agents.default`) entry as written: the same keys with no defaults
 * filled in, so a role's entry overrides only what it sets and `default:` keeps the rest.
 * The defaults apply once, to the merged entry (see `effectiveConfig`).
 */
export const AgentEntrySchema = z
  .object(
    Object.fromEntries(
      Object.entries(AgentConfigSchema.shape).map(([key, field]) => [
        key,
        (field instanceof z.ZodDefault ? field.unwrap() : field).optional(),
      ]),
    ) as unknown as { [K in keyof typeof AgentConfigSchema.shape]: z.ZodOptional<z.ZodType<AgentConfig[K]>> },
  )
  .strict();
export type AgentEntry = z.infer<typeof AgentEntrySchema>;

/** A hook's command: a string runs with `sh -c`, a list is an argv. */
const hookCommand = z.union(
  [
    z.string().refine((c) => c.trim() !== '', 'a shell command, not empty'),
    z
      .array(z.string().min(1, 'an argument, not empty'))
      .min(1, 'a shell command, or an argv with at least the program'),
  ],
  { error: 'a shell command (a string, run with sh -c) or an argv (a list of strings)' },
);

/** Default of `hooks.timeout_s`, seconds. */
export const DEFAULT_HOOK_TIMEOUT_S = 600;

/**
 * `hooks`: commands run in a task's worktree (docs/configuration.md#hooks): `after_create` once
 * the worktree is made (until it succeeds), `before_run` and `after_run` around every agent run,
 * `before_remove` before orch removes the worktree; in the sandbox of the role they prepare for
 * unless `sandbox: false`.
 */
export const HooksSchema = z
  .object({
    after_create: hookCommand.optional(),
    before_run: hookCommand.optional(),
    after_run: hookCommand.optional(),
    before_remove: hookCommand.optional(),
    /** Each hook's timeout, seconds. Default 600. */
    timeout_s: positiveInt.optional(),
    /**
     * Whether a hook of a sandboxed role runs in that role's sandbox (default true); false runs
     * every hook outside any sandbox (an install that needs the network a role's sandbox denies).
     */
    sandbox: z.boolean().optional(),
  })
  .strict()
  .default({});
export type HooksConfig = z.infer<typeof HooksSchema>;

const roleKeys = Object.fromEntries([...ROLES, 'default'].map((r) => [r, AgentEntrySchema.optional()]));

export const ProjectConfigSchema = z
  .object({
    project: z
      .object({
        name: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, dot, dash, underscore')
          .optional(),
        key_prefix: z
          .string()
          .regex(/^[A-Z][A-Z0-9]*$/, 'upper-case letters and digits, starting with a letter')
          .optional(),
        base_branch: z.string().min(1).optional(),
        /** The project's test command, run by the tester and the ci gate. */
        test_command: argv.optional(),
      })
      .strict()
      .default({}),
    locale: z.enum(['en', 'ru']).default('en'),
    agents: z.object(roleKeys).strict().default({}),
    timeouts: z
      .object({
        agent_timeout_seconds: positiveInt.optional(),
        agent_timeout_developer_s: positiveInt.optional(),
        agent_timeout_reviewer_s: positiveInt.optional(),
        agent_timeout_overrides: z.record(z.string(), positiveInt).optional(),
        agent_kill_grace_seconds: positiveInt.optional(),
        reaper_max_running_s: positiveInt.optional(),
        stall_timeout_s: z.number().int().min(0).optional(),
      })
      .strict()
      .default({}),
    models: z
      .object({ default: z.string().min(1).optional(), default_effort: z.enum(EFFORT_LEVELS).optional() })
      .strict()
      .default({}),
    budget: z
      .object({
        max_attempts: positiveInt.optional(),
        max_tokens: positiveInt.nullable().optional(),
        max_usd: z.number().positive().nullable().optional(),
        max_wall_s: positiveInt.nullable().optional(),
        project_usd_per_day: z.number().positive().nullable().optional(),
        /** Times a task may take one failure route to a stage other than development. Default 3. */
        max_loops: positiveInt.optional(),
      })
      .strict()
      .default({}),
    retry: z
      .object({
        max_retries: z.number().int().min(0).optional(),
        /** Tries of one job cut off without a result (reaped, crashed, lease lost) before the task escalates. Default 3. */
        max_interruptions: z.number().int().min(0).optional(),
        base_ms: positiveInt.optional(),
        max_ms: positiveInt.optional(),
        /** A usage limit without a named reset pauses its adapter this long, doubling per limit in a row. Default 60. */
        usage_limit_backoff_s: positiveInt.max(MAX_PAUSE_S, `at most ${MAX_PAUSE_S} (8 days)`).optional(),
        /** The longest such pause. Default 3600. */
        usage_limit_backoff_max_s: positiveInt.max(MAX_PAUSE_S, `at most ${MAX_PAUSE_S} (8 days)`).optional(),
      })
      .strict()
      .default({}),
    /** USD per million tokens per model, over the shipped table (src/agents/prices.ts). */
    prices: z
      .record(
        z.string().min(1),
        z
          .object({
            input: z.number().nonnegative(),
            output: z.number().nonnegative(),
            cache_read: z.number().nonnegative().optional(),
            cache_write: z.number().nonnegative().optional(),
          })
          .strict(),
      )
      .default({}),
    pipeline: PipelineSchema,
    merge: MergeSchema,
    worktrees: WorktreesSchema,
    hooks: HooksSchema,
    tracker: TrackerSchema.optional(),
    forge: ForgeSchema.optional(),
    notify: NotifySchema.default({ channels: {} }),
  })
  .strict();
export type ProjectConfig = z.infer<typeof ProjectConfigSchema>;

/** One problem in a config file, located. */
export interface ConfigIssue {
  file: string;
  line: number | null;
  column: number | null;
  key: string;
  message: string;
}

export class ConfigError extends OrchError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super('config_invalid', formatIssues(issues), { context: { issues } });
    this.issues = issues;
  }
}

export function formatIssues(issues: readonly ConfigIssue[]): string {
  const lines = issues.map(
    (i) =>
      `  ${i.file}${i.line !== null ? `:${i.line}${i.column !== null ? `:${i.column}` : ''}` : ''}  ${i.key || '(root)'}: ${i.message}`,
  );
  return `invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`;
}

/** Finds the YAML node at a path, falling back to the nearest ancestor that exists. */
function nodeAt(root: YamlNode | null, path: readonly PropertyKey[]): YamlNode | null {
  let node: YamlNode | null = root;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === key);
      if (!pair) return node;
      node = (pair.value as YamlNode | null) ?? (pair.key as YamlNode);
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key] as YamlNode | undefined;
      if (!item) return node;
      node = item;
    } else return node;
  }
  return node;
}

/** Largest config accepted, in bytes. A real one is a few KB; a huge one would only stall every load. */
export const MAX_CONFIG_BYTES = 256 * 1024;
/** Problems listed at most. Locating each walks the document, so thousands would stall a load for minutes. */
export const MAX_CONFIG_ISSUES = 50;

/** One problem with the file as a whole. */
const fileProblem = (file: string, message: string): ConfigError =>
  new ConfigError([{ file, line: null, column: null, key: '', message }]);

/** The first {@link MAX_CONFIG_ISSUES} of `total` problems, and one line counting the rest. */
function capped(issues: ConfigIssue[], total: number, file: string): ConfigIssue[] {
  if (total <= issues.length) return issues;
  const rest = total - issues.length;
  return [
    ...issues,
    {
      file,
      line: null,
      column: null,
      key: '',
      message: `${rest} more problem${rest === 1 ? '' : 's'} not listed (MAX_CONFIG_ISSUES = ${MAX_CONFIG_ISSUES})`,
    },
  ];
}

/** Keys repeated within a mapping, in one pass over the document (iterative: no deep recursion). */
function duplicateKeys(root: unknown): { offset: number | undefined; message: string }[] {
  const found: { offset: number | undefined; message: string }[] = [];
  const stack: unknown[] = [root];
  while (stack.length) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        // Scalars compare by value, collections by identity: what yaml's uniqueKeys does.
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        if (seen.has(key))
          found.push({
            offset: (pair.key as YamlNode | null)?.range?.[0],
            message: `Map keys must be unique${isScalar(pair.key) ? `: ${JSON.stringify(String(key))} appears again` : ''}`,
          });
        seen.add(key);
        stack.push(pair.key, pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    }
  }
  return found;
}

/**
 * Parses and validates config text. Throws {@link ConfigError} listing every problem; `more`
 * finds problems that need more than the file (the environment, say), located the same way.
 */
export function parseProjectConfig(
  text: string,
  file: string,
  more: (cfg: ProjectConfig) => Problem[] = () => [],
): ProjectConfig {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_CONFIG_BYTES)
    throw fileProblem(file, `${bytes} bytes, over the limit of ${MAX_CONFIG_BYTES} (MAX_CONFIG_BYTES)`);
  const lineCounter = new LineCounter();
  let doc: ReturnType<typeof parseDocument>;
  try {
    // Duplicate keys are found by duplicateKeys: yaml's own check is quadratic in a map's size.
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  } catch (error) {
    // The parser reports syntax as doc.errors; a throw is the input exhausting it.
    throw fileProblem(file, `cannot parse: ${(error as Error).message}`);
  }
  const at = (offset: number | undefined) => {
    if (offset === undefined) return { line: null, column: null };
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  const syntax = [
    ...doc.errors.map((e) => ({ offset: e.pos[0], message: e.message.split('\n')[0] ?? e.message })),
    ...duplicateKeys(doc.contents),
  ];
  if (syntax.length) {
    const located = syntax
      .slice(0, MAX_CONFIG_ISSUES)
      .map((e) => ({ file, ...at(e.offset), key: '', message: e.message }))
      .sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigError(capped(located, syntax.length, file));
  }
  let data: unknown;
  try {
    // toJS throws on an alias bomb (more than 100 alias expansions per node, the yaml default).
    data = doc.toJS() ?? {};
  } catch (error) {
    throw fileProblem(file, `cannot load the YAML: ${(error as Error).message}`);
  }
  const result = ProjectConfigSchema.safeParse(data);
  if (result.success) {
    const problems = semanticProblems(result.data);
    if (!problems.length) problems.push(...more(result.data));
    if (!problems.length) return result.data;
    throw new ConfigError(locateProblems(doc, lineCounter, file, problems));
  }
  const found = result.error.issues.flatMap((issue): { issue: z.core.$ZodIssue; path: PropertyKey[] }[] =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((k) => ({ issue, path: [...issue.path, k] }))
      : [{ issue, path: issue.path }],
  );
  const issues: ConfigIssue[] = [];
  for (const { issue, path } of found.slice(0, MAX_CONFIG_ISSUES)) {
    const node = nodeAt(doc.contents as YamlNode | null, path);
    const offset =
      issue.code === 'unrecognized_keys'
        ? keyOffset(doc.contents as YamlNode | null, path)
        : node?.range?.[0];
    issues.push({
      file,
      ...at(offset),
      key: path.map(String).join('.'),
      message: issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message,
    });
  }
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  throw new ConfigError(capped(issues, found.length, file));
}

/** A problem found beside the schema (a pipeline route, a path that leads nowhere), by its dotted key. */
export interface KeyProblem {
  key: string;
  message: string;
}

/** Problems named by dotted key, located in the document (the key's value, else its nearest ancestor). */
function locateProblems(
  doc: ReturnType<typeof parseDocument>,
  lineCounter: LineCounter,
  file: string,
  problems: readonly KeyProblem[],
): ConfigIssue[] {
  const located = problems.slice(0, MAX_CONFIG_ISSUES).map((p) => {
    const offset = nodeAt(doc.contents as YamlNode | null, p.key.split('.'))?.range?.[0];
    const pos = offset === undefined ? null : lineCounter.linePos(offset);
    return { file, line: pos?.line ?? null, column: pos?.col ?? null, key: p.key, message: p.message };
  });
  return capped(located, problems.length, file);
}

/**
 * Problems (by dotted key) in a config that parsed, located in its text: for checks made after
 * parsing, such as the files it names (config/config-files.ts). The text must be the one parsed.
 */
export function configErrorAt(text: string, file: string, problems: readonly KeyProblem[]): ConfigError {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  return new ConfigError(locateProblems(doc, lineCounter, file, problems));
}

function keyOffset(root: YamlNode | null, path: readonly PropertyKey[]): number | undefined {
  const parent = nodeAt(root, path.slice(0, -1));
  if (!isMap(parent)) return parent?.range?.[0];
  const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === path.at(-1));
  return (pair?.key as YamlNode | undefined)?.range?.[0];
}

/**
 * The text of `orch.yaml`, or null when there is none. Opened non-blocking and checked on the open
 * file, so a FIFO or a device put in its place (a landing can bring a symlink) is refused at once
 * and never read; a regular file is read up to {@link MAX_CONFIG_BYTES}.
 */
export function readConfigText(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fileProblem(path, `cannot read: ${(error as Error).message}`);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw fileProblem(path, 'not a regular file');
    if (stat.size > MAX_CONFIG_BYTES)
      throw fileProblem(path, `${stat.size} bytes, over the limit of ${MAX_CONFIG_BYTES} (MAX_CONFIG_BYTES)`);
    return readFileSync(fd, 'utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw fileProblem(path, `cannot read: ${(error as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/** Loads `orch.yaml` from a path; a missing file is the default config. */
export function loadProjectConfig(
  path: string,
  more: (cfg: ProjectConfig) => Problem[] = () => [],
): ProjectConfig {
  return parseProjectConfig(readConfigText(path) ?? '{}', path, more);
}
