/**
 * The one place that reads the environment. `ORCH_*` variables (the seed's
 * names) override `orch.yaml`, which overrides the built-in defaults.
 */
import { join, resolve } from 'node:path';
import { ROLES, type Role } from '../core/stages.ts';
import {
  DEFAULT_TIMEOUTS,
  reaperProblems,
  resolveTimeoutS,
  type TimeoutSettings,
  type TimeoutSource,
} from '../core/timeouts.ts';
import { DEFAULT_MODEL, EFFORT_FLOORS, maxEffort, type ModelSettings } from '../core/model.ts';
import { DEFAULT_TASK_BUDGET, type TaskBudget } from '../core/build-loop.ts';
import { DEFAULT_RETRY, type RetryPolicy } from '../core/backoff.ts';
import { DEFAULT_MAX_INTERRUPTIONS, DEFAULT_MAX_LOOPS } from '../core/pipeline.ts';
import { credentialOf } from '../core/adapters.ts';
import {
  AgentConfigSchema,
  DEFAULT_HOOK_TIMEOUT_S,
  type AgentConfig,
  type HooksConfig,
  type ProjectConfig,
} from './project-config.ts';
import { resolvePipeline, type PipelinePlan, type StagePlan } from './pipeline-config.ts';
import type { Plan } from '../core/pipeline.ts';

export type Env = Readonly<Record<string, string | undefined>>;

/** Process-wide settings (not per project). */
export interface GlobalSettings {
  /** Directory holding orch's state (`.orch/` of the home repository). */
  stateDir: string;
  /** `ORCH_DB_PATH`; default `<stateDir>/orch.db`. */
  dbPath: string;
  /** `ORCH_DATABASE_URL`: a `postgres://` URL selects PostgreSQL instead of the SQLite file. Default none. */
  databaseUrl: string | null;
  /** `ORCH_REPOS_DIR`: where URL projects are cloned and worktrees live; default `<stateDir>`. */
  reposDir: string;
  /** `ORCH_CONCURRENCY`: agents run at once by `orch run`. Default 4. */
  concurrency: number;
  /** `ORCH_LEASE_TTL_MS`: a job's lease; heartbeats renew it at a third. Default 30 000. */
  leaseTtlMs: number;
  /** `ORCH_REAPER_INTERVAL_MS`: how often the reaper looks. Default 5 000. */
  reaperIntervalMs: number;
  /**
   * `ORCH_GIT_HANDOFF`: `on` pushes task branches and landings to a project's `origin` remote and
   * fetches before each stage; `off` never touches a remote; `auto` (default) is `on` when the
   * store is PostgreSQL (workers on several machines hand stages over through git) and `off` on
   * SQLite (one machine: a user's GitHub origin is never pushed to behind their back).
   */
  gitHandoff: 'auto' | 'on' | 'off';
  /**
   * `ORCH_TRACKER_LIVE_STATUS`: `on` (or `1`, `true`) reads an imported task's state from its
   * tracker each time its tracker message is rendered and shows it in the header. Off by default:
   * one more tracker call per message.
   */
  trackerLiveStatus: boolean;
  /**
   * `ORCH_POLL_MS`: the scheduler's safety-net poll; wake-ups (LISTEN/NOTIFY, file watching)
   * make it rarely matter. Default 1 000.
   */
  pollMs: number;
  /** `ORCH_RESULT_GRACE_MS`: how long an agent may take to exit after its result line. Default 5 000. */
  resultGraceMs: number;
}

