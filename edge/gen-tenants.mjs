#!/usr/bin/env node
//! Tenant policies: one tenants file, validated, loaded into both places that read it.
//!
//! The tenants file is a JSON object, tenant id -> policy:
//!
//!     {"acme": {"sign": true, "keys": {"k1": "<secret>", "k2": "<secret>"},
//!               "referers": ["shop.acme.example", "*.acme.example"]}}
//!
//! An optional "on_demand" field ("any", the default; "catalogue"; {"rate_per_minute": N}) is
//! the transformer's on-demand render policy (docs/limits.md); the edge ignores it.
//!
//! The viewer-request CloudFront Function reads a tenant's policy from the distribution's
//! KeyValueStore, the transformer from the manifest table (`pk` = `#tenant/{tenant}`,
//! `sk` = `policy`, attribute `policy`). Both hold the same JSON string, written from here:
//!
//!     node edge/gen-tenants.mjs --tenants <file> --table <manifest table> --out-dir <dir>
//!         writes <dir>/kvs-import.json (the KeyValueStore import file) and
//!         <dir>/dynamodb-batch-<n>.json (batch-write-item requests, at most 25 items each)
//!     node edge/gen-tenants.mjs --tenants <file> --validate
//!         only validates
//!
//! The outputs contain the signing secrets: keep them out of version control.
//! Exit codes: 0 ok, 1 invalid tenants file, 2 usage error or unreadable input.
//! `edge/gen-waf.mjs` builds the WAF web ACL from the same file with `loadTenants`.

import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { commandLine } from './args.mjs';

export const EXAMPLE_TENANTS = fileURLToPath(new URL('../events/tenants.example.json', import.meta.url));

/** docs/url-grammar.md (the path); the same patterns as viewer-request.js and shared/src/sign.rs. */
export const TENANT_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const KID_RE = /^[A-Za-z0-9_-]{1,64}$/;
/** A Referer host entry: `shop.example.com` or `*.example.com` (any letter case). */
export const REFERER_RE = /^(?:\*\.)?[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
/** CloudFront KeyValueStore limits (value size, import file size). */
export const KVS_VALUE_MAX_BYTES = 1024;
export const KVS_FILE_MAX_BYTES = 5 * 1024 * 1024;
/** DynamoDB BatchWriteItem takes at most 25 put requests. */
export const DYNAMO_BATCH_MAX = 25;
/** The manifest table's key attributes and the policy item's sort key (shared/src/store/dynamo.rs). */
export const POLICY_SK = 'policy';
export const policyPk = (tenant) => `#tenant/${tenant}`;

const FIELDS = ['sign', 'keys', 'referers', 'on_demand'];
/** Largest renders-per-minute rate (the transformer reads it as a u32). */
const MAX_RATE = 4294967295;

/** Every problem of a tenants file, one message per line. */
export class TenantsError extends Error {
  constructor(source, errors) {
    super(`${source}: ${errors.length} problem${errors.length === 1 ? '' : 's'}:\n  ${errors.join('\n  ')}`);
    this.errors = errors;
  }
}

const isObject = (x) => !!x && typeof x === 'object' && !Array.isArray(x);
const utf8Bytes = (s) => Buffer.byteLength(s, 'utf8');

/**
 * The policy exactly as it is stored: the three edge fields, in this order, then `on_demand`
 * unless it is the default (`any`), as shared/src/sign.rs serializes it.
 */
export function policyValue(policy) {
  const value = { sign: policy.sign, keys: policy.keys, referers: policy.referers };
  if (policy.on_demand !== undefined && policy.on_demand !== 'any') value.on_demand = policy.on_demand;
  return JSON.stringify(value);
}

/** Whether `v` is an on-demand policy: "any", "catalogue" or {"rate_per_minute": 1..2^32-1}. */
export function validOnDemand(v) {
  if (v === 'any' || v === 'catalogue') return true;
  if (!isObject(v) || Object.keys(v).length !== 1) return false;
  const n = v.rate_per_minute;
  return Number.isInteger(n) && n >= 1 && n <= MAX_RATE;
}

/**
 * Validate parsed tenants (the JSON value) and return them normalized: a Map, sorted by tenant
 * id, of {sign, keys, referers} with absent fields filled in. Throws TenantsError listing
 * every problem.
 */
export function validateTenants(value, source = 'tenants file') {
  const errors = [];
  if (!isObject(value)) throw new TenantsError(source, ['expected a JSON object: tenant id -> policy']);
  const out = new Map();
  for (const tenant of Object.keys(value).sort()) {
    const p = value[tenant];
    const at = `tenant '${tenant}'`;
    if (!TENANT_RE.test(tenant)) {
      errors.push(`${at}: bad tenant id (expected [a-z0-9][a-z0-9-]{0,62})`);
    }
    if (!isObject(p)) {
      errors.push(`${at}: the policy must be an object {"sign", "keys", "referers"}`);
      continue;
    }
    for (const f of Object.keys(p)) {
      if (!FIELDS.includes(f)) errors.push(`${at}: unknown field '${f}' (expected sign, keys, referers, on_demand)`);
    }
    const sign = p.sign ?? false;
    if (typeof sign !== 'boolean') errors.push(`${at}: "sign" must be true or false`);
    const keys = p.keys ?? {};
    if (!isObject(keys)) {
      errors.push(`${at}: "keys" must be an object {key id: secret}`);
    } else {
      for (const [kid, secret] of Object.entries(keys)) {
        if (!KID_RE.test(kid)) errors.push(`${at}: bad key id '${kid}' (expected [A-Za-z0-9_-]{1,64})`);
        if (typeof secret !== 'string' || secret === '') {
          errors.push(`${at}: key '${kid}' needs a non-empty secret string`);
        }
      }
      if (sign === true && Object.keys(keys).length === 0) {
        errors.push(`${at}: "sign" is true but "keys" is empty (every URL would be refused)`);
      }
    }
    const referers = p.referers ?? [];
    if (!Array.isArray(referers)) {
      errors.push(`${at}: "referers" must be an array of hosts`);
    } else {
      const seen = new Set();
      for (const r of referers) {
        if (typeof r !== 'string' || !REFERER_RE.test(r) || r.length > 253) {
          errors.push(
            `${at}: bad referer ${JSON.stringify(r)} (expected a host such as shop.example.com ` +
              'or *.example.com: no scheme, port or path)',
          );
        } else if (seen.has(r.toLowerCase())) {
          errors.push(`${at}: referer '${r}' listed twice`);
        } else {
          seen.add(r.toLowerCase());
        }
      }
    }
    const onDemand = p.on_demand ?? 'any';
    if (!validOnDemand(onDemand)) {
      errors.push(`${at}: "on_demand" must be "any", "catalogue" or {"rate_per_minute": N} with N >= 1`);
    }
    const policy = { sign, keys, referers };
    if (onDemand !== 'any') policy.on_demand = onDemand;
    if (errors.length === 0) {
      const bytes = utf8Bytes(policyValue(policy));
      if (bytes > KVS_VALUE_MAX_BYTES) {
        errors.push(`${at}: the policy is ${bytes} bytes as JSON, over the KeyValueStore limit of ${KVS_VALUE_MAX_BYTES}`);
      }
    }
    out.set(tenant, policy);
  }
  if (errors.length) throw new TenantsError(source, errors);
  return out;
}

/** Parse and validate a tenants file's text. */
export function parseTenants(text, source = 'tenants file') {
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new TenantsError(source, [`not JSON: ${e.message}`]);
  }
  return validateTenants(value, source);
}

