/**
 * A/B variants of a role's agent setup. Each task gets one variant per role,
 * by weight, from a hash of its key and the role alone: the same task always
 * gets the same variant (a retry keeps it, so does another worker), and the
 * roles are assigned independently of each other. Pure: no I/O.
 */
import type { Effort } from './model.ts';

/**
 * The keys a variant may set besides its name and weight: they change how the
 * role's agent is asked to work, never which adapter runs it (a job's adapter
 * routes it to workers), where it runs (sandbox, PID namespace) or what it
 * may see (env, pass_env, permission mode).
 */
export const VARIANT_KEYS = [
  'model',
  'effort',
  'max_turns',
  'args',
  'allowed_tools',
  'system_prompt_append',
  'script',
] as const;
export type VariantKey = (typeof VARIANT_KEYS)[number];

/** One variant as configured (`agents.<role>.variants[]`). */
export interface Variant {
  name: string;
  /** Relative share of tasks (> 0). */
  weight: number;
  model?: string | undefined;
  effort?: Effort | undefined;
  max_turns?: number | undefined;
  args?: string[] | undefined;
  allowed_tools?: string[] | undefined;
  system_prompt_append?: string | undefined;
  script?: string | undefined;
}

/**
 * A 32-bit hash of a string: FNV-1a over its UTF-16 code units, then
 * MurmurHash3's finalizer, so keys that differ in one digit (`APP-1`,
 * `APP-2`) land far apart.
 */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The variant of `role` for the task `taskKey`: a point in [0, total weight)
 * from the hash of role and key, and the variant whose share holds it. Null
 * when the role has no variants.
 */
export function assignVariant<V extends Pick<Variant, 'weight'>>(
  variants: readonly V[] | undefined,
  taskKey: string,
  role: string,
): V | null {
  if (!variants?.length) return null;
  const total = variants.reduce((sum, v) => sum + v.weight, 0);
  const point = (hash32(`${role}\u0000${taskKey}`) / 2 ** 32) * total;
  let edge = 0;
  for (const v of variants) {
    edge += v.weight;
    if (point < edge) return v;
  }
  // Rounding can leave the point a hair past the last edge.
  return variants[variants.length - 1]!;
}

/** A role's agent config with a variant's keys over it (the variant's name and weight are not config). */
export function withVariant<C extends object>(config: C, variant: Variant | null): C {
  if (!variant) return config;
  const over: Record<string, unknown> = {};
  for (const key of VARIANT_KEYS) if (variant[key] !== undefined) over[key] = variant[key];
  return { ...config, ...over };
}
