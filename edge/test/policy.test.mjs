//! The policy copy embedded in viewer-request.js matches shared/policy.json
//! (`gen-policy.mjs --check`), the check really fails on a changed policy, and regenerating
//! the copy really changes what the function does.

import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkPolicy,
  edgePolicy,
  withPolicy,
  DEFAULT_POLICY,
  DEFAULT_FUNCTION,
} from '../gen-policy.mjs';
import { loadFunction, runViewerRequest } from '../harness.mjs';

const GEN = fileURLToPath(new URL('../gen-policy.mjs', import.meta.url));
const policyText = readFileSync(DEFAULT_POLICY, 'utf8');
const fnText = readFileSync(DEFAULT_FUNCTION, 'utf8');

function gen(...args) {
  return spawnSync(process.execPath, [GEN, ...args], { encoding: 'utf8' });
}

/** policy.json with one change applied. */
function modified(change) {
  const p = JSON.parse(policyText);
  change(p);
  return JSON.stringify(p, null, 2);
}

test('gen-policy --check passes on the committed files', () => {
  const r = gen('--check');
  assert.equal(r.status, 0, r.stderr);
});

test('the embedded POLICY equals the edge fields of shared/policy.json', () => {
  const fn = loadFunction();
  assert.deepEqual(JSON.parse(JSON.stringify(fn.POLICY)), edgePolicy(policyText));
});

test('the check logic fails on any changed edge field', () => {
  assert.equal(checkPolicy(fnText, policyText).ok, true);
  for (const change of [
    (p) => (p.breakpoints[8] = 330),
    (p) => p.quality_steps.pop(),
    (p) => (p.default_quality.avif = 65),
    (p) => (p.max_dimension_param = 4096),
    (p) => (p.max_key_bytes = 1024),
  ]) {
    const r = checkPolicy(fnText, modified(change));
    assert.equal(r.ok, false, change.toString());
    assert.notEqual(r.expected, r.actual);
  }
});

test('fields the edge does not use do not make the copy stale', () => {
  const r = checkPolicy(fnText, modified((p) => (p.variants[0].q = 70)));
  assert.equal(r.ok, true);
});

test('a hand-edited copy is stale too', () => {
  const edited = fnText.replace('"max_key_bytes":512', '"max_key_bytes":511');
  assert.notEqual(edited, fnText);
  assert.equal(checkPolicy(edited, policyText).ok, false);
});

test('missing markers are an error, not a pass', () => {
  const stripped = fnText.replace('// END GENERATED POLICY', '');
  assert.throws(() => checkPolicy(stripped, policyText), /markers/);
});

test('CLI: --check exits 1 when stale; regeneration fixes it and changes behaviour', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pixelfront-edge-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fnPath = join(dir, 'viewer-request.js');
  const policyPath = join(dir, 'policy.json');
  writeFileSync(fnPath, fnText);
  writeFileSync(policyPath, modified((p) => (p.max_key_bytes = 100)));
  const paths = ['--policy', policyPath, '--function', fnPath];

  const stale = gen('--check', ...paths);
  assert.equal(stale.status, 1);
  assert.match(stale.stderr, /differs/);

  const write = gen(...paths);
  assert.equal(write.status, 0, write.stderr);
  assert.equal(gen('--check', ...paths).status, 0);
  const regenerated = readFileSync(fnPath, 'utf8');
  assert.equal(regenerated, withPolicy(fnText, readFileSync(policyPath, 'utf8')));

  // The regenerated function enforces the new limit.
  const out = await runViewerRequest({ uri: `/img/acme/v1/${'k'.repeat(101)}`, querystring: '' }, fnPath);
  assert.deepEqual(out.body, { encoding: 'text', data: 'key longer than 100 bytes' });
});

test('CLI: unusable input exits 2', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pixelfront-edge-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const fnPath = join(dir, 'viewer-request.js');
  writeFileSync(fnPath, 'function handler(event) { return event.request; }\n');
  assert.equal(gen('--check', '--function', fnPath).status, 2);
  assert.equal(gen('--bogus').status, 2);
});
