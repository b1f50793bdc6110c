/** Stats: which agent setup gets tasks done, first time, at what cost; and the variants compared. */
import { useState } from 'preact/hooks';
import type { GroupStats, ProjectJson, StatsReport, VariantComparison } from '../../../src/http/types.ts';
import { STATS_DIMENSIONS, DEFAULT_STATS_BY, type StatsDimension } from '../../../src/core/stats.ts';
import { useEvents, useJson, useThrottled } from '../hooks.ts';
import { ErrorNote, Section } from '../components/ui.tsx';
import { duration, tokens, usd } from '../format.ts';

const RANGES = ['7d', '30d', '90d', 'all'] as const;

const pct = (v: number) => `${Math.round(v * 100)}%`;
const mix = (m: Record<string, number>) =>
  Object.entries(m)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

/** A rate in [0, 1] with its interval, as a whisker on a 0–100 % track. */
function IntervalBar(props: { value: number; ci: [number, number] | null }) {
  const { value, ci } = props;
  return (
    <svg class="interval" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
      <rect x="0" y="4.5" width="100" height="1" class="track" />
      {ci && (
        <rect x={ci[0] * 100} y="2" width={Math.max(0.5, (ci[1] - ci[0]) * 100)} height="6" class="range" />
      )}
      <rect x={Math.min(99, value * 100)} y="0" width="1" height="10" class="point" />
    </svg>
  );
}

function Row(props: { g: GroupStats; by: readonly StatsDimension[] }) {
  const { g, by } = props;
  const fp = g.first_pass;
  const cost = g.per_done_task;
  const id = by.map((d) => g.key[d] ?? '–').join('/');
  return (
    <tr data-group={id}>
      {by.map((d) => (
        <td key={d} class={`dim dim-${d}`}>
          {g.key[d] ?? <span class="muted">–</span>}
        </td>
      ))}
      <td class="num tasks">{g.tasks.total}</td>
      <td class="num done">{g.tasks.done}</td>
      <td class="num escalated" title={mix(g.tasks.escalated_by_reason)}>
        {g.tasks.escalated}
        {g.tasks.escalated > 0 && <div class="muted small">{mix(g.tasks.escalated_by_reason)}</div>}
      </td>
      <td class="num runs" title={mix(g.runs.outcomes)}>
        {g.runs.total}
        <div class="muted small">{mix(g.runs.outcomes)}</div>
      </td>
      <td class="first-pass">
        {fp.rate === null ? (
          <span class="muted">–</span>
        ) : (
          <>
            <span class="rate">{pct(fp.rate)}</span>{' '}
            <span class="muted small">
              {fp.approved}/{fp.reviewed}
              {fp.ci95 && ` · ${pct(fp.ci95[0])}–${pct(fp.ci95[1])}`}
            </span>
            <IntervalBar value={fp.rate} ci={fp.ci95} />
          </>
        )}
      </td>
      <td class="num attempts">{g.attempts_to_done === null ? '–' : g.attempts_to_done.toFixed(2)}</td>
      <td class="num cost">
        {usd(cost.cost_usd)}
        {cost.cost_ci95 && (
          <div class="muted small">
            {usd(Math.max(0, cost.cost_ci95[0]))}–{usd(cost.cost_ci95[1])}
          </div>
        )}
      </td>
      <td class="num tokens wide-only">{cost.tokens === null ? '–' : tokens(Math.round(cost.tokens))}</td>
      <td class="num p50">{duration(g.duration_ms.p50)}</td>
      <td class="num p90 wide-only">{duration(g.duration_ms.p90)}</td>
      <td class="num human" title="approvals · retries · messages">
        {g.interventions.approvals} · {g.interventions.retries} · {g.interventions.messages}
      </td>
    </tr>
  );
}

