/**
 * "No event lost from the outbox", checked from both ends after every fault:
 * the store (every routed event has one delivery per channel, all sent) and
 * the outside (outside.ts: the webhook receiver got every event, the fake
 * GitHub holds each run's usage comment and each imported task's end).
 *
 * Delivery is at least once: an orchestrator SIGKILLed after a service
 * accepted a delivery but before the row was marked sent sends it again on
 * restart. Each channel delivers one row at a time per process, so a kill
 * repeats at most one delivery per channel: repeats are accepted up to the
 * number of kills the wave saw, and only as the same delivery again (a
 * webhook event id received before, a comment right after its twin). Loss,
 * reordering, or a repeat without a kill is a violation.
 */
import { NOTIFY_EVENTS } from '../../src/trackers/config.ts';
import { usageComment } from '../../src/notify/tracker-channel.ts';
import type { OrchEvent, Task } from '../../src/store/schema.ts';
import type { Invariant, Snapshot } from './invariants.ts';
import { HOOK_CHANNEL, type Receipt } from './outside.ts';

const TRACKER_CHANNEL = 'tracker';
/** What the tracker channel takes (comments.usage is on): written out here rather than taken from orch. */
const TRACKER_EVENTS: ReadonlySet<string> = new Set([
  'stage_changed',
  'escalated',
  'pull_request',
  'run_finished',
]);
/** The webhook channel is routed every event kind. */
const HOOK_EVENTS: ReadonlySet<string> = new Set(NOTIFY_EVENTS);

/** The channels (by name) an event must reach; a gate result is news only when it failed. */
function channelsOf(e: OrchEvent): string[] {
  let kind = e.kind;
  if (kind === 'gate_result') {
    if ((JSON.parse(e.payload) as { passed?: unknown }).passed) return [];
    kind = 'gate_failed';
  }
  return [
    ...(HOOK_EVENTS.has(kind) ? [HOOK_CHANNEL] : []),
    ...(TRACKER_EVENTS.has(kind) ? [TRACKER_CHANNEL] : []),
  ];
}

const kills = (s: Snapshot): number => s.exits.filter((e) => e.killedByUs).length;
const keyOf = (s: Snapshot, taskId: number | null): string =>
  s.tasks.find((t) => t.id === taskId)?.key ?? `task ${taskId}`;

/** What the webhook receiver got about the snapshot's tasks. */
function receipts(s: Snapshot): Receipt[] {
  const keys = new Set(s.tasks.map((t) => t.key));
  return s.world.outside.received.filter((r) => keys.has(r.key));
}

/** The tracker side of one imported task: its usage comments matched against its runs. */
interface TrackerView {
  problems: string[];
  /** Comments that repeat the one before (a delivery sent again after a kill). */
  repeats: number;
  usage: number;
}

function trackerView(s: Snapshot, t: Task): TrackerView {
  const problems: string[] = [];
  const issue = s.world.outside.github.issue(Number(t.external_id));
  const runs = s.runs.filter((r) => r.task_id === t.id);
  // The runs in the order their run_finished events were written: the order their comments must come in.
  const finished = s.events
    .filter((e) => e.task_id === t.id && e.kind === 'run_finished')
    .map((e) => Number((JSON.parse(e.payload) as { run_id: unknown }).run_id));
  for (const r of runs) {
    const n = finished.filter((id) => id === r.id).length;
    if (n !== 1) problems.push(`${t.key}: run ${r.id} has ${n} run_finished events`);
  }
  const expected = finished.map((id) => {
    const run = runs.find((r) => r.id === id);
    return run ? usageComment(t.key, run) : `(run ${id} is missing from the store)`;
  });

  // Each run's comment in turn; the same comment again right after it is a repeat (sent twice).
  let matched = 0;
  let repeats = 0;
  let packets = 0;
  const lost: string[] = [];
  for (const c of issue.comments) {
    if (c.startsWith(`# Terminal packet: ${t.key}`)) {
      packets += 1;
      continue;
    }
    // Runs of different attempts may read the same: the next run's comment first, then a repeat,
    // and only then a comment further on (those in between were lost).
    const ahead = expected.indexOf(c, matched);
    if (ahead === matched) matched += 1;
    else if (matched > 0 && c === expected[matched - 1]) repeats += 1;
    else if (ahead > matched) {
      lost.push(...expected.slice(matched, ahead));
      matched = ahead + 1;
    } else
      problems.push(`${t.key} (#${issue.number}): a comment of no run, or out of order: ${c.slice(0, 200)}`);
  }
  lost.push(...expected.slice(matched));
  for (const c of lost) problems.push(`${t.key} (#${issue.number}): no comment for the run: ${c}`);

  const orchLabels = issue.labels.filter((l) => l.startsWith('orch:'));
  if (t.status === 'done') {
    if (issue.state !== 'closed')
      problems.push(`${t.key} (#${issue.number}): done, but the issue is ${issue.state}`);
    if (orchLabels.length)
      problems.push(`${t.key} (#${issue.number}): done, still labelled ${orchLabels.join(', ')}`);
    if (packets) problems.push(`${t.key} (#${issue.number}): done, with ${packets} terminal packet comments`);
  } else if (t.status === 'escalated') {
    if (issue.state !== 'open')
      problems.push(`${t.key} (#${issue.number}): escalated, but the issue is ${issue.state}`);
    if (orchLabels.join() !== 'orch:escalated')
      problems.push(
        `${t.key} (#${issue.number}): escalated, labelled ${orchLabels.join(', ') || 'nothing of orch'}`,
      );
    if (packets === 0)
      problems.push(`${t.key} (#${issue.number}): escalated without the terminal packet comment`);
    repeats += Math.max(0, packets - 1);
  }
  return { problems, repeats, usage: expected.length - lost.length };
}

