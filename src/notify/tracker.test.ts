import { describe, expect, it } from 'vitest';
import {
  lastRun,
  renderTaskTracker,
  stageState,
  TRACKED_STAGES,
  type Locale,
  type StageState,
  type TrackerRun,
  type TrackerTask,
} from './tracker.ts';

const run = (r: Partial<TrackerRun> & Pick<TrackerRun, 'agent'>): TrackerRun => ({
  stage: null,
  started_at: '2026-06-14T09:00:00Z',
  finished_at: '2026-06-14T09:10:00Z',
  exit_code: 0,
  cost_usd: 0.5,
  model: 'claude-opus-4-8',
  effort: 'high',
  ...r,
});

const task = (t: Partial<TrackerTask> = {}): TrackerTask => ({
  key: 'ORCH-109',
  title: 'Timeout budgets',
  stage: 'development',
  status: 'running',
  ...t,
});

/** The stage line of a stage, found by its localized name after the icon. */
const lineOf = (text: string, name: string): string => {
  const line = text.split('\n').find((l) => l.split(' ').slice(1).join(' ').startsWith(name));
  if (!line) throw new Error(`no line for ${name} in:\n${text}`);
  return line;
};

// Runs of the first three agent stages, the development run still in flight.
const midwayRuns: TrackerRun[] = [
  run({ id: 1, agent: 'analyst', stage: 'analysis', cost_usd: 0.25 }),
  run({
    id: 2,
    agent: 'architect',
    stage: 'architecture',
    started_at: '2026-06-14T09:10:00Z',
    finished_at: '2026-06-14T09:30:00Z',
    cost_usd: 0.5,
  }),
  run({
    id: 3,
    agent: 'developer',
    stage: 'development',
    started_at: '2026-06-14T09:30:00Z',
    finished_at: null,
    cost_usd: null,
    effort: 'xhigh',
  }),
];

