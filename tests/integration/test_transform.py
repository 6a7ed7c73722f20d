"""End-to-end tests of the on-demand transformer (functions/transform).

The stack of test_precompute.py plus a second SeaweedFS standing in for the replica region.
An original goes through the real precompute pipeline first (manifest `ready`, eight standard
variants); then the transformer, run by `cargo lambda watch`, gets requests the way its Function
URL delivers them (API Gateway v2 events), either as CloudFront forwards a miss (the rewritten
URI and the viewer's request in `x-pixelfront-request`, produced here by the real CloudFront
Function file) or as a bare viewer request.

Run: PATH=~/.cache/pixelfront/venv/bin:$PATH python -m pytest tests/integration -q
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

import harness as H

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
PHOTO = sorted((CORPUS / "photos").glob("*.jpg"))[0]
VECTORS = json.loads((H.REPO_ROOT / "tests" / "vectors" / "normalize.json").read_text())
CACHE_CONTROL = "public, max-age=31536000, immutable"

pytestmark = pytest.mark.usefixtures("stack")

# The minified copy: the code the template embeds and CloudFront runs (edge/minify.mjs).
EDGE_FUNCTION = "edge/viewer-request.min.js"
_EDGE_RUNNER = """
import { runViewerRequest, fakeKvs } from './edge/harness.mjs';
const input = JSON.parse(process.argv[1]);
input.kvs = fakeKvs(input.kvs || {});
process.stdout.write(JSON.stringify(await runViewerRequest(input)));
"""


def edge(uri: str, query: str = "", kvs: dict | None = None, **headers: str) -> dict:
    """The real CloudFront Function (its minified copy, as deployed) on one viewer request."""
    payload = {"uri": uri, "querystring": query, "kvs": kvs or {}, "headers": headers}
    out = subprocess.run(["node", "--input-type=module", "-e", _EDGE_RUNNER, json.dumps(payload)],
                         cwd=H.REPO_ROOT, capture_output=True, text=True, timeout=60, check=True,
                         env={**os.environ, "PIXELFRONT_EDGE_FUNCTION": EDGE_FUNCTION})
    return json.loads(out.stdout)


def forward(stack: H.Harness, uri: str, query: str = "", kvs: dict | None = None, **headers: str):
    """A viewer request through the edge function, then, as an origin-group failover would, to
    the transformer: the rewritten URI with the forwarded headers."""
    req = edge(uri, query, kvs, **headers)
    assert "statusCode" not in req, f"the edge refused {uri}?{query}: {req}"
    assert req["querystring"] == {}
    fwd = {name: h["value"] for name, h in req["headers"].items()
           if name in ("accept", "referer", H_FORWARDED)}
    assert H_FORWARDED in fwd, req
    return stack.invoke_url(req["uri"], "", fwd)


H_FORWARDED = "x-pixelfront-request"


def ingest(stack: H.Harness, tenant: str, key: str, body: bytes) -> int:
    """Upload an original and run the real precompute execution; -> its version."""
    s3_key = f"{tenant}/{key}"
    up = stack.upload(s3_key, body)
    out = stack.run(stack.event_for(s3_key, up))
    assert out["status"] == "SUCCEEDED", stack.history_text(out["executionArn"])
    versions = stack.manifest(tenant, key)["versions"]
    n = max(versions)
    assert versions[n]["status"] == "ready", versions[n]
    return n


@pytest.fixture(scope="module")
def photo(stack):
    stack.warm_up_transform()
    body = PHOTO.read_bytes()
    n = ingest(stack, "acme", "photos/tf.jpg", body)
    return {"tenant": "acme", "key": "photos/tf.jpg", "version": n, "bytes": body}


def test_a_miss_is_rendered_stored_and_the_next_one_is_a_plain_s3_get(stack, photo):
    uri = f"/img/acme/v{photo['version']}/photos/tf.jpg"
    # w=500 snaps to 640 and q=72 to 75: a non-standard variant (md-webp is q80).
    status, headers, body = forward(stack, uri, "w=500&q=72&fmt=webp&utm_source=mail")
    derived_key = f"acme/v{photo['version']}/photos/tf.jpg/w640-q75.webp"
    assert status == 200, body[:300]
    assert headers["content-type"] == "image/webp"
    assert headers["cache-control"] == CACHE_CONTROL
    assert headers["x-pixelfront-source"] == "rendered"
    assert headers["x-amz-meta-cache-tag"] == "asset:acme/photos/tf.jpg"
    img = Image.open(io.BytesIO(body))
    assert img.format == "WEBP" and img.width == 640

    # Stored under its derivative name, as CloudFront's primary origin will find it.
    objects = stack.derived_objects(derived_key)
    assert set(objects) == {derived_key}
    meta = objects[derived_key]
    assert meta["content_type"] == "image/webp"
    assert meta["cache_control"] == CACHE_CONTROL
    assert meta["metadata"].get("cache-tag") == "asset:acme/photos/tf.jpg"
    assert stack.get_derived(derived_key) == body
    # The transformer's ETag is the one S3 serves for the stored object.
    assert headers["etag"] == f"\"{meta['etag']}\"" == f"\"{hashlib.md5(body).hexdigest()}\""

    # The same normalized request again (other junk, other spelling): the stored object.
    status, headers2, body2 = forward(stack, uri, "FMT=WebP&q=75&w=640&cachebust=9")
    assert (status, headers2["x-pixelfront-source"], body2) == (200, "stored", body)
    status, _, body3 = stack.invoke_url(uri, "w=640&q=75&fmt=webp", {"if-none-match": headers["etag"]})
    assert (status, body3) == (304, b"")


def test_a_standard_variant_is_already_in_the_bucket(stack, photo):
    # md-webp was written by the pipeline: the edge rewrites to a key that exists, so
    # CloudFront's primary origin answers; the transformer would answer from it too.
    uri = f"/img/acme/v{photo['version']}/photos/tf.jpg"
    req = edge(uri, "w=640&fmt=webp")
    key = req["uri"].lstrip("/")
    assert key.endswith("/w640-q80.webp")
    assert stack.get_derived(key)[:4] == b"RIFF"
    status, headers, _ = forward(stack, uri, "w=640&fmt=webp")
    assert (status, headers["x-pixelfront-source"]) == (200, "stored")


def test_fmt_auto_follows_the_forwarded_accept_header(stack, photo):
    uri = f"/img/acme/v{photo['version']}/photos/tf.jpg"
    status, headers, body = forward(stack, uri, "w=100", accept="image/avif,image/webp,*/*")
    assert status == 200 and headers["content-type"] == "image/avif"
    status, headers, body = forward(stack, uri, "w=100", accept="image/png,*/*")
    assert status == 200 and headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(body)).width == 128


def test_every_rejected_normalization_vector_is_rejected_by_the_transformer(stack, photo):
    rejected = [c for c in VECTORS["cases"] if "reject" in c]
    assert len(rejected) > 20
    for case in rejected:
        headers = {"accept": case["accept"]} if "accept" in case else {}
        status, resp_headers, body = stack.invoke_url(case["path"], case["query"], headers)
        label = f"{case['name']}: {case['path']}?{case['query']}"
        assert (status, body.decode()) == (400, case["reject"]), label
        assert resp_headers["cache-control"] == "public, max-age=10", label
    # Nothing was written for them.
    assert stack.derived_objects("acme/v1/photos/cat.jpg") == {}


def test_a_forwarded_request_must_match_the_uri_it_came_with(stack, photo):
    n = photo["version"]
    status, _, body = stack.invoke_url(
        f"/acme/v{n}/photos/tf.jpg/w1280-q80.webp", "",
        {H_FORWARDED: f"/img/acme/v{n}/photos/tf.jpg?w=160&fmt=webp"})
    assert (status, body) == (400, b"request does not match its derivative")
    # A derived-object URI without the viewer's request is not a request at all.
    status, _, body = stack.invoke_url(f"/acme/v{n}/photos/tf.jpg/w160-q80.webp")
    assert status == 400 and body.startswith(b"bad path")


def test_unknown_versions_assets_and_tenants_are_404(stack, photo):
    n = photo["version"]
    for uri in (f"/img/acme/v{n + 5}/photos/tf.jpg", "/img/acme/v1/photos/none.jpg",
                f"/img/globex/v{n}/photos/tf.jpg"):
        status, headers, body = stack.invoke_url(uri, "w=320&fmt=webp")
        assert (status, body) == (404, b"not found"), uri


def test_a_signing_tenant_is_checked_again_by_the_transformer(stack, photo):
    tenant, key = "signer", "p/sig.jpg"
    n = ingest(stack, tenant, key, photo["bytes"])
    policy = {"sign": True, "keys": {"k1": "old-secret", "k2": "new-secret"}}
    stack.put_tenant_policy(tenant, policy)
    try:
        uri = f"/img/{tenant}/v{n}/{key}"
        exp = int(time.time()) + 600
        signed = subprocess.run(
            ["node", "edge/sign.mjs", "--kid", "k2", "--secret", "new-secret", "--exp", str(exp),
             f"{uri}?w=200&fmt=png"],
            cwd=H.REPO_ROOT, capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        path, query = signed.split("?", 1)
        status, headers, body = forward(stack, path, query, kvs={tenant: policy})
        assert status == 200 and headers["content-type"] == "image/png", body[:200]

        # A request the edge would refuse (w changed after signing), forwarded anyway.
        status, _, body = stack.invoke_url(
            f"/{tenant}/v{n}/{key}/w240.png", "", {H_FORWARDED: f"{path}?{query.replace('w=200', 'w=210')}"})
        assert (status, body) == (403, b"bad signature")
        # The edge admits it, but the transformer's copy of the policy has retired k2.
        stack.put_tenant_policy(tenant, {"sign": True, "keys": {"k1": "old-secret"}})
        status, headers, body = forward(stack, path, query, kvs={tenant: policy})
        assert (status, body) == (403, b"unknown key")
        assert headers["cache-control"] == "no-store"
        # Unsigned straight to the function: refused as well.
        status, _, body = stack.invoke_url(uri, "w=200&fmt=png")
        assert (status, body) == (403, b"signature required")
    finally:
        stack.put_tenant_policy(tenant, None)


def test_the_replica_serves_while_the_primary_s3_server_is_stopped(stack, photo):
    """Runs last in this module: it stops and restarts the primary SeaweedFS."""
    n = photo["version"]
    stack.replicate(f"acme/{photo['key']}")
    uri = f"/img/acme/v{n}/photos/tf.jpg"
    stack.stop_primary_s3()
    try:
        t0 = time.monotonic()
        status, headers, body = forward(stack, uri, "w=300&fmt=jpeg&q=55")
        elapsed = time.monotonic() - t0
        assert status == 200, body[:300]
        assert headers["x-pixelfront-source"] == "rendered-replica"
        img = Image.open(io.BytesIO(body))
        assert (img.format, img.width) == ("JPEG", 320)
        H.log(f"served from the replica in {elapsed:.1f}s with the primary down")
    finally:
        stack.start_primary_s3()
    # Back to normal: the primary answers again, the derivative is rendered and stored.
    status, headers, _ = forward(stack, uri, "w=300&fmt=jpeg&q=55")
    assert (status, headers["x-pixelfront-source"]) == (200, "rendered")
