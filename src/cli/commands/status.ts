/** `orch status`: projects, task counts, the queue and the agents in flight. */
import type { OrchContext } from '../../runtime/context.ts';
import { statusData } from '../../runtime/status.ts';
import { json, table, label, duration } from '../../core/format.ts';

export async function statusText(ctx: OrchContext, asJson: boolean): Promise<string> {
  const s = await statusData(ctx);
  if (asJson) return json(s);
  const lines = [
    `home ${s.home}`,
    `projects: ${s.projects.map((p) => p.name).join(', ') || 'none'}`,
    `tasks: ${s.tasks.total} (${
      Object.entries(s.tasks.by_status)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    })`,
    `queue: ${s.queue.queued} queued, ${s.queue.running} running`,
  ];
  if (s.running_agents.length) {
    lines.push(
      '',
      table(
        ['TASK', 'ROLE', 'MODEL · EFFORT', 'PID', 'ELAPSED', 'TIMEOUT'],
        s.running_agents.map((r) => [
          r.task ?? '–',
          r.role,
          label(r.model, r.effort),
          r.pid ?? '–',
          duration((r.elapsed_s ?? 0) * 1000),
          `${r.timeout_s}s`,
        ]),
      ),
    );
  }
  for (const p of s.paused_adapters)
    lines.push(
      `paused: ${p.adapter}${p.credential ? ` (credential ${p.credential})` : ''} by a usage limit${
        p.window ? ` (${p.window})` : ''
      } until ${p.until.slice(0, 16).replace('T', ' ')} UTC${p.task ? `, hit by ${p.task}` : ''}`,
    );
  for (const o of s.outbox)
    lines.push(
      `outbox ${o.channel}: ${o.sent} sent, ${o.pending} pending${o.dead ? `, ${o.dead} DEAD` : ''}`,
    );
  for (const e of s.config_errors) lines.push(`config error in ${e.project}: ${e.error}`);
  return lines.join('\n');
}
