// A dependency-free SVG line chart: throughput against message size, one
// line per path, log-log axes. One panel per algorithm.
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/**
 * @param {{ title: string, subtitle: string, panels: { title: string, series: { name: string, points: [number, number][] }[] }[] }} chart
 *   points are [message bytes, messages per second]
 */
export function renderChart(chart) {
  const panelWidth = 520;
  const panelHeight = 340;
  const margin = { left: 70, right: 20, top: 30, bottom: 45 };
  const legendWidth = 230;
  const width = chart.panels.length * panelWidth + legendWidth;
  const height = panelHeight + 60;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">${escape(chart.title)}</text>`,
    `<text x="10" y="38" fill="#555">${escape(chart.subtitle)}</text>`,
  ];
  const names = [...new Set(chart.panels.flatMap((p) => p.series.map((s) => s.name)))];
  const color = (name) => COLORS[names.indexOf(name) % COLORS.length];

  chart.panels.forEach((panel, index) => {
    const x0 = index * panelWidth + margin.left;
    const y0 = 50 + margin.top;
    const w = panelWidth - margin.left - margin.right;
    const h = panelHeight - margin.top - margin.bottom;
    const points = panel.series.flatMap((s) => s.points);
    const xs = points.map((p) => Math.log10(p[0]));
    const ys = points.map((p) => Math.log10(p[1]));
    const xMin = Math.min(...xs), xMax = Math.max(...xs);
    const yMin = Math.floor(Math.min(...ys)), yMax = Math.ceil(Math.max(...ys));
    const sx = (v) => x0 + ((Math.log10(v) - xMin) / (xMax - xMin || 1)) * w;
    const sy = (v) => y0 + h - ((Math.log10(v) - yMin) / (yMax - yMin || 1)) * h;
    parts.push(`<text x="${x0}" y="${y0 - 12}" font-weight="bold">${escape(panel.title)}</text>`);
    parts.push(`<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#999"/>`);
    for (let e = yMin; e <= yMax; e++) {
      const y = sy(10 ** e);
      parts.push(`<line x1="${x0}" x2="${x0 + w}" y1="${y}" y2="${y}" stroke="#eee"/>`);
      const label = e >= 6 ? `${10 ** (e - 6)}M` : e >= 3 ? `${10 ** (e - 3)}k` : `${10 ** e}`;
      parts.push(`<text x="${x0 - 6}" y="${y + 4}" text-anchor="end">${label}</text>`);
    }
    for (const size of [...new Set(points.map((p) => p[0]))]) {
      parts.push(`<text x="${sx(size)}" y="${y0 + h + 16}" text-anchor="middle">${size}</text>`);
    }
    parts.push(`<text x="${x0 + w / 2}" y="${y0 + h + 34}" text-anchor="middle">message bytes</text>`);
    parts.push(
      `<text transform="translate(${x0 - 52},${y0 + h / 2}) rotate(-90)" text-anchor="middle">messages / second (median)</text>`,
    );
    for (const series of panel.series) {
      const path = series.points.map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      parts.push(`<path d="${path}" fill="none" stroke="${color(series.name)}" stroke-width="2"/>`);
      for (const [x, y] of series.points) {
        parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color(series.name)}"/>`);
      }
    }
  });
  const lx = chart.panels.length * panelWidth + 10;
  names.forEach((name, i) => {
    const y = 90 + i * 20;
    parts.push(`<line x1="${lx}" x2="${lx + 24}" y1="${y - 4}" y2="${y - 4}" stroke="${color(name)}" stroke-width="3"/>`);
    parts.push(`<text x="${lx + 30}" y="${y}">${escape(name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
