/**
 * Model and effort per role (seed ORCH-109): a task's variant > role setting > default, with
 * per-role effort floors. Also the usage rule for refining a launch stamp,
 * and the short form shown on tracker lines.
 */
export const EFFORT_LEVELS = ['low', 'medium', 'high', 'xhigh', 'max'] as const;
export type Effort = (typeof EFFORT_LEVELS)[number];

export const DEFAULT_MODEL = 'claude-opus-4-8';
export const DEFAULT_EFFORT: Effort = 'high';
/** A role never runs below its floor: development needs the deepest reasoning. */
export const EFFORT_FLOORS: Readonly<Record<string, Effort>> = { developer: 'xhigh' };

export const isEffort = (v: unknown): v is Effort =>
  typeof v === 'string' && (EFFORT_LEVELS as readonly string[]).includes(v);

const rank = (e: Effort): number => EFFORT_LEVELS.indexOf(e);
export const maxEffort = (a: Effort, b: Effort): Effort => (rank(a) >= rank(b) ? a : b);

export interface ModelSettings {
  /** `ORCH_AGENT_MODEL_DEFAULT`; shipped `claude-opus-4-8`. */
  defaultModel: string;
  /** `ORCH_AGENT_EFFORT_DEFAULT`; blank means {@link DEFAULT_EFFORT}. */
  defaultEffort: string;
  /** Per role, from `agents.<role>.model` or `ORCH_AGENT_MODEL_<ROLE>`; blank means default. */
  roleModels: Readonly<Record<string, string | undefined>>;
  roleEfforts: Readonly<Record<string, string | undefined>>;
}

const nonBlank = (v: string | undefined | null): string | null => (v && v.trim() ? v.trim() : null);

/** A task's variant of the role (core/variants.ts): its model and effort replace the role's. */
export interface ModelOverride {
  model?: string | undefined;
  effort?: string | undefined;
}

export function resolveModel(
  s: ModelSettings,
  role: string | null | undefined,
  variant?: ModelOverride | null,
): string {
  return (
    nonBlank(variant?.model) ??
    nonBlank(role ? s.roleModels[role] : null) ??
    nonBlank(s.defaultModel) ??
    DEFAULT_MODEL
  );
}

/** The role's effort (a variant's first), never below the role's floor. */
export function resolveEffort(
  s: ModelSettings,
  role: string | null | undefined,
  variant?: ModelOverride | null,
): Effort {
  const asked =
    nonBlank(variant?.effort) ?? nonBlank(role ? s.roleEfforts[role] : null) ?? nonBlank(s.defaultEffort);
  const base: Effort = isEffort(asked) ? asked : DEFAULT_EFFORT;
  const floor = role ? EFFORT_FLOORS[role] : undefined;
  return floor ? maxEffort(base, floor) : base;
}

/**
 * The model kept on a run after usage is recorded: a reported non-empty model
 * wins (it fills a blank stamp and a provider-prefixed id refines a bare one);
 * a missing or empty one keeps the launch stamp.
 */
export function mergeReportedModel(stamp: string | null, reported: string | null | undefined): string | null {
  return nonBlank(reported) ?? stamp;
}

/** `tokenator/claude-opus-4-8` -> `opus-4-8`: provider prefix and `claude-` dropped. */
export function shortModel(model: string): string {
  const bare = model.includes('/') ? model.slice(model.lastIndexOf('/') + 1) : model;
  return bare.startsWith('claude-') ? bare.slice('claude-'.length) : bare;
}

/** `opus-4-8 · xhigh`, or null when the run carries no stamp. */
export function modelEffortLabel(model: string | null, effort: string | null): string | null {
  if (!nonBlank(model)) return null;
  const m = shortModel(model!.trim());
  return nonBlank(effort) ? `${m} · ${effort!.trim()}` : m;
}
