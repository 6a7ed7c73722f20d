//! Colour management: embedded ICC profiles → sRGB (Little CMS), CMYK → sRGB.
//!
//! Outputs carry no profile and are sRGB, which is what every browser assumes for untagged
//! images. A profile that cannot be parsed, or is not an RGB/CMYK profile, is ignored (the
//! pixels are taken as sRGB) rather than failing the render: wrong metadata must not lose an
//! upload. A profile whose description names sRGB is taken as sRGB without a transform.

use lcms2::{
    ColorSpaceSignature, Flags, InfoType, Intent, Locale, PixelFormat, Profile, Transform,
};

fn is_srgb(profile: &Profile) -> bool {
    profile
        .info(InfoType::Description, Locale::none())
        .is_some_and(|d| d.to_ascii_lowercase().contains("srgb"))
}

/// Convert interleaved RGB (or RGBA when `alpha`) 8-bit pixels from the embedded profile `icc`
/// to sRGB in place. Alpha is left untouched.
pub fn rgb_icc_to_srgb(pixels: &mut [u8], alpha: bool, icc: &[u8]) {
    let Ok(src) = Profile::new_icc(icc) else {
        return;
    };
    if src.color_space() != ColorSpaceSignature::RgbData || is_srgb(&src) {
        return;
    }
    let dst = Profile::new_srgb();
    if alpha {
        let Ok(t) = Transform::<[u8; 4], [u8; 4]>::new_flags(
            &src,
            PixelFormat::RGBA_8,
            &dst,
            PixelFormat::RGBA_8,
            Intent::Perceptual,
            Flags::COPY_ALPHA,
        ) else {
            return;
        };
        let (px, _) = pixels.as_chunks_mut::<4>();
        t.transform_in_place(px);
    } else {
        let Ok(t) = Transform::<[u8; 3], [u8; 3]>::new(
            &src,
            PixelFormat::RGB_8,
            &dst,
            PixelFormat::RGB_8,
            Intent::Perceptual,
        ) else {
            return;
        };
        let (px, _) = pixels.as_chunks_mut::<3>();
        t.transform_in_place(px);
    }
}

/// Convert CMYK pixels (4 bytes each, as libjpeg delivers them) to sRGB RGB.
///
/// `inverted` is true for Adobe (APP14) files, which store 255 = no ink. With an embedded CMYK
/// profile the conversion goes through Little CMS; without one a plain subtractive model is
/// used, which keeps colours from coming out inverted or oversaturated.
pub fn cmyk_to_srgb(cmyk: &[u8], icc: Option<&[u8]>, inverted: bool) -> Vec<u8> {
    let (px, _) = cmyk.as_chunks::<4>();
    if let Some(profile) = icc
        .and_then(|icc| Profile::new_icc(icc).ok())
        .filter(|p| p.color_space() == ColorSpaceSignature::CmykData)
    {
        let format = if inverted {
            PixelFormat::CMYK_8_REV
        } else {
            PixelFormat::CMYK_8
        };
        if let Ok(t) = Transform::<[u8; 4], [u8; 3]>::new(
            &profile,
            format,
            &Profile::new_srgb(),
            PixelFormat::RGB_8,
            Intent::Perceptual,
        ) {
            let mut out = vec![[0u8; 3]; px.len()];
            t.transform_pixels(px, &mut out);
            return out.into_flattened();
        }
    }
    px.iter()
        .flat_map(|&[c, m, y, k]| {
            // Ink amounts 0..=255 where 255 = full ink.
            let ink = |v: u8| if inverted { 255 - v } else { v };
            let (c, m, y, k) = (ink(c), ink(m), ink(y), ink(k));
            let chan = |v: u8| ((255 - u32::from(v)) * (255 - u32::from(k)) / 255) as u8;
            [chan(c), chan(m), chan(y)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_cmyk_table() {
        // (stored pixel, inverted) -> rgb
        for (px, inverted, want) in [
            ([0, 0, 0, 0], false, [255, 255, 255]),
            ([255, 255, 255, 255], true, [255, 255, 255]),
            ([0, 0, 0, 255], false, [0, 0, 0]),
            ([255, 255, 255, 0], true, [0, 0, 0]),
            ([255, 0, 0, 0], false, [0, 255, 255]), // cyan
            ([0, 255, 255, 255], true, [0, 255, 255]),
        ] {
            assert_eq!(
                cmyk_to_srgb(&px, None, inverted),
                want.to_vec(),
                "{px:?} {inverted}"
            );
        }
    }

    #[test]
    fn garbage_profile_is_ignored() {
        let mut px = vec![10, 20, 30];
        rgb_icc_to_srgb(&mut px, false, b"not a profile");
        assert_eq!(px, vec![10, 20, 30]);
    }
}
