//! Uploads: `PUT /originals/{tenant}/{key}`, `--ingest <folder>` and the renders a killed
//! process left unfinished. Each stores the next version of the original and hands it to the
//! pipeline's one entry point, `Pipeline::render_or_fail`, with the state machine's retry
//! ([`Retry::STATE_MACHINE`]): what the precompute workflow does on AWS, in-process.

use crate::metrics::RenderKind;
use crate::routes::{json, text, unavailable, App};
use crate::stack::LOCAL_BUCKET;
use crate::LocalError;
use axum::body::Body;
use axum::response::Response;
use pixelfront_shared::delivery::etag_of;
use pixelfront_shared::normalize::{valid_key, valid_tenant};
use pixelfront_shared::pipeline::{Action, Job, PipelineError, RenderReport, Retry};
use pixelfront_shared::store::sqlite::blocking;
use pixelfront_shared::store::SourceRef;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Why an original was not accepted, as an HTTP answer.
pub(crate) enum Refused {
    /// 503: a store failed (detail logged).
    Unavailable(&'static str, String),
}

impl Refused {
    /// The answer: 503 naming the store (the detail goes to the log).
    pub(crate) fn response(self) -> Response {
        match self {
            Refused::Unavailable(what, detail) => unavailable(what, &detail),
        }
    }
}

/// An ingested file's key: its name with anything outside `[A-Za-z0-9._~-]` replaced by `-`.
fn key_of_file(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._~-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl App {
    /// `PUT /originals/{tenant}/{key}` (admin): store the next version, assign it, render in
    /// the background; 202 with the version.
    pub async fn upload(self: &Arc<Self>, body: Body, rest: &str) -> Response {
        let Some((tenant, key)) = rest.split_once('/') else {
            return text(400, "expected /originals/{tenant}/{key}");
        };
        if !valid_tenant(tenant) {
            return text(400, "bad tenant");
        }
        if !valid_key(key) {
            return text(400, "bad key");
        }
        let limit = self.stack.pipeline.config.limits.max_input_bytes;
        let body = match self
            .read_body(body, usize::try_from(limit).unwrap_or(usize::MAX))
            .await
        {
            Ok(body) => body,
            Err(resp) => return resp,
        };
        let job = match self.accept_original(tenant, key, &body).await {
            Ok(job) => job,
            Err(refused) => return refused.response(),
        };
        self.metrics.upload();
        let reply = serde_json::json!({
            "tenant": tenant,
            "key": key,
            "version": job.version,
            "status": job.status.as_str(),
            "manifest": format!("/manifest/{tenant}/{key}"),
        });
        if job.action == Action::Render {
            self.spawn_render(job);
        }
        json(202, &reply)
    }

    /// Stores `body` as the next version of `{tenant}/{key}` (creating the tenant with the
    /// defaults on its first upload) and assigns its manifest version.
    pub(crate) async fn accept_original(
        &self,
        tenant: &str,
        key: &str,
        body: &[u8],
    ) -> Result<Job, Refused> {
        // A file lock, a write and fsyncs: off the async workers.
        blocking(|| self.stack.tenants.ensure(tenant))
            .map_err(|e| Refused::Unavailable("tenants file", e))?;
        let object_key = format!("{tenant}/{key}");
        let version_id = self
            .stack
            .originals
            .put_version(&object_key, body.to_vec())
            .await
            .map_err(|e| Refused::Unavailable("storage", e.to_string()))?;
        let source = SourceRef {
            bucket: LOCAL_BUCKET.to_string(),
            key: object_key,
            version_id: Some(version_id),
            etag: Some(etag_of(body).trim_matches('"').to_string()),
            size: body.len() as u64,
        };
        self.stack
            .pipeline
            .assign(source)
            .await
            .map_err(|e| Refused::Unavailable("manifest", e.to_string()))
    }

    /// Renders the standard variants of `job` or records why not, counting the renders.
    async fn render_job(&self, job: &Job) -> Result<RenderReport, PipelineError> {
        let result = self
            .stack
            .pipeline
            .render_or_fail(job, Retry::STATE_MACHINE)
            .await;
        match &result {
            Ok(report) => {
                for v in &report.variants {
                    self.metrics
                        .render(RenderKind::Standard, v.variant.render_ms);
                }
                tracing::info!(asset = %job.asset, version = job.version, ms = report.total_ms, status = report.status.as_str(), "rendered");
            }
            Err(e) => {
                tracing::warn!(asset = %job.asset, version = job.version, error = %e, "render failed")
            }
        }
        result
    }

    /// Renders `job` on a background task (graceful shutdown waits for it).
    pub fn spawn_render(self: &Arc<Self>, job: Job) {
        let app = self.clone();
        app.renders.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let _ = app.render_job(&job).await;
            app.renders.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Renders again the versions a killed process left `rendering`.
    pub async fn resume_unfinished(self: &Arc<Self>) -> Result<(), LocalError> {
        for source in self.stack.unfinished().map_err(LocalError::Io)? {
            match self.stack.pipeline.assign(source).await {
                Ok(job) if job.action == Action::Render => {
                    tracing::info!(asset = %job.asset, version = job.version, "resuming an interrupted render");
                    self.spawn_render(job);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot resume a render"),
            }
        }
        Ok(())
    }

    /// `--ingest <folder>`: uploads every image of the folder as tenant `demo`, renders them,
    /// and prints a table of the manifests with URLs to open.
    pub async fn ingest(
        self: &Arc<Self>,
        dir: &std::path::Path,
        base: &str,
    ) -> Result<(), LocalError> {
        let io = |what: &std::path::Path, e: std::io::Error| {
            LocalError::Io(format!("{}: {e}", what.display()))
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(
                        e.to_ascii_lowercase().as_str(),
                        "jpg" | "jpeg" | "png" | "gif" | "webp" | "avif"
                    )
                })
            })
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(LocalError::Rejected(format!(
                "{}: no .jpg, .jpeg, .png, .gif, .webp or .avif files",
                dir.display()
            )));
        }
        eprintln!(
            "pixelfront dev: ingesting {} images from {} as tenant demo",
            files.len(),
            dir.display()
        );
        println!(
            "{:<40} {:>3} {:<8} {:>8} {:>9}  url",
            "key", "v", "status", "variants", "ms"
        );
        for path in files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let key = key_of_file(&name);
            let body = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let job = match self.accept_original("demo", &key, &body).await {
                Ok(job) => job,
                Err(Refused::Unavailable(what, detail)) => {
                    return Err(LocalError::Io(format!("{name}: {what}: {detail}")))
                }
            };
            self.metrics.upload();
            let started = Instant::now();
            let (status, variants) = match job.action {
                Action::Render => match self.render_job(&job).await {
                    Ok(report) => (report.status.as_str().to_string(), report.variants.len()),
                    Err(e) => (format!("failed: {}", e.error_type()), 0),
                },
                _ => (job.status.as_str().to_string(), 0),
            };
            let url = format!("{base}/img/demo/v{}/{key}?w=640&fmt=webp", job.version);
            println!(
                "{:<40} {:>3} {:<8} {:>8} {:>9}  {url}",
                key,
                job.version,
                status,
                variants,
                started.elapsed().as_millis()
            );
        }
        println!("manifests: {base}/manifest/demo/<key>   metrics: {base}/metrics");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::key_of_file;

    #[test]
    fn ingested_file_names_become_valid_keys() {
        for (name, key) in [
            ("cat.jpg", "cat.jpg"),
            ("my cat (1).JPG", "my-cat--1-.JPG"),
            ("été.png", "-t-.png"),
        ] {
            assert_eq!(key_of_file(name), key);
        }
    }
}
