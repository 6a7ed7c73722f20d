//! `GET`/`HEAD /img/…`: the rate limit, the edge's checks and the transformer's code
//! (`Transformer::admit`, `Transformer::deliver`), the cache in front of the stored
//! derivatives, and the shared HTTP mapping of the answer. `X-Cache: Hit|Miss` says whether
//! the cache answered, as CloudFront's header does; a miss that rendered says how long in
//! `Server-Timing: render;dur={ms}`. The request is normalized on every answer,
//! hits included, so `Vary: Accept` follows the request, not the cached derivative.

use crate::cache::Served;
use crate::metrics::{Outcome, RenderKind};
use crate::routes::{text, to_axum, App};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::Response;
use pixelfront_shared::delivery::http as mapping;
use pixelfront_shared::delivery::{DeliveryError, Incoming, Source};
use pixelfront_shared::normalize::{accept_header, Normalized};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl App {
    /// One image request from `ip`.
    pub async fn image(&self, req: &Parts, ip: std::net::IpAddr) -> Response {
        if let Some(refused) = mapping::method_not_allowed(&req.method) {
            self.metrics.request(Outcome::Reject, 0);
            return to_axum(refused);
        }
        if !self.limit.allow(ip) {
            self.metrics.request(Outcome::Reject, 0);
            return text(429, "rate limited");
        }
        let header_str = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        // Every Accept field, byte for byte, as the edge reads them.
        let accept = accept_header(
            req.headers
                .get_all("accept")
                .iter()
                .map(HeaderValue::as_bytes),
        );
        let incoming = Incoming {
            path: req.uri.path(),
            query: req.uri.query().unwrap_or(""),
            forwarded: None,
            accept: accept.as_deref(),
            referer: header_str("referer"),
        };
        let (n, delivered, outcome) = match self.delivered(&incoming).await {
            Ok(found) => found,
            Err(e) => {
                self.metrics.request(Outcome::Reject, 0);
                return to_axum(mapping::error(e.as_ref()));
            }
        };
        let resp = mapping::image(&req.method, &req.headers, &delivered, &n);
        self.metrics.request(outcome, resp.body().len());
        let mut resp = to_axum(resp);
        let x_cache = if outcome == Outcome::Hit {
            "Hit"
        } else {
            "Miss"
        };
        resp.headers_mut()
            .insert("x-cache", HeaderValue::from_static(x_cache));
        if outcome == Outcome::Miss && delivered.source != Source::Stored {
            // This request waited for the render: its time, as the console's playground shows.
            if let Ok(v) = HeaderValue::from_str(&format!("render;dur={}", delivered.render_ms)) {
                resp.headers_mut().insert("server-timing", v);
            }
        }
        resp
    }

    /// The normalized request and its image: from the cache, or delivered by the transformer
    /// (concurrent misses of one derivative share one delivery).
    async fn delivered(
        &self,
        incoming: &Incoming<'_>,
    ) -> Result<(Normalized, Arc<Served>, Outcome), Arc<DeliveryError>> {
        let t = &self.stack.transformer;
        let admitted = t.admit(incoming, now_secs()).await.map_err(Arc::new)?;
        let key = admitted.request.derived_key();
        let deliver = async {
            let d = t.deliver(&admitted).await?;
            if let Source::Rendered { .. } = d.source {
                self.metrics.render(RenderKind::OnDemand, d.render_ms);
            }
            Ok(d)
        };
        let (served, outcome) = self.cache.get_or_deliver(&key, deliver).await?;
        Ok((admitted.request, served, outcome))
    }
}
