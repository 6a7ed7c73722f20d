//! EXIF orientation: a minimal, bounds-checked reader of the orientation tag (0x0112) from a
//! TIFF/EXIF block, and the eight pixel transforms.
//!
//! Orientation is applied to the decoded pixels before anything else (docs/rendering.md); after it the
//! image is upright and carries no metadata.

use super::Image;

/// Read the EXIF orientation (1..=8) from an EXIF block. `data` may start with the JPEG APP1
/// `Exif\0\0` prefix or directly with the TIFF header. Returns `None` when the block is
/// malformed or has no valid orientation tag (treated as 1 = upright).
pub fn exif_orientation(data: &[u8]) -> Option<u8> {
    let tiff = data.strip_prefix(b"Exif\0\0").unwrap_or(data);
    let big_endian = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |off: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(off..off.checked_add(2)?)?.try_into().ok()?;
        Some(if big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    };
    let u32_at = |off: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(off..off.checked_add(4)?)?.try_into().ok()?;
        Some(if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    for i in 0..count {
        let entry = ifd.checked_add(2)?.checked_add(i.checked_mul(12)?)?;
        if u16_at(entry)? == 0x0112 {
            // Type SHORT (3), count 1: the value sits in the first two bytes of the value field.
            if u16_at(entry + 2)? != 3 {
                return None;
            }
            let v = u16_at(entry + 8)?;
            return (1..=8).contains(&v).then_some(v as u8);
        }
    }
    None
}

/// Whether an orientation swaps width and height (5..=8: transposed).
pub fn swaps_axes(orientation: u8) -> bool {
    (5..=8).contains(&orientation)
}

/// Apply an EXIF orientation (1..=8) to an image; any other value leaves it unchanged.
pub fn apply(img: Image, orientation: u8) -> Image {
    if !(2..=8).contains(&orientation) {
        return img;
    }
    let (w, h, ch) = (img.width as usize, img.height as usize, img.channels());
    let (ow, oh) = if swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    let mut out = vec![0u8; img.data.len()];
    for y in 0..h {
        for x in 0..w {
            // Where the stored pixel (x, y) lands in the upright image.
            let (dx, dy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (h - 1 - y, x),
                7 => (h - 1 - y, w - 1 - x),
                _ => (y, w - 1 - x), // 8
            };
            let s = (y * w + x) * ch;
            let d = (dy * ow + dx) * ch;
            out[d..d + ch].copy_from_slice(&img.data[s..s + ch]);
        }
    }
    Image {
        width: ow as u32,
        height: oh as u32,
        alpha: img.alpha,
        data: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiff(big_endian: bool, orientation: u16, typ: u16) -> Vec<u8> {
        let mut v = Vec::new();
        let p16 = |v: &mut Vec<u8>, x: u16| {
            v.extend(if big_endian {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        let p32 = |v: &mut Vec<u8>, x: u32| {
            v.extend(if big_endian {
                x.to_be_bytes()
            } else {
                x.to_le_bytes()
            })
        };
        v.extend(if big_endian { *b"MM\0*" } else { *b"II*\0" });
        p32(&mut v, 8);
        p16(&mut v, 2); // two entries
        p16(&mut v, 0x010F); // Make, ASCII, ignored
        p16(&mut v, 2);
        p32(&mut v, 4);
        p32(&mut v, 0);
        p16(&mut v, 0x0112);
        p16(&mut v, typ);
        p32(&mut v, 1);
        p16(&mut v, orientation);
        p16(&mut v, 0);
        v
    }

    #[test]
    fn orientation_table() {
        for o in 1..=8u16 {
            assert_eq!(exif_orientation(&tiff(true, o, 3)), Some(o as u8));
            assert_eq!(exif_orientation(&tiff(false, o, 3)), Some(o as u8));
        }
        let mut with_prefix = b"Exif\0\0".to_vec();
        with_prefix.extend(tiff(true, 6, 3));
        assert_eq!(exif_orientation(&with_prefix), Some(6));
        assert_eq!(exif_orientation(&tiff(true, 0, 3)), None);
        assert_eq!(exif_orientation(&tiff(true, 9, 3)), None);
        assert_eq!(exif_orientation(&tiff(true, 6, 4)), None);
        assert_eq!(exif_orientation(b""), None);
        assert_eq!(exif_orientation(b"MM\0*\xff\xff\xff\xff"), None);
        let full = tiff(false, 6, 3);
        // The orientation value ends at byte 32; any shorter block must not be read past.
        for cut in 0..32 {
            assert_eq!(exif_orientation(&full[..cut]), None, "truncated at {cut}");
        }
    }

    /// A 3x2 RGB image whose pixel value encodes its position.
    fn sample() -> Image {
        let data = (0..6u8).flat_map(|i| [i, i, i]).collect();
        Image {
            width: 3,
            height: 2,
            alpha: false,
            data,
        }
    }

    fn firsts(img: &Image) -> Vec<u8> {
        img.data.chunks(3).map(|p| p[0]).collect()
    }

    #[test]
    fn transforms_table() {
        // Stored:  0 1 2 / 3 4 5
        for (o, w, want) in [
            (1u8, 3u32, vec![0, 1, 2, 3, 4, 5]),
            (2, 3, vec![2, 1, 0, 5, 4, 3]),
            (3, 3, vec![5, 4, 3, 2, 1, 0]),
            (4, 3, vec![3, 4, 5, 0, 1, 2]),
            (5, 2, vec![0, 3, 1, 4, 2, 5]),
            (6, 2, vec![3, 0, 4, 1, 5, 2]),
            (7, 2, vec![5, 2, 4, 1, 3, 0]),
            (8, 2, vec![2, 5, 1, 4, 0, 3]),
        ] {
            let out = apply(sample(), o);
            assert_eq!(out.width, w, "orientation {o}");
            assert_eq!(firsts(&out), want, "orientation {o}");
        }
    }
}
