import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
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
  },
});
