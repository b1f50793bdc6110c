/**
 * Timeout ladder, kill grace and the reaper invariant (seed ORCH-109).
 * Pure: settings and a warning sink are passed in.
 */
import { ROLES } from './stages.ts';

/** Timeout-related settings, all in seconds. */
export interface TimeoutSettings {
  /** Global default for any role. Default 1800. */
  agentTimeoutSeconds: number;
  /** Dedicated developer budget. Default 3600. Raw value: may be invalid and is then ignored with a warning. */
  agentTimeoutDeveloperS: unknown;
  /** Dedicated reviewer budget. Default 3000. */
  agentTimeoutReviewerS: unknown;
  /** JSON object `{role: seconds}`; highest priority for any role. Malformed JSON is ignored. */
  agentTimeoutOverridesJson: string;
  /** Grace between SIGTERM and SIGKILL. Default 20. */
  agentKillGraceSeconds: number;
  /** Runs older than this are killed by the reaper. Default 5400. */
  reaperMaxRunningS: number;
}

export const DEFAULT_TIMEOUTS: TimeoutSettings = {
  agentTimeoutSeconds: 1800,
  agentTimeoutDeveloperS: 3600,
  agentTimeoutReviewerS: 3000,
  agentTimeoutOverridesJson: '',
  agentKillGraceSeconds: 20,
  reaperMaxRunningS: 5400,
};

export type Warn = (message: string) => void;

const positiveInt = (value: unknown): number | null =>
  typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : null;

function parseOverrides(json: string, warn: Warn): Record<string, unknown> {
  if (!json.trim()) return {};
  try {
    const parsed: unknown = JSON.parse(json);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
    warn(`ORCH_AGENT_TIMEOUT_OVERRIDES_JSON is not a JSON object; ignored`);
  } catch {
    warn(`ORCH_AGENT_TIMEOUT_OVERRIDES_JSON is malformed JSON; ignored`);
  }
  return {};
}

const dedicated = (s: TimeoutSettings, role: string): [string, unknown] | null => {
  if (role === 'developer') return ['ORCH_AGENT_TIMEOUT_DEVELOPER_S', s.agentTimeoutDeveloperS];
  if (role === 'reviewer') return ['ORCH_AGENT_TIMEOUT_REVIEWER_S', s.agentTimeoutReviewerS];
  return null;
};

/**
 * Timeout in seconds for a role: overrides JSON > the role's dedicated budget >
 * the global default. Never throws; bad values fall through with a warning.
 */
export function resolveTimeoutS(
  s: TimeoutSettings,
  role: string | null | undefined,
  warn: Warn = () => {},
): number {
  const fallback = positiveInt(s.agentTimeoutSeconds) ?? DEFAULT_TIMEOUTS.agentTimeoutSeconds;
  if (!role) return fallback;
  const overrides = parseOverrides(s.agentTimeoutOverridesJson, warn);
  if (role in overrides) {
    const v = positiveInt(overrides[role]);
    if (v !== null) return v;
    warn(
      `ORCH_AGENT_TIMEOUT_OVERRIDES_JSON[${role}] = ${JSON.stringify(overrides[role])} is not a positive integer; ignored`,
    );
  }
  const own = dedicated(s, role);
  if (own) {
    const v = positiveInt(own[1]);
    if (v !== null) return v;
    warn(`${own[0]} = ${JSON.stringify(own[1])} is not a positive integer; using the global ${fallback}s`);
  }
  return fallback;
}

/** The largest timeout any known role resolves to. */
export const maxResolvedTimeoutS = (s: TimeoutSettings, roles: readonly string[] = ROLES): number =>
  Math.max(...roles.map((r) => resolveTimeoutS(s, r)));

/**
 * The reaper must never kill a run its own timeout would still allow:
 * reaper_max_running_s > max resolved timeout + kill grace. Returns the
 * problem as a message naming the numbers, or null when it holds.
 */
export function reaperInvariantViolation(
  s: TimeoutSettings,
  roles: readonly string[] = ROLES,
): string | null {
  const maxTimeout = maxResolvedTimeoutS(s, roles);
  const limit = maxTimeout + s.agentKillGraceSeconds;
  if (s.reaperMaxRunningS > limit) return null;
  return (
    `ORCH_REAPER_MAX_RUNNING_S (${s.reaperMaxRunningS}) must be greater than the largest agent timeout ` +
    `(${maxTimeout}) + ORCH_AGENT_KILL_GRACE_SECONDS (${s.agentKillGraceSeconds}) = ${limit}`
  );
}

/** One timeout a run can be given, and the config key that sets it. */
export interface TimeoutSource {
  /** Where it is set: an orch.yaml key (`agents.developer.timeout_s`) or an `ORCH_*` variable. */
  key: string;
  seconds: number;
}

/**
 * The reaper invariant over every timeout a run can get (the ladder of each role, a role's
 * `timeout_s`, a stage's `timeout_s`, command stages): one problem per source the reaper would
 * cut short, naming the numbers. `reaperFromFile`: the reaper's limit was set in orch.yaml.
 */
export function reaperProblems(
  s: TimeoutSettings,
  sources: readonly TimeoutSource[],
  reaperFromFile = false,
): { key: string; message: string }[] {
  const problems: { key: string; message: string }[] = [];
  const seen = new Set<string>();
  for (const source of sources) {
    const limit = source.seconds + s.agentKillGraceSeconds;
    if (s.reaperMaxRunningS > limit || seen.has(source.key)) continue;
    seen.add(source.key);
    problems.push({
      key: source.key.startsWith('ORCH_') ? 'timeouts.reaper_max_running_s' : source.key,
      message:
        `ORCH_REAPER_MAX_RUNNING_S (${s.reaperMaxRunningS})${reaperFromFile ? ' (timeouts.reaper_max_running_s in orch.yaml)' : ''} ` +
        `must be greater than the run timeout ${source.key} ` +
        `(${source.seconds}) + ORCH_AGENT_KILL_GRACE_SECONDS (${s.agentKillGraceSeconds}) = ${limit}: ` +
        `the reaper would kill runs their own timeout still allows`,
    });
  }
  return problems;
}
