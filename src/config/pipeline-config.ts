/**
 * The `pipeline`, `merge` and `worktrees` sections of `orch.yaml`: how each
 * stage is worked, which gates it must pass to leave, where a failing gate
 * sends the task, and how a finished branch lands.
 */
import { z } from 'zod';
import { ROLES, STAGE_ROLE, WORK_STAGES, type Role, type WorkStage } from '../core/stages.ts';
import { QG_CHECKS } from '../core/gates.ts';
import type { StageRoute } from '../core/pipeline.ts';
import type { PromptTemplate } from './prompts.ts';

const argv = z.array(z.string().min(1)).min(1);
const positiveInt = z.number().int().positive();

/** The most development candidates one attempt may run (`pipeline.development.candidates`). */
export const MAX_CANDIDATES = 9;

export { WORK_STAGES, type WorkStage } from '../core/stages.ts';

const GateRef = z.union([
  z.enum(Object.keys(QG_CHECKS) as [keyof typeof QG_CHECKS, ...(keyof typeof QG_CHECKS)[]]),
  z
    .object({
      /** A command gate: passes when the argv exits 0 in the worktree. */
      name: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'lower-case letters, digits, - and _'),
      command: argv,
      timeout_s: positiveInt.optional(),
    })
    .strict(),
  z
    .object({
      /** `check_artifacts_present` with its own file list (paths may use {{ task.key }}). */
      name: z.literal('check_artifacts_present'),
      files: z.array(z.string().min(1)).min(1),
    })
    .strict(),
]);
export type GateRef = z.infer<typeof GateRef>;

export const StageConfigSchema = z
  .object({
    /** false skips the stage. */
    enabled: z.boolean().optional(),
    /** agent (a role's agent works it), command (a configured command), human (waits for `orch task approve`). */
    kind: z.enum(['agent', 'command', 'human']).optional(),
    role: z.enum(ROLES).optional(),
    /** A Liquid template replacing the role's built-in prompt for this stage. */
    prompt: z.string().min(1).optional(),
    /** A file holding the template, relative to the project root. */
    prompt_file: z.string().min(1).optional(),
    /** Gates that must pass to leave the stage, in order. */
    gates: z.array(GateRef).optional(),
    /** Where a failing gate sends the task: `escalate` or an earlier stage (feedback = the gate's output). */
    on_fail: z.union([z.literal('escalate'), z.enum(WORK_STAGES)]).optional(),
    /** Command stages: argv, environment and timeout. */
    command: argv.optional(),
    env: z.record(z.string(), z.string()).optional(),
    timeout_s: positiveInt.optional(),
    /** Wait for `orch task approve` before working the stage. */
    approval: z.boolean().optional(),
    /** Development only: developer runs side by side, each in its own worktree; the reviewer picks one. */
    candidates: positiveInt.max(MAX_CANDIDATES).optional(),
  })
  .strict();
export type StageConfig = z.infer<typeof StageConfigSchema>;

export const PipelineSchema = z
  .object(
    Object.fromEntries(WORK_STAGES.map((s) => [s, StageConfigSchema.optional()])) as Record<
      WorkStage,
      z.ZodOptional<typeof StageConfigSchema>
    >,
  )
  .strict()
  .default({});

export const MergeSchema = z
  .object({
    /** merge: the base is merged into the branch, then fast-forwarded; rebase: the branch is rebased (linear history); merge-commit: the base gets a merge commit. */
    strategy: z.enum(['merge', 'rebase', 'merge-commit']).default('merge'),
  })
  .strict()
  .default({ strategy: 'merge' });

export const WorktreesSchema = z
  .object({
    /** on_done: a worktree is removed once its task is done or cancelled and it holds nothing uncommitted; never: kept. */
    remove: z.enum(['on_done', 'never']).default('on_done'),
  })
  .strict()
  .default({ remove: 'on_done' });

/** A stage as the engine works it, defaults applied: its route (core/pipeline.ts) and its work. */
export interface StagePlan extends StageRoute {
  gates: GateRef[];
  command: string[] | null;
  env: Record<string, string>;
  timeoutS: number | null;
  prompt: string | null;
  promptFile: string | null;
  /**
   * The stage's own prompt template (inline `prompt`, or `prompt_file` read when the config
   * loaded), parsed; null for the role's built-in prompt. Nothing reads `promptFile` again.
   */
  template: PromptTemplate | null;
  /** Development runs per attempt, side by side (`candidates`, default 1). */
  candidates: number;
}

export interface PipelinePlan {
  /** Enabled stages, in pipeline order. */
  stages: StagePlan[];
  mergeStrategy: 'merge' | 'rebase' | 'merge-commit';
  removeWorktrees: boolean;
}

/** The role of each stage: the default pipeline's. */
const DEFAULT_ROLE = STAGE_ROLE as Record<WorkStage, Role>;

