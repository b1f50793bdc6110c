/**
 * The chaos suite's randomness: one seeded generator (mulberry32), so a
 * failing run can be replayed with the seed it printed
 * (`ORCH_CHAOS_SEED=<seed> npm run test:chaos`). Timing still varies from
 * run to run; the seed fixes which moments are aimed at, not the machine.
 */
export interface Rng {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
}

export function seededRng(seed: number): Rng {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { seed: seed >>> 0, next, int: (min, max) => min + Math.floor(next() * (max - min + 1)) };
}

/** `ORCH_CHAOS_SEED` when set (a replay), else a fresh one. */
export function chaosSeed(env: NodeJS.ProcessEnv): number {
  const given = env.ORCH_CHAOS_SEED?.trim();
  if (given) {
    const n = Number(given);
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`ORCH_CHAOS_SEED must be a non-negative integer, got ${given}`);
    return n >>> 0;
  }
  return Math.floor(Math.random() * 2 ** 32) >>> 0;
}
