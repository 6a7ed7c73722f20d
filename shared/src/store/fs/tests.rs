//! Tests of the file-system object store: round trips, refused keys, the collision-free layout
//! and the migration of an older root.

use super::*;

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn opts() -> PutOptions {
    PutOptions {
        content_type: "image/webp".into(),
        cache_control: "public".into(),
        cache_tag: None,
        on_demand: false,
    }
}

#[test]
fn put_get_roundtrip_and_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsObjects::new(dir.path().join("d")).expect("root");
    block_on(store.put("acme/v1/a/b.jpg/w320-q80.webp", vec![1, 2, 3], &opts())).expect("put");
    let got = block_on(store.get("acme/v1/a/b.jpg/w320-q80.webp", None, 10)).expect("get");
    assert_eq!(got.bytes, vec![1, 2, 3]);
    assert_eq!(got.content_type.as_deref(), Some("image/webp"));
    let too_small = block_on(store.get("acme/v1/a/b.jpg/w320-q80.webp", None, 2));
    assert!(matches!(
        too_small,
        Err(StoreError::TooLarge { bytes: 3, .. })
    ));

    let v1 = block_on(store.put_version("acme/a/b.jpg", b"one".to_vec())).expect("v1");
    let v2 = block_on(store.put_version("acme/a/b.jpg", b"two".to_vec())).expect("v2");
    assert_ne!(v1, v2);
    let one = block_on(store.get("acme/a/b.jpg", Some(&v1), 100)).expect("v1");
    assert_eq!(one.bytes, b"one");
    let missing = block_on(store.get("acme/a/b.jpg", None, 100));
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    block_on(store.delete("acme/v1/a/b.jpg/w320-q80.webp")).expect("delete");
    block_on(store.delete("acme/v1/a/b.jpg/w320-q80.webp")).expect("gone is fine");
    let gone = block_on(store.get("acme/v1/a/b.jpg/w320-q80.webp", None, 10));
    assert!(matches!(gone, Err(StoreError::NotFound(_))));
    assert_eq!(store.remove_temporaries().expect("walk"), 0);
}

#[test]
fn keys_that_escape_the_root_or_name_the_stores_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsObjects::new(dir.path()).expect("root");
    for key in [
        "../etc/passwd",
        "a//b",
        "/abs",
        "a/./b",
        "a\\b",
        "a@b",
        "+layout",
        "a/+tmp-1",
    ] {
        assert!(
            matches!(store.path_of(key, None), Err(StoreError::Denied(_))),
            "{key}"
        );
    }
    assert!(store.path_of("a/b", Some("../x")).is_err());
    assert!(store.path_of("a/b", Some("")).is_err());
    // A segment that only looks like the older layout's temporary files is a key like any.
    assert!(store.path_of("acme/.tmp-x", None).is_ok());
}

/// `K`, `K/x` and `K/w640-q80.webp` as originals and as derivatives, side by side: every
/// object reads back as written (the older layout stored `{tenant}/v1/K/w640-q80.webp` as a
/// file where `K/w640-q80.webp`'s derivatives needed a directory).
#[test]
fn keys_k_k_slash_x_and_a_derivative_like_key_coexist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FsObjects::new(dir.path()).expect("root");
    let keys = ["K", "K/x", "K/w640-q80.webp"];
    let mut versions = Vec::new();
    for key in keys {
        let v = block_on(store.put_version(&format!("acme/{key}"), key.as_bytes().to_vec()))
            .expect("original");
        versions.push(v);
    }
    // K's derivative first, then the derivative of the key that looks like it, and back.
    let derived = [
        "acme/v1/K/w640-q80.webp",
        "acme/v1/K/w640-q80.webp/w640-q80.webp",
        "acme/v1/K/x/w640-q80.webp",
        "acme/v1/K/x/w320-q80.webp",
    ];
    for key in derived.iter().chain(derived.iter().rev()) {
        block_on(store.put(key, key.as_bytes().to_vec(), &opts())).expect(key);
    }
    for (key, v) in keys.iter().zip(&versions) {
        let got = block_on(store.get(&format!("acme/{key}"), Some(v), 100)).expect(key);
        assert_eq!(got.bytes, key.as_bytes());
    }
    for key in derived {
        let got = block_on(store.get(key, None, 100)).expect(key);
        assert_eq!(got.bytes, key.as_bytes(), "{key}");
    }
    // No object is a directory: reading a key that is only a directory finds nothing.
    assert!(matches!(
        block_on(store.get("acme/v1/K/x", None, 100)),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn a_root_in_the_older_layout_is_migrated_once_and_an_unknown_layout_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("derived");
    let old = |rel: &str, body: &[u8]| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, body).expect("write");
    };
    old("acme/v1/a.jpg/w160.webp", b"d1");
    old("acme/v1/b/c.png/w320-q80.avif", b"d2");
    old("acme/a.jpg@0001-0", b"o1");
    old("acme/v1/a.jpg/.tmp-77-1", b"half");

    let store = FsObjects::new(&root).expect("migrated");
    for (key, body) in [
        ("acme/v1/a.jpg/w160.webp", b"d1"),
        ("acme/v1/b/c.png/w320-q80.avif", b"d2"),
    ] {
        assert_eq!(block_on(store.get(key, None, 10)).expect(key).bytes, body);
    }
    let original = block_on(store.get("acme/a.jpg", Some("0001-0"), 10)).expect("original");
    assert_eq!(original.bytes, b"o1");
    assert_eq!(
        std::fs::read_to_string(root.join(LAYOUT_MARKER)).expect("marker"),
        "2\n"
    );
    assert_eq!(store.remove_temporaries().expect("temps"), 1);
    // Opening again moves nothing: a file without `@` written now is not an object.
    old("acme/v1/a.jpg/stray", b"s");
    assert_eq!(migrate(&root).expect("again"), 0);
    assert!(root.join("acme/v1/a.jpg/stray").is_file());

    std::fs::write(root.join(LAYOUT_MARKER), "9\n").expect("marker");
    let err = FsObjects::new(&root).expect_err("unknown layout");
    assert!(err.to_string().contains("layout \"9\""), "{err}");
    assert!(err.to_string().contains("empty data directory"), "{err}");
}

#[test]
fn file_names_parse_to_segment_and_version() {
    assert_eq!(parse_file_name("cat.jpg@V1"), Some(("cat.jpg", Some("V1"))));
    assert_eq!(parse_file_name("w160.webp@"), Some(("w160.webp", None)));
    assert_eq!(parse_file_name("w160.webp"), None);
    assert_eq!(parse_file_name("+tmp-1-2"), None);
    assert_eq!(parse_file_name("+layout"), None);
    assert_eq!(parse_file_name("@V1"), None);
}