/** The built-in gates of each stage and where their failure sends the task. */
const DEFAULT_GATES: Record<WorkStage, { gates: GateRef[]; onFail: 'escalate' | WorkStage }> = {
  analysis: {
    gates: [
      {
        name: 'check_artifacts_present',
        files: ['docs/tasks/{{ task.key }}/requirements.md', 'docs/tasks/{{ task.key }}/test-plan.md'],
      },
    ],
    onFail: 'escalate',
  },
  architecture: {
    gates: [{ name: 'check_artifacts_present', files: ['docs/tasks/{{ task.key }}/adr.md'] }],
    onFail: 'escalate',
  },
  development: { gates: ['check_diff_nonempty'], onFail: 'development' },
  review: { gates: ['check_reviewer_verdict'], onFail: 'development' },
  testing: { gates: ['check_ci_green'], onFail: 'development' },
  'deploy-staging': { gates: [], onFail: 'escalate' },
  deploy: { gates: [], onFail: 'escalate' },
};

/**
 * The enabled stages with defaults applied. `adapterOf` gives the adapter of a role's agent
 * (`agents.<role>.adapter`): an agent stage's jobs carry it, so workers claim by it.
 */
export function resolvePipeline(
  pipeline: z.infer<typeof PipelineSchema>,
  merge: z.infer<typeof MergeSchema>,
  worktrees: z.infer<typeof WorktreesSchema>,
  adapterOf: (role: Role) => string | null = () => null,
  /** Templates read and parsed at load (config-files.ts); without them a plan's `template` is null. */
  templates: Partial<Record<WorkStage, PromptTemplate>> = {},
): PipelinePlan {
  const stages: StagePlan[] = [];
  for (const name of WORK_STAGES) {
    const c = pipeline[name] ?? {};
    if (c.enabled === false) continue;
    const kind = c.kind ?? (c.command ? 'command' : 'agent');
    const role = kind === 'agent' ? (c.role ?? DEFAULT_ROLE[name]) : (c.role ?? null);
    stages.push({
      name,
      kind,
      role,
      adapter: kind === 'agent' && role ? adapterOf(role) : null,
      gates: c.gates ?? DEFAULT_GATES[name].gates,
      onFail: c.on_fail ?? DEFAULT_GATES[name].onFail,
      approval: c.approval ?? false,
      command: c.command ?? null,
      env: c.env ?? {},
      timeoutS: c.timeout_s ?? null,
      prompt: c.prompt ?? null,
      promptFile: c.prompt_file ?? null,
      template: templates[name] ?? null,
      candidates: c.candidates ?? 1,
    });
  }
  return { stages, mergeStrategy: merge.strategy, removeWorktrees: worktrees.remove === 'on_done' };
}

/** Problems a schema cannot see: a command stage without a command, a failure route that goes forward. */
export function pipelineProblems(plan: PipelinePlan): { key: string; message: string }[] {
  const problems: { key: string; message: string }[] = [];
  const order = plan.stages.map((s) => s.name);
  for (const s of plan.stages) {
    if (s.kind === 'command' && !s.command)
      problems.push({ key: `pipeline.${s.name}.command`, message: 'a command stage needs a command' });
    if (s.onFail !== 'escalate') {
      if (s.onFail === s.name && s.name !== 'development')
        problems.push({
          key: `pipeline.${s.name}.on_fail`,
          message: `a failing gate would send the task back to ${s.name} itself, with nothing in between to change the outcome: route it to an earlier stage (development gets the gate's output as feedback) or escalate`,
        });
      else if (!order.includes(s.onFail))
        problems.push({ key: `pipeline.${s.name}.on_fail`, message: `stage ${s.onFail} is not enabled` });
      else if (order.indexOf(s.onFail) > order.indexOf(s.name))
        problems.push({
          key: `pipeline.${s.name}.on_fail`,
          message: `a failing gate can only send the task back, not forward to ${s.onFail}`,
        });
    }
  }
  for (const s of plan.stages) {
    if (s.candidates === 1) continue;
    if (s.name !== 'development')
      problems.push({
        key: `pipeline.${s.name}.candidates`,
        message: 'only the development stage runs candidates',
      });
    else if (s.kind !== 'agent')
      problems.push({
        key: 'pipeline.development.candidates',
        message: `candidates are developer runs: the development stage must be an agent stage, not ${s.kind}`,
      });
    else if (plan.stages.find((r) => r.name === 'review')?.kind !== 'agent')
      problems.push({
        key: 'pipeline.development.candidates',
        message:
          'the reviewer chooses among candidates: enable the review stage as an agent stage, or set candidates to 1',
      });
  }
  if (!order.includes('development'))
    problems.push({ key: 'pipeline.development', message: 'the development stage cannot be disabled' });
  return problems;
}
