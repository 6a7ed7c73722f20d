//! Mutations, each a pure function of the input and a seeded generator: bit flips (biased to
//! the headers), truncations, header fields set to extremes (sizes, offsets, frame counts,
//! chunk lengths) at the places each format keeps them, and duplicated chunks or frames
//! (up to a thousand copies: frame counts). PNG chunk CRCs are recomputed half of the time so
//! a mutated field reaches the decoder instead of failing the checksum.

use fastrand::Rng;

/// Largest mutated input, bytes (the input limit is 50 MB).
const MAX_LEN: usize = 8 << 20;

/// Apply one to three mutations; returns their names for the report.
pub fn mutate(rng: &mut Rng, input: &[u8]) -> (Vec<u8>, Vec<&'static str>) {
    let mut b = input.to_vec();
    let mut names = Vec::new();
    for _ in 0..rng.usize(1..=3) {
        let name = match rng.u8(0..8) {
            0 | 1 => flip_bits(rng, &mut b),
            2 => truncate(rng, &mut b),
            3..=5 => extreme_field(rng, &mut b),
            _ => duplicate(rng, &mut b),
        };
        names.push(name);
    }
    b.truncate(MAX_LEN);
    if b.starts_with(b"\x89PNG") && rng.bool() {
        fix_png_crcs(&mut b);
        names.push("png-crc-fixed");
    }
    (b, names)
}

fn flip_bits(rng: &mut Rng, b: &mut [u8]) -> &'static str {
    if b.is_empty() {
        return "flip(empty)";
    }
    let head = b.len().min(1024);
    for _ in 0..rng.usize(1..=8) {
        let at = if rng.bool() {
            rng.usize(0..head)
        } else {
            rng.usize(0..b.len())
        };
        b[at] ^= 1 << rng.u8(0..8);
    }
    "bit-flips"
}

fn truncate(rng: &mut Rng, b: &mut Vec<u8>) -> &'static str {
    let len = if rng.bool() {
        rng.usize(0..=b.len().min(256))
    } else {
        rng.usize(0..=b.len())
    };
    b.truncate(len);
    "truncate"
}

/// A header field: offset, width in bytes, big-endian.
type Field = (usize, usize, bool);

/// Where the format keeps sizes, offsets and counts (found by walking chunks and markers).
fn fields(b: &[u8]) -> Vec<Field> {
    let mut f = Vec::new();
    if b.starts_with(b"\x89PNG") {
        for (pos, len, kind) in png_chunks(b) {
            f.push((pos, 4, true)); // chunk length
            let d = pos + 8;
            match &kind {
                b"IHDR" => f.extend([
                    (d, 4, true),
                    (d + 4, 4, true),
                    (d + 8, 1, true),
                    (d + 9, 1, true),
                ]),
                b"acTL" => f.extend([(d, 4, true), (d + 4, 4, true)]),
                b"fcTL" => f.extend((1..5).map(|i| (d + 4 * i, 4, true))),
                _ if len >= 4 => f.push((d, 4, true)),
                _ => {}
            }
        }
    } else if b.starts_with(b"GIF8") {
        f.extend([(6, 2, false), (8, 2, false), (10, 1, false)]);
        // Image descriptors (and anything that looks like one): left, top, width, height, flags.
        for (i, _) in b.iter().enumerate().skip(13).filter(|(_, &x)| x == 0x2C) {
            f.extend([
                (i + 1, 2, false),
                (i + 3, 2, false),
                (i + 5, 2, false),
                (i + 7, 2, false),
                (i + 9, 1, false),
            ]);
        }
    } else if b.starts_with(b"RIFF") {
        f.push((4, 4, false));
        for (pos, _, kind) in riff_chunks(b) {
            f.push((pos + 4, 4, false));
            let d = pos + 8;
            match &kind {
                b"VP8X" => f.extend([(d, 1, false), (d + 4, 3, false), (d + 7, 3, false)]),
                b"ANMF" => f.extend((0..4).map(|i| (d + 3 * i, 3, false))),
                b"VP8 " => f.extend([(d + 6, 2, false), (d + 8, 2, false)]),
                b"VP8L" => f.push((d + 1, 4, false)),
                _ => {}
            }
        }
    } else if b.starts_with(&[0xFF, 0xD8]) {
        // Every marker segment's length; SOFn height, width and component count; SOS count.
        for i in 2..b.len().saturating_sub(9) {
            if b[i] == 0xFF && b[i + 1] >= 0xC0 && b[i + 1] != 0xFF && b[i + 1] != 0xD8 {
                f.push((i + 2, 2, true));
                if matches!(b[i + 1], 0xC0..=0xC3 | 0xC9..=0xCB) {
                    f.extend([(i + 5, 2, true), (i + 7, 2, true), (i + 9, 1, true)]);
                } else if b[i + 1] == 0xDA {
                    f.push((i + 4, 1, true));
                }
            }
        }
    }
    f.retain(|&(at, n, _)| at + n <= b.len());
    f
}

