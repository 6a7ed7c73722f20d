#!/usr/bin/env node
//! `node edge/normalize.mjs [--accept <value>] '<path>?<query>'`: the edge twin of
//! `pixelfront normalize` (docs/url-grammar.md), same arguments, same output.
//!
//! Runs the real CloudFront Function file (`edge/viewer-request.js`) through the event harness
//! (`edge/harness.mjs`), never a copy of its logic. Prints the derived object key (no leading
//! slash) and exits 0; on a rejection prints the 400 reason to stderr and exits 2; a usage
//! error prints the problem and the usage line to stderr and exits 2; `--help` prints the usage
//! to stdout and exits 0.

import { parseArgs } from 'node:util';
import { runViewerRequest, splitUri } from './harness.mjs';

const USAGE = "usage: node edge/normalize.mjs [--accept <value>] '<path>?<query>'";

/** Parse argv into {help} | {accept, uri} | {error} (`node:util` parseArgs). */
function parseCommand(argv) {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { accept: { type: 'string', multiple: true }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
    }));
  } catch (e) {
    return { error: e.message };
  }
  if (values.help) return { help: true };
  if ((values.accept?.length ?? 0) > 1) return { error: "option '--accept' given more than once" };
  const accept = values.accept?.[0];
  const positional = positionals;
  if (positional.length !== 1) {
    return { error: positional.length ? 'expected exactly one URI' : "missing '<path>?<query>'" };
  }
  return { accept, uri: positional[0] };
}

async function main(argv) {
  const args = parseCommand(argv);
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.error) {
    process.stderr.write(`error: ${args.error}\n${USAGE}\n`);
    return 2;
  }
  // Like the Rust normalize_uri: the query is everything after the first '?'. No tenant
  // policy here (an empty KeyValueStore): normalization only, as `pixelfront normalize`.
  const result = await runViewerRequest({ ...splitUri(args.uri), accept: args.accept });
  if (result.statusCode === 400) {
    process.stderr.write(`${result.body.data}\n`);
    return 2;
  }
  if (typeof result.uri === 'string' && result.uri.startsWith('/') && result.statusCode === undefined) {
    process.stdout.write(`${result.uri.slice(1)}\n`);
    return 0;
  }
  process.stderr.write(`error: unexpected function result ${JSON.stringify(result)}\n`);
  return 1;
}

process.exitCode = await main(process.argv.slice(2));
