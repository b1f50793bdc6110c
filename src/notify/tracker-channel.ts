/**
 * The project's tracker as a channel: a task imported from it gets its stage
 * and end written back (states and labels, mapped per stage in orch.yaml), a
 * usage comment after each agent run, and the terminal packet when it
 * escalates. Tasks not imported from this tracker are not its business.
 */
import type { Channel } from './channel.ts';
import type { StageMapping, TrackerConfig } from '../trackers/config.ts';
import type { Tracker } from '../trackers/types.ts';
import { isOpenClosed } from '../trackers/services.ts';
import type { Store } from '../store/store.ts';
import { WORK_STAGES } from '../core/stages.ts';
import { modelEffortLabel } from '../core/model.ts';
import { elapsedMs } from '../core/stages.ts';
import { duration, usd } from '../core/format.ts';

export const TRACKER_CHANNEL = 'tracker';

/**
 * The stage mapping in force: the config's, else (GitHub, Gitea, Forgejo and
 * GitLab have only open and closed) an `orch:<stage>` label per stage and the
 * issue closed when done; other trackers' state names differ per workspace,
 * so they change only what the config maps.
 */
export function stageMapping(cfg: TrackerConfig): Record<string, StageMapping> {
  if (cfg.stages) return cfg.stages;
  if (!isOpenClosed(cfg.kind)) return {};
  const map: Record<string, StageMapping> = {};
  for (const s of WORK_STAGES) map[s] = { labels: [`orch:${s}`] };
  map['done'] = { state: 'closed', labels: [] };
  map['escalated'] = { labels: ['orch:escalated'] };
  map['cancelled'] = { state: 'closed', labels: ['orch:cancelled'] };
  return map;
}

/** What moving to `target` changes: its state, its labels, and every other mapped label removed. */
export function statusUpdateFor(mapping: Record<string, StageMapping>, target: string) {
  const m = mapping[target];
  if (!m) return null;
  const keep = new Set(m.labels ?? []);
  const others = new Set(Object.values(mapping).flatMap((x) => x.labels ?? []));
  return {
    ...(m.state ? { state: m.state } : {}),
    addLabels: [...keep],
    removeLabels: [...others].filter((l) => !keep.has(l)),
  };
}

export interface TrackerChannelOptions {
  id: string;
  events: ReadonlySet<string>;
  config: TrackerConfig;
  tracker: Tracker;
  store: Store;
}

export function createTrackerChannel(opts: TrackerChannelOptions): Channel {
  const { config, tracker, store } = opts;
  const mapping = stageMapping(config);
  return {
    id: opts.id,
    kind: 'tracker',
    events: opts.events,
    coalesce: false,
    async deliver({ item, payload, task }, tools) {
      if (task.external_source !== config.kind || !task.external_id) return;
      const id = task.external_id;
      if (item.kind === 'stage_changed') {
        const update = statusUpdateFor(mapping, String(payload['to']));
        if (update) await tracker.update(id, update);
      } else if (item.kind === 'escalated') {
        const update = statusUpdateFor(mapping, 'escalated');
        if (update) await tracker.update(id, update);
        if (config.comments.escalation) {
          await tracker.comment(id, await tools.terminalPacket());
        }
      } else if (item.kind === 'pull_request') {
        const state = payload['state'] === 'merged' ? 'merged' : 'opened';
        await tracker.comment(
          id,
          `**orch** · ${task.key} · pull request ${state}: ${String(payload['url'])}`,
        );
      } else if (item.kind === 'run_finished') {
        const run = await store.getRun(Number(payload['run_id']));
        if (run) await tracker.comment(id, usageComment(task.key, run));
      }
    },
  };
}

/** One line about a finished run: role and stage, model · effort, duration, tokens, cost, outcome. */
export function usageComment(
  key: string,
  run: {
    agent: string;
    stage: string | null;
    model: string | null;
    effort: string | null;
    started_at: string | null;
    finished_at: string | null;
    input_tokens: number | null;
    output_tokens: number | null;
    cost_usd: number | null;
    outcome: string | null;
  },
): string {
  const tokens = (run.input_tokens ?? 0) + (run.output_tokens ?? 0);
  const label = modelEffortLabel(run.model, run.effort);
  return [
    `**orch** · ${key} · ${run.stage ?? run.agent} (${run.agent})`,
    label ? ` · ${label}` : '',
    ` · ${duration(elapsedMs(run) ?? 0)}`,
    ` · ${tokens.toLocaleString('en-US')} tokens`,
    ` · ${usd(run.cost_usd)}`,
    run.outcome && run.outcome !== 'ok' ? ` · ${run.outcome}` : '',
  ].join('');
}