function Comparison(props: { c: VariantComparison }) {
  const { c } = props;
  const setup = Object.entries(c.key)
    .map(([d, v]) => `${d} ${v ?? '–'}`)
    .join(', ');
  return (
    <div class="comparison" data-pair={`${c.a}/${c.b}`}>
      <h3>
        {c.a} vs {c.b} {setup && <span class="muted small">({setup})</span>}
      </h3>
      {[c.approval, c.cost_per_done_task].map((d, i) => (
        <p key={i} class={d.significant ? 'significant' : 'not-significant'}>
          {d.summary}
        </p>
      ))}
    </div>
  );
}

export function Stats() {
  const [since, setSince] = useState<string>('30d');
  const [by, setBy] = useState<StatsDimension[]>([...DEFAULT_STATS_BY]);
  const [project, setProject] = useState('');
  const projects = useJson<ProjectJson[]>('/api/projects');
  const query = new URLSearchParams({ since, by: by.join(','), ...(project ? { project } : {}) });
  const report = useJson<StatsReport>(`/api/stats?${query.toString()}`);
  const refresh = useThrottled(report.reload, 2000);
  useEvents({ logs: 'false' }, (e) => e.event !== 'ready' && refresh());
  // Toggled on or off, kept in the order of the dimensions.
  const toggle = (d: StatsDimension) =>
    setBy(STATS_DIMENSIONS.filter((x) => (x === d ? !by.includes(d) : by.includes(x))));
  const r = report.data;
  return (
    <main class="page stats-page">
      <div class="toolbar">
        <h1>Stats</h1>
        <div class="segmented" role="group" aria-label="Group by">
          {STATS_DIMENSIONS.map((d) => (
            <button
              key={d}
              class={by.includes(d) ? 'on' : ''}
              aria-pressed={by.includes(d)}
              onClick={() => toggle(d)}
            >
              {d}
            </button>
          ))}
        </div>
        <div class="segmented" role="group" aria-label="Range">
          {RANGES.map((s) => (
            <button
              key={s}
              class={s === since ? 'on' : ''}
              aria-pressed={s === since}
              onClick={() => setSince(s)}
            >
              {s === 'all' ? 'all' : s.replace('d', ' days')}
            </button>
          ))}
        </div>
        {(projects.data?.length ?? 0) > 1 && (
          <select aria-label="Project" value={project} onChange={(e) => setProject(e.currentTarget.value)}>
            <option value="">every project</option>
            {projects.data!.map((p) => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
          </select>
        )}
      </div>
      <ErrorNote error={report.error} />
      {r && (
        <>
          <Section title={`By ${r.by.join(', ') || 'nothing (totals)'}`}>
            {r.groups.length === 0 && <p class="muted">no runs in this range</p>}
            {r.groups.length > 0 && (
              <div class="table-wrap">
                <table class="stats">
                  <thead>
                    <tr>
                      {r.by.map((d) => (
                        <th key={d}>{d}</th>
                      ))}
                      <th class="num">tasks</th>
                      <th class="num">done</th>
                      <th class="num">escalated</th>
                      <th class="num">runs</th>
                      <th>first-pass approval</th>
                      <th class="num">attempts</th>
                      <th class="num">cost / done</th>
                      <th class="num wide-only">tokens / done</th>
                      <th class="num">p50</th>
                      <th class="num wide-only">p90</th>
                      <th class="num" title="approvals · retries · messages">
                        human
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {r.groups.map((g) => (
                      <Row key={JSON.stringify(g.key)} g={g} by={r.by} />
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Section>
          {r.by.includes('variant') && (
            <Section title="Variants compared">
              {r.comparisons.length === 0 && (
                <p class="muted">no two variants of one setup have runs in this range</p>
              )}
              {r.comparisons.map((c) => (
                <Comparison key={`${JSON.stringify(c.key)}${c.a}${c.b}`} c={c} />
              ))}
            </Section>
          )}
          <p class="muted small">
            Intervals are 95%: Wilson for the approval rate, Student's t for the cost per done task. A task
            counts in every group one of its runs in the range is in (docs/analytics.md).
          </p>
        </>
      )}
    </main>
  );
}
