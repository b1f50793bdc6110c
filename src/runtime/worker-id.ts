/**
 * Who holds a lease: a worker id is `<host>:<pid>:<random>`, so a process on
 * the same host can tell whether the holder is still alive. A holder on
 * another host is never known dead here; its lease runs out instead.
 */
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * This host as worker ids name it: the host name, and on Linux the PID namespace (containers
 * sharing the host's name, `--network host`, each have their own), since a pid is only looked at
 * where it means the same process.
 */
export const WORKER_HOST = ((): string => {
  let ns = '';
  try {
    ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '';
  } catch {
    // No /proc (not Linux): the host name alone.
  }
  return ns ? `${hostname()}~${ns}` : hostname();
})();

export const newWorkerId = (): string =>
  `${WORKER_HOST}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;

/** This process as an owner, for what it starts outside any worker (a gate run without a worker id). */
export const processOwnerId: string = newWorkerId();

/** Whether a worker id names a worker on this host (only then is its process ours to look at). */
export const onThisHost = (owner: string | null): boolean => owner?.split(':')[0] === WORKER_HOST;

/** Whether the worker that owns a lease is certainly dead: no owner, or a process of this host that is gone. */
export function ownerDead(owner: string | null): boolean {
  if (!owner) return true;
  const [host, pid] = owner.split(':');
  if (host !== WORKER_HOST || !pid || Number(pid) === process.pid) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Whether `owner` names a worker of this host that is gone: what it left running (process groups
 * recorded with its id) is this host's to end. A null owner names no host, so none.
 */
export const diedOnThisHost = (owner: string | null): boolean => onThisHost(owner) && ownerDead(owner);
