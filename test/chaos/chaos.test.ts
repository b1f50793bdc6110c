/**
 * Issue 11, the chaos suite: tasks worked by the scripted agent while faults
 * strike at seeded random moments — `orch run` SIGKILLed, the SQLite database
 * locked by another process, the log filesystem full, stale git lock files,
 * the tracker refusing every write for a while, an `orch worker` on
 * PostgreSQL SIGKILLed. After each fault, once the queue is worked to the
 * end, every invariant (invariants.ts) must hold for the fault's tasks —
 * among them that the outbox lost no event on its way to the fake tracker
 * and the webhook receiver (outbox-check.ts); at the end, for every task.
 *
 * Sizes: bounded by default (CI, `npm test`: a few tasks a fault, one or two
 * strikes); `ORCH_CHAOS_FULL=1` is the full run (20 tasks under the SIGKILLs,
 * more strikes), and `ORCH_CHAOS_REPORT=1` writes docs/reliability.md;
 * `npm run test:chaos` sets both. `ORCH_CHAOS_SEED` replays a seed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { FAULTS, type Fault } from './faults.ts';
import { checkInvariants, INVARIANTS, snapshot } from './invariants.ts';
import { outboxNote } from './outbox-check.ts';
import { writeReport, type FaultOutcome } from './report.ts';
import { chaosSeed, seededRng } from './rng.ts';
import { postgresWorld, sqliteWorld, type World } from './world.ts';

const FULL = process.env.ORCH_CHAOS_FULL === '1';
const REPORT = process.env.ORCH_CHAOS_REPORT === '1';
const SEED = chaosSeed(process.env);
/** Per fault: time to strike and to work the wave to the end. */
const FAULT_TIMEOUT_MS = FULL ? 900_000 : 120_000;

console.log(`chaos: seed ${SEED} (${FULL ? 'full' : 'bounded'} run; replay with ORCH_CHAOS_SEED=${SEED})`);

const startedAt = new Date();
const outcomes: FaultOutcome[] = [];
const worlds = new Map<Fault['world'], Promise<World>>();
const waves = new Map<Fault['world'], string[]>();

const worldFor = (kind: Fault['world']): Promise<World> => {
  let w = worlds.get(kind);
  if (!w) {
    w = kind === 'sqlite' ? sqliteWorld() : postgresWorld();
    worlds.set(kind, w);
  }
  return w;
};

/** A generator of its own per fault, so skipping one fault does not move the others' strikes. */
const rngFor = (fault: Fault) =>
  seededRng(
    [...fault.name].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, SEED ^ 2166136261),
  );

afterAll(async () => {
  for (const w of worlds.values()) await (await w.catch(() => null))?.cleanup();
  if (REPORT) {
    const path = await writeReport(
      {
        seed: SEED,
        mode: FULL ? 'full' : 'bounded',
        startedAt,
        seconds: (Date.now() - startedAt.getTime()) / 1000,
        invariants: INVARIANTS.map((i) => i.name),
      },
      outcomes,
    );
    console.log(`chaos: wrote ${path}`);
  }
}, 120_000);

/**
 * One fault's wave: its tasks are added, the orchestrators start, the fault
 * strikes, the queue is worked to the end, and the invariants are checked
 * over the wave's tasks. Fills in `outcome` as it goes.
 */
async function runWave(
  fault: Fault,
  world: World,
  outcome: FaultOutcome,
  note: (text: string) => void,
): Promise<void> {
  const began = Date.now();
  const seen: string[] = [];
  const plan = fault.plan(FULL);
  const exitsBefore = world.exits.length;
  const keys = await world.addTasks(plan.tasks);
  waves.set(fault.world, [...(waves.get(fault.world) ?? []), ...keys]);
  outcome.tasks = keys.length;
  try {
    world.useEnv(fault.orchEnv ?? {});
    world.start();
    const first = world.started;
    outcome.injected = await fault.inject({
      world,
      rng: rngFor(fault),
      times: plan.times,
      full: FULL,
      keys,
      note,
      violation: (text) => void seen.push(`${fault.name}: ${text}`),
    });
    await world.finish(FAULT_TIMEOUT_MS - (Date.now() - began) - 10_000);
    // Orchestrators started in place of killed or crashed ones.
    outcome.restarts = world.started - first;
  } finally {
    world.useEnv({});
    await fault.teardown?.(world, note);
  }
  const snap = await snapshot(world, { keys, exitsFrom: exitsBefore, mayEscalate: fault.mayEscalate ?? [] });
  for (const task of snap.tasks) {
    if (task.status === 'done') outcome.done += 1;
    else if (task.terminal_reason)
      outcome.escalated[task.terminal_reason] = (outcome.escalated[task.terminal_reason] ?? 0) + 1;
  }
  const { held, violations } = await checkInvariants(snap);
  note(outboxNote(snap));
  outcome.held = held;
  outcome.violations.push(...seen, ...violations);
}

describe.sequential('chaos', () => {
  for (const fault of FAULTS) {
    it(
      fault.name,
      async (t) => {
        const began = Date.now();
        const plan = fault.plan(FULL);
        const world = await worldFor(fault.world);
        const outcome: FaultOutcome = {
          fault: fault.name,
          world: fault.world,
          injects: fault.injects,
          planned: plan.times,
          injected: 0,
          tasks: 0,
          done: 0,
          escalated: {},
          restarts: 0,
          seconds: 0,
          held: [],
          violations: [],
          notes: [],
        };
        outcomes.push(outcome);
        const note = (text: string) => void outcome.notes.push(text);
        const skip = (await fault.prepare?.(world)) ?? null;
        if (skip) {
          outcome.skipped = skip;
          console.warn(`chaos: ${fault.name} skipped: ${skip}`);
          t.skip(skip);
        }
        try {
          await runWave(fault, world, outcome, note);
        } catch (error) {
          // Recorded, so the report shows the fault as failed rather than as a clean pass.
          outcome.violations.push(`${fault.name} did not run to the end: ${(error as Error).message}`);
          throw error;
        } finally {
          outcome.seconds = (Date.now() - began) / 1000;
        }
        console.log(
          `chaos: ${fault.name}: struck ${outcome.injected}/${plan.times}, ${outcome.done} done, escalated ${JSON.stringify(outcome.escalated)}, ${outcome.restarts} restarts, ${outcome.seconds.toFixed(1)} s; ${outcome.notes.join('; ')}`,
        );
        expect(outcome.violations).toEqual([]);
        expect(outcome.injected, 'the fault struck at least once').toBeGreaterThan(0);
      },
      FAULT_TIMEOUT_MS,
    );
  }

  it('at the end: every invariant holds for every task of every world', async () => {
    expect(worlds.size).toBeGreaterThan(0);
    for (const [kind, w] of worlds) {
      const world = await w;
      const snap = await snapshot(world, {
        keys: waves.get(kind) ?? [],
        exitsFrom: 0,
        // Each wave was judged with its own fault's allowances; here only the scripted outcomes
        // and whatever a fault of this world may cause are accepted.
        mayEscalate: [...new Set(FAULTS.filter((f) => f.world === kind).flatMap((f) => f.mayEscalate ?? []))],
      });
      const { violations } = await checkInvariants(snap);
      expect(violations, `${kind} world`).toEqual([]);
    }
  }, 60_000);
});
