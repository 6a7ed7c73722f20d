// metrics.js: the Metrics page (#/metrics): polls the Prometheus text at /metrics every 2 s while
// shown and draws tiles with the current values and small SVG line charts of the last 60 points.

import { h, svg, replace, fmtBytes, sleep, errorBox, isAbort } from './dom.js';
import { session, apiUrl, reasonFromText, errorText, ApiError } from './api.js';

export const title = 'Metrics';
const POINTS = 60;
const EVERY_MS = 2000;
const KINDS = ['standard', 'on_demand'];

/// Parses Prometheus text into samples `[{name, labels: {…}, value}]` (comments skipped).
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line.trim());
    if (!m || line.startsWith('#')) continue;
    const labels = {};
    for (const [, k, v] of (m[2] || '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v.replace(/\\(.)/g, '$1');
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/// The sum of the samples called `name` whose labels include `labels`.
export function metric(samples, name, labels = {}) {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/// The q-quantile (0..1) of a histogram's bucket counts `[{le, count}]` (cumulative), by linear
/// interpolation inside the bucket that holds it; Infinity when it lies in the +Inf bucket.
export function quantile(buckets, q) {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted.length ? sorted[sorted.length - 1].count : 0;
  if (!total) return null;
  const target = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of sorted) {
    if (b.count >= target) {
      if (b.le === Infinity) return Infinity;
      const inBucket = b.count - prevCount;
      return prevLe + (b.le - prevLe) * (inBucket ? (target - prevCount) / inBucket : 1);
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return null;
}

function buckets(samples, kind) {
  return samples.filter((s) => s.name === 'pixelfront_render_duration_seconds_bucket' && s.labels.kind === kind)
    .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), count: s.value }));
}

/// What one poll reads from the text.
function snapshot(samples) {
  const snap = {
    t: performance.now() / 1000,
    hit: metric(samples, 'pixelfront_edge_requests_total', { result: 'hit' }),
    miss: metric(samples, 'pixelfront_edge_requests_total', { result: 'miss' }),
    reject: metric(samples, 'pixelfront_edge_requests_total', { result: 'reject' }),
    bytes: metric(samples, 'pixelfront_bytes_served_total'),
    uploads: metric(samples, 'pixelfront_uploads_total'),
    cache: metric(samples, 'pixelfront_cache_bytes'),
  };
  for (const k of KINDS) {
    snap[`renders_${k}`] = metric(samples, 'pixelfront_renders_total', { kind: k });
    snap[`sum_${k}`] = metric(samples, 'pixelfront_render_duration_seconds_sum', { kind: k });
    snap[`count_${k}`] = metric(samples, 'pixelfront_render_duration_seconds_count', { kind: k });
    snap[`buckets_${k}`] = buckets(samples, k);
  }
  return snap;
}

/// The rates and ratios of the interval between two snapshots (null where nothing happened).
function interval(a, b) {
  const dt = Math.max(b.t - a.t, 0.001);
  const dh = b.hit - a.hit;
  const dm = b.miss - a.miss;
  const out = { ratio: dh + dm > 0 ? dh / (dh + dm) : null, bytes: (b.bytes - a.bytes) / dt };
  for (const k of KINDS) {
    const dc = b[`count_${k}`] - a[`count_${k}`];
    out[`rate_${k}`] = (b[`renders_${k}`] - a[`renders_${k}`]) / dt;
    out[`mean_${k}`] = dc > 0 ? ((b[`sum_${k}`] - a[`sum_${k}`]) / dc) * 1000 : null;
    const delta = b[`buckets_${k}`].map((x) => ({ le: x.le, count: x.count - (a[`buckets_${k}`].find((y) => y.le === x.le)?.count || 0) }));
    const p95 = dc > 0 ? quantile(delta, 0.95) : null;
    out[`p95_${k}`] = p95 == null ? null : p95 * 1000;
  }
  const dcAll = KINDS.reduce((n, k) => n + b[`count_${k}`] - a[`count_${k}`], 0);
  const dsAll = KINDS.reduce((n, k) => n + b[`sum_${k}`] - a[`sum_${k}`], 0);
  out.mean_all = dcAll > 0 ? (dsAll / dcAll) * 1000 : null;
  return out;
}

