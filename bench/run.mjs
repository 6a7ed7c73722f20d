#!/usr/bin/env node
// bench/run.mjs — Pixelfront vs sharp: speed, memory, bytes and SSIM on the same photos.
//
//   node bench/run.mjs [--bin PATH] [--rounds 5] [--photos DIR] [--query 'w=500&fmt=jpeg&q=90']
//                      [--no-synthetic] [--results PATH]
//
// Photos: every *.jpg/*.jpeg/*.png/*.webp in --photos (default ../shared/corpus/photos beside the checkout) plus
// a synthetic 24-megapixel photo (6000x4000 progressive JPEG q90, made once by sharp from the
// largest photo, cover-resized, into bench/out/photo24mp.jpg; --no-synthetic skips it).
//
// Speed: for each photo, --rounds rounds; in each round both tools render the 8 standard
// variants from the one input, then the one non-standard request (--query, canonicalised like
// pixelfront does: w=500&fmt=jpeg&q=90 -> w640-q90.jpeg), alternating ours / sharp (the order
// flips every round so drift and cache effects hit both sides alike). Every run is a fresh
// child process under GNU time (`/usr/bin/time -f '%e %U %S %M'`): process wall time, CPU time
// (user + sys) and peak RSS; plus the internal wall time each reports (pixelfront --json
// total_ms; sharp-render.mjs ms, from the first sharp call to all files written).
//   ours:  pixelfront render <photo> --out <dir> --json   [--query Q]
//   sharp: node bench/sharp-render.mjs <photo> <dir>     [--query Q]
//         (one buffer, sharp(buf).rotate() + clone() per variant, Promise.all, avif effort 0,
//          webp effort 4, jpeg defaults, same q)
//
// Quality (on the last round's files): per variant, the bytes of each output and the SSIM
// (bench/ssim.mjs, luma) of each against a reference downscale of the original: the photo is
// decoded at full size by sharp (rotate()), then resized by sharp with lanczos3 to exactly that
// output's size — from the full-size raw pixels, so no JPEG shrink-on-load takes part in the
// reference. For cover variants (w+h, i.e. the thumb) the original is scaled to cover and the
// best of the crops within 1 px of the centred one counts (centre rounding is not quality).
// Outputs are decoded by sharp. If the two outputs differ in size, each is compared with a
// reference of its own size.
//
// Output: medians per photo, overall ratios ours/sharp, SSIM deltas, peak RSS on the 24 MP
// photo, checked against the targets (median wall <= 0.8x sharp, total bytes <= 1.05x sharp,
// SSIM no worse, peak RSS <= 200 MiB on 24 MP), written to bench/results.json and printed as
// markdown (with the command lines and the machine) on stdout. Progress on stderr. The binary's
// sha256 is taken at start and end: if it was rebuilt meanwhile, that is flagged, exit code 3.

import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { luma, ssimLuma } from './ssim.mjs';
import { canonicalize, catalogue } from './policy.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(HERE, '..');
const TIME = '/usr/bin/time';
const TIME_FORMAT = '%e %U %S %M';
const TARGETS = { wall_ratio: 0.8, bytes_ratio: 1.05, rss_24mp_mib: 200 };
const USAGE =
  "usage: node bench/run.mjs [--bin PATH] [--rounds N] [--photos DIR] [--query 'w=500&fmt=jpeg&q=90'] [--no-synthetic] [--results PATH]";

const log = (...a) => console.error('[run]', ...a);

/** The command line's options (`node:util` parseArgs). */
const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  bin: { type: 'string' },
  rounds: { type: 'string' },
  photos: { type: 'string' },
  query: { type: 'string' },
  'no-synthetic': { type: 'boolean', default: false },
  results: { type: 'string' },
};

/** Parse argv into the run's options; throws on a usage error. */
function parseCommand(argv) {
  const { values: v } = parseArgs({ args: argv, options: OPTIONS });
  const o = {
    bin: join(REPO, 'target', 'release', 'pixelfront'),
    rounds: 5,
    photos: join(REPO, '..', 'shared', 'corpus', 'photos'),
    query: 'w=500&fmt=jpeg&q=90',
    synthetic: true,
    results: join(HERE, 'results.json'),
    out: join(HERE, 'out'),
  };
  if (v.help) o.help = true;
  if (v.bin !== undefined) o.bin = resolve(v.bin);
  if (v.rounds !== undefined) {
    o.rounds = Number(v.rounds);
    if (!Number.isInteger(o.rounds) || o.rounds < 1) throw new Error('--rounds must be a positive integer');
  }
  if (v.photos !== undefined) o.photos = resolve(v.photos);
  if (v.query !== undefined) o.query = v.query;
  if (v['no-synthetic']) o.synthetic = false;
  if (v.results !== undefined) o.results = resolve(v.results);
  return o;
}