/** A project's effective settings after env > orch.yaml > defaults. */
export interface EffectiveConfig {
  timeouts: TimeoutSettings;
  /** `ORCH_STALL_TIMEOUT_S`: silence after which an agent is killed and retried. Default 600; 0 disables. */
  stallTimeoutS: number;
  models: ModelSettings;
  agents: Record<Role, AgentConfig>;
  budget: TaskBudget;
  projectUsdPerDay: number | null;
  retry: RetryPolicy;
  /** `retry.max_interruptions`: tries of one job cut off without a result before the task escalates. Default 3. */
  maxInterruptions: number;
  /** `budget.max_loops`: times a task may take one failure route to a stage other than development. Default 3. */
  maxLoops: number;
  /** How long an adapter pauses for a usage limit whose reset its CLI did not name (`retry.usage_limit_*`). */
  usageLimit: UsageLimitPolicy;
  testCommand: string[] | null;
  locale: 'en' | 'ru';
  /** Settings that were set but unusable, and what was used instead. */
  warnings: string[];
}

export const DEFAULT_STALL_TIMEOUT_S = 600;

/** The pause for a usage limit without a named reset: `backoffMs`, doubling per limit in a row, up to `backoffMaxMs`. */
export interface UsageLimitPolicy {
  backoffMs: number;
  backoffMaxMs: number;
}
export const DEFAULT_USAGE_LIMIT: UsageLimitPolicy = { backoffMs: 60_000, backoffMaxMs: 3_600_000 };

/** An integer from the environment; a value that is not one is kept raw so the ladder can warn about it. */
const rawInt = (v: string | undefined): unknown => {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v.trim());
  return Number.isFinite(n) ? n : v;
};
const int = (v: string | undefined, fallback: number): number => {
  const n = rawInt(v);
  return typeof n === 'number' && Number.isInteger(n) ? n : fallback;
};

/** A positive integer from the environment; anything else set there falls back with a warning. */
function positiveFromEnv(name: string, env: Env, fallback: number, warnings: string[]): number {
  const n = rawInt(env[name]);
  if (n === undefined) return fallback;
  if (typeof n === 'number' && Number.isInteger(n) && n > 0) return n;
  warnings.push(`${name} = ${JSON.stringify(env[name])} is not a positive integer; using ${fallback}`);
  return fallback;
}

export function globalSettings(env: Env, homeDir: string): GlobalSettings {
  const stateDir = resolve(homeDir, '.orch');
  return {
    stateDir,
    dbPath: env.ORCH_DB_PATH ? resolve(env.ORCH_DB_PATH) : join(stateDir, 'orch.db'),
    databaseUrl: env.ORCH_DATABASE_URL?.trim() || null,
    reposDir: env.ORCH_REPOS_DIR ? resolve(env.ORCH_REPOS_DIR) : stateDir,
    concurrency: Math.max(1, int(env.ORCH_CONCURRENCY, 4)),
    leaseTtlMs: Math.max(1000, int(env.ORCH_LEASE_TTL_MS, 30_000)),
    reaperIntervalMs: Math.max(100, int(env.ORCH_REAPER_INTERVAL_MS, 5_000)),
    gitHandoff:
      (['on', 'off'] as const).find((v) => v === env.ORCH_GIT_HANDOFF?.trim().toLowerCase()) ?? 'auto',
    pollMs: Math.max(50, int(env.ORCH_POLL_MS, 1_000)),
    trackerLiveStatus: ['on', '1', 'true', 'yes'].includes(
      env.ORCH_TRACKER_LIVE_STATUS?.trim().toLowerCase() ?? '',
    ),
    resultGraceMs: Math.max(0, int(env.ORCH_RESULT_GRACE_MS, 5_000)),
  };
}

