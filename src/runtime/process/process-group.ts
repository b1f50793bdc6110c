/**
 * Signalling and watching a whole process group (an agent and everything it
 * started that did not leave the group).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** How often a group is checked while waiting for it to end. */
const POLL_MS = 25;
/** After SIGKILL, how long to wait for the kernel to finish tearing the group down. */
const AFTER_KILL_WAIT_MS = 2000;

/** How {@link endProcessGroup} finished. */
export type GroupEnd =
  | 'already-gone'
  | 'ended-after-term'
  | 'killed'
  /** Still has live members after SIGKILL (e.g. stuck in uninterruptible I/O). */
  | 'survived-kill'
  /** EPERM: the group exists but is not ours to signal (its id was reused). */
  | 'not-permitted';

/** Whether any live process is in group `pgid`; zombies do not count (see {@link hasLiveMember}). */
export function processGroupAlive(pgid: number): boolean {
  assertSafePgid(pgid);
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
  return hasLiveMember(pgid);
}

/**
 * SIGTERM to the group, wait up to `killGraceS` (polling) for it to end, then
 * SIGKILL. Resolves once the group is gone, or about 2 s after SIGKILL at most.
 */
export async function killProcessGroup(pgid: number, killGraceS: number): Promise<void> {
  await endProcessGroup(pgid, killGraceS);
}

/** {@link killProcessGroup} that says how the group ended. */
export async function endProcessGroup(pgid: number, killGraceS: number): Promise<GroupEnd> {
  assertSafePgid(pgid);
  const termSent = signalGroup(pgid, 'SIGTERM');
  if (termSent !== 'sent') return termSent === 'gone' ? 'already-gone' : 'not-permitted';
  if (await waitForGroupGone(pgid, performance.now() + Math.max(0, killGraceS) * 1000)) {
    return 'ended-after-term';
  }
  if (signalGroup(pgid, 'SIGKILL') !== 'sent') return 'ended-after-term';
  return (await waitForGroupGone(pgid, performance.now() + AFTER_KILL_WAIT_MS)) ? 'killed' : 'survived-kill';
}

/** Sends `signal` to every process of the group. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): 'sent' | 'gone' | 'not-permitted' {
  assertSafePgid(pgid);
  try {
    process.kill(-pgid, signal);
    return 'sent';
  } catch (err) {
    return errnoCode(err) === 'EPERM' ? 'not-permitted' : 'gone';
  }
}

/** Polls until the group has no live member or `deadline` (performance.now() ms) passes. */
export async function waitForGroupGone(pgid: number, deadline: number): Promise<boolean> {
  for (;;) {
    if (!processGroupAlive(pgid)) return true;
    const left = deadline - performance.now();
    if (left <= 0) return false;
    await sleep(Math.min(POLL_MS, left));
  }
}

/**
 * `kill(-pgid, 0)` also succeeds for a group whose members are all zombies, and
 * those linger until their new parent reaps them, which some container inits
 * do only every few seconds. A zombie holds no pipe and runs no code, so on
 * Linux we look in /proc and count only members that are not zombies. Where
 * /proc tells us nothing (another OS, hidden pids) we trust kill().
 */
function hasLiveMember(pgid: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  let members = 0;
  for (const entry of entries) {
    const code = entry.charCodeAt(0);
    if (code < 48 || code > 57) continue;
    const stat = readStat(entry);
    if (stat === null || stat.pgrp !== pgid) continue;
    members += 1;
    if (stat.state !== 'Z' && stat.state !== 'X') return true;
  }
  return members === 0;
}

/** State and process group of a pid from /proc/<pid>/stat; null if it vanished. */
function readStat(pid: string): { state: string; pgrp: number } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses; fields after it don't.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', pgrp: Number(fields[2]) };
}

let bootId: string | null | undefined;

/**
 * Who a pid is, beyond its number: `<boot id>:<start time in clock ticks>` from /proc (Linux), or
 * null when /proc cannot tell (another OS, the process gone). A pid is reused by another process
 * sooner or later; its identity is not, so a group recorded by a dead orch is signalled only while
 * its leader is still the process that was recorded.
 */
export function processIdentity(pid: number): string | null {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim();
    } catch {
      bootId = null;
    }
  }
  if (bootId === null) return null;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // Field 22, starttime; field 3 (state) is the first after the command name.
  const start = text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
  return start ? `${bootId}:${start}` : null;
}

let ownPgid: number | undefined;

/**
 * kill(-0) would hit our own group and kill(-1) every process we may signal;
 * a bad pgid recorded by a crashed run must never reach kill().
 */
function assertSafePgid(pgid: number): void {
  if (!Number.isSafeInteger(pgid) || pgid <= 1) {
    throw new RangeError(`refusing to signal process group ${pgid}: not a process group id > 1`);
  }
  ownPgid ??= readStat('self')?.pgrp ?? process.pid;
  if (pgid === ownPgid) {
    throw new RangeError(`refusing to signal process group ${pgid}: it is orch's own process group`);
  }
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}
