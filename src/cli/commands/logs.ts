/**
 * `orch logs KEY [-f]`: the task's agent logs, in run order, followed live.
 * The log files keep every byte an agent printed; what reaches the terminal is
 * neutralised line by line (core/text.ts), so an escape sequence split across
 * two reads is still seen whole.
 */
import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { paths } from '../../runtime/context.ts';
import { StringDecoder } from 'node:string_decoder';
import type { OrchContext } from '../../runtime/context.ts';
import { terminalSafe } from '../../core/text.ts';
import { readRange, regularFileSize } from '../../io/worktree-files.ts';

const TERMINAL = ['done', 'cancelled', 'escalated'];
/** Bytes read from a log at a time. */
const READ_BYTES = 64 * 1024;

/** How far one run's log has been shown. */
interface Cursor {
  offset: number;
  decoder: StringDecoder;
  /** The text after the last newline, held back until its line is complete. */
  partial: string;
}

export async function logsCommand(
  ctx: OrchContext,
  key: string,
  follow: boolean,
  write: (s: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const task = await ctx.store.getTaskByKey(key);
  const cursors = new Map<string, Cursor>();
  const logsDir = paths.logsDir(ctx, task);
  /** Every log of the task, oldest first: its runs', and its hooks' (`hook-<name>-<n>.log`). */
  const logs = async (): Promise<{ path: string; header: string }[]> => {
    const found: { path: string; header: string; at: number }[] = [];
    for (const run of await ctx.store.runsOfTask(task.id)) {
      if (!run.log_path) continue;
      found.push({
        path: run.log_path,
        header: `run ${run.id} ${run.agent} (${run.stage})`,
        at: run.started_at ? Date.parse(run.started_at) : Number.MAX_SAFE_INTEGER,
      });
    }
    const entries = await readdir(logsDir).catch(() => [] as string[]);
    for (const entry of entries) {
      const m = /^hook-([a-z_]+)-(\d+)\.log$/.exec(entry);
      if (!m) continue;
      const path = join(logsDir, entry);
      const st = await stat(path).catch(() => null);
      if (!st?.isFile()) continue;
      found.push({ path, header: `hook ${m[1]} #${m[2]}`, at: st.birthtimeMs || st.ctimeMs });
    }
    return found.sort((a, b) => a.at - b.at);
  };
  const show = (text: string) => {
    if (text) write(terminalSafe(text));
  };
  /** Shows what each log gained; `final` also shows a last line without its newline. */
  const drain = async (final: boolean) => {
    for (const log of await logs()) {
      const size = await regularFileSize(log.path);
      let cursor = cursors.get(log.path);
      if (!cursor) {
        if (
          size === 0 &&
          !(await lstat(log.path).then(
            () => true,
            () => false,
          ))
        )
          continue;
        cursor = { offset: 0, decoder: new StringDecoder('utf8'), partial: '' };
        cursors.set(log.path, cursor);
        show(`==> ${log.header} ${log.path}\n`);
      }
      while (cursor.offset < size) {
        const bytes = await readRange(log.path, cursor.offset, Math.min(READ_BYTES, size - cursor.offset));
        if (bytes.length === 0) break;
        cursor.offset += bytes.length;
        const text = cursor.partial + cursor.decoder.write(bytes);
        const end = text.lastIndexOf('\n') + 1;
        show(text.slice(0, end));
        cursor.partial = text.slice(end);
      }
      if (final && cursor.partial) {
        show(`${cursor.partial}${cursor.decoder.end()}\n`);
        cursor.partial = '';
      }
    }
  };
  await drain(!follow);
  while (follow && !signal?.aborted) {
    await new Promise((r) => setTimeout(r, 200));
    await drain(false);
    const current = await ctx.store.getTask(task.id);
    if (
      TERMINAL.includes(current.status) &&
      (await ctx.store.runningRuns()).every((r) => r.task_id !== task.id)
    ) {
      await drain(true);
      break;
    }
  }
}
