/**
 * A hand-written SVG chart of the benchmark figures: for each, the orch value
 * and its reference as two bars on the figure's own scale, with the ratio and
 * whether the target was met.
 */

/** One benchmark figure, as written to `bench/results/latest.json`. */
export interface Figure {
  name: string;
  /** null when the figure was skipped or failed. */
  value: number | null;
  unit: string;
  /** The same quantity measured without orch, in the same run; null when there is none. */
  reference: number | null;
  /** value / reference. */
  ratio: number | null;
  target: string;
  /** null when the figure has no target or was skipped. */
  met: boolean | null;
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderSvg(figures: readonly Figure[]): string {
  const rowH = 54;
  const left = 360;
  const barW = 420;
  const width = left + barW + 200;
  const height = 40 + figures.length * rowH + 20;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">orch benchmarks — value (dark) vs reference (light), each bar on its own scale</text>`,
  ];
  figures.forEach((f, i) => {
    const y = 40 + i * rowH;
    const colour = f.met === null ? '#777' : f.met ? '#2a7d2a' : '#b22222';
    parts.push(`<text x="10" y="${y + 16}">${escape(f.name)}</text>`);
    parts.push(
      `<text x="10" y="${y + 32}" fill="${colour}">target: ${escape(f.target || '—')}${f.met === null ? '' : f.met ? ' (met)' : ' (missed)'}</text>`,
    );
    if (f.value === null) return;
    const max = Math.max(f.value, f.reference ?? 0) || 1;
    const w = (v: number) => Math.max(1, (v / max) * barW);
    parts.push(`<rect x="${left}" y="${y + 4}" width="${w(f.value)}" height="16" fill="${colour}"/>`);
    parts.push(`<text x="${left + w(f.value) + 6}" y="${y + 16}">${f.value} ${escape(f.unit)}</text>`);
    if (f.reference !== null) {
      parts.push(
        `<rect x="${left}" y="${y + 24}" width="${w(f.reference)}" height="16" fill="${colour}" fill-opacity="0.35"/>`,
      );
      parts.push(
        `<text x="${left + w(f.reference) + 6}" y="${y + 36}">${f.reference} (ref)${f.ratio === null ? '' : ` — ratio ${f.ratio}`}</text>`,
      );
    }
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
