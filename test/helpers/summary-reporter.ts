import path from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

/** How many of the slowest test files the summary lists. */
const SLOWEST = 10;

/**
 * Ends the test output with the ten slowest test files and then the plain line
 * `N passed, N failed, N skipped`, which CI reads as the run's verdict (it stays
 * the last line). Errors outside any test (a module that fails to load, an
 * unhandled rejection) count as failures.
 *
 * A file's time is its own wall time in its worker: setting up the environment,
 * importing the module and collecting its tests, then every test and hook. Files
 * run side by side, so these times add up to more than the run's wall time.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    for (const mod of testModules) {
      if (mod.state() === 'failed' && [...mod.children.allTests()].length === 0) failed += 1;
      for (const test of mod.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed += 1;
        else if (state === 'failed') failed += 1;
        else skipped += 1;
      }
    }
    process.stdout.write(slowestFiles(testModules));
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}

/** The wall time of one test file in its worker, in milliseconds. */
export function moduleWallTime(mod: TestModule): number {
  const d = mod.diagnostic();
  return d.environmentSetupDuration + d.prepareDuration + d.collectDuration + d.setupDuration + d.duration;
}

/** The block listing the slowest files, slowest first, or nothing when no file ran. */
export function slowestFiles(testModules: ReadonlyArray<TestModule>, count = SLOWEST): string {
  const timed = testModules
    .map((mod) => ({ file: relativeFile(mod), ms: moduleWallTime(mod) }))
    .filter((entry) => Number.isFinite(entry.ms))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, count);
  if (timed.length === 0) return '';
  const width = Math.max(...timed.map((entry) => formatSeconds(entry.ms).length));
  const lines = timed.map((entry) => `  ${formatSeconds(entry.ms).padStart(width)}  ${entry.file}`);
  return `\nSlowest ${timed.length} test file${timed.length === 1 ? '' : 's'} (wall time of each in its worker):\n${lines.join('\n')}\n`;
}

function relativeFile(mod: TestModule): string {
  const root = mod.project.config.root;
  return path.relative(root, mod.moduleId) || mod.moduleId;
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
