//! Admission control for on-demand renders (SPEC §13, docs/limits.md), the same on both stacks.
//!
//! A render is admitted in two steps, both within one deadline ([`AdmissionConfig::wait`]):
//!
//! 1. a **render slot** ([`Admission::slot`]): at most [`AdmissionConfig::max_renders`] renders
//!    at once (default: the cores). The slot is taken before the original is read, so waiting
//!    requests hold no image bytes;
//! 2. its **memory** ([`Slot::reserve`]): the [`estimate`] of what the render will allocate,
//!    computed from the image header before any pixel is decoded, out of a budget
//!    ([`AdmissionConfig::budget_bytes`]) shared by the renders running at once.
//!
//! A request that gets neither in time fails with [`Overloaded`] (HTTP 503 with `Retry-After`
//! and a short cache TTL). A render whose estimate exceeds the whole budget is admitted alone:
//! it reserves the whole budget, so it runs when nothing else runs and nothing runs beside it
//! (an image within the input limits of SPEC §4 is never refused for its size alone).
//!
//! Both waits are FIFO (tokio's semaphores are fair), so a large render queued first is not
//! starved by smaller ones arriving after it. The [`Permit`] is moved into the blocking render
//! and released when the render ends, by returning, failing or panicking, even when the request
//! that started it has gone away.
//!
//! The precompute pipeline of the local stack renders its uploads through the same gate
//! ([`Admission::queue`], [`estimate_catalogue`]), so uploads and on-demand misses share one
//! budget. An upload is never refused: it waits for its turn instead of failing with 503.
//!
//! Per-tenant on-demand rates ([`crate::sign::OnDemand::RatePerMinute`]) are counted here too
//! ([`Admission::tenant_rate`]), with `governor`'s GCRA limiter, one per tenant.

use crate::policy::Format;
use crate::render::sizing::{jpeg_scale_numerator, jpeg_scaled_dim};
use crate::render::{plan_for, InputFormat, RenderConfig, SourceInfo, Target, DCT_SHRINK_MARGIN};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// One mebibyte, bytes: the budget's unit of account.
pub const MIB: u64 = 1 << 20;

/// Default memory budget of the renders running at once on the local stack, MiB.
pub const DEFAULT_BUDGET_MIB: u64 = 1024;

/// Default longest wait for a render slot and its memory, milliseconds.
pub const DEFAULT_WAIT_MS: u64 = 2000;

/// Default `Retry-After` of an overloaded answer, seconds.
pub const DEFAULT_RETRY_AFTER_S: u32 = 2;

/// Share of a Lambda function's memory given to the render budget, percent (the rest: the
/// runtime, the SDK clients, the original and the answer's body).
pub const LAMBDA_BUDGET_PERCENT: u64 = 70;

/// Decoded bytes per source pixel: 4 for 8-bit RGBA (3 for RGB) plus the transient copy of a
/// colour conversion or an EXIF rotation (measured: a 100 MP RGB PNG peaks at 4.4 bytes per
/// pixel). 16-bit PNGs decode at up to 12 bytes per pixel for a moment; the decoders' own
/// allocation checks (SPEC §4) bound those.
pub const DECODE_BYTES_PER_PIXEL: u64 = 6;

/// Resize buffers per pixel: the RGBA horizontal pass and the RGBA output.
pub const RESIZE_BYTES_PER_PIXEL: u64 = 4;

/// Fixed share of every render (codec state, thread stacks), bytes.
pub const RENDER_OVERHEAD_BYTES: u64 = 8 * MIB;

/// The encoder's working memory per output pixel, bytes: AVIF (libaom: YUV planes, reference
/// and lookahead buffers) is by far the largest.
pub fn encoder_bytes_per_pixel(fmt: Format) -> u64 {
    match fmt {
        Format::Avif => 24,
        Format::Webp | Format::Png => 8,
        Format::Jpeg => 4,
    }
}

