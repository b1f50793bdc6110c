/**
 * `orch.yaml`: a project's pipeline configuration. Parsed with positions so
 * every problem is reported at once with file, line and key.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isSeq, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { ROLES } from '../core/stages.ts';
import { EFFORT_LEVELS } from '../core/model.ts';
import { OrchError } from '../errors.ts';
import { ADAPTER_NAMES, PERMISSION_MODES } from '../agents/adapter.ts';
import {
  MergeSchema,
  PipelineSchema,
  WorktreesSchema,
  pipelineProblems,
  resolvePipeline,
} from './pipeline-config.ts';
import { checkPromptTemplate } from '../runtime/prompts.ts';

/** What the schema cannot see: pipeline routes, and prompt templates that would fail to render. */
function semanticProblems(cfg: ProjectConfig): { key: string; message: string }[] {
  const problems = pipelineProblems(resolvePipeline(cfg.pipeline, cfg.merge, cfg.worktrees));
  for (const [stage, c] of Object.entries(cfg.pipeline)) {
    if (!c?.prompt) continue;
    const error = checkPromptTemplate(c.prompt);
    if (error) problems.push({ key: `pipeline.${stage}.prompt`, message: error });
  }
  return problems;
}

const positiveInt = z.number().int().positive();
const argv = z.array(z.string().min(1)).min(1);

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
      })
      .strict()
      .default({}),
    retry: z
      .object({
        max_retries: z.number().int().min(0).optional(),
        base_ms: positiveInt.optional(),
        max_ms: positiveInt.optional(),
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

/** Parses and validates config text. Throws {@link ConfigError} listing every problem. */
export function parseProjectConfig(text: string, file: string): ProjectConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined) => {
    if (offset === undefined) return { line: null, column: null };
    const pos = lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  };
  if (doc.errors.length) {
    throw new ConfigError(
      doc.errors.map((e) => ({
        file,
        ...at(e.pos[0]),
        key: '',
        message: e.message.split('\n')[0] ?? e.message,
      })),
    );
  }
  const data: unknown = doc.toJS() ?? {};
  const result = ProjectConfigSchema.safeParse(data);
  if (result.success) {
    const problems = semanticProblems(result.data);
    if (!problems.length) return result.data;
    throw new ConfigError(
      problems.map((p) => {
        const path = p.key.split('.');
        return {
          file,
          ...at(nodeAt(doc.contents as YamlNode | null, path)?.range?.[0]),
          key: p.key,
          message: p.message,
        };
      }),
    );
  }
  const issues: ConfigIssue[] = [];
  for (const issue of result.error.issues) {
    const keys =
      issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    for (const path of keys) {
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
  }
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  throw new ConfigError(issues);
}

function keyOffset(root: YamlNode | null, path: readonly PropertyKey[]): number | undefined {
  const parent = nodeAt(root, path.slice(0, -1));
  if (!isMap(parent)) return parent?.range?.[0];
  const pair = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === path.at(-1));
  return (pair?.key as YamlNode | undefined)?.range?.[0];
}

/** Loads `orch.yaml` from a path; a missing file is the default config. */
export function loadProjectConfig(path: string): ProjectConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return ProjectConfigSchema.parse({});
    throw new ConfigError([
      { file: path, line: null, column: null, key: '', message: `cannot read: ${(error as Error).message}` },
    ]);
  }
  return parseProjectConfig(text, path);
}
