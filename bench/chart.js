// A dependency-free SVG line chart: throughput against message size, one
// line per path, log-log axes, one panel per algorithm.
//   node bench/chart.js   re-renders bench/results/chart.svg from latest.json
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

// Colour says what kind of call a path makes, dashing says which backend
// runs it, and the node:crypto baseline is a thick black line.
const KIND_COLORS = [
  ['mac()', '#d62728'],
  ['batch packed', '#1f77b4'],
  ['batch array', '#2ca02c'],
  ['async batch', '#9467bd'],
];
const DASHES = [
  ['wasm-simd', '7,4'],
  ['wasm-scalar', '2,3'],
];

function styleOf(name) {
  if (name.startsWith('node:crypto')) return { color: '#000', width: 3.5, dash: '' };
  const color = KIND_COLORS.find(([kind]) => name.endsWith(kind))?.[1] ?? '#7f7f7f';
  const dash = DASHES.find(([backend]) => name.startsWith(backend))?.[1] ?? '';
  return { color, width: 2, dash };
}

const escapeXml = (s) =>
  String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

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
    `<text x="10" y="20" font-size="15" font-weight="bold">${escapeXml(chart.title)}</text>`,
    `<text x="10" y="38" fill="#555">${escapeXml(chart.subtitle)}</text>`,
  ];
  const names = [...new Set(chart.panels.flatMap((p) => p.series.map((s) => s.name)))];
  const stroke = (name) => {
    const { color, width, dash } = styleOf(name);
    return `stroke="${color}" stroke-width="${width}"${dash ? ` stroke-dasharray="${dash}"` : ''}`;
  };

  chart.panels.forEach((panel, index) => {
    const x0 = index * panelWidth + margin.left;
    const y0 = 50 + margin.top;
    const w = panelWidth - margin.left - margin.right;
    const h = panelHeight - margin.top - margin.bottom;
    const points = panel.series.flatMap((s) => s.points);
    const xs = points.map((p) => Math.log10(p[0]));
    const ys = points.map((p) => Math.log10(p[1]));
    const xMin = Math.min(...xs),
      xMax = Math.max(...xs);
    const yMin = Math.floor(Math.min(...ys)),
      yMax = Math.ceil(Math.max(...ys));
    const sx = (v) => x0 + ((Math.log10(v) - xMin) / (xMax - xMin || 1)) * w;
    const sy = (v) => y0 + h - ((Math.log10(v) - yMin) / (yMax - yMin || 1)) * h;
    parts.push(`<text x="${x0}" y="${y0 - 12}" font-weight="bold">${escapeXml(panel.title)}</text>`);
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
      const path = series.points
        .map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`)
        .join(' ');
      parts.push(`<path d="${path}" fill="none" ${stroke(series.name)}/>`);
      for (const [x, y] of series.points) {
        parts.push(
          `<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${styleOf(series.name).color}"/>`,
        );
      }
    }
  });
  const lx = chart.panels.length * panelWidth + 10;
  names.forEach((name, i) => {
    const y = 90 + i * 20;
    parts.push(`<line x1="${lx}" x2="${lx + 24}" y1="${y - 4}" y2="${y - 4}" ${stroke(name)}/>`);
    parts.push(`<text x="${lx + 30}" y="${y}">${escapeXml(name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** The chart `npm run bench` writes, from its rows and environment. */
export function benchChart(env, rows) {
  return renderChart({
    title: 'kms-hmac: HMAC throughput by message size (higher is better)',
    subtitle: `${env.cpu}, ${env.cores} cores, Node ${env.node}, OpenSSL ${env.openssl}, ${env.date.slice(0, 10)}`,
    panels: [...new Set(rows.map((r) => r.algorithm))].map((algorithm) => ({
      title: algorithm,
      series: [...new Set(rows.map((r) => r.path))].map((path) => ({
        name: path,
        points: rows
          .filter((r) => r.algorithm === algorithm && r.path === path)
          .map((r) => [r.size, r.messagesPerSecond]),
      })),
    })),
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const results = new URL('./results/', import.meta.url);
  const { environment, rows } = JSON.parse(readFileSync(new URL('latest.json', results), 'utf8'));
  writeFileSync(new URL('chart.svg', results), benchChart(environment, rows));
}
