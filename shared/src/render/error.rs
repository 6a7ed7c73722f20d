//! Render errors: one enum for the whole decode → resize → encode path.
//!
//! Every variant is *permanent*: it is a deterministic function of the input bytes and the
//! request, so retrying cannot help. `error_type()` gives the stable name that the state
//! machine's `Catch`/`ErrorEquals` and the CLI's exit code depend on.

/// Why an image could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Zero bytes of input.
    #[error("empty input")]
    Empty,
    /// The input file is larger than `Limits::max_input_bytes`.
    #[error("input is {bytes} bytes, over the limit of {limit} bytes")]
    TooManyBytes {
        /// Size of the input, bytes.
        bytes: u64,
        /// The limit, bytes.
        limit: u64,
    },
    /// The header declares more pixels than `Limits::max_input_pixels` (checked before decoding).
    #[error("image is {width}x{height} pixels, over the limit of {limit} pixels")]
    TooManyPixels {
        /// Declared width, pixels.
        width: u32,
        /// Declared height, pixels.
        height: u32,
        /// The limit, pixels.
        limit: u64,
    },
    /// A frame the container declares, or the buffers the decoder needs for the first frame
    /// (output, frame buffer, animation canvas), exceed `Limits::max_input_pixels` (checked
    /// from the headers before decoding).
    #[error("{format} image: {what} needs {pixels} pixels, over the limit of {limit} pixels")]
    FramesTooLarge {
        /// Input format name.
        format: &'static str,
        /// Which frame, or `decoding the first frame`.
        what: String,
        /// Declared pixels.
        pixels: u64,
        /// The limit, pixels.
        limit: u64,
    },
    /// The decoder hit its memory limit before the size was known (a header that declares an
    /// allocation larger than the pixel limit allows).
    #[error("{format} image needs more memory than the input limits allow")]
    DecoderLimit {
        /// Input format name.
        format: &'static str,
    },
    /// Not one of the accepted input formats (JPEG, PNG, WebP, GIF).
    #[error("unsupported input: {0}")]
    Unsupported(&'static str),
    /// The bytes claim a supported format but cannot be decoded.
    #[error("corrupt {format} image: {detail}")]
    Corrupt {
        /// Input format name.
        format: &'static str,
        /// Decoder message.
        detail: String,
    },
    /// An encoder or the resizer refused the pixels (should not happen on valid images).
    #[error("{stage} failed: {detail}")]
    Internal {
        /// Which stage (`resize`, `encode webp`, ...).
        stage: &'static str,
        /// Library message.
        detail: String,
    },
}

impl RenderError {
    /// Stable machine-readable error type, used as the Lambda `errorType` that Step Functions
    /// matches. Image errors are all permanent: never retried.
    pub fn error_type(&self) -> &'static str {
        match self {
            RenderError::Empty | RenderError::Corrupt { .. } => "ImageCorrupt",
            RenderError::TooManyBytes { .. }
            | RenderError::TooManyPixels { .. }
            | RenderError::FramesTooLarge { .. }
            | RenderError::DecoderLimit { .. } => "ImageTooLarge",
            RenderError::Unsupported(_) => "ImageUnsupported",
            RenderError::Internal { .. } => "ImageRenderFailed",
        }
    }

    pub(crate) fn corrupt(format: &'static str, detail: impl ToString) -> Self {
        RenderError::Corrupt {
            format,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn internal(stage: &'static str, detail: impl ToString) -> Self {
        RenderError::Internal {
            stage,
            detail: detail.to_string(),
        }
    }
}