export function effectiveConfig(cfg: ProjectConfig, env: Env): EffectiveConfig {
  const warnings: string[] = [];
  const t = cfg.timeouts;
  const pick = <T>(envValue: unknown, fileValue: T | undefined, fallback: T): T | unknown =>
    envValue !== undefined ? envValue : fileValue !== undefined ? fileValue : fallback;
  const timeouts: TimeoutSettings = {
    agentTimeoutSeconds: positiveFromEnv(
      'ORCH_AGENT_TIMEOUT_SECONDS',
      env,
      t.agent_timeout_seconds ?? DEFAULT_TIMEOUTS.agentTimeoutSeconds,
      warnings,
    ),
    agentTimeoutDeveloperS: pick(
      rawInt(env.ORCH_AGENT_TIMEOUT_DEVELOPER_S),
      t.agent_timeout_developer_s,
      DEFAULT_TIMEOUTS.agentTimeoutDeveloperS,
    ),
    agentTimeoutReviewerS: pick(
      rawInt(env.ORCH_AGENT_TIMEOUT_REVIEWER_S),
      t.agent_timeout_reviewer_s,
      DEFAULT_TIMEOUTS.agentTimeoutReviewerS,
    ),
    agentTimeoutOverridesJson:
      env.ORCH_AGENT_TIMEOUT_OVERRIDES_JSON ??
      (t.agent_timeout_overrides ? JSON.stringify(t.agent_timeout_overrides) : ''),
    agentKillGraceSeconds: positiveFromEnv(
      'ORCH_AGENT_KILL_GRACE_SECONDS',
      env,
      t.agent_kill_grace_seconds ?? DEFAULT_TIMEOUTS.agentKillGraceSeconds,
      warnings,
    ),
    reaperMaxRunningS: positiveFromEnv(
      'ORCH_REAPER_MAX_RUNNING_S',
      env,
      t.reaper_max_running_s ?? DEFAULT_TIMEOUTS.reaperMaxRunningS,
      warnings,
    ),
  };
  const agents = {} as Record<Role, AgentConfig>;
  const roleModels: Record<string, string | undefined> = {};
  const roleEfforts: Record<string, string | undefined> = {};
  for (const role of ROLES) {
    // The role's own keys over `default:`, then the schema's defaults for what neither sets.
    agents[role] = AgentConfigSchema.parse({
      ...cfg.agents.default,
      ...cfg.agents[role],
      env: { ...cfg.agents.default?.env, ...cfg.agents[role]?.env },
    });
    const upper = role.toUpperCase();
    roleModels[role] =
      env[`ORCH_AGENT_MODEL_${upper}`] || cfg.agents[role]?.model || cfg.agents.default?.model;
    roleEfforts[role] =
      env[`ORCH_AGENT_EFFORT_${upper}`] || cfg.agents[role]?.effort || cfg.agents.default?.effort;
    const floor = EFFORT_FLOORS[role];
    for (const v of agents[role].variants ?? [])
      if (floor && v.effort && maxEffort(v.effort, floor) !== v.effort)
        warnings.push(
          `agents.${role}.variants ${v.name}: effort ${v.effort} is below the ${role}'s floor; its runs use ${floor}`,
        );
  }
  const b = cfg.budget;
  const envNum = (v: string | undefined): number | undefined =>
    v !== undefined && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined;
  return {
    timeouts,
    stallTimeoutS: int(env.ORCH_STALL_TIMEOUT_S, t.stall_timeout_s ?? DEFAULT_STALL_TIMEOUT_S),
    models: {
      defaultModel: env.ORCH_AGENT_MODEL_DEFAULT || cfg.models.default || DEFAULT_MODEL,
      defaultEffort: env.ORCH_AGENT_EFFORT_DEFAULT || cfg.models.default_effort || '',
      roleModels,
      roleEfforts,
    },
    agents,
    budget: {
      maxAttempts: envNum(env.ORCH_BUDGET_MAX_ATTEMPTS) ?? b.max_attempts ?? DEFAULT_TASK_BUDGET.maxAttempts,
      maxTokens: envNum(env.ORCH_BUDGET_MAX_TOKENS) ?? b.max_tokens ?? DEFAULT_TASK_BUDGET.maxTokens,
      maxUsd: envNum(env.ORCH_BUDGET_MAX_USD) ?? b.max_usd ?? DEFAULT_TASK_BUDGET.maxUsd,
      maxWallS: envNum(env.ORCH_BUDGET_MAX_WALL_S) ?? b.max_wall_s ?? DEFAULT_TASK_BUDGET.maxWallS,
    },
    projectUsdPerDay: envNum(env.ORCH_BUDGET_PROJECT_USD_PER_DAY) ?? b.project_usd_per_day ?? null,
    retry: {
      maxRetries: int(env.ORCH_RETRY_MAX, cfg.retry.max_retries ?? DEFAULT_RETRY.maxRetries),
      baseMs: int(env.ORCH_RETRY_BASE_MS, cfg.retry.base_ms ?? DEFAULT_RETRY.baseMs),
      maxMs: int(env.ORCH_RETRY_MAX_MS, cfg.retry.max_ms ?? DEFAULT_RETRY.maxMs),
    },
    maxInterruptions: Math.max(
      0,
      int(env.ORCH_RETRY_MAX_INTERRUPTIONS, cfg.retry.max_interruptions ?? DEFAULT_MAX_INTERRUPTIONS),
    ),
    maxLoops: Math.max(1, int(env.ORCH_BUDGET_MAX_LOOPS, cfg.budget.max_loops ?? DEFAULT_MAX_LOOPS)),
    usageLimit: {
      backoffMs:
        1000 *
        positiveFromEnv(
          'ORCH_USAGE_LIMIT_BACKOFF_S',
          env,
          cfg.retry.usage_limit_backoff_s ?? DEFAULT_USAGE_LIMIT.backoffMs / 1000,
          warnings,
        ),
      backoffMaxMs:
        1000 *
        positiveFromEnv(
          'ORCH_USAGE_LIMIT_BACKOFF_MAX_S',
          env,
          cfg.retry.usage_limit_backoff_max_s ?? DEFAULT_USAGE_LIMIT.backoffMaxMs / 1000,
          warnings,
        ),
    },
    testCommand: cfg.project.test_command ?? null,
    locale: cfg.locale,
    warnings,
  };
}