/** Read, parse and validate a tenants file (TenantsError when invalid; fs errors as they are). */
export function loadTenants(path) {
  return parseTenants(readFileSync(path, 'utf8'), path);
}

/** The CloudFront KeyValueStore import file: {"data":[{"key":tenant,"value":policy JSON}]}. */
export function kvsImportFile(tenants) {
  const data = [...tenants].map(([key, policy]) => ({ key, value: policyValue(policy) }));
  const text = `{"data":[\n${data.map((d) => '  ' + JSON.stringify(d)).join(',\n')}\n]}\n`;
  if (utf8Bytes(text) > KVS_FILE_MAX_BYTES) {
    throw new Error(`the KeyValueStore import file would be over ${KVS_FILE_MAX_BYTES} bytes`);
  }
  return text;
}

/** The policy item of one tenant, in DynamoDB's attribute-value JSON. */
export function policyItem(tenant, policy) {
  return { pk: { S: policyPk(tenant) }, sk: { S: POLICY_SK }, policy: { S: policyValue(policy) } };
}

/**
 * `aws dynamodb batch-write-item --request-items` documents putting every tenant's policy item
 * into `table`, at most 25 puts each.
 */
export function dynamoBatches(tenants, table) {
  if (typeof table !== 'string' || table === '') throw new Error('the manifest table name is required');
  const puts = [...tenants].map(([t, p]) => ({ PutRequest: { Item: policyItem(t, p) } }));
  const batches = [];
  for (let i = 0; i < puts.length; i += DYNAMO_BATCH_MAX) {
    batches.push({ [table]: puts.slice(i, i + DYNAMO_BATCH_MAX) });
  }
  return batches;
}

/** Write kvs-import.json and dynamodb-batch-<n>.json into `dir`; returns the paths written. */
export function writeOutputs(tenants, table, dir) {
  const batches = dynamoBatches(tenants, table);
  const kvs = kvsImportFile(tenants);
  mkdirSync(dir, { recursive: true });
  // Batches of an earlier run with more tenants would put outdated policies back.
  for (const f of readdirSync(dir)) {
    if (/^dynamodb-batch-\d+\.json$/.test(f)) rmSync(join(dir, f));
  }
  const written = [join(dir, 'kvs-import.json')];
  writeFileSync(written[0], kvs, { mode: 0o600 });
  batches.forEach((b, i) => {
    const path = join(dir, `dynamodb-batch-${i + 1}.json`);
    writeFileSync(path, JSON.stringify(b, null, 2) + '\n', { mode: 0o600 });
    written.push(path);
  });
  return written;
}

const USAGE = [
  'usage: node edge/gen-tenants.mjs --tenants <file> --table <manifest table> --out-dir <dir>',
  '       node edge/gen-tenants.mjs --tenants <file> --validate',
].join('\n');

/** The command line's options (`node:util` parseArgs, through `./args.mjs`). */
const OPTIONS = {
  validate: { type: 'boolean' },
  tenants: { type: 'string' },
  table: { type: 'string' },
  'out-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

function main(argv) {
  const { values, exit } = commandLine(argv, OPTIONS, USAGE);
  if (values === undefined) return exit;
  const opts = values;
  if (!opts.tenants || (!opts.validate && (!opts.table || !opts['out-dir']))) {
    console.error(USAGE);
    return 2;
  }
  let tenants;
  try {
    tenants = loadTenants(opts.tenants);
  } catch (e) {
    console.error(`error: ${e.message}`);
    return e instanceof TenantsError ? 1 : 2;
  }
  if (opts.validate) {
    console.log(`${opts.tenants}: ${tenants.size} tenant${tenants.size === 1 ? '' : 's'}, valid`);
    return 0;
  }
  try {
    for (const path of writeOutputs(tenants, opts.table, opts['out-dir'])) console.log(path);
    return 0;
  } catch (e) {
    console.error(`error: ${e.message}`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