describe('renderTaskTracker', () => {
  const names: Record<Locale, string[]> = {
    en: [
      'Analysis',
      'Architecture',
      'Development',
      'Review',
      'Testing',
      'Deploy (staging)',
      'Deploy',
      'Done',
    ],
    ru: [
      'Анализ',
      'Архитектура',
      'Разработка',
      'Ревью',
      'Тестирование',
      'Деплой (стейджинг)',
      'Деплой',
      'Готово',
    ],
  };

  it.each(['en', 'ru'] as const)('%s: header, one line per stage in pipeline order, totals', (locale) => {
    const text = renderTaskTracker(
      { task: task({ url: 'https://tracker.example/ORCH-109' }), runs: midwayRuns },
      locale,
    );
    const lines = text.split('\n');
    expect(lines).toHaveLength(1 + 8 + 1);
    expect(lines[0]).toContain('ORCH-109');
    expect(lines[0]).toContain('Timeout budgets');
    expect(lines[0]).toContain('https://tracker.example/ORCH-109');
    expect(lines.slice(1, 9).map((l) => l.slice(l.indexOf(' ') + 1).split(' — ')[0])).toEqual(names[locale]);
    expect(lines[9]).toMatch(locale === 'en' ? /^Total: / : /^Итого: /);
    expect(TRACKED_STAGES).toEqual([
      'analysis',
      'architecture',
      'development',
      'review',
      'testing',
      'deploy-staging',
      'deploy',
      'done',
    ]);
  });

  it('has no link in the header when the task has no url', () => {
    const header = renderTaskTracker({ task: task(), runs: [] }, 'en').split('\n')[0];
    expect(header).toBe('ORCH-109 — Timeout budgets');
  });

  it("overlays the tracker's live state in the header when given (ORCH_TRACKER_LIVE_STATUS)", () => {
    const live = { ...task(), liveState: 'In Review', url: 'https://plane.example/p/ORCH-109' };
    expect(renderTaskTracker({ task: live, runs: [] }, 'ru').split('\n')[0]).toBe(
      'ORCH-109 — Timeout budgets [In Review] — https://plane.example/p/ORCH-109',
    );
    expect(renderTaskTracker({ task: { ...live, liveState: null }, runs: [] }, 'en').split('\n')[0]).toBe(
      'ORCH-109 — Timeout budgets — https://plane.example/p/ORCH-109',
    );
  });

  interface IconCase {
    name: string;
    task: TrackerTask;
    runs: TrackerRun[];
    expected: Record<string, string>;
  }
  const iconCases: IconCase[] = [
    {
      name: 'earlier stages done, current running, later pending',
      task: task({ stage: 'development', status: 'running' }),
      runs: midwayRuns,
      expected: { Analysis: '✅', Architecture: '✅', Development: '🔄', Review: '▫️', Done: '▫️' },
    },
    {
      name: 'current stage waiting when its runs are finished and the task is queued',
      task: task({ stage: 'review', status: 'queued' }),
      runs: [
        run({ id: 1, agent: 'analyst', stage: 'analysis' }),
        run({ id: 2, agent: 'architect', stage: 'architecture' }),
        run({ id: 3, agent: 'developer', stage: 'development' }),
      ],
      expected: { Development: '✅', Review: '⏳', Testing: '▫️' },
    },
    {
      name: 'current stage failed when the task is escalated',
      task: task({ stage: 'development', status: 'escalated' }),
      runs: [
        run({ id: 1, agent: 'analyst', stage: 'analysis' }),
        run({ id: 2, agent: 'architect', stage: 'architecture' }),
        run({ id: 3, agent: 'developer', stage: 'development', exit_code: -9 }),
      ],
      expected: { Architecture: '✅', Development: '❌', Review: '▫️' },
    },
    {
      name: 'a cancelled task fails where its last run worked',
      task: task({ stage: 'cancelled', status: 'cancelled' }),
      runs: [
        run({ id: 1, agent: 'analyst', stage: 'analysis' }),
        run({ id: 2, agent: 'architect', stage: 'architecture', started_at: '2026-06-14T09:20:00Z' }),
      ],
      expected: { Analysis: '✅', Architecture: '❌', Development: '▫️' },
    },
    {
      name: 'a done task: every worked stage and Done itself are done',
      task: task({ stage: 'done', status: 'done' }),
      runs: TRACKED_STAGES.filter((s) => s !== 'done').map((stage, i) =>
        run({ id: i + 1, agent: 'x', stage }),
      ),
      expected: {
        Analysis: '✅',
        Architecture: '✅',
        Development: '✅',
        Review: '✅',
        Testing: '✅',
        'Deploy (staging)': '✅',
        'Deploy —': '✅',
        Done: '✅',
      },
    },
    {
      name: 'a new task: all pending',
      task: task({ stage: 'created', status: 'queued' }),
      runs: [],
      expected: { Analysis: '▫️', Development: '▫️', Done: '▫️' },
    },
  ];

  it.each(iconCases)('icons: $name', ({ task: t, runs, expected }) => {
    const text = renderTaskTracker({ task: t, runs }, 'en');
    for (const [name, icon] of Object.entries(expected)) {
      expect(lineOf(text, name).startsWith(`${icon} `), `${name} in\n${text}`).toBe(true);
    }
  });

  it.each<[Locale, string, string]>([
    ['en', 'Development', '✅ Development — 50m 00s · $1.50 · opus-4-8 · xhigh'],
    ['ru', 'Разработка', '✅ Разработка — 50м 00с · $1.50 · opus-4-8 · xhigh'],
  ])(
    "%s: a stage line sums duration and cost of its runs and ends with the last run's model · effort",
    (locale, name, expected) => {
      const runs = [
        run({
          id: 1,
          agent: 'developer',
          stage: 'development',
          started_at: '2026-06-14 09:00:00',
          finished_at: '2026-06-14 09:20:00',
          cost_usd: 1,
          model: 'claude-sonnet-4-6',
          effort: 'high',
        }),
        run({
          id: 2,
          agent: 'developer',
          stage: 'development',
          started_at: '2026-06-14 09:25:00',
          finished_at: '2026-06-14 09:55:00',
          exit_code: -9,
          cost_usd: 0.5,
          model: 'tokenator/claude-opus-4-8',
          effort: 'xhigh',
        }),
      ];
      const text = renderTaskTracker({ task: task({ stage: 'done', status: 'done' }), runs }, locale);
      expect(lineOf(text, name)).toBe(expected);
      expect(text.split('\n').at(-1)).toBe(
        locale === 'en' ? 'Total: 50m 00s · $1.50' : 'Итого: 50м 00с · $1.50',
      );
    },
  );

  it.each<[string, Partial<TrackerRun>, string]>([
    ['no model: suffix dropped', { model: null, effort: 'xhigh' }, '✅ Review — 10m 00s · $0.50'],
    ['blank model: suffix dropped', { model: '  ', effort: 'xhigh' }, '✅ Review — 10m 00s · $0.50'],
    [
      'model without effort: model only',
      { model: 'claude-opus-4-8', effort: null },
      '✅ Review — 10m 00s · $0.50 · opus-4-8',
    ],
    ['no cost reported', { cost_usd: null }, '✅ Review — 10m 00s · – · opus-4-8 · high'],
    ['a tiny cost stays visible', { cost_usd: 0.0012 }, '✅ Review — 10m 00s · <$0.01 · opus-4-8 · high'],
  ])('stage line: %s', (_name, changes, expected) => {
    const text = renderTaskTracker(
      {
        task: task({ stage: 'testing', status: 'queued' }),
        runs: [run({ id: 1, agent: 'reviewer', stage: 'review', ...changes })],
      },
      'en',
    );
    expect(lineOf(text, 'Review')).toBe(expected);
  });

  it('takes the last run by started_at, then by id, not by input order', () => {
    const runs = [
      run({
        id: 5,
        agent: 'developer',
        stage: 'development',
        started_at: '2026-06-14T10:00:00Z',
        model: 'claude-opus-4-8',
        effort: 'max',
      }),
      run({
        id: 9,
        agent: 'developer',
        stage: 'development',
        started_at: '2026-06-14T08:00:00Z',
        model: 'claude-haiku-4-5',
        effort: 'low',
      }),
      run({
        id: 4,
        agent: 'developer',
        stage: 'development',
        started_at: '2026-06-14T10:00:00Z',
        model: 'claude-sonnet-4-6',
        effort: 'high',
      }),
    ];
    expect(lastRun(runs)?.id).toBe(5);
    const text = renderTaskTracker({ task: task({ stage: 'review', status: 'queued' }), runs }, 'en');
    expect(lineOf(text, 'Development').endsWith('opus-4-8 · max')).toBe(true);
  });

  it('places a run without a stage by its role', () => {
    const text = renderTaskTracker(
      {
        task: task({ stage: 'review', status: 'queued' }),
        runs: [run({ id: 1, agent: 'developer', stage: null })],
      },
      'ru',
    );
    expect(lineOf(text, 'Разработка')).toBe('✅ Разработка — 10м 00с · $0.50 · opus-4-8 · high');
  });

  it('counts a run in flight up to now, and not at all without now', () => {
    const runs = [
      run({ id: 1, agent: 'developer', stage: 'development', finished_at: null, cost_usd: null }),
    ];
    const withNow = renderTaskTracker({ task: task(), runs, now: '2026-06-14T10:05:30Z' }, 'en');
    expect(lineOf(withNow, 'Development')).toBe('🔄 Development — 1h 05m · – · opus-4-8 · high');
    const without = renderTaskTracker({ task: task(), runs }, 'en');
    expect(lineOf(without, 'Development')).toBe('🔄 Development — 0s · – · opus-4-8 · high');
  });
});

describe('stageState', () => {
  const some = [run({ agent: 'developer' })];
  const inFlight = [run({ agent: 'developer', finished_at: null })];
  it.each<[string, Parameters<typeof stageState>, StageState]>([
    ['before current, worked', ['analysis', 'development', 'running', some], 'done'],
    ['before current, never worked', ['analysis', 'development', 'running', []], 'pending'],
    ['current with a run in flight', ['development', 'development', 'running', inFlight], 'running'],
    ['current, escalated', ['development', 'development', 'escalated', some], 'failed'],
    ['current, cancelled', ['development', 'development', 'cancelled', some], 'failed'],
    ['current, queued', ['development', 'development', 'queued', some], 'waiting'],
    ['after current', ['review', 'development', 'running', some], 'pending'],
    ['done stage of a done task', ['done', 'done', 'done', []], 'done'],
    ['task at created', ['analysis', 'created', 'queued', []], 'pending'],
  ])('%s', (_name, args, expected) => {
    expect(stageState(...args)).toBe(expected);
  });
});