const pct = (x) => (x == null ? '—' : `${(x * 100).toFixed(1)} %`);
const ms = (x) => (x == null ? '—' : x === Infinity ? '> 10 s' : `${x.toFixed(1)} ms`);
const rate = (x) => (x == null ? '—' : `${x.toFixed(2)}/s`);

function tile(id, heading, withChart, legend) {
  const value = h('p', { class: 'tile-value', text: '—' });
  const sub = h('p', { class: 'tile-sub muted', text: '' });
  const chart = withChart ? svg('svg', { viewBox: '0 0 300 80', preserveAspectRatio: 'none', class: 'chart', role: 'img', 'aria-label': `${heading}: no data yet` }) : null;
  const scale = h('span', { class: 'chart-scale muted' });
  const el = h('section', { id, class: 'tile', 'aria-label': heading },
    h('h2', { text: heading }), value, sub,
    chart ? h('div', { class: 'chart-box' }, chart, scale) : null,
    legend ? h('p', { class: 'legend' }, legend.map(([cls, text]) => h('span', { class: `key ${cls}`, text }))) : null);
  return { el, value, sub, chart, scale };
}

/// Draws `lines` (`[{values, cls}]`, null values leave gaps) into `chart`, scaled to `max`
/// (or to the largest value), and labels it for screen readers.
function draw(t, lines, label, max, unit = '') {
  const all = lines.flatMap((l) => l.values).filter((v) => v != null && Number.isFinite(v));
  const top = max ?? (Math.max(0, ...all) * 1.15 || 1);
  const grid = [0, 40, 80].map((y) => svg('line', { x1: 0, x2: 300, y1: y, y2: y, class: 'grid', 'vector-effect': 'non-scaling-stroke' }));
  const paths = lines.map(({ values, cls }) => {
    let d = '';
    let pen = false;
    values.forEach((v, i) => {
      if (v == null || !Number.isFinite(v)) { pen = false; return; }
      // A short history fills the chart (at least 15 slots), a long one scrolls at POINTS.
      const span = Math.min(POINTS, Math.max(15, values.length));
      const x = ((span - values.length + i) / (span - 1)) * 300;
      const y = 78 - Math.min(v / top, 1) * 76;
      d += pen ? `L${x.toFixed(1)},${y.toFixed(1)}` : `M${x.toFixed(1)},${y.toFixed(1)}l0,0`;
      pen = true;
    });
    return svg('path', { d, class: `line ${cls}`, 'vector-effect': 'non-scaling-stroke' });
  });
  t.chart.replaceChildren(...grid, ...paths);
  t.chart.setAttribute('aria-label', label);
  t.scale.textContent = `top ${unit === '%' ? '100 %' : unit === 'B' ? `${fmtBytes(top)}/s` : `${+top.toPrecision(2)}${unit}`}`;
}

