/**
 * The agent sandbox's mechanism: the agent runs under bubblewrap (`bwrap`)
 * with the whole system read-only, a fresh /dev, /proc and private /tmp,
 * no capabilities, its own PID (and, when the network is off, network)
 * namespace, and the mounts of a {@link SandboxPlan} on top. What to hide
 * and what to make writable is the policy of runtime/sandbox.ts; docs/security.md
 * says what this does and does not protect against.
 *
 * Never silently unsandboxed: when bwrap is missing or does not work here,
 * {@link wrapInSandbox} returns an error and the run does not start.
 */
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { delimiter } from 'node:path';
import { findExecutable } from './pid-namespace.ts';

const PROBE_TIMEOUT_MS = 10_000;
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * One mount over the read-only root. The most specific path wins: a path is
 * what the deepest mount at or above it makes it (a worktree bound writable
 * inside a hidden state directory is writable; a hidden file inside a
 * writable directory is hidden), and of two mounts at the same path the
 * later one. Paths are absolute and normalized.
 * - `hide`: a directory becomes an empty read-only tmpfs, a file reads as empty
 *   (/dev/null); a missing path is skipped.
 * - `ro` / `rw`: the path is bound at the same place, read-only or writable;
 *   an `optional` one is skipped when missing, any other must exist.
 */
export interface SandboxMount {
  kind: 'hide' | 'ro' | 'rw';
  path: string;
  optional?: boolean;
}

export interface SandboxPlan {
  /** bwrap to use: a path, or a name looked up on orch's PATH; default `bwrap`. */
  bwrap?: string;
  /** false: a network namespace of its own (only a loopback of its own; nothing outside). */
  network: boolean;
  mounts: SandboxMount[];
  /** Variables set inside the sandbox, over the agent's environment. */
  setEnv?: Record<string, string>;
}

export type BwrapStatus = { ok: true; path: string; version: string } | { ok: false; error: string };

const probes = new Map<string, Promise<BwrapStatus>>();

/**
 * Whether bwrap exists and can build a sandbox here (PID and network
 * namespaces, capabilities dropped); probed once per process and path.
 */
export function bwrapStatus(bwrap = 'bwrap'): Promise<BwrapStatus> {
  let probe = probes.get(bwrap);
  if (!probe) {
    probe = runProbe(bwrap);
    probes.set(bwrap, probe);
  }
  return probe;
}

function run(file: string, args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(
      file,
      args,
      { env: { PATH: FALLBACK_PATH }, timeout: PROBE_TIMEOUT_MS, killSignal: 'SIGKILL', encoding: 'utf8' },
      (err, stdout, stderr) => done({ ok: err === null, stdout, stderr }),
    );
  });
}

/** The system read-only, a minimal /dev and the sandbox's own /proc: what every sandbox (and the probe) starts from. */
const SYSTEM_MOUNTS = ['--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc'] as const;

async function runProbe(bwrap: string): Promise<BwrapStatus> {
  const path = `${process.env.PATH ?? ''}${delimiter}${FALLBACK_PATH}`;
  const found = findExecutable(bwrap, path, process.cwd());
  if (!('file' in found)) {
    return {
      ok: false,
      error: `bwrap (${bwrap}) not found${bwrap.includes('/') ? '' : ' on PATH'}: install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)`,
    };
  }
  const file = found.file;
  const version = await run(file, ['--version']);
  const probe = await run(file, [...namespaceArgs(false), ...SYSTEM_MOUNTS, 'true']);
  if (!probe.ok) {
    const why = probe.stderr.trim().split('\n').slice(-1)[0] || 'no error output';
    return {
      ok: false,
      error: `${file} cannot build a sandbox here (${why}): it needs root, or unprivileged user namespaces, or a setuid bwrap`,
    };
  }
  return { ok: true, path: file, version: version.stdout.trim() || 'version unknown' };
}

/**
 * The namespaces of every sandbox. No `--die-with-parent`: it makes bwrap
 * SIGKILL the agent the moment bwrap itself gets the SIGTERM orch sends the
 * whole process group, so the agent would lose its grace (git could not
 * remove its index.lock). The process group and the PID namespace end the
 * agent instead, as for an unsandboxed run. No `--new-session` either: the
 * agent must stay in bwrap's process group, and it has no terminal to abuse.
 */
function namespaceArgs(network: boolean): string[] {
  return [
    // Always a PID namespace: without one the agent's /proc would show orch's own environment.
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    ...(network ? [] : ['--unshare-net']),
    // Root in the sandbox must not be able to unmount what hides orch's files.
    '--cap-drop',
    'ALL',
  ];
}

const isDirectory = (path: string): boolean | null => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return null;
  }
};

const depth = (path: string): number => path.split('/').filter(Boolean).length;

/** The mounts in the order bwrap must apply them: one per path (the last), shallowest first. */
export function orderMounts(mounts: readonly SandboxMount[]): SandboxMount[] {
  const last = new Map<string, SandboxMount>();
  for (const mount of mounts) {
    last.delete(mount.path);
    last.set(mount.path, mount);
  }
  return [...last.values()].sort((a, b) => depth(a.path) - depth(b.path));
}

/** bwrap's arguments (without bwrap itself) that run `argv` in `cwd` under `plan`. */
export function bwrapArgs(plan: SandboxPlan, argv: readonly string[], cwd: string): string[] {
  const args = [
    ...namespaceArgs(plan.network),
    ...SYSTEM_MOUNTS,
    // Scratch space of its own, gone with the sandbox: nothing left there by others is visible.
    '--tmpfs',
    '/tmp',
  ];
  if (isDirectory('/var/tmp')) args.push('--tmpfs', '/var/tmp');
  const hiddenDirs: string[] = [];
  for (const mount of orderMounts(plan.mounts)) {
    if (mount.kind === 'hide') {
      const dir = isDirectory(mount.path);
      if (dir === null) continue;
      if (dir) {
        args.push('--tmpfs', mount.path);
        hiddenDirs.push(mount.path);
      } else args.push('--dev-bind', '/dev/null', mount.path);
      continue;
    }
    if (mount.optional && !existsSync(mount.path)) continue;
    args.push(mount.kind === 'rw' ? '--bind' : '--ro-bind', mount.path, mount.path);
  }
  // Last, once every mount point inside them exists: the tmpfs that hide things take no writes.
  for (const dir of hiddenDirs) args.push('--remount-ro', dir);
  for (const [name, value] of Object.entries(plan.setEnv ?? {})) args.push('--setenv', name, value);
  args.push('--chdir', cwd, '--', ...argv);
  return args;
}

/** `argv` run inside the sandbox, or why it cannot be (bwrap missing or not working here). */
export async function wrapInSandbox(
  argv: readonly string[],
  plan: SandboxPlan,
  cwd: string,
): Promise<{ argv: string[] } | { error: string }> {
  const status = await bwrapStatus(plan.bwrap);
  if (!status.ok) return { error: status.error };
  return { argv: [status.path, ...bwrapArgs(plan, argv, cwd)] };
}