const median = (xs) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const mean = (xs) => sum(xs) / xs.length;
const round = (x, d = 3) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);
const shq = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Run argv under GNU time; resolve {wall, cpu, user, sys, rss_kb, stdout}. */
async function timed(argv, timeFile) {
  const args = ['-f', TIME_FORMAT, '-o', timeFile, ...argv];
  const { code, stdout, stderr } = await new Promise((res, rej) => {
    const child = spawn(TIME, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', rej);
    child.on('close', (c) => res({ code: c, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
  if (code !== 0) throw new Error(`${argv.map(shq).join(' ')} exited ${code}: ${stderr.trim()}`);
  const line = (await readFile(timeFile, 'utf8')).trim().split('\n').pop();
  const [wall, user, sys, rss] = line.split(/\s+/).map(Number);
  return { wall, user, sys, cpu: round(user + sys, 2), rss_kb: rss, stdout };
}

/** pixelfront --json: rows + summary. */
function parseOurs(stdout) {
  const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const summary = lines.find((l) => 'total_ms' in l);
  return { internal_ms: summary?.total_ms, outputs: lines.filter((l) => l.file) };
}
function parseSharp(stdout) {
  const j = JSON.parse(stdout.trim().split('\n').pop());
  return { internal_ms: j.ms, outputs: j.outputs };
}

async function decodeRaw(input) {
  const { data, info } = await sharp(input).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

function machineInfo(bin) {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = (cpuinfo.match(/^model name\s*:\s*(.+)$/m) || [])[1] || cpus()[0]?.model || 'unknown';
  const tryRun = (cmd, args) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return null;
    }
  };
  const timeVersion = tryRun(TIME, ['--version'])?.split('\n')[0] ?? null;
  return {
    nproc: Number(tryRun('nproc', [])) || cpus().length,
    cpu_model: model,
    mem_gib: round(totalmem() / 2 ** 30, 1),
    kernel: tryRun('uname', ['-sr']),
    node: process.version,
    sharp: sharp.versions.sharp,
    libvips: sharp.versions.vips,
    sharp_versions: sharp.versions,
    sharp_concurrency: sharp.concurrency(),
    uv_threadpool_size: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
    pixelfront: tryRun(bin, ['--version']),
    pixelfront_commit: tryRun('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']),
    worktree_dirty: (tryRun('git', ['-C', REPO, 'status', '--porcelain']) ?? '') !== '',
    gnu_time: timeVersion,
    // The binary embeds shared/calibration.json verbatim at compile time (include_str!): does it
    // hold the current file, i.e. do these numbers use the current calibration table?
    calibration_embedded: (() => {
      try {
        return readFileSync(bin).includes(readFileSync(join(REPO, 'shared', 'calibration.json')));
      } catch {
        return null;
      }
    })(),
  };
}

/** Make the synthetic 24 MP photo once. */
async function synthetic(photos, outDir) {
  const target = join(outDir, 'photo24mp.jpg');
  if (existsSync(target)) return target;
  let best = null;
  for (const p of photos) {
    const m = await sharp(p).metadata();
    const px = m.width * m.height;
    if (!best || px > best.px) best = { p, px };
  }
  log(`making ${target} (6000x4000 progressive JPEG q90 from ${basename(best.p)})`);
  await sharp(best.p).rotate().resize(6000, 4000, { fit: 'cover' }).jpeg({ quality: 90, progressive: true }).toFile(target);
  return target;
}

async function main() {
  let o;
  try {
    o = parseCommand(process.argv.slice(2));
  } catch (e) {
    console.error(`run: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (o.help) {
    console.log(USAGE);
    return;
  }
  if (!existsSync(TIME)) {
    console.error(`run: ${TIME} (GNU time) is missing: apt-get install time`);
    process.exit(1);
  }
  if (!existsSync(o.bin)) {
    console.error(`run: ${o.bin} not found (build it with cargo build --release, or pass --bin)`);
    process.exit(1);
  }
  const canon = canonicalize(o.query);
  const sharpScript = join(HERE, 'sharp-render.mjs');
  await mkdir(o.out, { recursive: true });

  const corpus = (await readdir(o.photos)).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort().map((f) => join(o.photos, f));
  if (!corpus.length) throw new Error(`no photos in ${o.photos}`);
  const photos = [...corpus];
  if (o.synthetic) photos.push(await synthetic(corpus, o.out));
  const machine = machineInfo(o.bin);
  const loadStart = loadavg().map((x) => round(x, 2));
  const fingerprint = () => createHash('sha256').update(readFileSync(o.bin)).digest('hex');
  const binAtStart = fingerprint();
  if (machine.calibration_embedded === false) log('WARNING: the binary does not embed the current shared/calibration.json (it is compiled in): rebuild to measure the current table');
  log(`${photos.length} photos x ${o.rounds} rounds; ${machine.pixelfront} vs sharp ${machine.sharp} (libvips ${machine.libvips}); load ${loadStart.join(' ')}`);

  const cmd = {
    ours: (photo, dir, q) => [o.bin, 'render', photo, '--out', dir, '--json', ...(q ? ['--query', q] : [])],
    sharp: (photo, dir, q) => [process.execPath, sharpScript, photo, dir, ...(q ? ['--query', q] : [])],
  };
  const parse = { ours: parseOurs, sharp: parseSharp };
  const timeFile = join(o.out, 'run', `time-${process.pid}.txt`);

  const results = [];
  for (const photo of photos) {
    const stem = basename(photo, extname(photo));
    const meta = await sharp(photo).metadata();
    const entry = {
      photo: basename(photo),
      path: photo,
      width: meta.width,
      height: meta.height,
      megapixels: round((meta.width * meta.height) / 1e6, 1),
      bytes: (await readFile(photo)).length,
      runs: { standard: { ours: [], sharp: [] }, request: { ours: [], sharp: [] } },
    };
    const dirs = {};
    const last = {};
    for (let r = 0; r < o.rounds; r++) {
      const order = r % 2 === 0 ? ['ours', 'sharp'] : ['sharp', 'ours'];
      for (const kind of ['standard', 'request']) {
        for (const side of order) {
          const dir = join(o.out, 'run', stem, side, kind);
          dirs[`${side}/${kind}`] = dir;
          await rm(dir, { recursive: true, force: true });
          await mkdir(dir, { recursive: true });
          const t = await timed(cmd[side](photo, dir, kind === 'request' ? o.query : undefined), timeFile);
          const p = parse[side](t.stdout);
          entry.runs[kind][side].push({ round: r, wall: t.wall, cpu: t.cpu, user: t.user, sys: t.sys, rss_kb: t.rss_kb, internal_ms: p.internal_ms });
          last[`${side}/${kind}`] = p.outputs;
          log(`${entry.photo} round ${r + 1}/${o.rounds} ${kind.padEnd(8)} ${side.padEnd(5)} wall ${t.wall.toFixed(2)}s cpu ${t.cpu.toFixed(2)}s rss ${Math.round(t.rss_kb / 1024)} MiB internal ${Math.round(p.internal_ms)} ms`);
        }
      }
    }

    // Medians.
    entry.median = {};
    for (const kind of ['standard', 'request']) {
      const m = {};
      for (const side of ['ours', 'sharp']) {
        const rs = entry.runs[kind][side];
        m[side] = {
          wall: round(median(rs.map((x) => x.wall)), 3),
          cpu: round(median(rs.map((x) => x.cpu)), 3),
          rss_mib: round(median(rs.map((x) => x.rss_kb)) / 1024, 1),
          rss_max_mib: round(Math.max(...rs.map((x) => x.rss_kb)) / 1024, 1),
          internal_ms: round(median(rs.map((x) => x.internal_ms)), 1),
        };
      }
      m.ratio = {
        wall: round(m.ours.wall / m.sharp.wall, 3),
        cpu: round(m.ours.cpu / m.sharp.cpu, 3),
        rss: round(m.ours.rss_mib / m.sharp.rss_mib, 3),
        internal: round(m.ours.internal_ms / m.sharp.internal_ms, 3),
      };
      entry.median[kind] = m;
    }

    // Quality of the last round's outputs.
    log(`${entry.photo}: SSIM against reference downscales`);
    const orig = await sharp(photo).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    const origRaw = { raw: { width: orig.info.width, height: orig.info.height, channels: orig.info.channels } };
    const refCache = new Map();
    /** Luma of the original resized by sharp (lanczos3) to exactly w x h (cached). */
    const scaled = (w, h) => {
      const key = `${w}x${h}`;
      if (!refCache.has(key)) {
        refCache.set(
          key,
          sharp(orig.data, origRaw)
            .resize(w, h, { kernel: 'lanczos3', fit: 'fill' })
            .raw()
            .toBuffer({ resolveWithObject: true })
            .then(({ data, info }) => luma(data, info.width, info.height, info.channels)),
        );
      }
      return refCache.get(key);
    };
    /**
     * SSIM of a decoded output against its reference. Plain resize: the original resized to the
     * output's size. Cover (w+h): the original scaled to cover w x h (the free side rounded down
     * and up), then cropped at every offset within 1 px of the centred crop; the best score
     * counts, because how a tool rounds the centre (half a pixel) is not image quality, and a
     * 1-px shift costs a 160 px thumbnail several hundredths of SSIM.
     */
    const refSsim = async (y, w, h, cover) => {
      if (!cover) return { ssim: ssimLuma(await scaled(w, h), y, w, h) };
      const W = orig.info.width;
      const H = orig.info.height;
      const s = Math.max(w / W, h / H);
      const sizes = new Set();
      for (const f of [Math.floor, Math.ceil]) sizes.add(`${Math.max(w, f(W * s - 1e-9))}x${Math.max(h, f(H * s - 1e-9))}`);
      sizes.add(`${Math.max(w, Math.round(W * s))}x${Math.max(h, Math.round(H * s))}`);
      let best = { ssim: -Infinity };
      for (const size of sizes) {
        const [sw, sh] = size.split('x').map(Number);
        const ref = await scaled(sw, sh);
        const around = (free, want) => {
          const c = (free - want) / 2;
          return [...new Set([Math.floor(c) - 1, Math.floor(c), Math.ceil(c), Math.ceil(c) + 1])].filter((v) => v >= 0 && v <= free - want);
        };
        for (const top of around(sh, h)) {
          for (const left of around(sw, w)) {
            const crop = new Float64Array(w * h);
            for (let row = 0; row < h; row++) crop.set(ref.subarray((top + row) * sw + left, (top + row) * sw + left + w), row * w);
            const v = ssimLuma(crop, y, w, h);
            if (v > best.ssim) best = { ssim: v, reference: { scaled: size, left, top } };
          }
        }
      }
      return best;
    };
    const score = async (dir, row, cover) => {
      const buf = await readFile(join(dir, row.file));
      const dec = await decodeRaw(buf);
      const r = await refSsim(luma(dec.data, dec.width, dec.height, 3), dec.width, dec.height, cover);
      return { file: row.file, width: dec.width, height: dec.height, bytes: buf.length, ssim: round(r.ssim, 5), ...(r.reference ? { reference: r.reference } : {}) };
    };
    const variants = [
      ...catalogue().map((v) => ({ kind: 'standard', variant: v.name, file: v.file, cover: Boolean(v.w && v.h) })),
      { kind: 'request', variant: 'request', file: canon.name, cover: Boolean(canon.w && canon.h) },
    ];
    entry.quality = [];
    for (const v of variants) {
      const row = {};
      for (const side of ['ours', 'sharp']) {
        const out = last[`${side}/${v.kind}`].find((x) => x.variant === v.variant);
        if (!out) throw new Error(`${side} produced no ${v.variant} for ${entry.photo}`);
        row[side] = await score(dirs[`${side}/${v.kind}`], out, v.cover);
      }
      const q = {
        kind: v.kind,
        variant: v.variant,
        file: v.file,
        same_name: row.ours.file === v.file && row.sharp.file === v.file,
        same_size: row.ours.width === row.sharp.width && row.ours.height === row.sharp.height,
        ours: row.ours,
        sharp: row.sharp,
        bytes_ratio: round(row.ours.bytes / row.sharp.bytes, 3),
        ssim_delta: round(row.ours.ssim - row.sharp.ssim, 5),
      };
      if (!q.same_name) log(`WARNING ${entry.photo} ${v.variant}: file names differ (ours ${row.ours.file}, sharp ${row.sharp.file}, expected ${v.file})`);
      if (!q.same_size) log(`note ${entry.photo} ${v.variant}: sizes differ (ours ${row.ours.width}x${row.ours.height}, sharp ${row.sharp.width}x${row.sharp.height}); each compared with its own reference`);
      entry.quality.push(q);
    }
    const std = entry.quality.filter((q) => q.kind === 'standard');
    entry.standard_quality = {
      bytes_ours: sum(std.map((q) => q.ours.bytes)),
      bytes_sharp: sum(std.map((q) => q.sharp.bytes)),
      bytes_ratio: round(sum(std.map((q) => q.ours.bytes)) / sum(std.map((q) => q.sharp.bytes)), 3),
      ssim_ours_mean: round(mean(std.map((q) => q.ours.ssim)), 5),
      ssim_sharp_mean: round(mean(std.map((q) => q.sharp.ssim)), 5),
      ssim_delta_mean: round(mean(std.map((q) => q.ssim_delta)), 5),
      ssim_delta_min: round(Math.min(...std.map((q) => q.ssim_delta)), 5),
    };
    log(
      `${entry.photo}: wall ratio ${entry.median.standard.ratio.wall}, cpu ratio ${entry.median.standard.ratio.cpu}, bytes ratio ${entry.standard_quality.bytes_ratio}, mean dSSIM ${entry.standard_quality.ssim_delta_mean}`,
    );
    results.push(entry);
  }
  await rm(timeFile, { force: true });

  // Overall.
  const allStd = results.flatMap((e) => e.quality.filter((q) => q.kind === 'standard'));
  const allReq = results.flatMap((e) => e.quality.filter((q) => q.kind === 'request'));
  const per = (kind, k) => results.map((e) => e.median[kind].ratio[k]);
  const big = results.find((e) => e.photo === 'photo24mp.jpg') ?? [...results].sort((a, b) => b.width * b.height - a.width * a.height)[0];
  const byVariant = catalogue().map((v) => {
    const qs = allStd.filter((q) => q.variant === v.name);
    return {
      variant: v.name,
      file: v.file,
      bytes_ours: sum(qs.map((q) => q.ours.bytes)),
      bytes_sharp: sum(qs.map((q) => q.sharp.bytes)),
      bytes_ratio: round(sum(qs.map((q) => q.ours.bytes)) / sum(qs.map((q) => q.sharp.bytes)), 3),
      ssim_ours: round(mean(qs.map((q) => q.ours.ssim)), 5),
      ssim_sharp: round(mean(qs.map((q) => q.sharp.ssim)), 5),
      ssim_delta: round(mean(qs.map((q) => q.ssim_delta)), 5),
    };
  });
  const overall = {
    standard: {
      wall_ratio_median: round(median(per('standard', 'wall')), 3),
      wall_ratio_worst: round(Math.max(...per('standard', 'wall')), 3),
      cpu_ratio_median: round(median(per('standard', 'cpu')), 3),
      internal_ratio_median: round(median(per('standard', 'internal')), 3),
      rss_ratio_median: round(median(per('standard', 'rss')), 3),
      bytes_ours: sum(allStd.map((q) => q.ours.bytes)),
      bytes_sharp: sum(allStd.map((q) => q.sharp.bytes)),
      bytes_ratio: round(sum(allStd.map((q) => q.ours.bytes)) / sum(allStd.map((q) => q.sharp.bytes)), 3),
      ssim_delta_mean: round(mean(allStd.map((q) => q.ssim_delta)), 5),
      ssim_delta_min: round(Math.min(...allStd.map((q) => q.ssim_delta)), 5),
      by_variant: byVariant,
    },
    request: {
      query: o.query,
      canonical: canon.name,
      wall_ratio_median: round(median(per('request', 'wall')), 3),
      cpu_ratio_median: round(median(per('request', 'cpu')), 3),
      bytes_ratio: round(sum(allReq.map((q) => q.ours.bytes)) / sum(allReq.map((q) => q.sharp.bytes)), 3),
      ssim_delta_mean: round(mean(allReq.map((q) => q.ssim_delta)), 5),
    },
    peak_rss_24mp: {
      photo: big.photo,
      megapixels: big.megapixels,
      ours_mib: big.median.standard.ours.rss_max_mib,
      sharp_mib: big.median.standard.sharp.rss_max_mib,
    },
  };
  const checks = [
    {
      target: `median wall time <= ${TARGETS.wall_ratio}x sharp (standard 8 variants; median over photos of per-photo median ratios)`,
      value: overall.standard.wall_ratio_median,
      pass: overall.standard.wall_ratio_median <= TARGETS.wall_ratio,
    },
    {
      target: `... and on every photo (worst per-photo median ratio)`,
      value: overall.standard.wall_ratio_worst,
      pass: overall.standard.wall_ratio_worst <= TARGETS.wall_ratio,
    },
    { target: `total bytes <= ${TARGETS.bytes_ratio}x sharp (all standard variants, all photos)`, value: overall.standard.bytes_ratio, pass: overall.standard.bytes_ratio <= TARGETS.bytes_ratio },
    {
      target: 'SSIM no worse: mean ΔSSIM (ours − sharp) over all standard variants >= 0 at 3 decimals (i.e. >= −0.0005)',
      value: overall.standard.ssim_delta_mean,
      pass: overall.standard.ssim_delta_mean >= -0.0005,
    },
    {
      target: `peak RSS <= ${TARGETS.rss_24mp_mib} MiB on the ${big.megapixels} MP photo (max over rounds)`,
      value: overall.peak_rss_24mp.ours_mib,
      pass: overall.peak_rss_24mp.ours_mib <= TARGETS.rss_24mp_mib,
    },
  ];
  const loadEnd = loadavg().map((x) => round(x, 2));
  machine.pixelfront_sha256 = binAtStart;
  machine.bin_changed_during_run = fingerprint() !== binAtStart;
  if (machine.bin_changed_during_run) {
    log(`ERROR: ${o.bin} was rebuilt during the run: the numbers mix two builds`);
    process.exitCode = 3;
  }
  const rel = (p) => relative(REPO, p) || '.';
  const commands = {
    run: `node bench/run.mjs ${process.argv.slice(2).map(shq).join(' ')}`.trim(),
    ours: `${TIME} -f '${TIME_FORMAT}' ${shq(rel(o.bin))} render <photo> --out <dir> --json`,
    sharp: `${TIME} -f '${TIME_FORMAT}' node ${rel(sharpScript)} <photo> <dir>`,
    ours_request: `${TIME} -f '${TIME_FORMAT}' ${shq(rel(o.bin))} render <photo> --out <dir> --json --query ${shq(o.query)}`,
    sharp_request: `${TIME} -f '${TIME_FORMAT}' node ${rel(sharpScript)} <photo> <dir> --query ${shq(o.query)}`,
  };
  const report = {
    generated: new Date().toISOString(),
    commands,
    machine: { ...machine, loadavg_start: loadStart, loadavg_end: loadEnd },
    rounds: o.rounds,
    targets: TARGETS,
    checks,
    overall,
    photos: results,
  };
  await writeFile(o.results, `${JSON.stringify(report, null, 2)}\n`);
  log(`wrote ${o.results}`);

  // Markdown.
  const L = [];
  const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : String(x));
  const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : String(x));
  const f4 = (x) => (Number.isFinite(x) ? x.toFixed(4) : String(x));
  const sg = (x) => (x >= 0 ? '+' : '') + f4(x);
  L.push(`### Machine`);
  L.push('');
  L.push(`- CPU: ${machine.cpu_model}, nproc ${machine.nproc}, ${machine.mem_gib} GiB RAM, ${machine.kernel}`);
  L.push(`- ${machine.pixelfront} (commit ${machine.pixelfront_commit}${machine.worktree_dirty ? ', dirty tree' : ''}); sharp ${machine.sharp}, libvips ${machine.libvips} (aom ${machine.sharp_versions.aom}, libwebp ${machine.sharp_versions.webp}, mozjpeg ${machine.sharp_versions.mozjpeg}); node ${machine.node}; sharp.concurrency() ${machine.sharp_concurrency}, UV_THREADPOOL_SIZE ${machine.uv_threadpool_size}`);
  if (machine.bin_changed_during_run) L.push('- **Invalid run:** the binary was rebuilt while the benchmark ran (sha256 changed): numbers mix two builds');
  L.push(machine.calibration_embedded ? '- The binary embeds the current shared/calibration.json' : '- **Warning:** the binary does not embed the current shared/calibration.json (compiled in at build time): these numbers use another calibration table');
  L.push(`- ${o.rounds} rounds per photo, ours and sharp alternating (order flipped every round); load average ${loadStart.join(' ')} at start, ${loadEnd.join(' ')} at end`);
  L.push('');
  L.push('Commands:');
  L.push('');
  L.push('```');
  for (const c of Object.values(commands)) L.push(c);
  L.push('```');
  L.push('');
  L.push(`### Standard 8 variants from one input (median of ${o.rounds} runs; wall and CPU in s, as the process, under GNU time)`);
  L.push('');
  L.push('| photo | MP | wall ours | wall sharp | wall ours/sharp | CPU ours | CPU sharp | CPU ours/sharp | peak RSS ours MiB | peak RSS sharp MiB | internal ms ours | internal ms sharp | bytes ours/sharp | mean ΔSSIM |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const e of results) {
    const m = e.median.standard;
    L.push(
      `| ${e.photo} | ${e.megapixels} | ${f2(m.ours.wall)} | ${f2(m.sharp.wall)} | ${f3(m.ratio.wall)} | ${f2(m.ours.cpu)} | ${f2(m.sharp.cpu)} | ${f3(m.ratio.cpu)} | ${m.ours.rss_mib} | ${m.sharp.rss_mib} | ${Math.round(m.ours.internal_ms)} | ${Math.round(m.sharp.internal_ms)} | ${f3(e.standard_quality.bytes_ratio)} | ${sg(e.standard_quality.ssim_delta_mean)} |`,
    );
  }
  const os_ = overall.standard;
  L.push(`| **all** (median of ratios; bytes: totals) | | | | **${f3(os_.wall_ratio_median)}** | | | **${f3(os_.cpu_ratio_median)}** | | | | | **${f3(os_.bytes_ratio)}** | **${sg(os_.ssim_delta_mean)}** |`);
  L.push('');
  L.push(`### Per variant (bytes summed over ${results.length} photos; SSIM = mean over photos against a lanczos3 reference downscale of the original)`);
  L.push('');
  L.push('| variant | file | bytes ours | bytes sharp | ours/sharp | SSIM ours | SSIM sharp | Δ ours−sharp |');
  L.push('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const v of byVariant) {
    L.push(`| ${v.variant} | ${v.file} | ${v.bytes_ours} | ${v.bytes_sharp} | ${f3(v.bytes_ratio)} | ${f4(v.ssim_ours)} | ${f4(v.ssim_sharp)} | ${sg(v.ssim_delta)} |`);
  }
  L.push(`| **total** | | ${os_.bytes_ours} | ${os_.bytes_sharp} | **${f3(os_.bytes_ratio)}** | | | **${sg(os_.ssim_delta_mean)}** (worst ${sg(os_.ssim_delta_min)}) |`);
  L.push('');
  L.push(`### Non-standard request \`${o.query}\` → \`${canon.name}\` (median of ${o.rounds} runs)`);
  L.push('');
  L.push('| photo | wall ours | wall sharp | ours/sharp | CPU ours | CPU sharp | ours/sharp | peak RSS ours MiB | peak RSS sharp MiB | bytes ours | bytes sharp | ours/sharp | SSIM ours | SSIM sharp | Δ |');
  L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const e of results) {
    const m = e.median.request;
    const q = e.quality.find((x) => x.kind === 'request');
    L.push(
      `| ${e.photo} | ${f2(m.ours.wall)} | ${f2(m.sharp.wall)} | ${f3(m.ratio.wall)} | ${f2(m.ours.cpu)} | ${f2(m.sharp.cpu)} | ${f3(m.ratio.cpu)} | ${m.ours.rss_mib} | ${m.sharp.rss_mib} | ${q.ours.bytes} | ${q.sharp.bytes} | ${f3(q.bytes_ratio)} | ${f4(q.ours.ssim)} | ${f4(q.sharp.ssim)} | ${sg(q.ssim_delta)} |`,
    );
  }
  const orq = overall.request;
  L.push(`| **all** | | | **${f3(orq.wall_ratio_median)}** | | | **${f3(orq.cpu_ratio_median)}** | | | | | **${f3(orq.bytes_ratio)}** | | | **${sg(orq.ssim_delta_mean)}** |`);
  L.push('');
  L.push('### Targets');
  L.push('');
  L.push('| target | measured | met |');
  L.push('|---|---:|:---:|');
  for (const c of checks) L.push(`| ${c.target} | ${c.value} | ${c.pass ? 'yes' : '**no**'} |`);
  L.push(`| (sharp's peak RSS on the same photo, for comparison) | ${overall.peak_rss_24mp.sharp_mib} | |`);
  console.log(L.join('\n'));
}

main().catch((e) => {
  console.error(`run: ${e.stack || e.message}`);
  process.exit(1);
});
