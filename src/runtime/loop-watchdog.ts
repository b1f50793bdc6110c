/**
 * The event loop is orch's heartbeat: API answers, lease renewals, agents'
 * output, signal handling all wait for it. Something that blocks it (a
 * synchronous read of a FIFO an agent left, a huge file parsed at once) stops
 * all of them silently. The watchdog makes a stall visible: a warning in the
 * log once the loop runs again, saying how long it was blocked, and the delay
 * in `/metrics` (http/metrics.ts). One per process, started by `orch run`,
 * `orch worker` and `orch serve`.
 */
import { monitorEventLoopDelay, type ELDHistogram } from 'node:perf_hooks';
import type { Logger } from './logger.ts';

export interface LoopWatchdogOptions {
  log: Logger;
  /** A delay at least this long is a stall: logged and counted. Milliseconds; default 1 000. */
  stallMs?: number;
  /** How often the loop is checked, milliseconds; default 250. */
  checkEveryMs?: number;
}

/** The loop's delay as `/metrics` shows it. */
export interface LoopDelaySnapshot {
  /** Since the previous snapshot (each scrape resets the window), seconds. */
  p50S: number;
  p99S: number;
  maxS: number;
  /** Stalls since the watchdog started. */
  stalls: number;
  /** The longest stall since the watchdog started, seconds (0 without one). */
  longestStallS: number;
}

interface Running {
  histogram: ELDHistogram;
  timer: NodeJS.Timeout;
  stalls: number;
  longestStallMs: number;
  users: number;
}

let running: Running | null = null;

const NS_PER_S = 1e9;

/**
 * Starts the process's watchdog (or joins the one running); the returned function stops it once
 * every starter has. The timer is unref'd: it never keeps a process alive.
 */
export function startLoopWatchdog(opts: LoopWatchdogOptions): () => void {
  if (running) {
    running.users += 1;
    return stopper(running);
  }
  const stallMs = opts.stallMs ?? 1000;
  const everyMs = opts.checkEveryMs ?? 250;
  const histogram = monitorEventLoopDelay({ resolution: 20 });
  histogram.enable();
  let last = performance.now();
  const state: Running = {
    histogram,
    stalls: 0,
    longestStallMs: 0,
    users: 1,
    timer: setInterval(() => {
      const now = performance.now();
      // The timer was due `everyMs` after the last check; whatever came on top, the loop was busy.
      const blockedMs = now - last - everyMs;
      last = now;
      if (blockedMs < stallMs) return;
      state.stalls += 1;
      state.longestStallMs = Math.max(state.longestStallMs, blockedMs);
      opts.log.warn(
        `the event loop was blocked for ${Math.round(blockedMs)} ms (API, heartbeats and agents' output waited meanwhile)`,
        { event_loop_blocked_ms: Math.round(blockedMs) },
      );
    }, everyMs),
  };
  state.timer.unref();
  running = state;
  return stopper(state);
}

function stopper(state: Running): () => void {
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    state.users -= 1;
    if (state.users > 0) return;
    clearInterval(state.timer);
    state.histogram.disable();
    if (running === state) running = null;
  };
}

/** The delay since the last snapshot (the window then starts again), or null when no watchdog runs. */
export function loopDelaySnapshot(): LoopDelaySnapshot | null {
  if (!running) return null;
  const h = running.histogram;
  // An empty window reports NaN/huge sentinel values: no sample means no delay seen.
  const sampled = h.count > 0;
  const snapshot: LoopDelaySnapshot = {
    p50S: sampled ? h.percentile(50) / NS_PER_S : 0,
    p99S: sampled ? h.percentile(99) / NS_PER_S : 0,
    maxS: sampled ? h.max / NS_PER_S : 0,
    stalls: running.stalls,
    longestStallS: running.longestStallMs / 1000,
  };
  h.reset();
  return snapshot;
}
