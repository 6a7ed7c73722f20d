"""End-to-end test of a redelivered upload event after a crash (docs/aws-deploy.md#retries).

A crash, an out-of-memory kill or a timeout whose retries ran out ends in MarkFailed with the
name Step Functions reports (`Runtime.ExitError`, `Runtime.OutOfMemory`, `Sandbox.Timedout`, …).
The same S3 event delivered again must render the version (`ready`); a version failed by its
image (`ImageCorrupt`) must stay refused. The failure is recorded the way the state machine
records it: the function's `fail` step with the `Catch` output, invoked directly.

Run: PATH=~/.cache/pixelfront/venv/bin:$PATH python -m pytest tests/integration/test_redelivery.py -q
"""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

import harness as H

pytestmark = pytest.mark.usefixtures("stack")


def jpeg_bytes(width: int, height: int, seed: int) -> bytes:
    img = Image.linear_gradient("L").resize((width, height)).point(lambda v: (v + seed * 41) % 256)
    buf = io.BytesIO()
    Image.merge("RGB", (img, img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), img)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def invoke(stack: H.Harness, payload: dict) -> dict:
    status, _, body = stack.invoke_direct(payload)
    assert status == 200, f"{payload.get('step')}: HTTP {status}: {body[:500]!r}"
    return json.loads(body)


def mark_failed(stack: H.Harness, event: dict, error: str, message: str) -> dict:
    """Assign the version, then record `error` as MarkFailed does with the Catch output."""
    job = invoke(stack, {"step": "assign", "event": event})
    assert job["action"] == "render", job
    cause = json.dumps({"errorType": error, "errorMessage": message})
    return invoke(stack, {"step": "fail", "job": job, "error": {"Error": error, "Cause": cause}})


def version_item(stack: H.Harness, full_key: str, version: int) -> dict:
    tenant, key = full_key.split("/", 1)
    item = stack.manifest(tenant, key)["versions"].get(version)
    assert item is not None, f"no version {version} of {full_key}"
    return item


@pytest.mark.parametrize("error, message", [
    ("Runtime.ExitError", "RequestId: 7f3c Error: Runtime exited with error: signal: aborted"),
    ("Runtime.OutOfMemory", "RequestId: 7f3d Error: Runtime exited with error: signal: killed"),
    ("Sandbox.Timedout", "RequestId: 7f3e Error: Task timed out after 60.00 seconds"),
])
def test_a_redelivered_event_after_a_crash_renders(stack: H.Harness, error: str, message: str):
    full_key = f"acme/redelivery/{error.replace('.', '-').lower()}.jpg"
    up = stack.upload(full_key, jpeg_bytes(320, 240, seed=len(error)), "image/jpeg")
    event = stack.event_for(full_key, up)
    failed = mark_failed(stack, event, error, message)
    assert failed["status"] == "failed" and failed["error_type"] == error, failed
    assert version_item(stack, full_key, 1)["status"] == "failed"

    d = stack.run(event)
    assert d["status"] == "SUCCEEDED", f"{d['status']}: {d.get('error')!r} {d.get('cause')!r}\n" \
                                       f"{stack.history_text(d['executionArn'])}"
    item = version_item(stack, full_key, 1)
    assert item["status"] == "ready", f"status {item['status']!r} ({item.get('error_type')!r})"
    assert len(item["variants"]) == 8
    tenant, key = full_key.split("/", 1)
    assert len(stack.derived_objects(f"{tenant}/v1/{key}/")) == 8


def test_a_redelivered_event_after_an_image_error_stays_refused(stack: H.Harness):
    full_key = "acme/redelivery/corrupt.jpg"
    up = stack.upload(full_key, jpeg_bytes(64, 48, seed=3), "image/jpeg")
    event = stack.event_for(full_key, up)
    mark_failed(stack, event, "ImageCorrupt", "corrupt jpeg image: premature end of data segment")

    d = stack.run(event)
    assert d["status"] == "FAILED", f"{d['status']}\n{stack.history_text(d['executionArn'])}"
    assert d.get("error") == "UploadRejected", d
    item = version_item(stack, full_key, 1)
    assert (item["status"], item.get("error_type")) == ("failed", "ImageCorrupt")
    tenant, key = full_key.split("/", 1)
    assert not stack.derived_objects(f"{tenant}/v1/{key}/")
