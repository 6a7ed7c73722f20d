#!/usr/bin/env node
//! `node edge/sign.mjs --kid K --secret S [--exp UNIX | --expires-in SECS] '<path>?<query>'`:
//! the edge twin of `pixelfront sign` (cli/src/sign_cmd.rs), same output.
//!
//! Signs with the real CloudFront Function file (`edge/viewer-request.js`, loaded through
//! `edge/harness.mjs`): its `normalize` decides whether the URL is worth signing and its
//! `signedParams` / `sign` build the signature, so a URL made here verifies at the edge by
//! construction and, against `tests/vectors/sign.json`, in Rust.
//!
//! Output: the URI with any `exp`/`kid`/`sig` pieces removed (names matched exactly, other
//! pieces kept in order) and `exp=…&kid=…&sig=…` appended, joined by '&', then a newline.
//!
//! Options: `--kid` (`[A-Za-z0-9_-]{1,64}`), `--secret` (or the environment variable
//! PIXELFRONT_SIGNING_SECRET; arguments show in `ps`), `--exp` / `--expires-at` (absolute,
//! Unix seconds) or `--expires-in` (seconds from now, default 3600); `--opt=value` works too.
//! Exit codes: 0 printed; 2 the URL is rejected (the 400 reason alone on stderr), an expiry the
//! edge would never accept (past, or over 10 digits: the reason alone on stderr), a bad key id
//! or secret, or a usage error (with the usage line); `--help` prints the usage and exits 0.

import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { loadFunction, queryPairs } from './harness.mjs';

const USAGE =
  "usage: node edge/sign.mjs --kid <kid> --secret <secret> [--exp <unix> | --expires-in <secs>] '<path>?<query>'";
const SIGNATURE_PARAMS = ['exp', 'kid', 'sig'];
/** The largest `exp` the edge reads (10 digits), as `MAX_EXP` in shared/src/sign.rs. */
const MAX_EXP = 9999999999;

/**
 * Why a URL expiring at `exp` could never verify at the edge at `now` (both Unix seconds), in
 * the words of shared/src/sign.rs `check_expiry`; undefined when it can.
 */
export function expiryProblem(exp, now) {
  if (exp > MAX_EXP) return `expiry ${exp} is beyond what the edge accepts (at most ${MAX_EXP}, 10 digits)`;
  if (exp <= now) return `expiry ${exp} is not in the future (now is ${now})`;
  return undefined;
}

/** The name of a query piece: before the first '=', or the whole piece. */
function pieceName(piece) {
  const eq = piece.indexOf('=');
  return eq < 0 ? piece : piece.slice(0, eq);
}

/**
 * Sign `'<path>?<query>'` (split on the first '?') with key `kid`/`secret`, expiring at `exp`
 * (Unix seconds, a non-negative safe integer). Returns `{uri}`, `{reject}` (the 400 reason
 * when the edge would refuse the URL anyway) or `{error}` (bad key id or secret).
 */
export function signUri(uri, { kid, secret, exp }) {
  const fn = loadFunction();
  const q = uri.indexOf('?');
  const path = q < 0 ? uri : uri.slice(0, q);
  const query = q < 0 ? '' : uri.slice(q + 1);
  // Only URLs the edge would accept are worth signing (like the Rust sign, Accept unset).
  const n = fn.normalize(path, queryPairs(query), undefined);
  if (n.reject !== undefined) return { reject: n.reject };
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(kid)) return { error: 'key id must be 1-64 characters of [A-Za-z0-9_-]' };
  if (secret === '') return { error: 'secret must not be empty' };
  if (!Number.isSafeInteger(exp) || exp < 0) return { error: 'expiry must be Unix seconds' };
  const kept = query.split('&').filter((p) => p !== '' && !SIGNATURE_PARAMS.includes(pieceName(p)));
  // The normalize check above has refused empty, bare and repeated w/h/fmt/q pieces, so the
  // (name, value) pairs rebuild the raw pieces exactly.
  const sig = fn.sign(secret, path, fn.signedParams(queryPairs(kept.join('&'))), exp, kid);
  return { uri: `${path}?${[...kept, `exp=${exp}&kid=${kid}&sig=${sig}`].join('&')}` };
}

/** The command line's options (`node:util` parseArgs); each may be given once. */
const OPTIONS = {
  kid: { type: 'string', multiple: true },
  secret: { type: 'string', multiple: true },
  exp: { type: 'string', multiple: true },
  'expires-at': { type: 'string', multiple: true },
  'expires-in': { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
};

/** Parse argv into {help} | {kid, secret, exp, expiresIn, uri} | {error}. */
function parseCommand(argv, env) {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true }));
  } catch (e) {
    return { error: e.message };
  }
  if (values.help) return { help: true };
  const got = {};
  for (const [name, key] of [['kid', 'kid'], ['secret', 'secret'], ['exp', 'exp'], ['expires-at', 'exp'], ['expires-in', 'expiresIn']]) {
    for (const value of values[name] ?? []) {
      if (got[key] !== undefined) return { error: `option '--${name}' given more than once` };
      got[key] = value;
    }
  }
  const positional = positionals;
  if (got.kid === undefined) return { error: "missing '--kid'" };
  const secret = got.secret ?? env.PIXELFRONT_SIGNING_SECRET;
  if (secret === undefined) return { error: "missing '--secret' (or PIXELFRONT_SIGNING_SECRET)" };
  if (got.exp !== undefined && got.expiresIn !== undefined) {
    return { error: "'--exp' and '--expires-in' exclude each other" };
  }
  for (const k of ['exp', 'expiresIn']) {
    if (got[k] !== undefined && !(/^[0-9]+$/.test(got[k]) && Number.isSafeInteger(+got[k]))) {
      return { error: `'${k === 'exp' ? '--exp' : '--expires-in'}' takes whole seconds, got '${got[k]}'` };
    }
  }
  if (positional.length !== 1) {
    return { error: positional.length ? 'expected exactly one URI' : "missing '<path>?<query>'" };
  }
  return {
    kid: got.kid,
    secret,
    exp: got.exp === undefined ? undefined : +got.exp,
    expiresIn: got.expiresIn === undefined ? 3600 : +got.expiresIn,
    uri: positional[0],
  };
}

/** Run the CLI; returns the exit code. `now` (Unix seconds) is for tests. */
export function main(argv, { env = process.env, now = Math.floor(Date.now() / 1000), out = process.stdout, err = process.stderr } = {}) {
  const args = parseCommand(argv, env);
  if (args.help) {
    out.write(`${USAGE}\n`);
    return 0;
  }
  if (args.error) {
    err.write(`error: ${args.error}\n${USAGE}\n`);
    return 2;
  }
  const exp = args.exp ?? now + args.expiresIn;
  const problem = expiryProblem(exp, now);
  if (problem !== undefined) {
    err.write(`${problem}\n`);
    return 2;
  }
  const r = signUri(args.uri, { kid: args.kid, secret: args.secret, exp });
  if (r.reject !== undefined) {
    err.write(`${r.reject}\n`);
    return 2;
  }
  if (r.error !== undefined) {
    err.write(`error: ${r.error}\n`);
    return 2;
  }
  out.write(`${r.uri}\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
