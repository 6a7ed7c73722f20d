#!/usr/bin/env node
//! Minifies the viewer-request CloudFront Function for the template: `edge/viewer-request.js`
//! (the readable source, with its comments and the generated policy) becomes
//! `edge/viewer-request.min.js`, the file `edge/gen-template.mjs` embeds and the tests run
//! (`PIXELFRONT_EDGE_FUNCTION=edge/viewer-request.min.js node --test edge/test/`). CloudFront
//! takes at most 10,240 bytes of function code; the source is near that, the minified copy far
//! below it.
//!
//!     node edge/minify.mjs           write the minified copy (no-op when current)
//!     node edge/minify.mjs --check   exit 1 if the minified copy differs from a fresh one
//!
//! terser (pinned in the root package.json) compresses and shortens local names only: the
//! top-level names stay (the runtime calls `handler`; the tests read `normalize`, `POLICY`), the
//! two imports are written back one per line in the one form the runtime and the harness take,
//! and the output is ASCII only, so the YAML block of the template carries it verbatim.
//! Exit codes: 0 ok, 1 stale (`--check`), 2 usage error or unusable input.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { minify } from 'terser';
import { commandLine } from './args.mjs';

export const SOURCE = fileURLToPath(new URL('./viewer-request.js', import.meta.url));
export const MINIFIED = fileURLToPath(new URL('./viewer-request.min.js', import.meta.url));

/** terser's options: a module, names kept at the top level, no comments, ASCII output. */
const OPTIONS = {
  module: false,
  ecma: 2020,
  compress: { toplevel: false, passes: 2 },
  mangle: { toplevel: false },
  format: { comments: false, ascii_only: true, max_line_len: 400 },
};

// `import NAME from "MODULE";` as terser prints it, at the start of the output.
const IMPORT = /^import ([A-Za-z_$][\w$]*) from ?["']([^"']+)["'];\n?/;

/** The minified copy of `code` (the function's source): the imports, then the body. */
export async function minifyFunction(code) {
  const out = await minify(code, OPTIONS);
  let rest = out.code;
  const imports = [];
  for (let m = rest.match(IMPORT); m; m = rest.match(IMPORT)) {
    imports.push(`import ${m[1]} from '${m[2]}';\n`);
    rest = rest.slice(m[0].length);
  }
  if (/\bimport\b\s*[\w{*]/.test(rest.slice(0, 200))) throw new Error('minify: an import terser moved');
  return `${imports.join('')}${rest}\n`;
}

const USAGE = 'usage: node edge/minify.mjs [--check] [--source <file>] [--out <file>]';

async function main(argv) {
  const { values, exit } = commandLine(argv, {
    check: { type: 'boolean', default: false },
    source: { type: 'string', default: SOURCE },
    out: { type: 'string', default: MINIFIED },
    help: { type: 'boolean', short: 'h' },
  }, USAGE);
  if (values === undefined) return exit;
  try {
    const fresh = await minifyFunction(readFileSync(values.source, 'utf8'));
    let current = null;
    try {
      current = readFileSync(values.out, 'utf8');
    } catch {
      current = null;
    }
    if (values.check) {
      if (current === fresh) return 0;
      console.error(`${values.out} is not the minified ${values.source}; run node edge/minify.mjs`);
      return 1;
    }
    if (current !== fresh) writeFileSync(values.out, fresh);
    const source = Buffer.byteLength(readFileSync(values.source, 'utf8'));
    console.log(`${values.out}: ${Buffer.byteLength(fresh)} bytes (source ${source} bytes)${current === fresh ? ', up to date' : ''}`);
    return 0;
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