/**
 * The timeout of a run: the stage's own `timeout_s`, else the role's `agents.<role>.timeout_s`
 * (command stages: none), else the role's ladder (`ORCH_AGENT_TIMEOUT_*`).
 */
export function runTimeoutS(
  config: Pick<EffectiveConfig, 'timeouts' | 'agents'>,
  stage: Pick<StagePlan, 'kind' | 'role' | 'timeoutS'> | null,
  role: Role,
  warn?: (message: string) => void,
): number {
  if (stage?.timeoutS) return stage.timeoutS;
  if (stage?.kind !== 'command' && config.agents[role].timeout_s) return config.agents[role].timeout_s;
  return resolveTimeoutS(config.timeouts, role, warn);
}

/** Every timeout a run of this project can get, with the key or variable that sets it. */
export function timeoutSources(cfg: ProjectConfig, config: EffectiveConfig, env: Env = {}): TimeoutSource[] {
  /** The ladder's rung that sets a role's timeout: the variable when set, else orch.yaml's key. */
  const ladder = (role: Role): string => {
    const t = cfg.timeouts;
    if (env.ORCH_AGENT_TIMEOUT_OVERRIDES_JSON !== undefined) {
      if (new RegExp(`"${role}"\\s*:`).test(env.ORCH_AGENT_TIMEOUT_OVERRIDES_JSON))
        return `ORCH_AGENT_TIMEOUT_OVERRIDES_JSON (${role})`;
    } else if (t.agent_timeout_overrides?.[role] !== undefined)
      return `timeouts.agent_timeout_overrides.${role}`;
    const rung = (variable: string, key: string, set: unknown): string =>
      env[variable] === undefined && set !== undefined ? `timeouts.${key}` : variable;
    if (role === 'developer')
      return rung('ORCH_AGENT_TIMEOUT_DEVELOPER_S', 'agent_timeout_developer_s', t.agent_timeout_developer_s);
    if (role === 'reviewer')
      return rung('ORCH_AGENT_TIMEOUT_REVIEWER_S', 'agent_timeout_reviewer_s', t.agent_timeout_reviewer_s);
    return rung('ORCH_AGENT_TIMEOUT_SECONDS', 'agent_timeout_seconds', t.agent_timeout_seconds);
  };
  const roleKey = (role: Role): string =>
    cfg.agents[role]?.timeout_s !== undefined
      ? `agents.${role}.timeout_s`
      : cfg.agents.default?.timeout_s !== undefined
        ? 'agents.default.timeout_s'
        : ladder(role);
  const sources: TimeoutSource[] = ROLES.map((role) => ({
    key: roleKey(role),
    seconds: runTimeoutS(config, null, role),
  }));
  for (const stage of resolvePipeline(cfg.pipeline, cfg.merge, cfg.worktrees).stages) {
    const role = stage.role ?? 'deployer';
    sources.push({
      key: stage.timeoutS
        ? `pipeline.${stage.name}.timeout_s`
        : stage.kind === 'command'
          ? ladder(role)
          : roleKey(role),
      seconds: runTimeoutS(config, stage, role),
    });
  }
  // A hook's group gets the same kill ladder as a run's: the reaper must outlast it too.
  if (hookNames(cfg.hooks).length > 0)
    sources.push({
      key: 'hooks.timeout_s',
      seconds: hookTimeoutS(cfg.hooks),
    });
  return sources.sort((a, b) => b.seconds - a.seconds);
}

