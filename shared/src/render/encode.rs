//! Encoders: JPEG (libjpeg-turbo mode of mozjpeg), lossy WebP (libwebp), AVIF (ravif/rav1e),
//! PNG (`png` via `image`). None of them writes EXIF, XMP, GPS or an ICC profile: the pixels
//! are sRGB and the output is untagged, which browsers read as sRGB.
//!
//! Each encoder takes an *encoder setting* (its native quality scale) rather than the public
//! `q`: `calibration.rs` maps every public quality step to the setting that matches the
//! reference encoder's SSIM at that step.

use super::{Image, RenderError};
use crate::policy::Format;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Encoder speed knobs, chosen by measurement (see BENCHMARKS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speed {
    /// AVIF speed 0..=10 (10 = fastest): libaom's `cpu-used` through libavif, or rav1e's preset.
    pub avif: u8,
    /// libwebp `method` 0..=6 (0 = fastest).
    pub webp: i32,
}

impl Default for Speed {
    fn default() -> Self {
        Speed { avif: 10, webp: 4 }
    }
}

/// Encode `img` as `fmt` at encoder setting `setting` (ignored for PNG).
pub fn encode(
    img: &Image,
    fmt: Format,
    setting: f32,
    speed: Speed,
) -> Result<Vec<u8>, RenderError> {
    match fmt {
        Format::Jpeg => encode_jpeg(img, setting),
        Format::Webp => encode_webp(img, setting, speed.webp),
        Format::Avif => encode_avif(img, setting, speed.avif),
        Format::Png => encode_png(img),
    }
}

fn encode_jpeg(img: &Image, quality: f32) -> Result<Vec<u8>, RenderError> {
    let flat;
    let rgb = if img.alpha {
        flat = img.flatten_on_white();
        &flat.data
    } else {
        &img.data
    };
    let run = || -> std::io::Result<Vec<u8>> {
        let mut c = mozjpeg::Compress::new(mozjpeg::ColorSpace::JCS_RGB);
        c.set_fastest_defaults();
        c.set_size(img.width as usize, img.height as usize);
        c.set_quality(quality);
        c.set_optimize_coding(true);
        let mut started = c.start_compress(Vec::with_capacity(rgb.len() / 8))?;
        started.write_scanlines(rgb)?;
        started.finish()
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) => Err(RenderError::internal("encode jpeg", e)),
        Err(_) => Err(RenderError::internal("encode jpeg", "libjpeg error")),
    }
}

fn encode_webp(img: &Image, quality: f32, method: i32) -> Result<Vec<u8>, RenderError> {
    use libwebp_sys as w;
    let fail = |what: &str| RenderError::internal("encode webp", what);
    let mut config = w::WebPConfig::new_with_preset(w::WebPPreset::WEBP_PRESET_DEFAULT, quality)
        .map_err(|()| fail("config"))?;
    config.method = method;
    config.thread_level = 0;
    let mut pic = w::WebPPicture::new().map_err(|()| fail("picture"))?;
    pic.use_argb = 0;
    pic.width = img.width as i32;
    pic.height = img.height as i32;
    let stride = (img.width * img.channels() as u32) as i32;
    // SAFETY: `pic` and `writer` live on this stack frame for the whole call; the pixel slice
    // outlives the import, which copies it; every allocation is freed below on all paths.
    unsafe {
        let imported = if img.alpha {
            w::WebPPictureImportRGBA(&mut pic, img.data.as_ptr(), stride)
        } else {
            w::WebPPictureImportRGB(&mut pic, img.data.as_ptr(), stride)
        };
        if imported == 0 {
            w::WebPPictureFree(&mut pic);
            return Err(fail("import"));
        }
        let mut writer: w::WebPMemoryWriter = std::mem::zeroed();
        w::WebPMemoryWriterInit(&mut writer);
        pic.writer = Some(w::WebPMemoryWrite);
        pic.custom_ptr = (&mut writer as *mut w::WebPMemoryWriter).cast();
        let ok = w::WebPEncode(&config, &mut pic);
        let out = if ok != 0 && !writer.mem.is_null() {
            Ok(std::slice::from_raw_parts(writer.mem, writer.size).to_vec())
        } else {
            Err(RenderError::internal(
                "encode webp",
                format!("error code {:?}", pic.error_code),
            ))
        };
        w::WebPMemoryWriterClear(&mut writer);
        w::WebPPictureFree(&mut pic);
        out
    }
}

