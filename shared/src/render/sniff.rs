//! Input format detection from magic bytes. The file name and any declared content type are
//! never trusted: an HTML page renamed `.png` is rejected here.

use super::RenderError;

/// An accepted input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// JPEG (baseline, progressive, grayscale, CMYK/YCCK).
    Jpeg,
    /// PNG, every colour type and bit depth.
    Png,
    /// GIF (first frame).
    Gif,
    /// WebP, lossy or lossless (first frame).
    Webp,
}

impl InputFormat {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            InputFormat::Jpeg => "jpeg",
            InputFormat::Png => "png",
            InputFormat::Gif => "gif",
            InputFormat::Webp => "webp",
        }
    }
}

/// Identify the input format, or say what the bytes look like when it is not accepted.
pub fn sniff(bytes: &[u8]) -> Result<InputFormat, RenderError> {
    if bytes.is_empty() {
        return Err(RenderError::Empty);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(InputFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(InputFormat::Png);
    }
    if bytes.starts_with(b"\x89PNG") {
        // A PNG whose signature lost or gained CR/LF bytes (a text-mode transfer): damaged.
        return Err(RenderError::corrupt(
            "png",
            "damaged signature (line endings changed in transfer?)",
        ));
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Ok(InputFormat::Gif);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(InputFormat::Webp);
    }
    if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        return Err(RenderError::Unsupported("ISO-BMFF image (AVIF/HEIC) input"));
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).to_ascii_lowercase();
    if head.contains("<svg") {
        return Err(RenderError::Unsupported("SVG"));
    }
    if head.contains("<html") || head.contains("<!doctype") {
        return Err(RenderError::Unsupported("HTML"));
    }
    Err(RenderError::Unsupported(
        "not a JPEG, PNG, GIF or WebP image",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniff_table() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0rest"), Ok(InputFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Ok(InputFormat::Png));
        assert_eq!(sniff(b"GIF89a...."), Ok(InputFormat::Gif));
        assert!(matches!(
            sniff(b"\x89PNG\r\r\x1a\rrest"),
            Err(RenderError::Corrupt { format: "png", .. })
        ));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Ok(InputFormat::Webp));
        assert_eq!(sniff(b""), Err(RenderError::Empty));
        assert_eq!(
            sniff(b"<?xml version='1.0'?><svg xmlns='x'/>"),
            Err(RenderError::Unsupported("SVG"))
        );
        assert_eq!(
            sniff(b"<!DOCTYPE html><html>"),
            Err(RenderError::Unsupported("HTML"))
        );
        assert!(matches!(
            sniff(b"\0\0\0\x1cftypavif"),
            Err(RenderError::Unsupported(_))
        ));
        assert!(matches!(
            sniff(&[7u8; 64]),
            Err(RenderError::Unsupported(_))
        ));
    }
}
