"""Erasure of a replica copy that lands late (docs/takedown.md, "The replica").

S3 Cross-Region Replication writes each new version's copy asynchronously; the source version
answers `x-amz-replication-status: PENDING` until then. SeaweedFS keeps no replication status,
so this test gives the function's S3 endpoint (the harness's fault proxy, in this process) that
header for one chosen version, and plays CRR itself with `stack.replicate`: the copy is written
into the replica only after the erasure has purged the replica once, and the version turns
`COMPLETED` from then on. The erasure must still remove the copy, list it in the audit record,
and leave the neighbour `K/x` alone.

Run: PATH=~/.cache/pixelfront/venv/bin:$PATH python -m pytest tests/integration/test_erasure_replica.py -q
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

import botocore.exceptions
import pytest

import harness as H
from test_takedown import PNGS, exact, ingest, request_id

pytestmark = pytest.mark.usefixtures("stack")


class PendingReplication:
    """Versions whose HEAD through the fault proxy answers x-amz-replication-status PENDING."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: set[tuple[str, str]] = set()
        self.heads = 0

    def mark(self, key: str, version_id: str) -> None:
        with self.lock:
            self.pending.add((key, version_id))

    def complete(self, key: str, version_id: str) -> None:
        with self.lock:
            self.pending.discard((key, version_id))

    def status(self, path: str) -> str | None:
        parts = urllib.parse.urlsplit(path)
        bucket_key = urllib.parse.unquote(parts.path).lstrip("/").split("/", 1)
        version = (urllib.parse.parse_qs(parts.query).get("versionId") or [""])[0]
        if len(bucket_key) != 2 or bucket_key[0] != H.ORIGINALS:
            return None
        with self.lock:
            self.heads += 1
            return "PENDING" if (bucket_key[1], version) in self.pending else None


@pytest.fixture()
def replication(monkeypatch):
    model = PendingReplication()
    relay = H._FaultProxyHandler._relay_response

    def relay_with_status(self, resp):
        status = model.status(self.path) if self.command == "HEAD" and resp.status == 200 else None
        if status:
            headers = resp.getheaders
            resp.getheaders = lambda: [*headers(), ("x-amz-replication-status", status)]
        return relay(self, resp)

    monkeypatch.setattr(H._FaultProxyHandler, "_relay_response", relay_with_status)
    return model


def wait_for(what: str, check, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def replica_versions(stack: H.Harness, full: str) -> list[dict]:
    return exact(stack.object_versions(H.REPLICA, full, replica=True), full)


def land_copy(stack: H.Harness, full: str, version_id: str, body: bytes) -> None:
    """CRR writes the copy of `version_id`; if the source version is gone already (a removal
    that did not wait), the copy still lands: replication had read it."""
    try:
        stack.replicate(full, version_id)
    except botocore.exceptions.ClientError:
        stack.replica_s3().put_object(Bucket=H.REPLICA, Key=full, Body=body)


def test_a_replica_copy_that_lands_after_the_replica_purge_is_erased(stack: H.Harness, replication):
    tenant, key = "er-late", "people/late.png"
    full = f"{tenant}/{key}"
    up1, _ = ingest(stack, tenant, key, PNGS[0].read_bytes())
    stack.replicate(full, up1[0])
    # A newer version, still replicating when the erasure starts.
    late_body = PNGS[1].read_bytes()
    up2 = stack.upload(full, late_body, "image/png")
    replication.mark(full, up2[0])
    # The neighbour K/x, replicated: it must survive.
    neighbour = f"{full}/x"
    upx = stack.upload(neighbour, PNGS[2].read_bytes(), "image/png")
    stack.replicate(neighbour, upx[0])
    first_copy = replica_versions(stack, full)
    assert len(first_copy) == 1, first_copy

    rid = request_id()
    request = {"tenant": tenant, "key": key, "reason": "gdpr", "requester": "DSR-late"}
    stack.warm_up_function(H.TAKEDOWN_NAME)
    arn = stack.start_workflow(H.TAKEDOWN_MACHINE, request, rid)

    # The replica is purged once (the copy of version 1 goes) ...
    wait_for("the first replica purge", lambda: not replica_versions(stack, full))
    # ... then replication of version 2 finishes: its copy lands, the source says COMPLETED.
    land_copy(stack, full, up2[0], late_body)
    late = replica_versions(stack, full)
    assert len(late) == 1, late
    replication.complete(full, up2[0])

    d = stack.wait_execution(arn, timeout=900)
    assert d["status"] == "SUCCEEDED", (
        f"{d['status']} error={d.get('error')!r} cause={d.get('cause')!r}\n{stack.history_text(arn, 12000)}")
    left = replica_versions(stack, full)
    assert not left, f"the replica still holds {full}: {left}"
    assert not exact(stack.object_versions(H.ORIGINALS, full), full)
    assert len(exact(stack.object_versions(H.REPLICA, neighbour, replica=True), neighbour)) == 1
    assert len(exact(stack.object_versions(H.ORIGINALS, neighbour), neighbour)) == 1

    item = stack.audit_items(tenant, key)[rid]
    deleted = {(e["bucket"], e["key"], e.get("version_id")) for e in item["deleted"]["replica"]}
    expected = {(H.REPLICA, full, v["version_id"]) for v in first_copy + late}
    assert deleted == expected, f"deleted_replica {deleted}\nexpected {expected}"
    originals = {e.get("version_id") for e in item["deleted"]["originals"]}
    assert originals == {up1[0], up2[0]}, originals
    assert replication.heads >= 2, "the function never checked the replication status"
    out = json.loads(d["output"])
    assert out["deleted"] == 2 + 2 + 8, out
