/**
 * Files an agent could have written, read (and replaced) by orch: a task's
 * worktree (artifacts, ADRs, verdict files), the artifacts directory, prompt
 * templates in a checkout that branches land in. An agent is untrusted code
 * with a shell, so such a file may be a FIFO (a blocking open or read would
 * stop orch's event loop: no API, no heartbeats, no signal handling), a device,
 * a socket, a symlink to `/dev/zero` or to a secret outside the worktree, or a
 * 10 GB sparse file. Here a file is read only when it is a regular file inside
 * its root, below a size cap, opened non-blocking, and always asynchronously.
 * Refusals are values that name the file and the reason.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { lstat, mkdir, open, realpath, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, relative, sep } from 'node:path';

/** Default cap on a file orch reads from a worktree, bytes: 1 MiB. */
export const MAX_WORKTREE_FILE_BYTES = 1024 * 1024;

/** Why a file was not read. */
export type RefusalReason = 'missing' | 'outside' | 'not_regular' | 'too_large' | 'unreadable';

export interface FileRefusal {
  ok: false;
  reason: RefusalReason;
  /** Names the file (as given, relative to its root) and why: `docs/tasks/T-1/adr.md is a FIFO (named pipe), not a regular file`. */
  message: string;
}

export interface FileText {
  ok: true;
  /** The real path that was read. */
  path: string;
  text: string;
  bytes: number;
}

export interface FileFacts {
  ok: true;
  /** The real path. */
  path: string;
  size: number;
}

export interface ReadOptions {
  /** Largest file read, bytes. Default {@link MAX_WORKTREE_FILE_BYTES}. */
  maxBytes?: number;
}

/** Opened for reading without following a last symlink and without waiting for a FIFO's writer. */
const READ_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;
/** Opened for appending the same way: a FIFO without a reader fails at once (ENXIO) instead of blocking. */
const APPEND_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_NONBLOCK | constants.O_NOFOLLOW;
/** A new file, never one already there under that name (nor what a symlink there points at). */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** Read at most this much at a time. */
const CHUNK_BYTES = 1024 * 1024;

const refuse = (reason: RefusalReason, message: string): FileRefusal => ({ ok: false, reason, message });

/** What a file that is not a regular file is, in words. */
export function fileKind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

const errnoCode = (error: unknown): string =>
  typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : String(error);

const tooLarge = (name: string, size: string, maxBytes: number): FileRefusal =>
  refuse(
    'too_large',
    `${name} is ${size} bytes, over the cap of ${maxBytes} bytes on a file orch reads from a worktree`,
  );

/**
 * Where `name` (relative to `root`) really is, when it is a regular file inside `root`; else why
 * not. Every symlink on the way is resolved, so one leading out of the root is refused wherever
 * it is; nothing is opened.
 */
async function locate(root: string, name: string): Promise<FileFacts | FileRefusal> {
  if (isAbsolute(name) || normalize(name).split(sep).includes('..'))
    return refuse('outside', `${name} is not a path inside ${root}`);
  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch (error) {
    return refuse('missing', `${name}: ${root} does not exist (${errnoCode(error)})`);
  }
  const path = join(root, name);
  let real: string;
  try {
    real = await realpath(path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      const link = await lstat(path).catch(() => null);
      return refuse(
        'missing',
        link?.isSymbolicLink() ? `${name} is a symlink to nothing` : `${name} does not exist`,
      );
    }
    return refuse('unreadable', `${name} cannot be resolved (${code})`);
  }
  const rel = relative(realRoot, real);
  if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel))
    return refuse('outside', `${name} leads to ${real}, outside ${realRoot} (a symlink)`);
  let st: Stats;
  try {
    st = await stat(real);
  } catch (error) {
    return refuse('unreadable', `${name} cannot be read (${errnoCode(error)})`);
  }
  if (!st.isFile()) return refuse('not_regular', `${name} is ${fileKind(st)}, not a regular file`);
  return { ok: true, path: real, size: st.size };
}

/** Whether `name` is a regular file inside `root`, and its size, without opening it. Never rejects. */
export function inspectWorktreeFile(root: string, name: string): Promise<FileFacts | FileRefusal> {
  return locate(root, name);
}

/**
 * The text (UTF-8) of `name` under `root`: a regular file, inside `root` after every symlink,
 * at most `maxBytes`. Never blocks the event loop, and never rejects: a refusal says why.
 */
