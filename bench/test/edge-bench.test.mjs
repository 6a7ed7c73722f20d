// bench/test/edge-bench.test.mjs — smoke test of bench/edge-bench.mjs. Run: node --test bench/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BENCH = fileURLToPath(new URL('../edge-bench.mjs', import.meta.url));
const SIGN_CASES = JSON.parse(readFileSync(new URL('../../tests/vectors/sign.json', import.meta.url), 'utf8')).cases.length;
const run = (...args) => spawnSync(process.execPath, [BENCH, ...args], { encoding: 'utf8' });

test('--seconds 0.2 --json: file size and four groups with positive rates', () => {
  const r = run('--seconds', '0.2', '--json');
  assert.equal(r.status, 0, r.stderr);
  const res = JSON.parse(r.stdout);
  assert.equal(res.file.path, 'edge/viewer-request.min.js', 'what CloudFront runs');
  assert.ok(Number.isInteger(res.file.bytes) && res.file.bytes > 0 && res.file.bytes <= 10240, `${res.file.bytes}`);
  assert.equal(res.file.limit, 10240);
  assert.equal(res.file.percentOfLimit, Math.round((res.file.bytes / 10240) * 1000) / 10);
  assert.equal(res.seconds, 0.2);
  assert.equal(res.budgetUs, 1000);
  assert.deepEqual(Object.keys(res.groups), ['unsignedAccepted', 'unsignedRejected', 'signedAccepted', 'mix']);
  for (const [name, g] of Object.entries(res.groups)) {
    assert.deepEqual(Object.keys(g), ['cases', 'requests', 'opsPerSec', 'meanUs', 'p50Us', 'p99Us', 'maxUs'], name);
    assert.ok(g.cases > 0 && g.requests > 0, name);
    assert.ok(g.opsPerSec > 0, `${name}: ${g.opsPerSec} ops/s`);
    assert.ok(g.meanUs > 0 && g.p50Us <= g.p99Us && g.p99Us <= g.maxUs, name);
  }
  assert.equal(res.groups.mix.cases, res.groups.unsignedAccepted.cases + res.groups.unsignedRejected.cases + SIGN_CASES);
});

test('usage: a bad --seconds exits 2; --help exits 0', () => {
  for (const args of [['--seconds', '0'], ['--seconds', 'x'], ['--seconds'], ['--bogus']]) {
    const r = run(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.match(r.stderr, /^error: .*\nusage: node bench\/edge-bench\.mjs/);
  }
  const help = run('--help');
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: /);
});
