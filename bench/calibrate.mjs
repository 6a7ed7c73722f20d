#!/usr/bin/env node
// bench/calibrate.mjs — quality calibration: make pixelfront's `q` mean what it means in sharp.
//
//   node bench/calibrate.mjs [--bin PATH] [--formats jpeg,webp,avif] [--steps 30,40,...]
//                            [--photos DIR] [--no-write] [--report PATH] [--jobs 1|2] [--slack X]
//
// For every photo in --photos (default ../shared/corpus/photos beside the checkout, *.jpg/*.jpeg/*.png/*.webp)
// the reference is sharp(photo).rotate().resize({width: 640}) as raw 8-bit sRGB RGB, also saved
// losslessly as bench/out/calib/<photo>.png (what pixelfront is fed, so both encoders see the
// same pixels; a fmt=png round trip through pixelfront checks that it reads them unchanged).
//
// target(fmt, q) = mean over photos of SSIM(reference, sharp-decode(sharp-encode(reference, q)))
//   with sharp's settings: jpeg {quality: q} (defaults), webp {quality: q} (effort 4),
//   avif {quality: q, effort: 0}.
// ours(fmt, S)   = mean over photos of SSIM(reference, sharp-decode(pixelfront output)) where
//   the output is `pixelfront render ref.png --query fmt=F --encoder-setting S --json` (no w, so
//   no resize: a pure re-encode at encoder-native setting S, bypassing the calibration table).
// SSIM is bench/ssim.mjs (mean SSIM on luma, Gaussian 11x11, sigma 1.5).
//
// For every step q the setting is the smallest S on the grid 1, 1.5, ..., 100 with
// ours(S) >= target(q) - slack (--slack, default 0: never below sharp): a galloping search from a guess (q for
// the first step, the previous step's offset after that), a binary search on integers, then one
// half step down.
// That assumes ours(S) is non-decreasing in S, which is checked: S-1, S-2 and S+1 are probed
// too, every evaluated point goes into the report's curve, and any point below the chosen S that
// also met the threshold, or any inversion of more than 0.0005 in the curve, is reported.
// Plateaus (settings that give byte-identical files: mozjpeg truncates its quality to an integer,
// libavif rounds it) need no special case in the search, which returns the lowest setting of a
// plateau; if that is x.5 and x+1 gives byte-identical files, x+1 is written instead (same
// output, and an integer means the same to an encoder that rounds and to one that truncates).
// The report lists the evaluated settings with identical output. If even S = 100 misses the
// threshold, S = 100 is used and the step is flagged. `within` says whether
// |ours - target| <= 0.005. Settings are made non-decreasing in q per format (raised where
// needed, and flagged). The AVIF column belongs to the encoder the binary was built with
// (libaom by default, rav1e with --features rav1e): recalibrate after switching.
// The binary is fingerprinted (sha256) at start and end: if it was rebuilt meanwhile (another
// process compiling), the table is not written and the exit code is 3.
//
// Writes: the table into ../shared/calibration.json ({"comment", "jpeg": {"30": S, ...},
// "webp", "avif"}; the comment and other keys are kept, steps not calibrated in this run keep
// their old values, --no-write skips it), the full report to bench/calibration-report.json,
// a markdown table to stdout, progress to stderr. Our encodes run at most 2 at a time (--jobs).

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { luma, ssimLuma } from './ssim.mjs';
import { policy } from './policy.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..');
const DEFAULTS = {
  bin: join(REPO, 'target', 'release', 'pixelfront'),
  photos: join(REPO, '..', 'shared', 'corpus', 'photos'),
  formats: ['jpeg', 'webp', 'avif'],
  steps: policy.quality_steps,
  report: join(HERE, 'calibration-report.json'),
  table: join(REPO, 'shared', 'calibration.json'),
  out: join(HERE, 'out', 'calib'),
  jobs: 2,
  width: 640,
  slack: 0, // accept ours >= target - slack: 0 = never worse than sharp
  avifKey: 'avif_aom', // table key for AVIF: 'avif_aom' (the default libaom build) or 'avif' (--features rav1e build)
};
const WITHIN = 0.005; // the parity requirement
const INVERSION = 0.0005; // a drop larger than this with a higher setting counts as non-monotonic
const USAGE =
  'usage: node bench/calibrate.mjs [--bin PATH] [--formats jpeg,webp,avif] [--steps 30,40,..] [--photos DIR] [--no-write] [--report PATH] [--jobs 1|2] [--slack 0] [--avif-key avif|avif_aom]';

