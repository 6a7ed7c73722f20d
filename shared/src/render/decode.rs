//! Decoding: bytes → upright sRGB pixels, once per original.
//!
//! The header is read first and the byte and pixel limits are checked before any pixel is
//! decoded: the canvas, every frame the container declares, and the pixels the decoder will
//! allocate for the one frame it decodes (the first; see `frames`). The decoders are then given
//! memory limits of their own as a second line of defence. JPEG goes through libjpeg-turbo
//! (mozjpeg) with a DCT-domain downscale when the caller needs less than full resolution;
//! PNG, GIF (first frame) and WebP (first frame) through the `image` crate. EXIF orientation
//! is applied, ICC profiles are converted to sRGB and CMYK is converted to RGB; the result
//! carries no metadata at all.

use super::color;
use super::frames;
use super::orient;
use super::sizing::{jpeg_scale_numerator, jpeg_scaled_dim};
use super::sniff::{sniff, InputFormat};
use super::{Image, RenderError};
use crate::policy::Limits;
use image::ImageDecoder;
use std::io::Cursor;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What the header says about an original.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceInfo {
    /// Detected input format.
    pub format: InputFormat,
    /// Width as displayed (after EXIF orientation), pixels.
    pub width: u32,
    /// Height as displayed (after EXIF orientation), pixels.
    pub height: u32,
    /// EXIF orientation 1..=8 (1 when absent).
    pub orientation: u8,
}

/// A decoded original: upright sRGB pixels, possibly DCT-downscaled.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Header facts about the original at full resolution.
    pub source: SourceInfo,
    /// The pixels. May be smaller than `source` when a DCT-domain downscale was used.
    pub image: Image,
}

/// Check the input size limit before touching the bytes.
pub fn check_size(len: u64, limits: &Limits) -> Result<(), RenderError> {
    if len == 0 {
        return Err(RenderError::Empty);
    }
    if len > limits.max_input_bytes {
        return Err(RenderError::TooManyBytes {
            bytes: len,
            limit: limits.max_input_bytes,
        });
    }
    Ok(())
}

fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), RenderError> {
    if u64::from(width) * u64::from(height) > limits.max_input_pixels {
        return Err(RenderError::TooManyPixels {
            width,
            height,
            limit: limits.max_input_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(RenderError::corrupt("image", "zero width or height"));
    }
    Ok(())
}

/// Check what the container headers declare beyond the canvas: every frame against the pixel
/// limit, the first frame against the canvas, and the pixels the decoder allocates to decode
/// the first frame (output, frame buffer, animation canvas) against the pixel limit.
fn check_frames(bytes: &[u8], f: InputFormat, limits: &Limits) -> Result<(), RenderError> {
    let Some(layout) = frames::layout(bytes, f) else {
        return Ok(());
    };
    let limit = limits.max_input_pixels;
    check_pixels(layout.canvas_width, layout.canvas_height, limits)?;
    for (i, frame) in layout.frames.iter().enumerate() {
        if frame.pixels() > limit {
            return Err(RenderError::FramesTooLarge {
                format: f.as_str(),
                what: format!("frame {} ({}x{})", i + 1, frame.width, frame.height),
                pixels: frame.pixels(),
                limit,
            });
        }
    }
    if layout.decode_pixels > limit {
        return Err(RenderError::FramesTooLarge {
            format: f.as_str(),
            what: "decoding the first frame".to_string(),
            pixels: layout.decode_pixels,
            limit,
        });
    }
    if let Some(first) = layout.frames.first() {
        if first.width > layout.canvas_width || first.height > layout.canvas_height {
            return Err(RenderError::corrupt(
                f.as_str(),
                format!(
                    "first frame {}x{} is larger than the {}x{} canvas",
                    first.width, first.height, layout.canvas_width, layout.canvas_height
                ),
            ));
        }
    }
    Ok(())
}

/// Decode `bytes`. `needed_scale` in (0, 1] is the fraction of the full resolution the caller
/// needs (1.0 = full); JPEG decodes at the smallest DCT scale n/8 that is at least that.
pub fn decode(bytes: &[u8], limits: &Limits, needed_scale: f64) -> Result<Decoded, RenderError> {
    check_size(bytes.len() as u64, limits)?;
    match sniff(bytes)? {
        InputFormat::Jpeg => decode_jpeg(bytes, limits, needed_scale),
        f => decode_with_image(bytes, f, limits),
    }
}

/// Read only the header: format, displayed size, orientation; limits checked.
pub fn probe(bytes: &[u8], limits: &Limits) -> Result<SourceInfo, RenderError> {
    check_size(bytes.len() as u64, limits)?;
    match sniff(bytes)? {
        InputFormat::Jpeg => jpeg_guarded(|| {
            let d = jpeg_decompress(bytes)?;
            let (w, h) = (d.width() as u32, d.height() as u32);
            check_pixels(w, h, limits)?;
            let o = jpeg_orientation(&d);
            Ok(source_info(InputFormat::Jpeg, w, h, o))
        }),
        f => {
            check_frames(bytes, f, limits)?;
            let mut dec = image_decoder(bytes, f, limits)?;
            let (w, h) = dec.dimensions();
            check_pixels(w, h, limits)?;
            let o = image_orientation(&mut dec);
            Ok(source_info(f, w, h, o))
        }
    }
}

fn source_info(format: InputFormat, w: u32, h: u32, orientation: u8) -> SourceInfo {
    let (width, height) = if orient::swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    SourceInfo {
        format,
        width,
        height,
        orientation,
    }
}

// ---------------------------------------------------------------------------------------------
// JPEG (libjpeg-turbo via mozjpeg)

/// libjpeg reports fatal errors by unwinding out of its callbacks; this turns every such
/// unwind (and any other) into a typed error, so bad input never aborts the process.
fn jpeg_guarded<T>(f: impl FnOnce() -> Result<T, RenderError>) -> Result<T, RenderError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            if let Some(e) = payload.downcast_ref::<RenderError>() {
                return Err(e.clone());
            }
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "decoder error".to_string());
            Err(RenderError::corrupt("jpeg", msg))
        }
    }
}

unsafe extern "C-unwind" fn jpeg_error_exit(cinfo: &mut mozjpeg_sys::jpeg_common_struct) {
    let code = cinfo.err.as_ref().map(|e| e.msg_code).unwrap_or(-1);
    if code == mozjpeg_sys::JERR_OUT_OF_MEMORY {
        std::panic::resume_unwind(Box::new(RenderError::DecoderLimit { format: "jpeg" }));
    }
    std::panic::resume_unwind(Box::new(format!("libjpeg error {code}")));
}

/// Warnings that mean the data is damaged (truncated file, lost sync): treated as fatal so a
/// truncated upload is rejected instead of rendered half grey.
unsafe extern "C-unwind" fn jpeg_emit_message(
    cinfo: &mut mozjpeg_sys::jpeg_common_struct,
    level: std::os::raw::c_int,
) {
    let code = cinfo.err.as_ref().map(|e| e.msg_code).unwrap_or(-1);
    let fatal = [
        mozjpeg_sys::JWRN_JPEG_EOF,
        mozjpeg_sys::JWRN_HIT_MARKER,
        mozjpeg_sys::JWRN_MUST_RESYNC,
        mozjpeg_sys::JWRN_HUFF_BAD_CODE,
    ];
    if level < 0 && fatal.contains(&code) {
        let what = if code == mozjpeg_sys::JWRN_JPEG_EOF {
            "truncated file (premature end of JPEG data)".to_string()
        } else {
            format!("damaged entropy-coded data (libjpeg warning {code})")
        };
        std::panic::resume_unwind(Box::new(what));
    }
}

fn jpeg_decompress(bytes: &[u8]) -> Result<mozjpeg::Decompress<&[u8]>, RenderError> {
    // SAFETY: jpeg_std_error only fills in the struct's function pointers and fields.
    let mut err: mozjpeg_sys::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { mozjpeg_sys::jpeg_std_error(&mut err) };
    err.error_exit = Some(jpeg_error_exit);
    err.emit_message = Some(jpeg_emit_message);
    const MARKERS: &[mozjpeg::Marker] = &[
        mozjpeg::Marker::APP(1),
        mozjpeg::Marker::APP(2),
        mozjpeg::Marker::APP(14),
    ];
    mozjpeg::Decompress::with_err(err)
        .with_markers(MARKERS)
        .from_mem(bytes)
        .map_err(|e| RenderError::corrupt("jpeg", e))
}

