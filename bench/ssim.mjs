// bench/ssim.mjs — mean SSIM on luma, written for Pixelfront's benchmark and calibration tools.
//
//   import { ssim } from './ssim.mjs';
//   const s = ssim(rawA, rawB, width, height, channels);   // -> number in [-1, 1], 1 = identical
//
// What is computed (Wang, Bovik, Sheikh, Simoncelli 2004, "Image quality assessment: from
// error visibility to structural similarity", with the parameters of their reference code):
//
//   * Input: two interleaved 8-bit buffers (Buffer / Uint8Array) of the same size,
//     width * height * channels bytes, channels 1 (gray), 2 (gray + alpha), 3 (RGB) or
//     4 (RGBA). Alpha is ignored: flatten first if it matters. Values are taken as they are
//     stored (8-bit sRGB, gamma-encoded, no linearisation), as every SSIM tool does.
//   * Luma: Y = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601 weights), kept as a float (not
//     rounded); a gray image is its own luma.
//   * Window: 11 x 11 circular-symmetric Gaussian, sigma 1.5, normalised to sum 1, applied
//     separably (horizontal then vertical pass).
//   * Only windows that lie entirely inside the image are used ("valid" filtering, as in the
//     reference MATLAB ssim_index.m with filter2(..., 'valid')): the SSIM map is
//     (width - 10) x (height - 10) and the result is its arithmetic mean. Both sides must be
//     at least 11 pixels.
//   * Constants: L = 255, K1 = 0.01, K2 = 0.03, C1 = (K1 L)^2, C2 = (K2 L)^2;
//     SSIM = ((2 mu_a mu_b + C1)(2 sigma_ab + C2)) / ((mu_a^2 + mu_b^2 + C1)(sigma_a^2 + sigma_b^2 + C2))
//     where mu, sigma^2 and sigma_ab are the Gaussian-weighted local mean, variance and covariance.
//   * No downsampling step (the reference code's optional automatic 2x downsampling for
//     large images is not applied): compare images at the size they are delivered.
//
// Arithmetic is done in float64; memory is O(11 rows), so any image size works.
// Self-test: `node --test bench/test/`.

const WINDOW = 11;
const SIGMA = 1.5;
const K1 = 0.01;
const K2 = 0.03;
const L = 255;
const C1 = (K1 * L) ** 2;
const C2 = (K2 * L) ** 2;

/** The normalised 1-D Gaussian kernel (the 2-D window is its outer product). */
function gaussianKernel(size = WINDOW, sigma = SIGMA) {
  const k = new Float64Array(size);
  const c = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) {
    k[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
    sum += k[i];
  }
  for (let i = 0; i < size; i++) k[i] /= sum;
  return k;
}

const KERNEL = gaussianKernel();

/**
 * Luma plane (Float64Array of width*height) of an interleaved 8-bit image.
 * channels: 1 or 2 -> the gray sample; 3 or 4 -> 0.299R + 0.587G + 0.114B. Alpha ignored.
 */
export function luma(raw, width, height, channels) {
  const n = width * height;
  if (![1, 2, 3, 4].includes(channels)) throw new RangeError(`ssim: unsupported channel count ${channels}`);
  if (raw.length !== n * channels) {
    throw new RangeError(`ssim: buffer has ${raw.length} bytes, expected ${width}x${height}x${channels} = ${n * channels}`);
  }
  const y = new Float64Array(n);
  if (channels < 3) {
    for (let i = 0, p = 0; i < n; i++, p += channels) y[i] = raw[p];
  } else {
    for (let i = 0, p = 0; i < n; i++, p += channels) {
      y[i] = 0.299 * raw[p] + 0.587 * raw[p + 1] + 0.114 * raw[p + 2];
    }
  }
  return y;
}

/** Mean SSIM of two luma planes (Float64Array, width*height each). */
export function ssimLuma(ya, yb, width, height) {
  if (width < WINDOW || height < WINDOW) {
    throw new RangeError(`ssim: image ${width}x${height} is smaller than the ${WINDOW}x${WINDOW} window`);
  }
  if (ya.length !== width * height || yb.length !== width * height) throw new RangeError('ssim: plane size mismatch');
  const ow = width - WINDOW + 1;
  const oh = height - WINDOW + 1;
  const k = KERNEL;
  // Ring buffer of the last WINDOW horizontally filtered rows, for the five local moments:
  // a, b, a*a, b*b, a*b.
  const ring = Array.from({ length: 5 }, () => new Float64Array(WINDOW * ow));
  const [ra, rb, raa, rbb, rab] = ring;
  let total = 0;

  for (let y = 0; y < height; y++) {
    const slot = (y % WINDOW) * ow;
    const row = y * width;
    for (let x = 0; x < ow; x++) {
      let sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
      const base = row + x;
      for (let i = 0; i < WINDOW; i++) {
        const w = k[i];
        const a = ya[base + i];
        const b = yb[base + i];
        sa += w * a;
        sb += w * b;
        saa += w * (a * a);
        sbb += w * (b * b);
        sab += w * (a * b);
      }
      ra[slot + x] = sa;
      rb[slot + x] = sb;
      raa[slot + x] = saa;
      rbb[slot + x] = sbb;
      rab[slot + x] = sab;
    }
    if (y < WINDOW - 1) continue;
    // Vertical pass for output row y - (WINDOW - 1): rows y-10 .. y, weight k[i] for row y-10+i.
    const first = y - (WINDOW - 1);
    const slots = new Int32Array(WINDOW);
    for (let i = 0; i < WINDOW; i++) slots[i] = ((first + i) % WINDOW) * ow;
    for (let x = 0; x < ow; x++) {
      let ma = 0, mb = 0, eaa = 0, ebb = 0, eab = 0;
      for (let i = 0; i < WINDOW; i++) {
        const w = k[i];
        const s = slots[i] + x;
        ma += w * ra[s];
        mb += w * rb[s];
        eaa += w * raa[s];
        ebb += w * rbb[s];
        eab += w * rab[s];
      }
      const maa = ma * ma;
      const mbb = mb * mb;
      const mab = ma * mb;
      const va = eaa - maa;
      const vb = ebb - mbb;
      const cov = eab - mab;
      total += ((2 * mab + C1) * (2 * cov + C2)) / ((maa + mbb + C1) * (va + vb + C2));
    }
  }
  return total / (ow * oh);
}

/**
 * Mean SSIM between two interleaved 8-bit images of the same size and layout.
 * @param {Uint8Array} rawA
 * @param {Uint8Array} rawB
 * @param {number} width
 * @param {number} height
 * @param {number} channels 1, 2, 3 or 4 (alpha ignored)
 * @returns {number}
 */
export function ssim(rawA, rawB, width, height, channels) {
  return ssimLuma(luma(rawA, width, height, channels), luma(rawB, width, height, channels), width, height);
}

export const SSIM_PARAMS = Object.freeze({
  luma: 'Y = 0.299R + 0.587G + 0.114B on 8-bit sRGB values',
  window: 'Gaussian 11x11, sigma 1.5, valid windows only, mean of the SSIM map',
  K1,
  K2,
  L,
});
