#!/usr/bin/env node
// bench/sharp-render.mjs — the sharp (libvips) side of the Pixelfront benchmark.
//
//   node bench/sharp-render.mjs <input> <outdir> [--query 'w=..&h=..&fmt=..&q=..']
//
// Renders the 8 standard variants (shared/policy.json) of <input> into <outdir>, each file named
// by its derivative name, the way a well-tuned sharp service would: the input is read into ONE
// buffer, one pipeline per variant is made with sharp(buf).rotate() + .clone(), and all of them
// run concurrently (Promise.all). Settings are sharp's fastest that still mean the same q:
//   avif {quality, effort: 0}        (libheif + aom; 4:4:4 8-bit is sharp's default)
//   webp {quality}                   (effort 4 by default, like pixelfront's libwebp method 4)
//   jpeg {quality}                   (defaults: 4:2:0, optimised Huffman, baseline, no mozjpeg tricks)
//   thumb: resize(160, 160, {fit: 'cover'}); others: resize({width}); withoutEnlargement: true;
//   resize kernel: sharp's default (lanczos3). Metadata is stripped (sharp's default).
// With --query it renders that one request, canonicalised like pixelfront does (w/h snapped UP
// to a breakpoint, q UP to a quality step, fmt=auto -> jpeg; no w/h = keep the size, at most
// policy.limits.max_output_side on a side), so `w=500&fmt=jpeg&q=90` writes w640-q90.jpeg.
//
// Prints one JSON line: {ms, sharp, vips, concurrency, outputs: [{variant, file, width, height,
// bytes}]}, where ms is the internal wall time from the first sharp call until every file is
// written. Sharp's libvips thread count is left at its default (sharp.concurrency(); 1 per
// pipeline on glibc Linux) unless --concurrency N is given; UV_THREADPOOL_SIZE (default 4) caps
// how many pipelines run at once.

import { readFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import sharp from 'sharp';
import { canonicalize, catalogue, policy } from './policy.mjs';

const USAGE = "usage: node bench/sharp-render.mjs <input> <outdir> [--query 'w=..&h=..&fmt=..&q=..'] [--concurrency N]";

/** Parse argv (`node:util` parseArgs); throws on a usage error. */
function parseCommand(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { help: { type: 'boolean', short: 'h' }, query: { type: 'string' }, concurrency: { type: 'string' } },
    allowPositionals: true,
  });
  if (!values.help && positionals.length !== 2) throw new Error('expected <input> <outdir>');
  const opts = { help: values.help, query: values.query };
  if (values.concurrency !== undefined) opts.concurrency = Number(values.concurrency);
  return { input: positionals[0], outdir: positionals[1], ...opts };
}

/** Add the encoder call for {fmt, q} to a pipeline. */
function encode(pipeline, fmt, q) {
  switch (fmt) {
    case 'avif':
      return pipeline.avif({ quality: q, effort: 0 });
    case 'webp':
      return pipeline.webp({ quality: q });
    case 'jpeg':
      return pipeline.jpeg({ quality: q });
    case 'png':
      return pipeline.png();
    default:
      throw new Error(`unsupported fmt ${fmt}`);
  }
}

/** The jobs to run: [{variant, file, fmt, q, resize: [args] | null}]. */
function jobs(query) {
  if (query === undefined) {
    return catalogue().map((v) => ({
      variant: v.name,
      file: v.file,
      fmt: v.fmt,
      q: v.q,
      resize: v.h
        ? [v.w, v.h, { fit: 'cover', withoutEnlargement: true }]
        : [{ width: v.w, withoutEnlargement: true }],
    }));
  }
  const c = canonicalize(query);
  const max = policy.limits.max_output_side;
  let resize;
  if (c.w && c.h) resize = [c.w, c.h, { fit: 'cover', withoutEnlargement: true }];
  else if (c.w) resize = [{ width: c.w, height: max, fit: 'inside', withoutEnlargement: true }];
  else if (c.h) resize = [{ width: max, height: c.h, fit: 'inside', withoutEnlargement: true }];
  else resize = [{ width: max, height: max, fit: 'inside', withoutEnlargement: true }];
  return [{ variant: 'request', file: c.name, fmt: c.fmt, q: c.q, resize }];
}

async function main() {
  let args;
  try {
    args = parseCommand(process.argv.slice(2));
  } catch (e) {
    console.error(`sharp-render: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  if (args.help) {
    console.log(USAGE);
    return;
  }
  let todo;
  try {
    todo = jobs(args.query);
  } catch (e) {
    console.error(`sharp-render: invalid query: ${e.message}`);
    process.exit(2);
  }
  if (args.concurrency !== undefined) sharp.concurrency(args.concurrency);
  const buf = await readFile(args.input);
  await mkdir(args.outdir, { recursive: true });

  const t0 = performance.now();
  const base = sharp(buf).rotate();
  const outputs = await Promise.all(
    todo.map(async (j) => {
      const info = await encode(base.clone().resize(...j.resize), j.fmt, j.q).toFile(join(args.outdir, j.file));
      return { variant: j.variant, file: j.file, width: info.width, height: info.height, bytes: info.size };
    }),
  );
  const ms = performance.now() - t0;
  console.log(
    JSON.stringify({
      ms: Math.round(ms * 10) / 10,
      sharp: sharp.versions.sharp,
      vips: sharp.versions.vips,
      concurrency: sharp.concurrency(),
      outputs,
    }),
  );
}

main().catch((e) => {
  console.error(`sharp-render: ${e.message}`);
  process.exit(1);
});