fn jpeg_orientation(d: &mozjpeg::Decompress<&[u8]>) -> u8 {
    d.markers()
        .filter(|m| m.marker == mozjpeg::Marker::APP(1))
        .find_map(|m| orient::exif_orientation(m.data))
        .unwrap_or(1)
}

/// Reassemble an ICC profile from its `ICC_PROFILE\0` APP2 chunks (in sequence order).
fn jpeg_icc(d: &mozjpeg::Decompress<&[u8]>) -> Option<Vec<u8>> {
    let mut chunks: Vec<(u8, &[u8])> = d
        .markers()
        .filter(|m| m.marker == mozjpeg::Marker::APP(2))
        .filter_map(|m| {
            let rest = m.data.strip_prefix(b"ICC_PROFILE\0")?;
            let (&seq, rest) = rest.split_first()?;
            let (_, payload) = rest.split_first()?;
            Some((seq, payload))
        })
        .collect();
    if chunks.is_empty() {
        return None;
    }
    chunks.sort_by_key(|c| c.0);
    Some(
        chunks
            .into_iter()
            .flat_map(|c| c.1.iter().copied())
            .collect(),
    )
}

fn jpeg_is_adobe(d: &mozjpeg::Decompress<&[u8]>) -> bool {
    d.markers()
        .any(|m| m.marker == mozjpeg::Marker::APP(14) && m.data.starts_with(b"Adobe"))
}

fn decode_jpeg(bytes: &[u8], limits: &Limits, needed: f64) -> Result<Decoded, RenderError> {
    jpeg_guarded(|| {
        let mut d = jpeg_decompress(bytes)?;
        let (w, h) = (d.width() as u32, d.height() as u32);
        check_pixels(w, h, limits)?;
        let orientation = jpeg_orientation(&d);
        let icc = jpeg_icc(&d);
        let inverted = jpeg_is_adobe(&d);
        let num = jpeg_scale_numerator(needed);
        d.scale(num);
        let (sw, sh) = (jpeg_scaled_dim(w, num), jpeg_scaled_dim(h, num));
        // The output buffer is reserved fallibly; failing to get it is a memory limit.
        let corrupt = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::OutOfMemory => RenderError::DecoderLimit { format: "jpeg" },
            _ => RenderError::corrupt("jpeg", e),
        };
        let cmyk = matches!(
            d.color_space(),
            mozjpeg::ColorSpace::JCS_CMYK | mozjpeg::ColorSpace::JCS_YCCK
        );
        let gray = d.color_space() == mozjpeg::ColorSpace::JCS_GRAYSCALE;
        let rgb = if cmyk {
            let mut started = d
                .to_colorspace(mozjpeg::ColorSpace::JCS_CMYK)
                .map_err(corrupt)?;
            let px: Vec<u8> = started.read_scanlines().map_err(corrupt)?;
            started.finish().map_err(corrupt)?;
            color::cmyk_to_srgb(&px, icc.as_deref(), inverted)
        } else if gray {
            let mut started = d.grayscale().map_err(corrupt)?;
            let px: Vec<u8> = started.read_scanlines().map_err(corrupt)?;
            started.finish().map_err(corrupt)?;
            px.iter().flat_map(|&g| [g, g, g]).collect()
        } else {
            let mut started = d.rgb().map_err(corrupt)?;
            let mut px: Vec<u8> = started.read_scanlines().map_err(corrupt)?;
            started.finish().map_err(corrupt)?;
            if let Some(icc) = &icc {
                color::rgb_icc_to_srgb(&mut px, false, icc);
            }
            px
        };
        if rgb.len() != sw as usize * sh as usize * 3 {
            return Err(RenderError::corrupt("jpeg", "unexpected decoded size"));
        }
        let img = Image {
            width: sw,
            height: sh,
            alpha: false,
            data: rgb,
        };
        Ok(Decoded {
            source: source_info(InputFormat::Jpeg, w, h, orientation),
            image: orient::apply(img, orientation),
        })
    })
}

