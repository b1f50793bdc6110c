/** `orch logs KEY [-f]`: the task's agent logs, in run order, followed live. */
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import type { OrchContext } from '../../runtime/context.ts';

const TERMINAL = ['done', 'cancelled', 'escalated'];

export async function logsCommand(
  ctx: OrchContext,
  key: string,
  follow: boolean,
  write: (s: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  const task = await ctx.store.getTaskByKey(key);
  const offsets = new Map<number, number>();
  const drain = async () => {
    for (const run of await ctx.store.runsOfTask(task.id)) {
      if (!run.log_path || !existsSync(run.log_path)) continue;
      const from = offsets.get(run.id);
      if (from === undefined) write(`==> run ${run.id} ${run.agent} (${run.stage}) ${run.log_path}\n`);
      const size = statSync(run.log_path).size;
      let pos = from ?? 0;
      if (size <= pos) {
        offsets.set(run.id, pos);
        continue;
      }
      const fd = openSync(run.log_path, 'r');
      try {
        const buf = Buffer.alloc(64 * 1024);
        while (pos < size) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
          if (n <= 0) break;
          write(buf.subarray(0, n).toString('utf8'));
          pos += n;
        }
      } finally {
        closeSync(fd);
      }
      offsets.set(run.id, pos);
    }
  };
  await drain();
  while (follow && !signal?.aborted) {
    await new Promise((r) => setTimeout(r, 200));
    await drain();
    const current = await ctx.store.getTask(task.id);
    if (
      TERMINAL.includes(current.status) &&
      (await ctx.store.runningRuns()).every((r) => r.task_id !== task.id)
    ) {
      await drain();
      break;
    }
  }
}