export async function readWorktreeFile(
  root: string,
  name: string,
  opts: ReadOptions = {},
): Promise<FileText | FileRefusal> {
  const maxBytes = opts.maxBytes ?? MAX_WORKTREE_FILE_BYTES;
  const found = await locate(root, name);
  if (!found.ok) return found;
  if (found.size > maxBytes) return tooLarge(name, String(found.size), maxBytes);
  let handle: FileHandle;
  try {
    handle = await open(found.path, READ_FLAGS);
  } catch (error) {
    const code = errnoCode(error);
    // ELOOP: the file was swapped for a symlink after it was looked at.
    if (code === 'ELOOP') return refuse('outside', `${name} became a symlink while being read`);
    return refuse('unreadable', `${name} cannot be opened (${code})`);
  }
  try {
    // Checked again on what was opened: the file may have been swapped since it was looked at.
    const st = await handle.stat();
    if (!st.isFile()) return refuse('not_regular', `${name} is ${fileKind(st)}, not a regular file`);
    if (st.size > maxBytes) return tooLarge(name, String(st.size), maxBytes);
    // Read to the end, not to the size seen: a file growing past the cap meanwhile is refused too.
    const chunks: Buffer[] = [];
    let got = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.min(Math.max(st.size - got, 0) + 1, CHUNK_BYTES, maxBytes + 1 - got));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, got);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      got += bytesRead;
      if (got > maxBytes) return tooLarge(name, `more than ${maxBytes}`, maxBytes);
    }
    return { ok: true, path: found.path, text: Buffer.concat(chunks).toString('utf8'), bytes: got };
  } catch (error) {
    return refuse('unreadable', `${name} cannot be read (${errnoCode(error)})`);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Replaces `path` with `text` atomically: written to a new file beside it (created exclusively,
 * so nothing planted under that name is opened), then renamed over it. Whatever was at `path` — a
 * FIFO, a symlink, a file — is replaced, never opened or followed.
 */
export async function replaceFile(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  // Its own name: two replacements of one file at once must not share (and remove) a temporary.
  const tmp = `${path}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(tmp, CREATE_FLAGS, 0o644);
  try {
    await handle.writeFile(text);
  } finally {
    await handle.close();
  }
  await rename(tmp, path).catch(async (error: unknown) => {
    await rm(tmp, { force: true });
    throw error;
  });
}

/**
 * {@link replaceFile}, synchronously, for a small file on the path to a spawn (an agent's prompt):
 * each asynchronous step is a trip through libuv's thread pool, milliseconds on a loaded machine.
 * Nothing here can block: the only file opened is the new one, created exclusively.
 */
export function replaceFileSync(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(tmp, CREATE_FLAGS, 0o644);
  try {
    writeFileSync(fd, text);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

/**
 * Appends `text` to the regular file at `path`. Throws, having written nothing, when `path` is
 * not a regular file (a FIFO, a symlink, a device): the caller replaces it instead.
 */
export async function appendToRegularFile(path: string, text: string): Promise<void> {
  const handle = await open(path, APPEND_FLAGS);
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new Error(`${path} is ${fileKind(st)}, not a regular file`);
    await handle.appendFile(text);
  } finally {
    await handle.close();
  }
}

/**
 * Opens the regular file at `path` for reading, non-blocking and without following a last
 * symlink (a log, say, which an agent could have swapped for a FIFO). Never rejects.
 */
export async function openRegularFile(
  path: string,
): Promise<{ ok: true; handle: FileHandle; size: number } | FileRefusal> {
  let handle: FileHandle;
  try {
    handle = await open(path, READ_FLAGS);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT') return refuse('missing', `${path} does not exist`);
    if (code === 'ELOOP') return refuse('not_regular', `${path} is a symbolic link`);
    return refuse('unreadable', `${path} cannot be opened (${code})`);
  }
  try {
    const st = await handle.stat();
    if (st.isFile()) return { ok: true, handle, size: st.size };
    await handle.close();
    return refuse('not_regular', `${path} is ${fileKind(st)}, not a regular file`);
  } catch (error) {
    await handle.close().catch(() => undefined);
    return refuse('unreadable', `${path} cannot be read (${errnoCode(error)})`);
  }
}

/** The size of the regular file at `path`; 0 when there is none (missing, or not a regular file). */
export async function regularFileSize(path: string | null): Promise<number> {
  if (!path) return 0;
  try {
    const st = await lstat(path);
    return st.isFile() ? st.size : 0;
  } catch {
    return 0;
  }
}

/**
 * Up to `length` bytes of the regular file at `path` from `position` (fewer at its end); empty
 * when it is missing or not a regular file. Never rejects, never blocks the event loop.
 */
export async function readRange(path: string, position: number, length: number): Promise<Buffer> {
  const opened = await openRegularFile(path);
  if (!opened.ok) return Buffer.alloc(0);
  try {
    const buf = Buffer.alloc(Math.max(0, Math.min(length, opened.size - position)));
    let got = 0;
    while (got < buf.length) {
      const { bytesRead } = await opened.handle.read(buf, got, buf.length - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } catch {
    return Buffer.alloc(0);
  } finally {
    await opened.handle.close().catch(() => undefined);
  }
}