// ---------------------------------------------------------------------------------------------
// PNG, GIF, WebP (image crate)

fn image_format(f: InputFormat) -> image::ImageFormat {
    match f {
        InputFormat::Png => image::ImageFormat::Png,
        InputFormat::Gif => image::ImageFormat::Gif,
        InputFormat::Webp => image::ImageFormat::WebP,
        InputFormat::Jpeg => image::ImageFormat::Jpeg,
    }
}

fn image_err(f: InputFormat) -> impl Fn(image::ImageError) -> RenderError {
    move |e| match e {
        image::ImageError::Limits(_) => RenderError::DecoderLimit { format: f.as_str() },
        image::ImageError::Unsupported(u) => RenderError::corrupt(f.as_str(), u),
        other => RenderError::corrupt(f.as_str(), other),
    }
}

fn image_decoder<'a>(
    bytes: &'a [u8],
    f: InputFormat,
    limits: &Limits,
) -> Result<Box<dyn ImageDecoder + 'a>, RenderError> {
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format(f));
    let mut lim = image::Limits::default();
    // What the decoder may reserve: the pixel limit at its widest output (16-bit RGBA for PNG,
    // 8-bit RGBA for GIF and WebP), plus slack for tables. The GIF decoder reserves its frame
    // buffer against this, so a frame larger than the limit fails here even unchecked.
    let bytes_per_pixel = if f == InputFormat::Png { 8 } else { 4 };
    lim.max_alloc = Some(
        limits
            .max_input_pixels
            .saturating_mul(bytes_per_pixel)
            .saturating_add(1 << 24),
    );
    reader.limits(lim);
    let dec = reader.into_decoder().map_err(image_err(f))?;
    Ok(Box::new(dec))
}

fn image_orientation(dec: &mut Box<dyn ImageDecoder + '_>) -> u8 {
    use image::metadata::Orientation as O;
    match dec.orientation() {
        Ok(O::NoTransforms) | Err(_) => 1,
        Ok(O::FlipHorizontal) => 2,
        Ok(O::Rotate180) => 3,
        Ok(O::FlipVertical) => 4,
        Ok(O::Rotate90FlipH) => 5,
        Ok(O::Rotate90) => 6,
        Ok(O::Rotate270FlipH) => 7,
        Ok(O::Rotate270) => 8,
    }
}

fn decode_with_image(
    bytes: &[u8],
    f: InputFormat,
    limits: &Limits,
) -> Result<Decoded, RenderError> {
    check_frames(bytes, f, limits)?;
    let mut dec = image_decoder(bytes, f, limits)?;
    let (w, h) = dec.dimensions();
    check_pixels(w, h, limits)?;
    let orientation = image_orientation(&mut dec);
    let icc = dec.icc_profile().ok().flatten();
    let dynimg = image::DynamicImage::from_decoder(dec).map_err(|e| match e {
        image::ImageError::Limits(_) => RenderError::TooManyPixels {
            width: w,
            height: h,
            limit: limits.max_input_pixels,
        },
        other => image_err(f)(other),
    })?;
    let alpha = dynimg.color().has_alpha();
    let gray = matches!(
        dynimg.color(),
        image::ColorType::L8
            | image::ColorType::La8
            | image::ColorType::L16
            | image::ColorType::La16
    );
    let mut img = if alpha {
        Image {
            width: w,
            height: h,
            alpha: true,
            data: dynimg.into_rgba8().into_raw(),
        }
    } else {
        Image {
            width: w,
            height: h,
            alpha: false,
            data: dynimg.into_rgb8().into_raw(),
        }
    };
    if let (Some(icc), false) = (&icc, gray) {
        color::rgb_icc_to_srgb(&mut img.data, alpha, icc);
    }
    Ok(Decoded {
        source: source_info(f, w, h, orientation),
        image: orient::apply(img, orientation),
    })
}
