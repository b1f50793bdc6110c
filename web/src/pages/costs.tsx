/** Spend: USD and tokens per day, per model and per role. */
import { useState } from 'preact/hooks';
import type { CostReport } from '../../../src/http/types.ts';
import { useEvents, useJson, useThrottled } from '../hooks.ts';
import { BarList, ColumnChart } from '../components/charts.tsx';
import { ErrorNote } from '../components/ui.tsx';
import { tokens, usd } from '../format.ts';
import { shortModel } from '../../../src/core/model.ts';

const RANGES = [7, 14, 30, 90];

export function Costs() {
  const [days, setDays] = useState(14);
  const report = useJson<CostReport>(`/api/costs?days=${days}`);
  const refresh = useThrottled(report.reload, 2000);
  useEvents({ logs: 'false' }, (e) => e.event === 'run_finished' && refresh());
  const r = report.data;
  return (
    <main class="page costs-page">
      <div class="toolbar">
        <h1>Costs</h1>
        <div class="segmented" role="group" aria-label="Range">
          {RANGES.map((n) => (
            <button
              key={n}
              class={n === days ? 'on' : ''}
              onClick={() => setDays(n)}
              aria-pressed={n === days}
            >
              {n} days
            </button>
          ))}
        </div>
      </div>
      <ErrorNote error={report.error} />
      {r && (
        <>
          <div class="totals">
            <div class="figure">
              <div class="value">{usd(r.totals.cost_usd)}</div>
              <div class="label muted">spent</div>
            </div>
            <div class="figure">
              <div class="value">{tokens(r.totals.input_tokens + r.totals.output_tokens)}</div>
              <div class="label muted">tokens</div>
            </div>
            <div class="figure">
              <div class="value">{r.totals.runs}</div>
              <div class="label muted">runs</div>
            </div>
          </div>
          <section class="card">
            <ColumnChart
              title="USD per day"
              unit="usd"
              bars={r.by_day.map((d) => ({
                label: d.day.slice(5),
                value: d.cost_usd,
                note: `${d.runs} runs, ${tokens(d.input_tokens + d.output_tokens)} tokens`,
              }))}
            />
          </section>
          <div class="two">
            <section class="card">
              <BarList
                title="USD by model"
                unit="usd"
                bars={r.by_model.map((m) => ({
                  label: shortModel(m.model),
                  value: m.cost_usd,
                  note: `${m.model}: ${m.runs} runs, ${tokens(m.input_tokens + m.output_tokens)} tokens`,
                }))}
              />
            </section>
            <section class="card">
              <BarList
                title="USD by role"
                unit="usd"
                bars={r.by_role.map((m) => ({
                  label: m.role,
                  value: m.cost_usd,
                  note: `${m.runs} runs, ${tokens(m.input_tokens + m.output_tokens)} tokens`,
                }))}
              />
            </section>
          </div>
          <section class="card">
            <ColumnChart
              title="Tokens per day"
              unit="count"
              bars={r.by_day.map((d) => ({ label: d.day.slice(5), value: d.input_tokens + d.output_tokens }))}
            />
          </section>
        </>
      )}
    </main>
  );
}
