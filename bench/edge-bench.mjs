#!/usr/bin/env node
//! CloudFront Function cost per request, measured in Node as a stand-in for CloudFront's
//! compute utilization (the share of the ~1 ms per-request budget a run uses).
//!
//!     node bench/edge-bench.mjs [--seconds N] [--json]
//!
//! Loads the real function, the minified copy the template embeds (`edge/viewer-request.min.js`;
//! `PIXELFRONT_EDGE_FUNCTION=edge/viewer-request.js` for the source), through `edge/harness.mjs` (a `node:vm` context with
//! the fake KeyValueStore), builds a request mix from `tests/vectors/normalize.json` (accepted
//! and rejected, open tenants: each tenant in the store as `{}`) and `tests/vectors/sign.json`
//! (each case against a store holding its tenant's policy, clock frozen at the vectors' `now`),
//! checks every case answers as its vector says, warms up, then measures four groups in
//! alternating rounds for about N seconds in all (default 3):
//!   unsigned accepted, unsigned rejected (400), signed accepted, and the whole mix
//!   (every case of both files once per pass, 403s and open-tenant signed cases included).
//! Only the `await handler(event)` call is timed (one hrtime pair per request); building the
//! event is not. Prints, per group, ops/s (requests per second of function time), mean, p50,
//! p99 and max µs, plus the file size and its share of the 10,240-byte limit. `--json` prints
//! the same as one JSON object.

import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs as parseCommandLine } from 'node:util';
import { loadFunction, buildEvent, splitUri, FUNCTION_PATH, MINIFIED_FUNCTION_PATH } from '../edge/harness.mjs';

// What CloudFront runs, the minified copy the template embeds, unless PIXELFRONT_EDGE_FUNCTION
// names another file (`edge/viewer-request.js`, the source).
const FILE = process.env.PIXELFRONT_EDGE_FUNCTION ? FUNCTION_PATH : MINIFIED_FUNCTION_PATH;

export const SIZE_LIMIT = 10240;
export const BUDGET_US = 1000; // CloudFront Functions: roughly 1 ms of compute per request
const USAGE = 'usage: node bench/edge-bench.mjs [--seconds N] [--json]\n';
const GROUPS = [
  ['unsignedAccepted', 'unsigned accepted'],
  ['unsignedRejected', 'unsigned rejected'],
  ['signedAccepted', 'signed accepted'],
  ['mix', 'whole mix'],
];

const readJson = (rel) => JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8'));

/**
 * The request sets: {group: [{fn, input, expect}]}, `expect` 'ok' or a status code. One
 * function context per distinct store (the handler is re-entrant; each call gets a new event).
 */
export function buildMix() {
  const norm = readJson('../tests/vectors/normalize.json').cases;
  const sign = readJson('../tests/vectors/sign.json');
  const tenants = {};
  for (const c of norm) {
    const m = /^\/img\/([a-z0-9][a-z0-9-]{0,62})\//.exec(c.path);
    if (m) tenants[m[1]] = '{}';
  }
  const open = loadFunction(FILE, { kvs: tenants });
  const unsigned = norm.map((c) => ({
    fn: open,
    input: { uri: c.path, querystring: c.query, accept: c.accept },
    expect: 'key' in c ? 'ok' : 400,
  }));
  const byPolicy = new Map();
  const signed = sign.cases.map((c) => {
    const tenant = c.uri.split('/')[2];
    const policy = JSON.stringify(c.tenant);
    const id = `${tenant} ${policy}`;
    if (!byPolicy.has(id)) {
      byPolicy.set(id, loadFunction(FILE, { kvs: { [tenant]: policy }, now: sign.now }));
    }
    return {
      fn: byPolicy.get(id),
      input: { ...splitUri(c.uri), referer: c.referer ?? undefined, accept: 'image/avif,image/webp,*/*' },
      expect: c.expect === 'ok' ? 'ok' : 403,
      signing: c.tenant.sign,
    };
  });
  return {
    unsignedAccepted: unsigned.filter((r) => r.expect === 'ok'),
    unsignedRejected: unsigned.filter((r) => r.expect !== 'ok'),
    signedAccepted: signed.filter((r) => r.expect === 'ok' && r.signing),
    mix: [...unsigned, ...signed],
  };
}

/** Every request must answer as its vector says (a benchmark of wrong answers is worthless). */
async function check(mix) {
  for (const r of mix.mix) {
    const out = await r.fn.handler(buildEvent(r.input));
    const got = out.statusCode ?? (out.uri && out.headers['x-pixelfront-request'] ? 'ok' : 'bad');
    if (got !== r.expect) {
      throw new Error(`${r.input.uri}?${r.input.querystring}: got ${got}, expected ${r.expect}`);
    }
  }
}

