"""End-to-end tests of the precompute pipeline.

Each test uploads an original to SeaweedFS (versioned `originals` bucket), builds the EventBridge
"Object Created" event S3 would send, and runs it through a real execution of
statemachine/precompute.asl.json in moto, whose Lambda tasks reach the real Rust function under
`cargo lambda watch`. The function reads and writes S3 through the fault-injecting proxy.

Run: PATH=~/.cache/pixelfront/venv/bin:$PATH python -m pytest tests/integration -q
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image, ImageOps

import harness as H

# The corpus lives beside the checkout: <checkout>/../shared/corpus.
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
PHOTOS = CORPUS / "photos"
PNGSUITE = CORPUS / "pngsuite"

# docs/rendering.md (standard variants): name -> (derivative name, width, height or None, format)
CATALOGUE = {
    "thumb": ("w160-h160-q75.webp", 160, 160, "webp"),
    "sm-webp": ("w320-q80.webp", 320, None, "webp"),
    "sm-avif": ("w320-q60.avif", 320, None, "avif"),
    "md-webp": ("w640-q80.webp", 640, None, "webp"),
    "md-avif": ("w640-q60.avif", 640, None, "avif"),
    "md-jpeg": ("w640-q80.jpeg", 640, None, "jpeg"),
    "lg-webp": ("w1280-q80.webp", 1280, None, "webp"),
    "lg-avif": ("w1280-q60.avif", 1280, None, "avif"),
}
DERIVATIVES = {d for d, _, _, _ in CATALOGUE.values()}
CONTENT_TYPE = {"webp": "image/webp", "avif": "image/avif", "jpeg": "image/jpeg"}
PIL_FORMAT = {"webp": "WEBP", "avif": "AVIF", "jpeg": "JPEG"}
CACHE_CONTROL = "public, max-age=31536000, immutable"

pytestmark = pytest.mark.usefixtures("stack")


# ------------------------------------------------------------------------------------------
# helpers


def jpeg_bytes(width: int, height: int, seed: int = 0, quality: int = 85) -> bytes:
    """A small generated JPEG with some structure (gradients + noise), distinct per seed."""
    r = Image.linear_gradient("L").resize((width, height))
    g = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90).resize((width, height))
    b = Image.effect_noise((width, height), 8 + seed).point(lambda v: (v + seed * 37) % 256)
    buf = io.BytesIO()
    Image.merge("RGB", (r, g, b)).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def expected_size(derivative_w: int, derivative_h: int | None, orig_w: int, orig_h: int) -> tuple[int, int | None]:
    """(width, height) a standard variant must have; height None means 'aspect ratio, ±1 px'."""
    if derivative_h is not None:  # cover crop, never upscaled
        if orig_w >= derivative_w and orig_h >= derivative_h:
            return derivative_w, derivative_h
        scale = min(1.0, orig_w / derivative_w, orig_h / derivative_h)
        return round(derivative_w * scale), round(derivative_h * scale)
    return min(derivative_w, orig_w), None


def assert_close(actual: int, expected: float, what: str) -> None:
    assert abs(actual - expected) <= 1, f"{what}: {actual}, expected about {expected:.2f}"


def run_ok(stack: H.Harness, event: dict, timeout: float = 300) -> dict:
    d = stack.run(event, timeout=timeout)
    assert d["status"] == "SUCCEEDED", (
        f"execution {d['status']}: error={d.get('error')!r} cause={d.get('cause')!r}\n"
        f"{stack.history_text(d['executionArn'])}"
    )
    return d


def run_failed(stack: H.Harness, event: dict, timeout: float = 300) -> dict:
    d = stack.run(event, timeout=timeout)
    assert d["status"] in ("FAILED", "TIMED_OUT", "ABORTED"), (
        f"execution {d['status']} but a failure was expected; output={d.get('output')!r}\n"
        f"{stack.history_text(d['executionArn'])}"
    )
    return d


def split_key(full_key: str) -> tuple[str, str]:
    tenant, key = full_key.split("/", 1)
    return tenant, key


def derived_prefix(tenant: str, version: int, key: str) -> str:
    return f"{tenant}/v{version}/{key}/"


def derived_of_asset(stack: H.Harness, tenant: str, key: str) -> dict[str, dict]:
    """Every derived object of any version of {tenant}/{key}."""
    pattern = re.compile(rf"^{re.escape(tenant)}/v\d+/{re.escape(key)}/[^/]+$")
    return {k: v for k, v in stack.derived_objects(f"{tenant}/v").items() if pattern.match(k)}


def check_ready_version(stack: H.Harness, full_key: str, version: int, upload: tuple[str, str, int],
                        original: bytes) -> dict[str, dict]:
    """Manifest item of `version` is ready and complete; its 8 derivatives exist, are tagged and
    decode to the right size. Returns the derived objects."""
    tenant, key = split_key(full_key)
    version_id, etag, size = upload
    with Image.open(io.BytesIO(original)) as im:
        orig_w, orig_h = ImageOps.exif_transpose(im).size
        orig_format = im.format.lower()

    m = stack.manifest(tenant, key)
    item = m["versions"].get(version)
    assert item is not None, f"no manifest item v#{version:010d} for {tenant}/{key}: {json.dumps(m['items'], default=str)[:3000]}"
    assert item["status"] == "ready", f"status {item.get('status')!r}, error {item.get('error')!r} ({item.get('error_type')!r})"
    assert item["sk"] == f"v#{version:010d}"
    assert item["tenant"] == tenant
    assert item["key"] == key
    assert item["version"] == version
    assert item["source_version_id"] == version_id
    assert str(item["source_etag"]).strip('"') == etag
    assert item["source_bytes"] == size
    assert (item["width"], item["height"]) == (orig_w, orig_h)
    assert str(item["format"]).lower() in ({orig_format, "jpg"} if orig_format == "jpeg" else {orig_format})
    assert item.get("created_at") and item.get("updated_at")
    assert m["sources"].get(version_id) == version, f"src#{version_id} -> {m['sources'].get(version_id)!r}"

    variants = item["variants"]
    assert isinstance(variants, list) and len(variants) == 8, f"variants: {variants!r}"
    by_name = {v["name"]: v for v in variants}
    assert set(by_name) == set(CATALOGUE), f"variant names {sorted(by_name)}"

    prefix = derived_prefix(tenant, version, key)
    objects = stack.derived_objects(prefix)
    assert set(objects) == {prefix + d for d in DERIVATIVES}, f"derived objects under {prefix}: {sorted(objects)}"

    for name, (derivative, w, h, fmt) in CATALOGUE.items():
        v = by_name[name]
        assert v["derivative"] == derivative, f"{name}: derivative {v['derivative']!r}"
        obj_key = prefix + derivative
        obj = objects[obj_key]
        assert obj["content_type"] == CONTENT_TYPE[fmt], f"{obj_key}: Content-Type {obj['content_type']!r}"
        assert obj["cache_control"] == CACHE_CONTROL, f"{obj_key}: Cache-Control {obj['cache_control']!r}"
        assert obj["metadata"].get("cache-tag") == f"asset:{tenant}/{key}", f"{obj_key}: metadata {obj['metadata']!r}"
        body = stack.get_derived(obj_key)
        assert len(body) == obj["size"] == v["bytes"], f"{obj_key}: {len(body)} bytes, head {obj['size']}, manifest {v['bytes']}"
        with Image.open(io.BytesIO(body)) as im:
            assert im.format == PIL_FORMAT[fmt], f"{obj_key}: decodes as {im.format}"
            im.load()
            got_w, got_h = im.size
        ew, eh = expected_size(w, h, orig_w, orig_h)
        if eh is not None:
            assert (got_w, got_h) == (ew, eh), f"{obj_key}: {got_w}x{got_h}, expected {ew}x{eh}"
        else:
            assert got_w == ew, f"{obj_key}: width {got_w}, expected {ew}"
            assert_close(got_h, orig_h * ew / orig_w, f"{obj_key} height")
        assert (v["width"], v["height"]) == (got_w, got_h), f"{name}: manifest {v['width']}x{v['height']}, object {got_w}x{got_h}"
        assert v.get("render_ms") is not None and v["render_ms"] >= 0
    return objects


def check_failed_version(stack: H.Harness, full_key: str, version_id: str, error_type: str,
                         reason: str | None = None) -> dict:
    """The version recorded for S3 version `version_id` is failed with `error_type`; nothing was
    written to the derived bucket for the asset."""
    tenant, key = split_key(full_key)
    m = stack.manifest(tenant, key)
    dump = json.dumps(m["items"], default=str)[:3000]
    items = [it for it in m["versions"].values() if it.get("source_version_id") == version_id]
    assert len(items) == 1, f"expected one version item for S3 version {version_id} under {tenant}/{key}: {dump}"
    item = items[0]
    assert m["sources"].get(version_id) == item["version"], f"src#{version_id} -> {m['sources'].get(version_id)!r}: {dump}"
    assert item["status"] == "failed", f"status {item['status']!r}: {json.dumps(item, default=str)[:2000]}"
    assert item.get("error_type") == error_type, f"error_type {item.get('error_type')!r}, error {item.get('error')!r}"
    assert item.get("error"), "failed item without error text"
    if reason:
        assert reason.lower() in str(item["error"]).lower(), f"error {item['error']!r} does not mention {reason!r}"
    assert item["tenant"] == tenant and item["key"] == key
    assert not derived_of_asset(stack, tenant, key), f"derivatives written for failed {tenant}/{key}"
    return item


# ------------------------------------------------------------------------------------------
# tests


def test_photo_renders_eight_variants(stack: H.Harness):
    photo = min(PHOTOS.glob("*.jpg"), key=lambda p: p.stat().st_size)
    body = photo.read_bytes()
    full_key = "acme/photos/beach.jpg"
    up = stack.upload(full_key, body, "image/jpeg")
    run_ok(stack, stack.event_for(full_key, up), timeout=600)

    check_ready_version(stack, full_key, 1, up, body)
    m = stack.manifest("acme", "photos/beach.jpg")
    assert m["asset"] is not None and m["asset"]["latest"] == 1
    assert sorted(m["versions"]) == [1]


def test_second_upload_becomes_version_2(stack: H.Harness):
    full_key = "acme/products/shoe.jpg"
    first = jpeg_bytes(480, 360, seed=1)
    up1 = stack.upload(full_key, first, "image/jpeg")
    run_ok(stack, stack.event_for(full_key, up1))
    v1_objects = check_ready_version(stack, full_key, 1, up1, first)

    second = jpeg_bytes(1200, 800, seed=2)
    up2 = stack.upload(full_key, second, "image/jpeg")
    assert up2[0] != up1[0]
    run_ok(stack, stack.event_for(full_key, up2))
    check_ready_version(stack, full_key, 2, up2, second)

    m = stack.manifest("acme", "products/shoe.jpg")
    assert m["asset"]["latest"] == 2
    assert sorted(m["versions"]) == [1, 2]
    assert m["versions"][1]["status"] == "ready"
    assert m["sources"] == {up1[0]: 1, up2[0]: 2}
    after = stack.derived_objects(derived_prefix("acme", 1, "products/shoe.jpg"))
    assert {k: v["etag"] for k, v in after.items()} == {k: v["etag"] for k, v in v1_objects.items()}, "v1 objects changed"


def test_duplicate_event_assigns_one_version(stack: H.Harness):
    full_key = "acme/dup/once.jpg"
    body = jpeg_bytes(400, 300, seed=3)
    up = stack.upload(full_key, body, "image/jpeg")
    event = stack.event_for(full_key, up)
    run_ok(stack, event)
    check_ready_version(stack, full_key, 1, up, body)
    before = stack.manifest("acme", "dup/once.jpg")

    run_ok(stack, event)  # the very same event delivered again

    after = stack.manifest("acme", "dup/once.jpg")
    assert sorted(after["versions"]) == [1], f"versions after redelivery: {sorted(after['versions'])}"
    assert after["sources"] == {up[0]: 1}
    assert after["asset"]["latest"] == before["asset"]["latest"] == 1
    assert after["versions"][1]["status"] == "ready"
    assert set(derived_of_asset(stack, "acme", "dup/once.jpg")) == {
        derived_prefix("acme", 1, "dup/once.jpg") + d for d in DERIVATIVES}


def test_concurrent_deliveries_get_distinct_versions(stack: H.Harness):
    """Three uploads of one key, each event delivered twice, all six assign tasks at once:
    the conditional writes must give exactly versions 1, 2, 3, one per S3 version, and both
    deliveries of an upload the same number."""
    from concurrent.futures import ThreadPoolExecutor

    full_key = "acme/race/shot.jpg"
    uploads = [stack.upload(full_key, jpeg_bytes(64, 48, seed=10 + i), "image/jpeg") for i in range(3)]
    events = [stack.event_for(full_key, up) for up in uploads]
    payloads = [{"step": "assign", "event": ev} for ev in events for _ in range(2)]
    with ThreadPoolExecutor(len(payloads)) as pool:
        answers = list(pool.map(stack.invoke_direct, payloads))
    jobs = []
    for status, headers, body in answers:
        assert status == 200 and "x-amz-function-error" not in headers, body[:500]
        jobs.append(json.loads(body))
    by_source = {}
    for job in jobs:
        by_source.setdefault(job["source"]["version_id"], set()).add(job["version"])
    assert all(len(v) == 1 for v in by_source.values()), by_source
    assert sorted(next(iter(v)) for v in by_source.values()) == [1, 2, 3], by_source
    assert sum(job["created"] for job in jobs) == 3, jobs
    m = stack.manifest("acme", "race/shot.jpg")
    assert sorted(m["versions"]) == [1, 2, 3]
    assert m["asset"]["latest"] == 3
    assert {vid: n for vid, n in m["sources"].items()} == {
        vid: next(iter(v)) for vid, v in by_source.items()}


def _truncated_jpeg() -> bytes:
    data = jpeg_bytes(64, 64, seed=4)
    sos = data.index(b"\xff\xda")  # cut inside the headers: no decoder can recover from that
    return data[: sos // 2]


@pytest.mark.parametrize(
    "name, body",
    [
        ("xcrn0g04.png", (PNGSUITE / "xcrn0g04.png").read_bytes()),  # PNG signature mangled (CR added)
        ("xdtn0g01.png", (PNGSUITE / "xdtn0g01.png").read_bytes()),  # valid signature, no IDAT
        ("truncated.jpg", _truncated_jpeg()),                         # JPEG cut before its scan
    ],
)
def test_corrupt_original_fails(stack: H.Harness, name: str, body: bytes):
    full_key = f"acme/broken/{name}"
    up = stack.upload(full_key, body)
    run_failed(stack, stack.event_for(full_key, up))
    check_failed_version(stack, full_key, up[0], "ImageCorrupt", reason="corrupt")


def test_event_key_is_decoded_exactly_once(stack: H.Harness):
    full_key = "acme/summer sale/red+blue.jpg"
    up = stack.upload(full_key, jpeg_bytes(64, 48, seed=5), "image/jpeg")
    event = stack.event_for(full_key, up)
    assert event["detail"]["object"]["key"] == "acme/summer+sale/red%2Bblue.jpg"
    run_failed(stack, event)
    # docs/url-grammar.md allows only [A-Za-z0-9._~-] in key segments: rejected, recorded under the decoded key
    check_failed_version(stack, full_key, up[0], "KeyRejected")
    for wrong in ("summer+sale/red%2Bblue.jpg", "summer sale/red blue.jpg", "summer+sale/red+blue.jpg"):
        assert not stack.manifest("acme", wrong)["items"], f"manifest items under wrongly decoded key {wrong!r}"


def test_s3_faults_are_retried(stack: H.Harness):
    full_key = "acme/flaky/retry.jpg"
    body = jpeg_bytes(320, 240, seed=6)
    up = stack.upload(full_key, body, "image/jpeg")
    served_before = stack.proxy.faults_served
    stack.s3_faults(8)  # more than the SDK's own attempts: one Lambda attempt must fail
    d = run_ok(stack, stack.event_for(full_key, up))
    assert stack.proxy.faults_served - served_before == 8, "the injected faults were not all consumed"
    check_ready_version(stack, full_key, 1, up, body)
    history = stack.history(d["executionArn"])
    failed_tasks = [e for e in history if e["type"] in ("TaskFailed", "LambdaFunctionFailed")]
    assert failed_tasks, "no failed task attempt in the history: the SDK alone absorbed the faults"


def test_s3_down_ends_failed(stack: H.Harness):
    full_key = "acme/flaky/down.jpg"
    up = stack.upload(full_key, jpeg_bytes(320, 240, seed=7), "image/jpeg")
    stack.s3_faults(10_000)
    try:
        run_failed(stack, stack.event_for(full_key, up), timeout=600)
    finally:
        stack.s3_faults(0)
    check_failed_version(stack, full_key, up[0], "StoreUnavailable")


def test_non_image_is_unsupported(stack: H.Harness):
    full_key = "acme/notes/readme.txt"
    up = stack.upload(full_key, b"This is not an image, just some text.\n" * 20, "text/plain")
    run_failed(stack, stack.event_for(full_key, up))
    check_failed_version(stack, full_key, up[0], "ImageUnsupported")
