/**
 * Optional PID namespace around an agent: `unshare --pid --fork --kill-child`.
 * When the namespace's first process (the agent) ends, the kernel kills every
 * process left in the namespace, including ones that left the process group
 * with setsid. See README.md for what this does and does not guarantee.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';

const PROBE_TIMEOUT_MS = 5000;
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let probe: Promise<string | null> | undefined;

/** Whether `unshare --pid --fork --kill-child true` works here; probed once per process. */
export async function pidNamespaceAvailable(): Promise<boolean> {
  return (await unsharePath()) !== null;
}

/**
 * `argv` run inside a new PID namespace, or null when unshare does not work here.
 * unshare is named by absolute path, found with orch's own PATH, because the
 * agent's scrubbed environment need not contain /usr/bin; `--` keeps an argv[0]
 * that starts with a dash from being read as an unshare option.
 */
export async function wrapInPidNamespace(argv: readonly string[]): Promise<string[] | null> {
  const unshare = await unsharePath();
  return unshare === null ? null : [unshare, '--pid', '--fork', '--kill-child', '--', ...argv];
}

function unsharePath(): Promise<string | null> {
  probe ??= runProbe();
  return probe;
}

async function runProbe(): Promise<string | null> {
  const path = `${process.env.PATH ?? ''}${delimiter}${FALLBACK_PATH}`;
  const found = findExecutable('unshare', path, process.cwd());
  if (!('file' in found)) return null;
  const unshare = found.file;
  return new Promise((done) => {
    execFile(
      unshare,
      ['--pid', '--fork', '--kill-child', 'true'],
      { env: { PATH: path }, timeout: PROBE_TIMEOUT_MS, killSignal: 'SIGKILL' },
      (err) => done(err === null ? unshare : null),
    );
  });
}

/** Result of {@link findExecutable}: the file, or the errno execvp would have failed with. */
export type ExecutableLookup = { file: string } | { error: 'ENOENT' | 'EACCES' };

/**
 * Where `command` would be executed from, like execvp: a name with a slash is
 * taken relative to `cwd`, a bare name is searched on `path`. Used to keep "no
 * such executable" a spawn error when unshare, not node, executes the agent.
 */
export function findExecutable(command: string, path: string, cwd: string): ExecutableLookup {
  const candidates = command.includes('/')
    ? [isAbsolute(command) ? command : resolve(cwd, command)]
    : path.split(delimiter).map((dir) => join(resolve(cwd, dir === '' ? '.' : dir), command));
  let sawFile = false;
  for (const file of candidates) {
    const kind = fileKind(file);
    if (kind === 'executable') return { file };
    if (kind === 'not-executable') sawFile = true;
  }
  return { error: sawFile ? 'EACCES' : 'ENOENT' };
}

function fileKind(file: string): 'executable' | 'not-executable' | 'missing' {
  try {
    if (!statSync(file).isFile()) return 'not-executable';
  } catch {
    return 'missing';
  }
  try {
    accessSync(file, fsConstants.X_OK);
    return 'executable';
  } catch {
    return 'not-executable';
  }
}
