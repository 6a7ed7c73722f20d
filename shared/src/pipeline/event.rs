//! The upload event: S3's EventBridge "Object Created" notification, the one place its object
//! key is URL-decoded, and the split of an S3 key into tenant and asset key.

use super::PipelineError;
use crate::normalize::{valid_key, valid_tenant};
use crate::store::{AssetId, SourceRef};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

/// The `detail` of an S3 "Object Created" event (the fields the pipeline reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectCreated {
    /// The bucket.
    pub bucket: BucketRef,
    /// The object.
    pub object: ObjectRef,
}

/// `detail.bucket`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRef {
    /// Bucket name.
    pub name: String,
}

/// `detail.object`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ObjectRef {
    /// Object key, URL-encoded the way S3 notifications encode it (`+` for a space).
    pub key: String,
    /// Size, bytes (absent on some event types).
    #[serde(default)]
    pub size: Option<u64>,
    /// ETag.
    #[serde(default)]
    pub etag: Option<String>,
    /// Version id (versioned buckets).
    #[serde(default)]
    pub version_id: Option<String>,
}

/// An S3 "Object Created" event as EventBridge delivers it.
pub type ObjectCreatedEvent = EventBridgeEvent<ObjectCreated>;

/// Decodes an object key from an S3 event notification exactly once: `+` is a space and
/// `%XX` a byte (form encoding); the bytes must be UTF-8. Decoding the result again would be
/// wrong (`%2B` → `+` → space), which is why every caller goes through this one function.
pub fn decode_event_key(raw: &str) -> Result<String, PipelineError> {
    let bad = |why: &str| PipelineError::InvalidInput(format!("object key {raw:?}: {why}"));
    let mut out = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let mut byte = [0u8; 1];
                bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| hex::decode_to_slice(h, &mut byte).ok())
                    .ok_or_else(|| bad("malformed %-escape"))?;
                out.push(byte[0]);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| bad("not UTF-8 once decoded"))
}

/// The source object an event points at, with its key decoded. Events other than
/// `aws.s3` / `Object Created` are refused.
pub fn source_of(event: &ObjectCreatedEvent) -> Result<SourceRef, PipelineError> {
    if event.source != "aws.s3" || event.detail_type != "Object Created" {
        return Err(PipelineError::InvalidInput(format!(
            "expected an aws.s3 \"Object Created\" event, got {:?} / {:?}",
            event.source, event.detail_type
        )));
    }
    let obj = &event.detail.object;
    Ok(SourceRef {
        bucket: event.detail.bucket.name.clone(),
        key: decode_event_key(&obj.key)?,
        version_id: obj.version_id.clone().filter(|v| !v.is_empty()),
        etag: obj.etag.clone().map(|e| e.trim_matches('"').to_string()),
        size: obj.size.unwrap_or(0),
    })
}

/// Splits an originals key `{tenant}/{key}` into its asset id. `Err` carries the asset id
/// anyway (so the failure can be recorded under it) and the reason the key cannot be served:
/// the tenant must match `[a-z0-9][a-z0-9-]{0,62}` and the key the grammar of docs/url-grammar.md.
pub fn split_asset(s3_key: &str) -> Result<AssetId, (AssetId, String)> {
    let (tenant, key) = s3_key.split_once('/').unwrap_or(("", s3_key));
    let asset = AssetId {
        tenant: tenant.to_string(),
        key: key.to_string(),
    };
    if !valid_tenant(tenant) {
        return Err((
            asset,
            format!(
                "{s3_key:?} does not start with a tenant id ([a-z0-9][a-z0-9-]{{0,62}} then '/')"
            ),
        ));
    }
    if !valid_key(key) {
        return Err((
            asset,
            format!(
                "key {key:?} cannot be served: segments must be [A-Za-z0-9._~-], none empty, \
                 '.' or '..', at most 512 bytes in all"
            ),
        ));
    }
    Ok(asset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_decode_exactly_once() {
        let table = [
            ("acme/photos/beach.jpg", "acme/photos/beach.jpg"),
            (
                "acme/summer+sale/red%2Bblue.jpg",
                "acme/summer sale/red+blue.jpg",
            ),
            ("acme/caf%C3%A9.jpg", "acme/café.jpg"),
            ("acme/100%25.jpg", "acme/100%.jpg"),
            ("acme/a%252B.jpg", "acme/a%2B.jpg"),
            ("", ""),
        ];
        for (raw, want) in table {
            assert_eq!(decode_event_key(raw).expect(raw), want, "{raw}");
        }
        // `%+f` is no escape (a bare integer parse would take the sign and give 0x0f).
        for bad in [
            "acme/%",
            "acme/%2",
            "acme/%zz.jpg",
            "acme/%FF.jpg",
            "acme/%+f.jpg",
        ] {
            assert!(
                matches!(decode_event_key(bad), Err(PipelineError::InvalidInput(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn keys_split_into_tenant_and_asset() {
        let ok = split_asset("acme/photos/beach.jpg").expect("valid");
        assert_eq!(ok.tenant, "acme");
        assert_eq!(ok.key, "photos/beach.jpg");
        for bad in [
            "acme/summer sale/red+blue.jpg",
            "Acme/a.jpg",
            "noslash.jpg",
            "acme/",
            "acme/a//b.jpg",
            "acme/../b.jpg",
            "-acme/a.jpg",
        ] {
            let (asset, why) = split_asset(bad).expect_err(bad);
            assert!(!why.is_empty());
            assert_eq!(
                asset.id().len(),
                bad.len() + usize::from(!bad.contains('/')),
                "{bad}"
            );
        }
    }

    #[test]
    fn sample_events_parse() {
        let ev: ObjectCreatedEvent =
            serde_json::from_str(include_str!("../../../events/object-created.json"))
                .expect("events/object-created.json");
        let src = source_of(&ev).expect("source");
        assert_eq!(src.key, "acme/photos/beach.jpg");
        assert!(src.version_id.is_some());
        assert!(src.size > 0);

        let ev: ObjectCreatedEvent = serde_json::from_str(include_str!(
            "../../../events/object-created-encoded-key.json"
        ))
        .expect("events/object-created-encoded-key.json");
        let src = source_of(&ev).expect("source");
        assert_eq!(src.key, "acme/summer sale/red+blue.jpg");
        assert!(split_asset(&src.key).is_err());
    }
}