/// What one render of `target` from an original of `original_bytes` bytes with header `source`
/// will allocate at its peak, bytes (an estimate, before any pixel is decoded):
///
/// ```text
/// estimate = original_bytes                                   (the compressed input, held)
///          + decoded_w × decoded_h × DECODE_BYTES_PER_PIXEL   (the decode)
///          + decoded_h × out_w × RESIZE_BYTES_PER_PIXEL       (the resize's horizontal pass)
///          + out_w × out_h × RESIZE_BYTES_PER_PIXEL           (the resized image)
///          + out_w × out_h × encoder_bytes_per_pixel(fmt)     (the encoder's share)
///          + RENDER_OVERHEAD_BYTES
/// ```
///
/// `decoded_w × decoded_h` is the source size, except for a JPEG, which is decoded at the DCT
/// scale `n/8` that [`crate::render::decode_for`] picks (the output's needed scale times
/// [`DCT_SHRINK_MARGIN`]); `out_w × out_h` is the output size of [`plan_for`].
pub fn estimate(
    source: &SourceInfo,
    target: &Target,
    cfg: &RenderConfig,
    original_bytes: u64,
) -> u64 {
    let plan = plan_for(source, target, &cfg.limits);
    let (dw, dh) = match source.format {
        InputFormat::Jpeg => {
            let needed = plan.needed_scale();
            let needed = if needed > 0.0 {
                (needed * DCT_SHRINK_MARGIN).min(1.0)
            } else {
                1.0
            };
            let num = jpeg_scale_numerator(needed);
            (
                jpeg_scaled_dim(source.width, num),
                jpeg_scaled_dim(source.height, num),
            )
        }
        _ => (source.width, source.height),
    };
    let (dw, dh) = (u64::from(dw), u64::from(dh));
    let (ow, oh) = (u64::from(plan.out_w), u64::from(plan.out_h));
    original_bytes
        .saturating_add(dw * dh * DECODE_BYTES_PER_PIXEL)
        .saturating_add(dh * ow * RESIZE_BYTES_PER_PIXEL)
        .saturating_add(output_bytes(ow, oh, target.fmt))
        .saturating_add(RENDER_OVERHEAD_BYTES)
}

/// The resized image and the encoder's working memory of an `out_w` × `out_h` output, bytes.
fn output_bytes(out_w: u64, out_h: u64, fmt: Format) -> u64 {
    out_w * out_h * (RESIZE_BYTES_PER_PIXEL + encoder_bytes_per_pixel(fmt))
}

/// What rendering every target of a catalogue from one decode will allocate at its peak, bytes:
/// the largest single-target [`estimate`] (the one decode and that target's own buffers) plus
/// the resize and encoder share of every target, since the rayon pool may encode them all at
/// once. Slightly over the truth (the largest target's output is counted twice), never under.
pub fn estimate_catalogue(
    source: &SourceInfo,
    targets: &[Target],
    cfg: &RenderConfig,
    original_bytes: u64,
) -> u64 {
    let largest = targets
        .iter()
        .map(|t| estimate(source, t, cfg, original_bytes))
        .max()
        .unwrap_or(original_bytes);
    targets.iter().fold(largest, |sum, t| {
        let plan = plan_for(source, t, &cfg.limits);
        sum.saturating_add(output_bytes(
            u64::from(plan.out_w),
            u64::from(plan.out_h),
            t.fmt,
        ))
    })
}

/// Settings of an [`Admission`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Renders at once, >= 1 (0 is taken as 1).
    pub max_renders: usize,
    /// Memory budget of the renders running at once, bytes (counted in whole MiB, at least 1).
    pub budget_bytes: u64,
    /// Longest wait for a render slot and its memory together, before [`Overloaded`].
    pub wait: Duration,
    /// `Retry-After` of the overloaded answer, seconds (>= 1).
    pub retry_after_s: u32,
}

