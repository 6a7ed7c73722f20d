#!/usr/bin/env node
//! Embeds the delivery policy into the CloudFront Function.
//!
//! The function cannot read files at the edge, so `viewer-request.js` carries a generated copy
//! of the numbers it needs from `shared/policy.json` (the single source of truth, also embedded
//! by the Rust `shared` crate): one compact `var POLICY = {...};` line between the marker
//! comments `// BEGIN GENERATED POLICY` and `// END GENERATED POLICY`.
//!
//!     node edge/gen-policy.mjs           rewrite the block (no-op when already current)
//!     node edge/gen-policy.mjs --check   exit 1 if the embedded copy differs from the file
//!
//! `--policy <file>` and `--function <file>` override the two paths (used by the tests).
//! Exit codes: 0 ok, 1 stale (`--check`), 2 usage error or unusable input.
//! The exported helpers let tests run the check logic on modified inputs.

import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { commandLine } from './args.mjs';

export const BEGIN = '// BEGIN GENERATED POLICY';
export const END = '// END GENERATED POLICY';
export const DEFAULT_POLICY = fileURLToPath(new URL('../shared/policy.json', import.meta.url));
export const DEFAULT_FUNCTION = fileURLToPath(new URL('./viewer-request.js', import.meta.url));

/** The fields the edge needs, in a fixed order, validated enough to fail loudly. */
export function edgePolicy(policyJsonText) {
  const p = JSON.parse(policyJsonText);
  const ints = (xs) => Array.isArray(xs) && xs.length > 0 && xs.every(Number.isInteger);
  const sorted = (xs) => xs.every((x, i) => i === 0 || xs[i - 1] < x);
  if (!ints(p.breakpoints) || !sorted(p.breakpoints)) throw new Error('policy: bad breakpoints');
  if (!ints(p.quality_steps) || !sorted(p.quality_steps)) throw new Error('policy: bad quality_steps');
  const dq = p.default_quality ?? {};
  for (const f of ['jpeg', 'webp', 'avif']) {
    if (!Number.isInteger(dq[f])) throw new Error(`policy: bad default_quality.${f}`);
  }
  for (const k of ['max_dimension_param', 'max_key_bytes']) {
    if (!Number.isInteger(p[k])) throw new Error(`policy: bad ${k}`);
  }
  return {
    breakpoints: p.breakpoints,
    quality_steps: p.quality_steps,
    default_quality: { jpeg: dq.jpeg, webp: dq.webp, avif: dq.avif },
    max_dimension_param: p.max_dimension_param,
    max_key_bytes: p.max_key_bytes,
  };
}

/** The generated text that belongs between the markers. */
export function generatedBlock(policyJsonText) {
  return `var POLICY = ${JSON.stringify(edgePolicy(policyJsonText))};\n`;
}

/** Locate the block: [start, end) of the text between the BEGIN line and the END marker. */
function blockRange(fnText) {
  const b = fnText.indexOf(BEGIN);
  const start = b < 0 ? -1 : fnText.indexOf('\n', b) + 1;
  const end = start <= 0 ? -1 : fnText.indexOf(END, start);
  if (b < 0 || start <= 0 || end < 0) throw new Error('function: policy markers not found');
  if (fnText.indexOf(BEGIN, b + 1) >= 0) throw new Error('function: policy markers repeated');
  return [start, end];
}

/** Compare the embedded block with the policy: {ok, expected, actual}. */
export function checkPolicy(fnText, policyJsonText) {
  const [start, end] = blockRange(fnText);
  const expected = generatedBlock(policyJsonText);
  const actual = fnText.slice(start, end);
  return { ok: actual === expected, expected, actual };
}

/** The function text with the block regenerated. */
export function withPolicy(fnText, policyJsonText) {
  const [start, end] = blockRange(fnText);
  return fnText.slice(0, start) + generatedBlock(policyJsonText) + fnText.slice(end);
}

const USAGE = 'usage: node edge/gen-policy.mjs [--check] [--policy <file>] [--function <file>]';

/** The command line's options (`node:util` parseArgs, through `./args.mjs`). */
const OPTIONS = {
  check: { type: 'boolean', default: false },
  policy: { type: 'string', default: DEFAULT_POLICY },
  function: { type: 'string', default: DEFAULT_FUNCTION },
  help: { type: 'boolean', short: 'h' },
};

function main(argv) {
  const { values, exit } = commandLine(argv, OPTIONS, USAGE);
  if (values === undefined) return exit;
  const { check, policy: policyPath, function: fnPath } = values;
  let fnText, policyText;
  try {
    fnText = readFileSync(fnPath, 'utf8');
    policyText = readFileSync(policyPath, 'utf8');
    if (check) {
      if (checkPolicy(fnText, policyText).ok) return 0;
      console.error(`${fnPath}: embedded policy differs from ${policyPath}; run node edge/gen-policy.mjs`);
      return 1;
    }
    const next = withPolicy(fnText, policyText);
    if (next !== fnText) writeFileSync(fnPath, next);
    console.log(next === fnText ? `${fnPath}: policy up to date` : `${fnPath}: policy updated`);
    return 0;
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