/** Run `reqs` round-robin for about `ms` of wall time; push each call's ns into `samples`. */
async function runFor(reqs, ms, samples) {
  const BATCH = 64;
  const end = performance.now() + ms;
  let i = 0;
  do {
    const events = [];
    for (let k = 0; k < BATCH; k++) events.push(buildEvent(reqs[(i + k) % reqs.length].input));
    for (let k = 0; k < BATCH; k++) {
      const fn = reqs[(i + k) % reqs.length].fn;
      const t0 = process.hrtime.bigint();
      await fn.handler(events[k]);
      samples.push(Number(process.hrtime.bigint() - t0));
    }
    i = (i + BATCH) % reqs.length;
  } while (performance.now() < end);
}

function summary(samples, cases) {
  const sorted = Float64Array.from(samples).sort();
  const total = sorted.reduce((a, b) => a + b, 0);
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] / 1000;
  const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
  return {
    cases,
    requests: sorted.length,
    opsPerSec: Math.round((sorted.length * 1e9) / total),
    meanUs: round(total / sorted.length / 1000),
    p50Us: round(pct(50)),
    p99Us: round(pct(99)),
    maxUs: round(sorted[sorted.length - 1] / 1000),
  };
}

/** Measure; returns the result object that --json prints. */
export async function bench({ seconds = 3 } = {}) {
  const mix = buildMix();
  await check(mix);
  const warm = Math.min(1000, seconds * 250);
  for (const [g] of GROUPS) await runFor(mix[g], warm / GROUPS.length, []);
  const rounds = Math.max(1, Math.min(10, Math.round(seconds * 4)));
  const slice = (seconds * 1000) / rounds / GROUPS.length;
  const samples = Object.fromEntries(GROUPS.map(([g]) => [g, []]));
  for (let r = 0; r < rounds; r++) for (const [g] of GROUPS) await runFor(mix[g], slice, samples[g]);
  const bytes = readFileSync(FILE).length;
  const groups = Object.fromEntries(GROUPS.map(([g]) => [g, summary(samples[g], mix[g].length)]));
  return {
    file: { path: relative(fileURLToPath(new URL('..', import.meta.url)), FILE), bytes, limit: SIZE_LIMIT, percentOfLimit: Math.round((bytes / SIZE_LIMIT) * 1000) / 10 },
    node: process.version,
    seconds,
    warmupSeconds: warm / 1000,
    budgetUs: BUDGET_US,
    groups,
  };
}

export function format(res) {
  const lines = [
    `CloudFront Function ${res.file.path}: ${res.file.bytes} bytes, ${res.file.percentOfLimit} % of the ${res.file.limit}-byte limit`,
    `node ${res.node}; ${res.seconds} s measured after ${res.warmupSeconds} s warm-up; handler time only`,
    '',
    `${'group'.padEnd(18)} ${'cases'.padStart(5)} ${'requests'.padStart(9)} ${'ops/s'.padStart(9)} ${'mean µs'.padStart(8)} ${'p50 µs'.padStart(7)} ${'p99 µs'.padStart(7)} ${'max µs'.padStart(8)} ${'mean/1 ms'.padStart(9)}`,
  ];
  for (const [g, label] of GROUPS) {
    const s = res.groups[g];
    lines.push(
      `${label.padEnd(18)} ${String(s.cases).padStart(5)} ${String(s.requests).padStart(9)} ${String(s.opsPerSec).padStart(9)} ` +
        `${s.meanUs.toFixed(2).padStart(8)} ${s.p50Us.toFixed(2).padStart(7)} ${s.p99Us.toFixed(2).padStart(7)} ` +
        `${s.maxUs.toFixed(1).padStart(8)} ${`${((s.meanUs / res.budgetUs) * 100).toFixed(2)} %`.padStart(9)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** Parse argv (`node:util` parseArgs); returns {seconds, json} or {error} / {help}. */
export function parseArgs(argv) {
  let values;
  try {
    ({ values } = parseCommandLine({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, json: { type: 'boolean', default: false }, seconds: { type: 'string' } },
    }));
  } catch (e) {
    return { error: e.message };
  }
  if (values.help) return { help: true };
  const v = values.seconds ?? '3';
  if (!/^\d+(\.\d+)?$/.test(v) || !(+v > 0)) return { error: '--seconds needs a positive number' };
  return { seconds: +v, json: values.json };
}

async function main(argv) {
  const opts = parseArgs(argv);
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts.error) {
    process.stderr.write(`error: ${opts.error}\n${USAGE}`);
    return 2;
  }
  const res = await bench(opts);
  process.stdout.write(opts.json ? `${JSON.stringify(res, null, 2)}\n` : format(res));
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