const log = (...a) => console.error('[calibrate]', ...a);
const r4 = (x) => Math.round(x * 1e4) / 1e4;
const r5 = (x) => Math.round(x * 1e5) / 1e5;

/** The command line's options (`node:util` parseArgs). */
const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  bin: { type: 'string' },
  photos: { type: 'string' },
  report: { type: 'string' },
  'no-write': { type: 'boolean', default: false },
  slack: { type: 'string' },
  'avif-key': { type: 'string' },
  jobs: { type: 'string' },
  formats: { type: 'string' },
  steps: { type: 'string' },
};

/** Parse argv into the run's options; throws on a usage error. */
function parseCommand(argv) {
  const { values: v } = parseArgs({ args: argv, options: OPTIONS });
  const o = { ...DEFAULTS, write: !v['no-write'] };
  if (v.help) o.help = true;
  if (v.bin !== undefined) o.bin = resolve(v.bin);
  if (v.photos !== undefined) o.photos = resolve(v.photos);
  if (v.report !== undefined) o.report = resolve(v.report);
  if (v.slack !== undefined) o.slack = Number(v.slack);
  if (v['avif-key'] !== undefined) o.avifKey = v['avif-key'];
  if (v.jobs !== undefined) o.jobs = Math.max(1, Math.min(2, Number(v.jobs)));
  if (v.formats !== undefined) {
    o.formats = v.formats.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
    for (const f of o.formats) if (!DEFAULTS.formats.includes(f)) throw new Error(`unknown format ${f}`);
  }
  if (v.steps !== undefined) {
    o.steps = v.steps.split(',').map(Number);
    for (const s of o.steps) if (!policy.quality_steps.includes(s)) throw new Error(`${s} is not a quality step (${policy.quality_steps.join(' ')})`);
    o.steps = [...new Set(o.steps)].sort((x, y) => x - y);
  }
  return o;
}