fn extreme_field(rng: &mut Rng, b: &mut [u8]) -> &'static str {
    let fields = fields(b);
    let Some(&(at, n, be)) = (!fields.is_empty()).then(|| &fields[rng.usize(0..fields.len())])
    else {
        return flip_bits(rng, b);
    };
    let max = if n >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    };
    // Extremes, and sizes around the 100 MP limit and the decoders' own maxima.
    let candidates = [
        0,
        1,
        2,
        max,
        max - 1,
        max / 2,
        max / 2 + 1,
        9999,
        10000,
        10001,
        14600,
        16383,
        16384,
        65535,
    ];
    let v = candidates[rng.usize(0..candidates.len())].min(max);
    for (i, &byte) in v.to_le_bytes().iter().take(n).enumerate() {
        let at = if be { at + n - 1 - i } else { at + i };
        b[at] = byte;
    }
    "extreme-field"
}

/// Duplicate a chunk (PNG, RIFF) or a random slice, 1 to 1000 times, right after itself.
fn duplicate(rng: &mut Rng, b: &mut Vec<u8>) -> &'static str {
    let chunks: Vec<(usize, usize)> = if b.starts_with(b"\x89PNG") {
        png_chunks(b)
            .into_iter()
            .map(|(p, l, _)| (p, 12 + l))
            .collect()
    } else if b.starts_with(b"RIFF") {
        riff_chunks(b)
            .into_iter()
            .map(|(p, l, _)| (p, 8 + l + (l & 1)))
            .collect()
    } else {
        Vec::new()
    };
    let (start, len) = match chunks.is_empty() {
        false => chunks[rng.usize(0..chunks.len())],
        true if b.len() > 1 => {
            let s = rng.usize(0..b.len() - 1);
            (s, rng.usize(1..=(b.len() - s).min(4096)))
        }
        true => return "duplicate(empty)",
    };
    let end = (start + len).min(b.len());
    let piece = b[start..end].to_vec();
    let times = if rng.u8(0..4) == 0 {
        rng.usize(2..=1000)
    } else {
        1
    };
    let times = times.min(MAX_LEN / piece.len().max(1));
    let tail = b.split_off(end);
    for _ in 0..times {
        b.extend_from_slice(&piece);
    }
    b.extend(tail);
    if b.starts_with(b"RIFF") && b.len() >= 8 && rng.bool() {
        let size = (b.len() as u32).saturating_sub(8).to_le_bytes();
        b[4..8].copy_from_slice(&size);
    }
    if times > 1 {
        "duplicate-many"
    } else {
        "duplicate"
    }
}

/// PNG chunks as (offset, data length, type); stops at the first that does not fit.
fn png_chunks(b: &[u8]) -> Vec<(usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut pos = 8;
    while let Some(h) = b.get(pos..pos + 8) {
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if pos + 12 + len > b.len() {
            break;
        }
        out.push((pos, len, [h[4], h[5], h[6], h[7]]));
        pos += 12 + len;
    }
    out
}

/// RIFF chunks (top level, and the frames inside `ANMF`) as (offset, data length, fourcc).
fn riff_chunks(b: &[u8]) -> Vec<(usize, usize, [u8; 4])> {
    let mut out = Vec::new();
    let mut stack = vec![(12, b.len())];
    while let Some((mut pos, end)) = stack.pop() {
        while let Some(h) = b.get(pos..pos + 8).filter(|_| pos + 8 <= end) {
            let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
            if pos + 8 + len > end {
                break;
            }
            let kind = [h[0], h[1], h[2], h[3]];
            if &kind == b"ANMF" && len > 16 {
                stack.push((pos + 8 + 16, pos + 8 + len));
            }
            out.push((pos, len, kind));
            pos += 8 + len + (len & 1);
        }
    }
    out
}

/// Recompute every PNG chunk's CRC.
fn fix_png_crcs(b: &mut [u8]) {
    for (pos, len, _) in png_chunks(b) {
        let crc = crc32fast::hash(&b[pos + 4..pos + 8 + len]);
        b[pos + 8 + len..pos + 12 + len].copy_from_slice(&crc.to_be_bytes());
    }
}
