//! `edge/normalize.mjs`, the edge twin of `pixelfront normalize`: exit codes and output.

import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../normalize.mjs', import.meta.url));
const USAGE = "usage: node edge/normalize.mjs [--accept <value>] '<path>?<query>'\n";

function run(...args) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

test('success: prints the derived key and exits 0', () => {
  const r = run(
    '--accept',
    'image/avif,image/webp,image/apng,*/*;q=0.8',
    '/img/acme/v3/photos/cat.jpg?W=287&utm_source=x&fmt=WEBP',
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'acme/v3/photos/cat.jpg/w320-q80.webp\n');
  assert.equal(r.stderr, '');
});

test('success: --accept=VALUE form, and no query at all', () => {
  const r = run('--accept=image/webp', '/img/acme/v1/photos/cat.jpg');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'acme/v1/photos/cat.jpg/q80.webp\n');
  const plain = run('/img/acme/v1/photos/cat.jpg?');
  assert.equal(plain.stdout, 'acme/v1/photos/cat.jpg/q80.jpeg\n');
});

test('reject: prints the 400 reason on stderr and exits 2', () => {
  const r = run('/img/acme/v1/photos/cat.jpg?w=320&W=640');
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'duplicate parameter w\n');
  const path = run('/img/Acme/v1/a.jpg?w=0');
  assert.equal(path.status, 2);
  assert.equal(path.stderr, 'bad tenant\n');
});

test('usage errors exit 2 with the usage line', () => {
  for (const args of [[], ['--accept'], ['--bogus', '/img/a/v1/b'], ['/img/a/v1/b', '/img/a/v1/c']]) {
    const r = run(...args);
    assert.equal(r.status, 2, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^error: /);
    assert.ok(r.stderr.endsWith(USAGE), r.stderr);
  }
});

test('--help prints the usage and exits 0', () => {
  const r = run('--help');
  assert.equal(r.status, 0);
  assert.equal(r.stdout, USAGE);
  assert.equal(r.stderr, '');
});
