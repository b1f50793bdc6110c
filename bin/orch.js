#!/usr/bin/env node
// orch's executable. The sources are TypeScript run by Node 24's type stripping, so a checkout
// needs no build step. Under an older Node, it re-runs itself with the Node 24 that the `node@24`
// dev dependency installed beside it.
//
// Two things keep a long-running orch small (issue 12: memory):
// - Node's compile cache (in the system's temporary directory, or NODE_COMPILE_CACHE; off with
//   NODE_DISABLE_COMPILE_CACHE=1) keeps each module's stripped and compiled code, keyed by its
//   content. From the second start on no TypeScript is stripped, so the stripper (a WebAssembly
//   module of about 17 MB) is never loaded. It is enabled here, in JavaScript, before the first
//   .ts module loads.
// - `orch run`, `worker` and `serve` run with a small young generation (--max-semi-space-size):
//   V8 otherwise grows it to tens of MB in bursts of work (200 agents starting) and keeps it. A
//   V8 flag must be there when the process starts, so this process replaces itself (execve: same
//   pid, same stdio) with one that has it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const LONG_RUNNING = new Set(['run', 'worker', 'serve']);
const HEAP_FLAGS = ['--max-semi-space-size=2'];

const args = process.argv.slice(2);
const longRunning = LONG_RUNNING.has(args.find((a) => !a.startsWith('-')) ?? '');
const tuned = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) =>
  a.includes('--max-semi-space-size'),
);

const major = Number(process.versions.node.split('.')[0]);
if (major >= 24) {
  if (longRunning && !tuned && typeof process.execve === 'function') {
    try {
      process.execve(process.execPath, [process.execPath, ...HEAP_FLAGS, ...process.execArgv, SELF, ...args]);
    } catch {
      // Not replaced (no execve here): run as we are, with V8's default heap sizes.
    }
  }
  module.enableCompileCache();
  await import('../src/cli/main.ts');
} else {
  const node24 = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
  if (!existsSync(node24)) {
    process.stderr.write(
      `orch: needs Node 24 (this is ${process.version}); run \`npx -y -p node@24 -- npm ci\` in orch's directory\n`,
    );
    process.exit(1);
  }
  const r = spawnSync(node24, [...(longRunning ? HEAP_FLAGS : []), SELF, ...args], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
