/** Tiny dependency-free SVG charts for the self-contained HTML report. */

export interface Series {
  name: string;
  points: readonly { x: number; y: number }[];
  /** Dashed line (e.g. a reference diagonal). */
  dashed?: boolean;
  /** A marker at each point (a few points, e.g. one per epoch). */
  markers?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Fixed axis ranges (default: fitted to the data). */
  xRange?: [number, number];
  yRange?: [number, number];
  /** Ticks on whole numbers only (epochs). */
  xIntegers?: boolean;
  /** Draw a marker at every point as well as the lines (few points, e.g. one per epoch). A series with a single point always gets one. */
  markers?: boolean;
}

const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

function niceTicks(lo: number, hi: number, count = 5, minStep = 0): number[] {
  if (!(hi > lo)) return [lo];
  const raw = Math.max((hi - lo) / count, minStep);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

/**
 * One number format for all ticks of an axis, chosen from the step between them: fixed decimals
 * (as many as the step needs), thousands separators from 10,000 up, and exponent notation with one
 * mantissa precision where every tick is below 0.001.
 */
export function axisFormat(ticks: readonly number[]): (v: number) => string {
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : Math.abs(ticks[0] ?? 1) || 1;
  const big = Math.max(...ticks.map(Math.abs));
  if (big < 1e-3) {
    // The mantissa needs as many digits as the step's leading digit sits below the largest value's.
    const digits = Math.max(0, Math.floor(Math.log10(big || step)) - Math.floor(Math.log10(step)));
    return (v) => (v === 0 ? "0" : v.toExponential(Math.min(digits, 6)));
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  if (big >= 1e4) return (v) => v.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
  return (v) => v.toFixed(decimals);
}

/** Rough width of a label in the chart's 11 px font (for margins: no label may overlap another). */
const textWidth = (s: string) => s.length * 6.4;

export function lineChart(series: readonly Series[], o: ChartOptions): string {
  const W = o.width ?? 520, H = o.height ?? 320;
  const all = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  if (all.length === 0) {
    return `<figure class="chart"><figcaption>${escapeHtml(o.title)}</figcaption><p class="empty">no data</p></figure>`;
  }
  let [x0, x1] = o.xRange ?? [Math.min(...all.map((p) => p.x)), Math.max(...all.map((p) => p.x))];
  let [y0, y1] = o.yRange ?? [Math.min(...all.map((p) => p.y)), Math.max(...all.map((p) => p.y))];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - Math.abs(y0 || 1) * 0.05, y1 + Math.abs(y1 || 1) * 0.05];
  // A fitted range gets a margin, so extreme points are not drawn on the frame.
  if (!o.yRange) [y0, y1] = [y0 - (y1 - y0) * 0.05, y1 + (y1 - y0) * 0.05];
  const xTicks = niceTicks(x0, x1, 5, o.xIntegers ? 1 : 0), yTicks = niceTicks(y0, y1);
  const fx = axisFormat(xTicks), fy = axisFormat(yTicks);
  const yLabels = yTicks.map(fy);
  // The left margin holds the widest y tick label, a gap, and the rotated axis label beside it.
  const m = { l: Math.ceil(Math.max(56, 30 + Math.max(...yLabels.map(textWidth)))), r: 16, t: 28, b: 44 };
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [];
  // x tick labels: drop every other one until none overlaps its neighbour.
  const xLabels = xTicks.map(fx);
  let every = 1;
  const spacing = xTicks.length > 1 ? sx(xTicks[1]!) - sx(xTicks[0]!) : Infinity;
  while (every < xTicks.length && spacing * every < Math.max(...xLabels.map(textWidth)) + 8) every++;
  xTicks.forEach((t, i) => {
    parts.push(`<line x1="${sx(t).toFixed(1)}" y1="${H - m.b}" x2="${sx(t).toFixed(1)}" y2="${m.t}" class="grid"/>`);
    if (i % every === 0) parts.push(`<text x="${sx(t).toFixed(1)}" y="${H - m.b + 18}" text-anchor="middle" class="tick">${xLabels[i]}</text>`);
  });
  yTicks.forEach((t, i) => {
    parts.push(`<line x1="${m.l}" y1="${sy(t).toFixed(1)}" x2="${W - m.r}" y2="${sy(t).toFixed(1)}" class="grid"/>`,
      `<text x="${m.l - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end" class="tick">${yLabels[i]}</text>`);
  });
  series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (pts.length > 1) {
      const d = pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ");
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.6"${s.dashed ? ' stroke-dasharray="4 3"' : ""} points="${d}" data-series="${escapeHtml(s.name)}"/>`);
    }
    if (o.markers || s.markers || pts.length === 1) {
      for (const p of pts) parts.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3" fill="${color}" data-series="${escapeHtml(s.name)}"/>`);
    }
  });
  const legend = series
    .map((s, i) => `<span><i style="background:${PALETTE[i % PALETTE.length]}"></i>${escapeHtml(s.name)}</span>`)
    .join("");
  const yMid = (m.t + H - m.b) / 2;
  return `<figure class="chart"><figcaption>${escapeHtml(o.title)}</figcaption>
<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(o.title)}">
<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" class="frame"/>
${parts.join("\n")}
<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" text-anchor="middle" class="label">${escapeHtml(o.xLabel)}</text>
<text x="14" y="${yMid}" text-anchor="middle" class="label" transform="rotate(-90 14 ${yMid})">${escapeHtml(o.yLabel)}</text>
</svg><div class="legend">${legend}</div></figure>`;
}

export const CHART_CSS = `
.chart{display:inline-block;margin:8px 16px 16px 0;vertical-align:top}
.chart figcaption{font-weight:600;margin-bottom:4px}
.chart svg{font:11px system-ui,sans-serif;background:#fff}
.chart .frame{fill:none;stroke:#999}
.chart .grid{stroke:#eee}
.chart .label{font-size:12px;fill:#333}
.chart .legend span{margin-right:12px;font-size:12px}
.chart .legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.chart .empty{color:#888}
`;