/** The hooks a project configures, in the order a task meets them. */
export function hookNames(hooks: HooksConfig): HookName[] {
  return HOOK_NAMES.filter((name) => hooks[name] !== undefined);
}

/** A hook's timeout, seconds: `hooks.timeout_s`, default 600. */
export const hookTimeoutS = (hooks: HooksConfig): number => hooks.timeout_s ?? DEFAULT_HOOK_TIMEOUT_S;

export const HOOK_NAMES = ['after_create', 'before_run', 'after_run', 'before_remove'] as const;
export type HookName = (typeof HOOK_NAMES)[number];

/** The reaper invariant over every timeout source of the project, with `env` applied. */
export function reaperInvariantProblems(cfg: ProjectConfig, env: Env): { key: string; message: string }[] {
  const config = effectiveConfig(cfg, env);
  const fromFile =
    rawInt(env.ORCH_REAPER_MAX_RUNNING_S) === undefined && cfg.timeouts.reaper_max_running_s !== undefined;
  return reaperProblems(config.timeouts, timeoutSources(cfg, config, env), fromFile);
}

/** The pipeline as the state machine sees it (core/pipeline.ts): stages, routes, caps. */
export function planOf(config: EffectiveConfig, pipeline: PipelinePlan): Plan {
  return {
    // An agent stage's jobs carry its role's credential: a usage limit pauses that credential only.
    stages: pipeline.stages.map((s) =>
      s.kind === 'agent' && s.role ? { ...s, credential: credentialOf(config.agents[s.role].env ?? {}) } : s,
    ),
    retry: config.retry,
    maxInterruptions: config.maxInterruptions,
    maxLoops: config.maxLoops,
    projectUsdPerDay: config.projectUsdPerDay,
  };
}

/** A project's plan, from its raw config and the environment. */
export function projectPlan(
  raw: ProjectConfig,
  env: Env,
  /** Prompt templates read and parsed at load (config-files.ts). */
  templates: Parameters<typeof resolvePipeline>[4] = {},
): { config: EffectiveConfig; pipeline: PipelinePlan; plan: Plan } {
  const config = effectiveConfig(raw, env);
  // Jobs carry the adapter their role needs, so workers claim only what they can run.
  const pipeline = resolvePipeline(
    raw.pipeline,
    raw.merge,
    raw.worktrees,
    (role) => config.agents[role].adapter,
    templates,
  );
  return { config, pipeline, plan: planOf(config, pipeline) };
}
