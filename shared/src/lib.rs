//! Pixelfront's domain library: the delivery policy, request normalization and the render
//! engine. No AWS and no Lambda runtime here: functions, the CLI and the local stack wire these
//! pure pieces to their adapters.

pub mod normalize;
pub mod policy;
pub mod render;

pub use normalize::{normalize, normalize_uri, Canonical, Normalized, Reject};
pub use policy::{Format, Limits, Policy, Variant};
pub use render::{RenderConfig, RenderError};
