import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The long multi-process runs (several `orch worker`s or orchestrators at once, on PostgreSQL):
 * they keep both cores busy on their own and hold leases and deadlines, so they run alone, one
 * file at a time, after the rest. (test/scale/handoff.test.ts, git between two clones, no worker
 * and no deadline, runs with the rest.)
 */
const ALONE = [
  'test/scale/scale-out.test.ts',
  'test/scale/state-machine.test.ts',
  'test/scale/worker.test.ts',
  'test/chaos/chaos.test.ts',
];

export default defineConfig({
  test: {
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    env: {
      // Every `node src/cli/main.ts` a test starts keeps its compiled modules here, as bin/orch.js
      // does for a user: from the second start on, no TypeScript is stripped again (half the CPU
      // of a CLI start).
      NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? join(tmpdir(), 'orch-test-node-compile-cache'),
    },
    projects: [
      {
        extends: true,
        test: {
          name: 'files',
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...ALONE],
          // Most files wait on the processes they start (the CLI, agents, git): two files at a
          // time on two cores took test/security from 198 s to 119 s; three gained nothing more.
          maxWorkers: Math.max(2, availableParallelism() - 1),
          // A worker process goes on from one file to the next instead of a fresh one per file,
          // so orch's modules and the test helpers are imported once per worker: on 48 of the
          // files, 41.5 s → 24.0 s of user CPU. No file changes process-wide state (env, cwd,
          // timers); what the helpers keep (kit.ts's `orch init` templates) is made to be shared.
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'alone',
          include: ALONE,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
