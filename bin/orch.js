#!/usr/bin/env node
// orch's executable.
//
// - In a checkout (`src/` beside this file) it runs the TypeScript sources with Node 24's type
//   stripping, so a checkout needs no build step. Under an older Node it re-runs itself with the
//   Node 24 that the `node@24` dev dependency installed beside it.
// - In the package (`npm install -g`, `npx`) it runs the JavaScript the build put in `dist/`, on
//   Node 22.16 or later (the first 22 whose `node:sqlite` has what the store uses) or 24.
//
// Two things keep a long-running orch small (issue 12: memory):
// - Node's compile cache (in the system's temporary directory, or NODE_COMPILE_CACHE; off with
//   NODE_DISABLE_COMPILE_CACHE=1) keeps each module's compiled code, keyed by its content. In a
//   checkout, from the second start on no TypeScript is stripped, so the stripper (a WebAssembly
//   module of about 17 MB) is never loaded. It is enabled here, in JavaScript, before the first
//   module of orch loads.
// - `orch run`, `worker` and `serve` run with a small young generation (--max-semi-space-size):
//   V8 otherwise grows it to tens of MB in bursts of work (200 agents starting) and keeps it. A
//   V8 flag must be there when the process starts, so this process re-runs itself with it.
//
// Re-running (another Node, or the flag): where Node has `process.execve` (22.15 and later) this
// process replaces itself: same pid, same stdio, so a supervisor's SIGTERM reaches orch itself.
// Elsewhere the other Node runs as a child and this process forwards SIGTERM, SIGINT, SIGHUP and
// SIGQUIT to it, then ends as the child ended. The child has its own process group: a Ctrl-C at a
// terminal signals the whole foreground group, orch takes a second SIGINT as "exit now", so the
// child must hear each signal once, from here.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import module from 'node:module';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const SOURCES = new URL('../src/cli/main.ts', import.meta.url);
const BUILT = new URL('../dist/cli/main.js', import.meta.url);
const LONG_RUNNING = new Set(['run', 'worker', 'serve']);
const HEAP_FLAGS = ['--max-semi-space-size=2'];
const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT'];

const args = process.argv.slice(2);
const longRunning = LONG_RUNNING.has(args.find((a) => !a.startsWith('-')) ?? '');
const tuned = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) =>
  a.includes('--max-semi-space-size'),
);

const checkout = existsSync(SOURCES);
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
const supported = major >= 24 || (!checkout && major === 22 && minor >= 16);

/** The Node to run orch with: this one, the checkout's Node 24, or none. */
function targetNode() {
  if (supported) return process.execPath;
  if (!checkout) {
    process.stderr.write(`orch: needs Node 22.16 or later, or Node 24 (this is ${process.version})\n`);
    process.exit(1);
  }
  const node24 = fileURLToPath(new URL('../node_modules/.bin/node', import.meta.url));
  if (!existsSync(node24)) {
    process.stderr.write(
      `orch: needs Node 24 (this is ${process.version}); run \`npx -y -p node@24 -- npm ci\` in orch's directory\n`,
    );
    process.exit(1);
  }
  return node24;
}

/** Runs `node argv` as a child in its own process group, forwarding signals; ends as it ends. */
function runChild(node, argv) {
  const child = spawn(node, argv, { stdio: 'inherit', detached: true });
  const forward = (signal) => child.kill(signal);
  for (const signal of FORWARDED) process.on(signal, forward);
  child.on('error', (error) => {
    process.stderr.write(`orch: could not start ${node}: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal === null) process.exit(code ?? 1);
    // Ended by a signal: end by the same one, so whoever started this process sees what happened.
    for (const s of FORWARDED) process.off(s, forward);
    process.kill(process.pid, signal);
    process.exit(128 + (constants.signals[signal] ?? 0));
  });
}

/** Runs orch in this process. */
async function start() {
  if (major < 24) {
    // Node 22 calls node:sqlite experimental and says so on every start; 24 no longer does.
    const emitWarning = process.emitWarning;
    process.emitWarning = function (warning, ...rest) {
      const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type;
      if (type === 'ExperimentalWarning' && String(warning).startsWith('SQLite ')) return;
      return emitWarning.call(this, warning, ...rest);
    };
  }
  module.enableCompileCache?.();
  await import(checkout ? SOURCES.href : BUILT.href);
}

const node = targetNode();
const flags = longRunning && !tuned ? HEAP_FLAGS : [];
const argv = [...flags, ...process.execArgv, SELF, ...args];
if ((node !== process.execPath || flags.length > 0) && typeof process.execve === 'function') {
  try {
    process.execve(node, [node, ...argv]);
  } catch {
    // Not replaced: a child below, or (same Node) run as we are, with V8's default heap sizes.
  }
}
if (node !== process.execPath) runChild(node, argv);
else await start();