impl Default for AdmissionConfig {
    /// As many renders as cores (`std::thread::available_parallelism`), a budget of
    /// [`DEFAULT_BUDGET_MIB`], a wait of [`DEFAULT_WAIT_MS`] and a `Retry-After` of
    /// [`DEFAULT_RETRY_AFTER_S`].
    fn default() -> Self {
        AdmissionConfig {
            max_renders: std::thread::available_parallelism().map_or(1, |n| n.get()),
            budget_bytes: DEFAULT_BUDGET_MIB * MIB,
            wait: Duration::from_millis(DEFAULT_WAIT_MS),
            retry_after_s: DEFAULT_RETRY_AFTER_S,
        }
    }
}

impl AdmissionConfig {
    /// The defaults for a Lambda function of `memory_mb` MB: as many renders as its vCPUs
    /// (one per 1,769 MB, as the rayon pool) and [`LAMBDA_BUDGET_PERCENT`] of its memory.
    pub fn for_lambda_memory(memory_mb: u32) -> Self {
        AdmissionConfig {
            max_renders: crate::render::sizing::threads_for_lambda_memory(memory_mb),
            budget_bytes: u64::from(memory_mb) * MIB * LAMBDA_BUDGET_PERCENT / 100,
            ..AdmissionConfig::default()
        }
    }
}

/// No render slot or memory within the wait: answered 503 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("overloaded: no render capacity within the wait")]
pub struct Overloaded {
    /// Seconds the client should wait before retrying.
    pub retry_after_s: u32,
}

/// A tenant's on-demand rate is used up: answered 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("on-demand render rate exceeded")]
pub struct RateExceeded {
    /// Seconds until the next render is allowed (>= 1).
    pub retry_after_s: u32,
}

/// Each tenant's on-demand rate limiter, with the rate (renders per minute) it was built for.
type TenantRates = HashMap<String, (NonZeroU32, Arc<DefaultDirectRateLimiter>)>;

/// The render gate: slots, memory budget and per-tenant rates. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Admission {
    cfg: AdmissionConfig,
    slots: Arc<Semaphore>,
    budget: Arc<Semaphore>,
    budget_mib: u32,
    rates: Arc<Mutex<TenantRates>>,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("config", &self.cfg)
            .field("running", &self.running())
            .field("available_bytes", &self.available_bytes())
            .finish_non_exhaustive()
    }
}

impl Default for Admission {
    fn default() -> Self {
        Admission::new(AdmissionConfig::default())
    }
}

/// A render slot, held until the render ends (or dropped, freeing it).
#[derive(Debug)]
pub struct Slot {
    slot: OwnedSemaphorePermit,
    waited: bool,
    deadline: Instant,
    admission: Admission,
}

/// An admitted render: its slot and its share of the budget, released on drop.
#[derive(Debug)]
pub struct Permit {
    _slot: OwnedSemaphorePermit,
    _budget: OwnedSemaphorePermit,
    /// The share of the budget reserved, bytes (the estimate in whole MiB, at most the budget).
    pub reserved_bytes: u64,
}