/// Which AVIF encoder this build uses: libaom through libavif (the `aom` feature, on by
/// default), or rav1e through ravif when the `rav1e` feature is on (it takes precedence).
pub const AVIF_ENCODER: &str = if cfg!(feature = "rav1e") {
    "rav1e"
} else {
    "libaom"
};

#[cfg(not(any(feature = "aom", feature = "rav1e")))]
compile_error!(
    "pixelfront-shared needs an AVIF encoder: enable the `aom` (default) or `rav1e` feature"
);

#[cfg(all(feature = "aom", not(feature = "rav1e")))]
fn encode_avif(img: &Image, quality: f32, speed: u8) -> Result<Vec<u8>, RenderError> {
    use libavif_sys as a;
    let fail = |what: String| RenderError::internal("encode avif", what);
    // SAFETY: every libavif object is created and destroyed in this block; `rgb.pixels` points
    // into `img.data`, which outlives the conversion (libavif copies into its own planes).
    unsafe {
        let image = a::avifImageCreate(img.width, img.height, 8, a::AVIF_PIXEL_FORMAT_YUV444);
        if image.is_null() {
            return Err(fail("out of memory".into()));
        }
        let mut rgb: a::avifRGBImage = std::mem::zeroed();
        a::avifRGBImageSetDefaults(&mut rgb, image);
        rgb.format = if img.alpha {
            a::AVIF_RGB_FORMAT_RGBA
        } else {
            a::AVIF_RGB_FORMAT_RGB
        };
        rgb.depth = 8;
        rgb.pixels = img.data.as_ptr().cast_mut();
        rgb.rowBytes = img.width * img.channels() as u32;
        let r = a::avifImageRGBToYUV(image, &rgb);
        if r != a::AVIF_RESULT_OK {
            a::avifImageDestroy(image);
            return Err(fail(format!("rgb to yuv: {r}")));
        }
        let encoder = a::avifEncoderCreate();
        if encoder.is_null() {
            a::avifImageDestroy(image);
            return Err(fail("out of memory".into()));
        }
        (*encoder).codecChoice = a::AVIF_CODEC_CHOICE_AOM;
        (*encoder).maxThreads = 1;
        (*encoder).speed = i32::from(speed.min(10));
        let q = quality.clamp(0.0, 100.0).round() as i32;
        (*encoder).quality = q;
        (*encoder).qualityAlpha = q;
        let mut out: a::avifRWData = std::mem::zeroed();
        let r = a::avifEncoderWrite(encoder, image, &mut out);
        let result = if r == a::AVIF_RESULT_OK && !out.data.is_null() {
            Ok(std::slice::from_raw_parts(out.data, out.size).to_vec())
        } else {
            Err(fail(format!("libavif result {r}")))
        };
        a::avifRWDataFree(&mut out);
        a::avifEncoderDestroy(encoder);
        a::avifImageDestroy(image);
        result
    }
}

#[cfg(feature = "rav1e")]
fn encode_avif(img: &Image, quality: f32, speed: u8) -> Result<Vec<u8>, RenderError> {
    use rgb::FromSlice;
    let enc = ravif::Encoder::new()
        .with_quality(quality.clamp(1.0, 100.0))
        .with_alpha_quality(quality.clamp(1.0, 100.0))
        .with_speed(speed)
        .with_num_threads(Some(1))
        .with_bit_depth(ravif::BitDepth::Eight);
    let (w, h) = (img.width as usize, img.height as usize);
    let res = if img.alpha {
        enc.encode_rgba(imgref::Img::new(img.data.as_rgba(), w, h))
    } else {
        enc.encode_rgb(imgref::Img::new(img.data.as_rgb(), w, h))
    };
    res.map(|e| e.avif_file)
        .map_err(|e| RenderError::internal("encode avif", e))
}

fn encode_png(img: &Image) -> Result<Vec<u8>, RenderError> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    let enc = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Default,
        image::codecs::png::FilterType::Adaptive,
    );
    let color = if img.alpha {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    };
    enc.write_image(&img.data, img.width, img.height, color)
        .map_err(|e| RenderError::internal("encode png", e))?;
    Ok(out)
}
