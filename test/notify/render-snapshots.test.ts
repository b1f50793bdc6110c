/**
 * The whole tracker message, in English and Russian, for a task in each
 * state it can be in: new (all pending), running, waiting for approval,
 * escalated, done, cancelled. src/notify/tracker.test.ts checks the parts
 * (icons, lines, sums); these pin the text people read, line for line, each
 * case's in `__snapshots__/tracker-<case>.txt` exactly as a chat shows it.
 */
import { describe, expect, it } from 'vitest';
import { renderTaskTracker, type TrackerInput, type TrackerRun } from '../../src/notify/tracker.ts';

const at = (minute: number): string => new Date(Date.UTC(2026, 5, 14, 9, minute)).toISOString();

/** A finished run of `stage` from minute `from` to minute `to`. */
const run = (
  id: number,
  agent: string,
  stage: string,
  from: number,
  to: number | null,
  extra: Partial<TrackerRun> = {},
): TrackerRun => ({
  id,
  agent,
  stage,
  started_at: at(from),
  finished_at: to === null ? null : at(to),
  exit_code: to === null ? null : 0,
  cost_usd: to === null ? null : 0.12 * id,
  model: 'claude-opus-4-8',
  effort: agent === 'developer' ? 'xhigh' : 'high',
  ...extra,
});

const analysis = run(1, 'analyst', 'analysis', 0, 3);
const architecture = run(2, 'architect', 'architecture', 3, 7, { model: 'anthropic/claude-sonnet-4-6' });
const development = run(3, 'developer', 'development', 7, 31);
const review = run(4, 'reviewer', 'review', 31, 35, { effort: null });
const testing = run(5, 'tester', 'testing', 35, 40, { model: 'gpt-5-codex', effort: 'medium' });
const staging = run(6, 'deployer', 'deploy-staging', 40, 42, { cost_usd: 0.001 });
const deploy = run(7, 'deployer', 'deploy', 44, 45, { model: null, cost_usd: null });

const task = (stage: string, status: string, url: string | null = null): TrackerInput['task'] => ({
  key: 'APP-7',
  title: 'Retry budget <per role> & "timeouts"',
  stage,
  status,
  url,
});

/** Both locales, one after the other, so one snapshot shows the pair. */
const both = (input: TrackerInput): string =>
  `${renderTaskTracker(input, 'en')}\n\n${renderTaskTracker(input, 'ru')}`;

/** Each state a task can be in: the snapshot file's name, and the input rendered. */
const cases: { name: string; file: string; input: TrackerInput }[] = [
  {
    name: 'new: queued at created, every stage pending',
    file: 'new',
    input: { task: task('created', 'queued'), runs: [] },
  },
  {
    name: 'running: development in flight, timed up to now',
    file: 'running',
    input: {
      task: task('development', 'running', 'https://github.com/acme/app/issues/7'),
      runs: [analysis, architecture, run(3, 'developer', 'development', 7, null)],
      now: at(19),
    },
  },
  {
    name: 'waiting for approval before deploy',
    file: 'waiting',
    input: {
      task: task('deploy', 'waiting'),
      runs: [analysis, architecture, development, review, testing, staging],
    },
  },
  {
    name: 'escalated at review after two attempts',
    file: 'escalated',
    input: {
      task: task('review', 'escalated'),
      runs: [
        analysis,
        architecture,
        run(3, 'developer', 'development', 7, 15),
        run(4, 'reviewer', 'review', 15, 17),
        run(8, 'developer', 'development', 17, 25, { model: 'claude-sonnet-4-6' }),
        run(9, 'reviewer', 'review', 25, 29),
      ],
    },
  },
  {
    name: 'done: every stage done',
    file: 'done',
    input: {
      task: task('done', 'done', 'https://linear.app/acme/issue/APP-7'),
      runs: [analysis, architecture, development, review, testing, staging, deploy],
    },
  },
  {
    name: 'cancelled during architecture',
    file: 'cancelled',
    input: { task: task('cancelled', 'cancelled'), runs: [analysis, architecture] },
  },
];

describe('the tracker message, in each state, in both locales', () => {
  it.each(cases)('$name', async ({ file, input }) => {
    await expect(both(input)).toMatchFileSnapshot(`__snapshots__/tracker-${file}.txt`);
  });
});
