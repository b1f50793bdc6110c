/** Plain SVG bar charts: no library, readable at any width (the SVG scales to its box). */

export interface Bar {
  label: string;
  value: number;
  /** Shown on hover and beside the bar. */
  note?: string;
}

const fmt = (v: number, unit: 'usd' | 'count'): string =>
  unit === 'usd' ? (v >= 1 ? `$${v.toFixed(2)}` : `$${v.toFixed(4)}`) : String(Math.round(v));

/** Vertical bars over time (one per day); the bars stretch with the box, the labels are HTML. */
export function ColumnChart(props: { bars: Bar[]; unit: 'usd' | 'count'; title: string }) {
  const { bars, unit } = props;
  const h = 100;
  const max = Math.max(...bars.map((b) => b.value), 0);
  const every = Math.ceil(bars.length / 8);
  return (
    <figure class="chart">
      <figcaption>
        {props.title} <span class="muted">max {fmt(max, unit)}</span>
      </figcaption>
      <svg viewBox={`0 0 ${bars.length} ${h}`} role="img" aria-label={props.title} preserveAspectRatio="none">
        {bars.map((b, i) => {
          const bh = max > 0 ? (b.value / max) * h : 0;
          return (
            <rect key={b.label} x={i + 0.15} y={h - bh} width={0.7} height={bh} class="bar">
              <title>{`${b.label}: ${fmt(b.value, unit)}${b.note ? ` · ${b.note}` : ''}`}</title>
            </rect>
          );
        })}
      </svg>
      <div class="ticks" style={{ gridTemplateColumns: `repeat(${bars.length}, 1fr)` }}>
        {bars.map((b, i) => (
          // Counted from the end, so the latest day always has its label.
          <span key={b.label}>{(bars.length - 1 - i) % every === 0 ? b.label : ''}</span>
        ))}
      </div>
    </figure>
  );
}

/** Horizontal bars, one per category (model, role), largest first. */
export function BarList(props: { bars: Bar[]; unit: 'usd' | 'count'; title: string }) {
  const max = Math.max(...props.bars.map((b) => b.value), 0);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      {props.bars.length === 0 && <p class="muted">nothing yet</p>}
      <div class="barlist">
        {props.bars.map((b) => (
          <div class="barrow" key={b.label} title={b.note}>
            <span class="barlabel">{b.label}</span>
            <svg viewBox="0 0 100 10" preserveAspectRatio="none" class="bartrack" aria-hidden="true">
              <rect x="0" y="0" width={max > 0 ? (b.value / max) * 100 : 0} height="10" class="bar" />
            </svg>
            <span class="barvalue">{fmt(b.value, props.unit)}</span>
          </div>
        ))}
      </div>
    </figure>
  );
}