/// Draws the metrics page and polls until `signal` aborts (the page is left).
export async function render(main, { signal }) {
  const tiles = {
    hit: tile('m-hit-ratio', 'Cache hit ratio', true),
    renders: tile('m-renders', 'Renders per second', true, [['standard', 'standard'], ['on_demand', 'on demand']]),
    latency: tile('m-latency', 'Mean render latency', true, [['standard', 'standard'], ['on_demand', 'on demand']]),
    bytes: tile('m-bytes', 'Bytes served', true),
    uploads: tile('m-uploads', 'Uploads', false),
    cache: tile('m-cache', 'Cache size', false),
  };
  const status = h('p', { class: 'muted', id: 'm-status', text: 'Reading /metrics…' });
  const errorSlot = h('div');
  replace(main, h('h1', { text: 'Metrics' }),
    h('p', { class: 'muted', text: 'The stack’s counters, read every 2 seconds while this page is open; charts show the last 2 minutes.' }),
    status, errorSlot,
    h('div', { class: 'tiles' }, Object.values(tiles).map((t) => t.el)));

  const snaps = [];
  const series = [];
  while (!signal.aborted) {
    try {
      if (!document.hidden) {
        const res = await fetch(apiUrl('/metrics'), { cache: 'no-store', signal, headers: session.key ? { Authorization: `Bearer ${session.key}` } : {} });
        const text = await res.text();
        if (!res.ok) throw new ApiError(res.status, reasonFromText(text) || res.statusText);
        const snap = snapshot(parseMetrics(text));
        if (snaps.length) series.push(interval(snaps[snaps.length - 1], snap));
        snaps.push(snap);
        if (snaps.length > 2) snaps.shift();
        if (series.length > POINTS) series.shift();
        show(tiles, snap, series);
        errorSlot.replaceChildren();
        status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      }
    } catch (e) {
      if (isAbort(e)) return;
      replace(errorSlot, errorBox(`Cannot read /metrics: ${errorText(e)}`));
    }
    try { await sleep(EVERY_MS, signal); } catch { return; }
  }
}

function show(tiles, snap, series) {
  const last = series[series.length - 1] || {};
  const col = (k) => series.map((s) => s[k]);
  const requests = snap.hit + snap.miss;

  const overall = requests ? snap.hit / requests : null;
  tiles.hit.value.textContent = pct(last.ratio);
  tiles.hit.sub.textContent = `${last.ratio == null ? 'no hits or misses' : 'hits / (hits + misses)'} in the last 2 s · overall ${pct(overall)} of ${requests} requests · ${snap.reject} rejected`;
  draw(tiles.hit, [{ values: col('ratio').map((r) => (r == null ? null : r * 100)), cls: 'standard' }],
    `Cache hit ratio: ${pct(last.ratio)} in the last interval, ${pct(overall)} overall`, 100, '%');

  const both = last.rate_standard == null ? null : last.rate_standard + last.rate_on_demand;
  tiles.renders.value.textContent = rate(both);
  tiles.renders.sub.textContent = `standard ${rate(last.rate_standard)} · on demand ${rate(last.rate_on_demand)} · ${snap.renders_standard + snap.renders_on_demand} renders in all`;
  draw(tiles.renders, KINDS.map((k) => ({ values: col(`rate_${k}`), cls: k })),
    `Renders per second: standard ${rate(last.rate_standard)}, on demand ${rate(last.rate_on_demand)}`, null, '/s');

  tiles.latency.value.textContent = ms(last.mean_all);
  tiles.latency.sub.textContent = last.mean_all == null
    ? 'no renders in the last 2 s'
    : `standard ${ms(last.mean_standard)} (p95 ≈ ${ms(last.p95_standard)}) · on demand ${ms(last.mean_on_demand)} (p95 ≈ ${ms(last.p95_on_demand)})`;
  draw(tiles.latency, KINDS.map((k) => ({ values: col(`mean_${k}`), cls: k })),
    `Mean render latency in the last interval: standard ${ms(last.mean_standard)}, on demand ${ms(last.mean_on_demand)}`, null, ' ms');

  tiles.bytes.value.textContent = last.bytes == null ? '—' : `${fmtBytes(last.bytes)}/s`;
  tiles.bytes.sub.textContent = `${fmtBytes(snap.bytes)} in all`;
  draw(tiles.bytes, [{ values: col('bytes'), cls: 'standard' }],
    `Bytes served: ${last.bytes == null ? 'no data' : `${fmtBytes(last.bytes)} per second`}, ${fmtBytes(snap.bytes)} in all`, null, 'B');

  tiles.uploads.value.textContent = String(snap.uploads);
  tiles.uploads.sub.textContent = 'originals accepted since the stack started';
  tiles.cache.value.textContent = fmtBytes(snap.cache);
  tiles.cache.sub.textContent = 'held by the in-memory cache';
}
