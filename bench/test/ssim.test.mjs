// bench/test/ssim.test.mjs — self-test of bench/ssim.mjs. Run: node --test bench/test/
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ssim, luma, ssimLuma } from '../ssim.mjs';

/** A deterministic RGB test picture: gradients plus a pattern, w x h x 3. */
function picture(w, h) {
  const raw = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = (y * w + x) * 3;
      raw[p] = (x * 255) / (w - 1);
      raw[p + 1] = (y * 255) / (h - 1);
      raw[p + 2] = ((x ^ y) & 16) ? 200 : 40;
    }
  }
  return raw;
}

/** Seeded PRNG (mulberry32) so the noisy copy is the same every run. */
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function noisy(raw, amplitude, seed = 1) {
  const r = rng(seed);
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    out[i] = Math.max(0, Math.min(255, Math.round(raw[i] + (r() * 2 - 1) * amplitude)));
  }
  return out;
}

const W = 64;
const H = 48;

test('identical images give exactly 1', () => {
  const a = picture(W, H);
  assert.equal(ssim(a, Uint8Array.from(a), W, H, 3), 1);
  const flat = new Uint8Array(W * H * 3).fill(128);
  assert.equal(ssim(flat, flat, W, H, 3), 1);
});

test('a noisy copy scores below 1, more noise scores lower', () => {
  const a = picture(W, H);
  const s1 = ssim(a, noisy(a, 10), W, H, 3);
  const s2 = ssim(a, noisy(a, 40), W, H, 3);
  assert.ok(s1 < 1 && s1 > 0.5, `s1=${s1}`);
  assert.ok(s2 < s1, `s2=${s2} s1=${s1}`);
});

test('symmetric', () => {
  const a = picture(W, H);
  const b = noisy(a, 25, 7);
  assert.equal(ssim(a, b, W, H, 3), ssim(b, a, W, H, 3));
});

test('RGBA ignores alpha and gray equals its luma', () => {
  const a = picture(W, H);
  const b = noisy(a, 20, 3);
  const rgba = (rgb, alpha) => {
    const out = new Uint8Array(W * H * 4);
    for (let i = 0; i < W * H; i++) {
      out.set(rgb.subarray(i * 3, i * 3 + 3), i * 4);
      out[i * 4 + 3] = alpha;
    }
    return out;
  };
  assert.equal(ssim(rgba(a, 255), rgba(b, 0), W, H, 4), ssim(a, b, W, H, 3));
  const ya = luma(a, W, H, 3);
  assert.ok(Math.abs(ya[W * H - 1] - (0.299 * 255 + 0.587 * 255 + 0.114 * a[(W * H - 1) * 3 + 2])) < 1e-9);
  assert.equal(ssimLuma(ya, ya, W, H), 1);
});

test('rejects mismatched buffers and images smaller than the window', () => {
  assert.throws(() => ssim(new Uint8Array(10), new Uint8Array(10), W, H, 3), RangeError);
  const tiny = new Uint8Array(10 * 10 * 3);
  assert.throws(() => ssim(tiny, tiny, 10, 10, 3), RangeError);
});