/** Run a command, resolve {stdout, stderr}; reject with stderr on failure. */
function run(cmd, args) {
  return new Promise((res, rej) => {
    execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`));
      else res({ stdout, stderr });
    });
  });
}

/** A limiter: at most n tasks at once. */
function limiter(n) {
  let active = 0;
  const queue = [];
  const next = () => {
    if (active >= n || queue.length === 0) return;
    active++;
    const { fn, res, rej } = queue.shift();
    fn().then(res, rej).finally(() => {
      active--;
      next();
    });
  };
  return (fn) => new Promise((res, rej) => {
    queue.push({ fn, res, rej });
    next();
  });
}

/** Decode any image with sharp to raw 3-channel sRGB: {data, width, height}. */
async function decodeRaw(input) {
  const { data, info } = await sharp(input).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
  return { data, width: info.width, height: info.height };
}

function sharpEncode(raw, fmt, q) {
  const p = sharp(raw.data, { raw: { width: raw.width, height: raw.height, channels: 3 } });
  if (fmt === 'jpeg') return p.jpeg({ quality: q }).toBuffer();
  if (fmt === 'webp') return p.webp({ quality: q }).toBuffer();
  if (fmt === 'avif') return p.avif({ quality: q, effort: 0 }).toBuffer();
  throw new Error(fmt);
}

async function main() {
  let o;
  try {
    o = parseCommand(process.argv.slice(2));
  } catch (e) {
    console.error(`calibrate: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (o.help) {
    console.log(USAGE);
    return;
  }
  const t0 = performance.now();
  const limit = limiter(o.jobs);
  await mkdir(join(o.out, 'tmp'), { recursive: true });
  const binVersion = (await run(o.bin, ['--version'])).stdout.trim();
  // Another process may rebuild the binary while we run: fingerprint it now and at the end.
  const fingerprint = async () => {
    const buf = await readFile(o.bin);
    return { sha256: createHash('sha256').update(buf).digest('hex'), bytes: buf.length, mtime: (await stat(o.bin)).mtime.toISOString() };
  };
  const binAtStart = await fingerprint();

  // 1. References.
  const files = (await readdir(o.photos)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();
  if (files.length === 0) throw new Error(`no photos in ${o.photos}`);
  const refs = [];
  for (const f of files) {
    const { data, info } = await sharp(join(o.photos, f))
      .rotate()
      .resize({ width: o.width })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    const png = join(o.out, `${basename(f, extname(f))}.png`);
    await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }).png().toFile(png);
    refs.push({ name: f, png, data, width: info.width, height: info.height, y: luma(data, info.width, info.height, 3) });
  }
  log(`${refs.length} references (${o.width} wide) in ${o.out}; bin ${o.bin} (${binVersion}); sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}`);

  let tmpCounter = 0;
  /** Run pixelfront on one reference; resolve {bytes, ssim, hash}. */
  const ours = (ref, fmt, setting) =>
    limit(async () => {
      const dir = join(o.out, 'tmp', `${process.pid}-${tmpCounter++}`);
      const args = ['render', ref.png, '--query', `fmt=${fmt}`, '--out', dir, '--json'];
      if (setting !== undefined) args.push('--encoder-setting', String(setting));
      const { stdout } = await run(o.bin, args);
      const row = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((r) => r.file);
      if (!row) throw new Error(`no output row from pixelfront: ${stdout}`);
      const buf = await readFile(join(dir, row.file));
      await rm(dir, { recursive: true, force: true });
      return { buf };
    }).then(async ({ buf }) => {
      const dec = await decodeRaw(buf);
      if (dec.width !== ref.width || dec.height !== ref.height) {
        throw new Error(`pixelfront output ${dec.width}x${dec.height} != reference ${ref.width}x${ref.height} (${ref.name})`);
      }
      const s = fmt === 'png' ? null : ssimLuma(ref.y, luma(dec.data, dec.width, dec.height, 3), ref.width, ref.height);
      return { bytes: buf.length, ssim: s, hash: createHash('sha1').update(buf).digest('hex'), raw: fmt === 'png' ? dec.data : undefined };
    });

  // 2. Sanity: pixelfront reads the reference PNGs unchanged.
  const pngCheck = await Promise.all(refs.map((r) => ours(r, 'png')));
  const pngIdentical = pngCheck.every((c, i) => Buffer.compare(c.raw, refs[i].data) === 0);
  if (!pngIdentical) log('WARNING: pixelfront fmt=png round trip of the reference PNG is not pixel-identical');
  else log('pixelfront reads the reference PNGs pixel-identically (fmt=png round trip)');

  const report = {
    generated: new Date().toISOString(),
    command: `node bench/calibrate.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    bin: o.bin,
    bin_version: binVersion,
    bin_fingerprint: binAtStart,
    sharp: sharp.versions,
    machine: { nproc: cpus().length, cpu: cpus()[0]?.model, mem_gib: Math.round(totalmem() / 2 ** 30) },
    method: {
      reference: `sharp(photo).rotate().resize({width: ${o.width}}) -> raw sRGB RGB (lossless PNG fed to pixelfront)`,
      sharp_settings: { jpeg: '{quality: q}', webp: '{quality: q} (effort 4)', avif: '{quality: q, effort: 0}' },
      ours: 'pixelfront render ref.png --query fmt=F --encoder-setting S --json',
      ssim: 'bench/ssim.mjs: mean SSIM on luma Y=0.299R+0.587G+0.114B, Gaussian 11x11 sigma 1.5, K1 .01 K2 .03 L 255',
      accept: `smallest S (grid 0.5) with mean ours(S) >= target(q) - ${o.slack}; within = |ours - target| <= ${WITHIN}`,
    },
    photos: refs.map((r) => ({ name: r.name, width: r.width, height: r.height })),
    png_roundtrip_identical: pngIdentical,
    formats: {},
  };

  const table = {};
  for (const fmt of o.formats) {
    const tf = performance.now();
    // 3. Targets from sharp.
    const targets = {};
    for (const q of o.steps) {
      const per = await Promise.all(
        refs.map(async (r) => {
          const buf = await sharpEncode(r, fmt, q);
          const dec = await decodeRaw(buf);
          return { bytes: buf.length, ssim: ssimLuma(r.y, luma(dec.data, dec.width, dec.height, 3), r.width, r.height) };
        }),
      );
      targets[q] = {
        ssim: per.reduce((a, p) => a + p.ssim, 0) / per.length,
        bytes: per.reduce((a, p) => a + p.bytes, 0) / per.length,
        per_photo: per.map((p) => r5(p.ssim)),
      };
      log(`${fmt} q${q}: sharp target SSIM ${targets[q].ssim.toFixed(4)}, ${Math.round(targets[q].bytes)} B`);
    }

    // 4. Ours, cached per setting.
    const cache = new Map(); // setting -> Promise<{ssim, bytes, per_photo, hashes}>
    let evaluations = 0;
    const evalOurs = (S) => {
      if (!cache.has(S)) {
        evaluations++;
        cache.set(
          S,
          Promise.all(refs.map((r) => ours(r, fmt, S))).then((per) => ({
            ssim: per.reduce((a, p) => a + p.ssim, 0) / per.length,
            bytes: per.reduce((a, p) => a + p.bytes, 0) / per.length,
            per_photo: per.map((p) => r5(p.ssim)),
            hash: per.map((p) => p.hash).join(','),
          })),
        );
      }
      return cache.get(S);
    };

    const steps = {};
    let prev = null;
    for (const q of o.steps) {
      const ts = performance.now();
      const threshold = targets[q].ssim - o.slack;
      const ok = async (S) => (await evalOurs(S)).ssim >= threshold;
      const guess = prev ? Math.max(prev.setting, q + (prev.setting - prev.q)) : q;
      // Galloping search for the smallest integer in 1..100 that passes.
      const LO = 1, HI = 100;
      let g = Math.min(HI, Math.max(LO, Math.round(guess)));
      let good = null, bad = LO - 1; // bad = LO-1 is a virtual failing point
      if (await ok(g)) {
        good = g;
        for (let step = 1; ; step *= 2) {
          const s = Math.max(LO, good - step);
          if (s === good) break; // good is LO
          if (await ok(s)) good = s;
          else {
            bad = s;
            break;
          }
          if (s === LO) break;
        }
      } else {
        bad = g;
        for (let step = 1; ; step *= 2) {
          const s = Math.min(HI, bad + step);
          if (s === bad) break; // bad is HI: unreachable
          if (await ok(s)) {
            good = s;
            break;
          }
          bad = s;
        }
      }
      let setting;
      let reachable = true;
      if (good === null) {
        setting = HI;
        reachable = false;
      } else {
        while (good - bad > 1) {
          const mid = Math.floor((good + bad) / 2);
          if (await ok(mid)) good = mid;
          else bad = mid;
        }
        setting = good;
        if (setting - 0.5 >= LO && (await ok(setting - 0.5))) {
          setting -= 0.5;
          // An encoder that rounds its setting (libavif) makes x.5 the first value of the
          // plateau of x+1: prefer the integer when its output is byte-identical, it means the
          // same thing to an encoder that rounds and to one that truncates.
          if ((await evalOurs(setting + 0.5)).hash === (await evalOurs(setting)).hash) setting += 0.5;
        }
      }
      // Monotonicity probes and the q = S identity point.
      await Promise.all([setting - 1, setting - 2, setting + 1, q].filter((s) => s >= LO && s <= HI).map(evalOurs));
      const chosen = await evalOurs(setting);
      const below = [];
      for (const [S, p] of cache) {
        const v = await p;
        if (S < setting && v.ssim >= threshold && v.hash !== chosen.hash) below.push(S);
      }
      const plateau = [];
      for (const [S, p] of cache) if (S !== setting && (await p).hash === chosen.hash) plateau.push(S);
      const identity = await evalOurs(q);
      steps[q] = {
        target_ssim: r5(targets[q].ssim),
        sharp_bytes: Math.round(targets[q].bytes),
        sharp_per_photo: targets[q].per_photo,
        setting,
        ours_ssim: r5(chosen.ssim),
        ours_bytes: Math.round(chosen.bytes),
        ours_per_photo: chosen.per_photo,
        delta: r5(chosen.ssim - targets[q].ssim),
        within: Math.abs(chosen.ssim - targets[q].ssim) <= WITHIN,
        reachable,
        raised_for_monotonicity: false,
        lower_settings_also_passing: below.sort((a, b) => a - b),
        identical_output_settings: plateau.sort((a, b) => a - b),
        at_equal_setting: { setting: q, ssim: r5(identity.ssim), bytes: Math.round(identity.bytes) },
        seconds: Math.round((performance.now() - ts) / 100) / 10,
      };
      if (below.length) log(`WARNING ${fmt} q${q}: lower settings also pass (${below.join(', ')}): not monotonic here`);
      if (!reachable) log(`WARNING ${fmt} q${q}: even setting 100 misses the target`);
      log(
        `${fmt} q${q}: setting ${setting} -> SSIM ${chosen.ssim.toFixed(4)} (target ${targets[q].ssim.toFixed(4)}, delta ${(chosen.ssim - targets[q].ssim).toFixed(4)}), ` +
          `${Math.round(chosen.bytes)} B vs sharp ${Math.round(targets[q].bytes)} B; ${evaluations} settings evaluated so far, ${steps[q].seconds}s`,
      );
      prev = { q, setting };
    }

    // 5. Non-decreasing in q.
    let last = -Infinity;
    for (const q of o.steps) {
      const st = steps[q];
      if (st.setting < last) {
        const p = await evalOurs(last);
        log(`${fmt} q${q}: raised ${st.setting} -> ${last} to keep settings non-decreasing`);
        Object.assign(st, {
          setting: last,
          raised_for_monotonicity: true,
          ours_ssim: r5(p.ssim),
          ours_bytes: Math.round(p.bytes),
          ours_per_photo: p.per_photo,
          delta: r5(p.ssim - targets[q].ssim),
          within: Math.abs(p.ssim - targets[q].ssim) <= WITHIN,
        });
      }
      last = st.setting;
    }

    // 6. The evaluated curve and its inversions.
    const curve = [];
    for (const [S, p] of cache) {
      const v = await p;
      curve.push({ setting: S, ssim: r5(v.ssim), bytes: Math.round(v.bytes) });
    }
    curve.sort((a, b) => a.setting - b.setting);
    const inversions = [];
    for (let i = 0; i < curve.length; i++) {
      for (let j = i + 1; j < curve.length; j++) {
        if (curve[i].ssim > curve[j].ssim + INVERSION) inversions.push({ lower: curve[i].setting, higher: curve[j].setting, drop: r5(curve[i].ssim - curve[j].ssim) });
      }
    }
    if (inversions.length) log(`WARNING ${fmt}: ${inversions.length} inversions of more than ${INVERSION} in the evaluated curve`);
    const seconds = Math.round((performance.now() - tf) / 100) / 10;
    report.formats[fmt] = { steps, curve, inversions, evaluations, seconds };
    table[fmt] = Object.fromEntries(o.steps.map((q) => [String(q), Math.round(steps[q].setting * 2) / 2]));
    log(`${fmt}: done in ${seconds}s (${evaluations} settings x ${refs.length} photos encoded by pixelfront)`);
  }
  report.seconds = Math.round((performance.now() - t0) / 100) / 10;
  const binAtEnd = await fingerprint();
  report.bin_changed_during_run = binAtEnd.sha256 !== binAtStart.sha256;
  if (report.bin_changed_during_run) {
    log(`ERROR: ${o.bin} changed during the run (rebuilt at ${binAtEnd.mtime}): results mix two builds; the table is NOT written`);
    o.write = false;
    process.exitCode = 3;
  }

  // 7. Write the table (merged with the existing one) and the report.
  if (o.write) {
    let existing = {};
    try {
      existing = JSON.parse(await readFile(o.table, 'utf8'));
    } catch {
      log(`${o.table} missing or unreadable: starting a new one`);
    }
    const merged = { comment: existing.comment ?? 'Encoder setting per public quality step (bench/calibrate.mjs).' };
    if (table.avif && o.avifKey !== 'avif') {
      table[o.avifKey] = table.avif;
      delete table.avif;
    }
    for (const fmt of [...DEFAULTS.formats, 'avif_aom']) {
      if (!(fmt in existing) && !(fmt in table)) continue;
      const m = { ...(existing[fmt] ?? {}), ...(table[fmt] ?? {}) };
      const keys = Object.keys(m).sort((a, b) => Number(a) - Number(b));
      let lastV = -Infinity;
      const out = {};
      for (const k of keys) {
        let v = m[k];
        if (v < lastV) {
          log(`WARNING ${fmt} ${k}: kept value ${v} is below the step before it; raised to ${lastV}`);
          v = lastV;
        }
        out[k] = v;
        lastV = v;
      }
      merged[fmt] = out;
    }
    for (const [k, v] of Object.entries(existing)) if (!(k in merged)) merged[k] = v;
    const body = Object.entries(merged)
      .map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v).replace(/,"/g, ', "').replace(/":/g, '": ')}`)
      .join(',\n');
    await writeFile(o.table, `{\n${body}\n}\n`);
    report.table_written = o.table;
    log(`wrote ${o.table}`);
  }
  report.table = table;
  await writeFile(o.report, `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${o.report} (${report.seconds}s in all)`);
  await rm(join(o.out, 'tmp'), { recursive: true, force: true });

  // 8. Markdown.
  const lines = [];
  lines.push(`Calibration: sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}) vs ${binVersion}, ${refs.length} photos at ${o.width} px wide; SSIM = mean luma SSIM (bench/ssim.mjs).`);
  lines.push('');
  lines.push('| fmt | q | sharp SSIM (target) | sharp bytes | setting | ours SSIM | Δ ours−sharp | ours bytes | bytes ours/sharp | ours SSIM at setting = q | within ±0.005 |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|');
  for (const fmt of o.formats) {
    for (const q of o.steps) {
      const s = report.formats[fmt].steps[q];
      lines.push(
        `| ${fmt} | ${q} | ${s.target_ssim.toFixed(4)} | ${s.sharp_bytes} | ${s.setting}${s.raised_for_monotonicity ? ' (raised)' : ''}${s.reachable ? '' : ' (unreachable)'} | ${s.ours_ssim.toFixed(4)} | ${s.delta >= 0 ? '+' : ''}${s.delta.toFixed(4)} | ${s.ours_bytes} | ${(s.ours_bytes / s.sharp_bytes).toFixed(3)} | ${s.at_equal_setting.ssim.toFixed(4)} | ${s.within ? 'yes' : '**no**'} |`,
      );
    }
  }
  lines.push('');
  lines.push(`Table (${o.write ? 'written to shared/calibration.json' : 'not written: --no-write'}): \`${JSON.stringify(table)}\``);
  console.log(lines.join('\n'));
}

main().catch((e) => {
  console.error(`calibrate: ${e.stack || e.message}`);
  process.exit(1);
});
