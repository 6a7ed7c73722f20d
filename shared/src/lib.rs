//! Pixelfront's domain library: the delivery policy, request normalization, the render engine,
//! the precompute pipeline and the takedown steps over narrow storage ports. The domain never imports an SDK:
//! the AWS adapters sit behind the `aws` feature, and the functions, the CLI and the local
//! stack wire the pieces to their adapters.

pub mod alloc;
pub mod api;
pub mod delivery;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod metrics;
pub mod normalize;
pub mod pipeline;
pub mod policy;
pub mod removal;
pub mod render;
pub mod sign;
pub mod store;
pub mod tenants;

pub use normalize::{normalize, normalize_uri, Canonical, Normalized, Reject};
pub use policy::{Format, Limits, Policy, Variant};
pub use render::{RenderConfig, RenderError};
