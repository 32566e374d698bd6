// Small inline-SVG charts (no library, nothing fetched): a horizontal bar chart and a line chart.
// Each chart carries a text description for screen readers and a visible legend.
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// bars: [{label, values: [n, ...]}], series: [{name, cls}] — one bar per series per label.
export function barChart({ title, bars, series, format = String }) {
  // Each label sits on its own line above its bars, so long model names are never cut.
  const barGap = 18;
  const rowHeight = 18 + barGap * series.length + 6;
  const width = 640;
  const valueRoom = 90;
  const height = Math.max(40, bars.length * rowHeight + 4);
  const max = Math.max(1, ...bars.flatMap((b) => b.values.map((v) => v || 0)));
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart', preserveAspectRatio: 'xMinYMin meet' });
  root.append(svg('title', {}, title));
  const desc = bars.map((b) => `${b.label}: ${b.values.map((v, i) => `${series[i].name} ${format(v)}`).join(', ')}`).join('; ');
  root.append(svg('desc', {}, desc));
  bars.forEach((b, row) => {
    const y = row * rowHeight + 2;
    root.append(svg('text', { x: 0, y: y + 12, class: 'axis' }, b.label));
    b.values.forEach((v, i) => {
      const w = Math.max(1, ((v || 0) / max) * (width - valueRoom));
      const by = y + 18 + i * barGap;
      root.append(svg('rect', { x: 0, y: by, width: w, height: 14, class: `bar ${series[i].cls}` }));
      root.append(svg('text', { x: w + 4, y: by + 11, class: 'value' }, format(v)));
    });
  });
  return wrap(root, series);
}

// points: [{t: unix seconds, values: [n, ...]}], series as above; threshold: optional {value, name}.
export function lineChart({ title, points, series, yMax, threshold, format = String }) {
  const width = 640;
  const height = 220;
  const pad = { l: 48, r: 12, t: 10, b: 28 };
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart', preserveAspectRatio: 'xMinYMin meet' });
  root.append(svg('title', {}, title));
  const last = points[points.length - 1];
  root.append(svg('desc', {}, last ? series.map((s, i) => `${s.name} ${format(last.values[i])}`).join(', ') : 'no data yet'));
  const t0 = points.length ? points[0].t : 0;
  const t1 = points.length > 1 ? last.t : t0 + 1;
  const max = yMax || Math.max(1, threshold ? threshold.value : 0, ...points.flatMap((p) => p.values.map((v) => v || 0)));
  const x = (t) => pad.l + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.l - pad.r);
  const y = (v) => height - pad.b - ((v || 0) / max) * (height - pad.t - pad.b);
  root.append(svg('line', { x1: pad.l, y1: height - pad.b, x2: width - pad.r, y2: height - pad.b, class: 'axis-line' }));
  root.append(svg('line', { x1: pad.l, y1: pad.t, x2: pad.l, y2: height - pad.b, class: 'axis-line' }));
  root.append(svg('text', { x: pad.l - 6, y: pad.t + 4, class: 'axis', 'text-anchor': 'end' }, format(max)));
  root.append(svg('text', { x: pad.l - 6, y: height - pad.b, class: 'axis', 'text-anchor': 'end' }, format(0)));
  if (points.length) {
    root.append(svg('text', { x: pad.l, y: height - 8, class: 'axis' }, new Date(t0 * 1000).toLocaleTimeString()));
    root.append(svg('text', { x: width - pad.r, y: height - 8, class: 'axis', 'text-anchor': 'end' }, new Date(t1 * 1000).toLocaleTimeString()));
  }
  if (threshold) {
    root.append(svg('line', { x1: pad.l, y1: y(threshold.value), x2: width - pad.r, y2: y(threshold.value), class: 'threshold' }));
    root.append(svg('text', { x: width - pad.r, y: y(threshold.value) - 4, class: 'axis', 'text-anchor': 'end' }, threshold.name));
  }
  series.forEach((s, i) => {
    if (!points.length) return;
    const d = points.map((p, k) => `${k ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.values[i]).toFixed(1)}`).join(' ');
    root.append(svg('path', { d, class: `line ${s.cls}` }));
  });
  return wrap(root, series, threshold);
}

function wrap(chart, series, threshold) {
  const figure = document.createElement('figure');
  figure.className = 'chart-wrap';
  figure.append(chart);
  const legend = document.createElement('ul');
  legend.className = 'legend';
  for (const s of series) {
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = `swatch ${s.cls}`;
    swatch.setAttribute('aria-hidden', 'true');
    li.append(swatch, document.createTextNode(s.name));
    legend.append(li);
  }
  if (threshold) {
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch threshold';
    swatch.setAttribute('aria-hidden', 'true');
    li.append(swatch, document.createTextNode(threshold.name));
    legend.append(li);
  }
  figure.append(legend);
  return figure;
}