impl Admission {
    /// A gate with `cfg`.
    pub fn new(cfg: AdmissionConfig) -> Self {
        let budget_mib = u32::try_from(cfg.budget_bytes / MIB)
            .unwrap_or(u32::MAX)
            .max(1);
        Admission {
            cfg,
            slots: Arc::new(Semaphore::new(cfg.max_renders.max(1))),
            budget: Arc::new(Semaphore::new(budget_mib as usize)),
            budget_mib,
            rates: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AdmissionConfig {
        &self.cfg
    }

    /// Renders running (or reading their original) now.
    pub fn running(&self) -> usize {
        self.cfg.max_renders.max(1) - self.slots.available_permits()
    }

    /// Memory of the budget not reserved now, bytes.
    pub fn available_bytes(&self) -> u64 {
        self.budget.available_permits() as u64 * MIB
    }

    /// `estimate` bytes as budget units: whole MiB, at least 1, at most the whole budget.
    fn budget_units(&self, estimate: u64) -> u32 {
        u32::try_from(estimate.div_ceil(MIB))
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget_mib)
    }

    fn overloaded(&self) -> Overloaded {
        Overloaded {
            retry_after_s: self.cfg.retry_after_s.max(1),
        }
    }

    /// Step 1: a render slot, waiting at most [`AdmissionConfig::wait`] (the deadline is kept
    /// for [`Slot::reserve`]).
    pub async fn slot(&self) -> Result<Slot, Overloaded> {
        let deadline = Instant::now() + self.cfg.wait;
        let (slot, waited) = match self.slots.clone().try_acquire_owned() {
            Ok(p) => (p, false),
            Err(_) => {
                let wait = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned());
                match wait.await {
                    Ok(Ok(p)) => (p, true),
                    _ => return Err(self.overloaded()),
                }
            }
        };
        Ok(Slot {
            slot,
            waited,
            deadline,
            admission: self.clone(),
        })
    }

    /// A render slot and `estimate` bytes of the budget, waiting as long as it takes (FIFO
    /// behind the renders already waiting): for work that must not be refused, such as an
    /// accepted upload's standard variants. An estimate over the whole budget reserves the
    /// whole budget.
    pub async fn queue(&self, estimate: u64) -> Permit {
        let mib = self.budget_units(estimate);
        loop {
            // The semaphores are never closed, so these waits end only with a permit.
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                continue;
            };
            let Ok(budget) = self.budget.clone().acquire_many_owned(mib).await else {
                continue;
            };
            return Permit {
                _slot: slot,
                _budget: budget,
                reserved_bytes: u64::from(mib) * MIB,
            };
        }
    }

    /// Counts one on-demand render of `tenant` against `per_minute` renders per minute (a burst
    /// of a minute's worth, then one every `60 s / per_minute`).
    pub fn tenant_rate(&self, tenant: &str, per_minute: NonZeroU32) -> Result<(), RateExceeded> {
        let limiter = {
            let mut rates = self.rates.lock().unwrap_or_else(|e| e.into_inner());
            let entry = rates.entry(tenant.to_string()).or_insert_with(|| {
                (
                    per_minute,
                    Arc::new(RateLimiter::direct(Quota::per_minute(per_minute))),
                )
            });
            if entry.0 != per_minute {
                *entry = (
                    per_minute,
                    Arc::new(RateLimiter::direct(Quota::per_minute(per_minute))),
                );
            }
            entry.1.clone()
        };
        limiter.check().map_err(|not_until| {
            use governor::clock::Clock;
            let wait = not_until.wait_time_from(limiter.clock().now());
            RateExceeded {
                retry_after_s: u32::try_from(wait.as_secs_f64().ceil() as u64)
                    .unwrap_or(u32::MAX)
                    .max(1),
            }
        })
    }
}

impl Slot {
    /// Whether the slot was not free at once (another render may have stored the same
    /// derivative meanwhile: worth looking again).
    pub fn waited(&self) -> bool {
        self.waited
    }

    /// Step 2: reserves `estimate` bytes of the budget (in whole MiB; an estimate over the
    /// whole budget reserves the whole budget), waiting until the slot's deadline.
    pub async fn reserve(self, estimate: u64) -> Result<Permit, Overloaded> {
        let a = &self.admission;
        let mib = a.budget_units(estimate);
        let wait = a.budget.clone().acquire_many_owned(mib);
        match tokio::time::timeout_at(self.deadline, wait).await {
            Ok(Ok(budget)) => Ok(Permit {
                _slot: self.slot,
                _budget: budget,
                reserved_bytes: u64::from(mib) * MIB,
            }),
            _ => Err(a.overloaded()),
        }
    }
}

#[cfg(test)]
mod tests;