const imported = (s: Snapshot): Task[] =>
  s.tasks.filter((t) => t.external_source === 'github' && t.external_id);

export const OUTBOX_INVARIANTS: Invariant[] = [
  {
    name: 'no event lost from the outbox: one delivery per routed channel, all sent',
    check(s) {
      const problems: string[] = [];
      const want = new Map<string, OrchEvent>();
      for (const e of s.events) {
        if (e.fanned_out !== 1)
          problems.push(`${keyOf(s, e.task_id)}: event ${e.id} (${e.kind}) never fanned out`);
        for (const c of channelsOf(e)) want.set(`${s.project}/${c} ${e.id}`, e);
      }
      const got = new Map(s.outbox.map((o) => [`${o.channel} ${o.event_id}`, o]));
      for (const [id, e] of want) {
        const row = got.get(id);
        if (!row)
          problems.push(
            `${keyOf(s, e.task_id)}: event ${e.id} (${e.kind}) has no delivery for ${id.split(' ')[0]}`,
          );
        else if (row.status !== 'sent')
          problems.push(
            `${keyOf(s, e.task_id)}: ${row.kind} (event ${e.id}) to ${row.channel} is ${row.status} after ${row.attempts} attempts: ${row.last_error ?? ''}`,
          );
      }
      for (const [id, row] of got)
        if (!want.has(id))
          problems.push(
            `${keyOf(s, row.task_id)}: a delivery of ${row.kind} to ${row.channel} nothing routed`,
          );
      return problems;
    },
  },
  {
    name: 'the webhook receiver got every event, in order per task, repeats only after kills',
    check(s) {
      const problems: string[] = [];
      const got = receipts(s);
      const want = s.events.filter((e) => channelsOf(e).includes(HOOK_CHANNEL));
      const ids = new Set(got.map((r) => r.eventId));
      for (const e of want)
        if (!ids.has(e.id))
          problems.push(`${keyOf(s, e.task_id)}: event ${e.id} (${e.kind}) never reached the receiver`);
      const wanted = new Set(want.map((e) => e.id));
      for (const r of got)
        if (!wanted.has(r.eventId))
          problems.push(`${r.key}: received event ${r.eventId} (${r.event}), which was not routed to it`);
      for (const t of s.tasks) {
        const firsts = [...new Set(got.filter((r) => r.key === t.key).map((r) => r.eventId))];
        if (firsts.some((id, i) => i > 0 && id < firsts[i - 1]!))
          problems.push(`${t.key}: events arrived out of order: ${firsts.join(',')}`);
      }
      const repeats = got.length - ids.size;
      if (repeats > kills(s)) problems.push(`${repeats} events received twice, after ${kills(s)} kills`);
      return problems;
    },
  },
  {
    name: "the tracker holds one usage comment per run and each imported task's end, repeats only after kills",
    check(s) {
      const views = imported(s).map((t) => trackerView(s, t));
      const repeats = views.reduce((n, v) => n + v.repeats, 0);
      return [
        ...views.flatMap((v) => v.problems),
        ...(repeats > kills(s) ? [`${repeats} tracker comments posted twice, after ${kills(s)} kills`] : []),
      ];
    },
  },
];

/** What the outbox did for a wave, for the report's notes. */
export function outboxNote(s: Snapshot): string {
  const sent = s.outbox.filter((o) => o.status === 'sent');
  const retried = sent.filter((o) => o.attempts > 0).length;
  const views = imported(s).map((t) => trackerView(s, t));
  const got = receipts(s);
  const hookRepeats = got.length - new Set(got.map((r) => r.eventId)).size;
  const trackerRepeats = views.reduce((n, v) => n + v.repeats, 0);
  return (
    `outbox: ${sent.length} deliveries sent (${retried} after a retry), ` +
    `${views.reduce((n, v) => n + v.usage, 0)} usage comments on ${views.length} issues; ` +
    `sent twice after a kill: ${hookRepeats} webhook, ${trackerRepeats} tracker`
  );
}
