"""End-to-end tests of the catalogue backfill (statemachine/backfill.asl.json, STANDARD parent,
Distributed Map of EXPRESS children over the pages the precompute function lists).

Assets go through the real precompute pipeline; then the manifest is edited in DynamoDB to look
like an older catalogue (one variant fewer, its derivative object gone) and the backfill has to
render exactly what is missing, leave current versions alone, never touch versions that are not
`ready`, and change nothing at all when run again.

Run: PATH=~/.cache/pixelfront/venv/bin:$PATH python -m pytest tests/integration/test_backfill.py -q
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import harness as H

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
PNGSUITE = CORPUS / "pngsuite"
CATALOGUE = {
    "thumb": "w160-h160-q75.webp", "sm-webp": "w320-q80.webp", "sm-avif": "w320-q60.avif",
    "md-webp": "w640-q80.webp", "md-avif": "w640-q60.avif", "md-jpeg": "w640-q80.jpeg",
    "lg-webp": "w1280-q80.webp", "lg-avif": "w1280-q60.avif",
}
CACHE_CONTROL = "public, max-age=31536000, immutable"
# a request of the function that writes to the derived bucket, as the S3 fault proxy logs it
DERIVED_WRITE = re.compile(r'"(PUT|POST|DELETE) /' + re.escape(H.DERIVED) + r'/(\S*)')

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture(scope="module", autouse=True)
def _backfill_ready(stack: H.Harness):
    stack.workflow_arn(H.BACKFILL_MACHINE)  # fails (never skips) when the machine is missing


def ingest(stack: H.Harness, tenant: str, key: str, body: bytes) -> int:
    full = f"{tenant}/{key}"
    up = stack.upload(full, body, "image/png")
    d = stack.run(stack.event_for(full, up))
    assert d["status"] == "SUCCEEDED", f"precompute of {full}: {d['status']}\n{stack.history_text(d['executionArn'])}"
    m = stack.manifest(tenant, key)
    n = m["sources"][up[0]]
    assert m["versions"][n]["status"] == "ready"
    assert len(m["versions"][n]["variants"]) == 8
    return n


def objects(stack: H.Harness, prefix: str) -> dict[str, tuple[str, Any]]:
    """Derived objects under prefix -> {key: (etag, last_modified)}."""
    out = {}
    for page in stack.s3().get_paginator("list_objects_v2").paginate(Bucket=H.DERIVED, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = (o["ETag"].strip('"'), o["LastModified"])
    return out


def version_key(tenant: str, key: str, n: int) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{tenant}/{key}"}, "sk": {"S": f"v#{n:010d}"}}


def ready_versions(stack: H.Harness) -> set[tuple[str, str, int]]:
    """(tenant, key, version) of every `ready` version item in the manifest table (a scan)."""
    out = set()
    for page in stack.dynamodb_client().get_paginator("scan").paginate(TableName=H.TABLE, ConsistentRead=True):
        for it in page["Items"]:
            if it["sk"]["S"].startswith("v#") and it.get("status", {}).get("S") == "ready":
                out.add((it["tenant"]["S"], it["key"]["S"], int(it["version"]["N"])))
    return out


def page_calls(stack: H.Harness, execution_arn: str) -> list[dict]:
    """The `backfill_page` payloads the parent execution sent (from its history)."""
    out = []
    for e in stack.history(execution_arn):
        det = e.get("taskScheduledEventDetails") or {}
        if not det:
            continue
        try:
            payload = json.loads(det.get("parameters") or "{}").get("Payload") or {}
        except ValueError:
            continue
        if isinstance(payload, dict) and payload.get("step") == "backfill_page":
            out.append(payload)
    return out


def backfill_ok(stack: H.Harness, input: dict) -> tuple[dict, list[str]]:
    """Run the backfill -> (execution, the derived-bucket writes the functions made meanwhile)."""
    log_path = stack.logs / "s3-fault-proxy.log"
    offset = log_path.stat().st_size
    d = stack.run_backfill(input)
    assert d["status"] == "SUCCEEDED", (
        f"backfill {d['status']} error={d.get('error')!r} cause={d.get('cause')!r}\n"
        f"{stack.history_text(d['executionArn'], 12000)}")
    with open(log_path, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    return d, [f"{m.group(1)} {m.group(2)}" for m in DERIVED_WRITE.finditer(text)]


def test_backfill_renders_missing_variants_once(stack: H.Harness):
    tenant = "bf"
    old, current, gone = "cat/old.png", "cat/current.png", "cat/gone.png"
    ingest(stack, tenant, old, (PNGSUITE / "basn2c08.png").read_bytes())
    ingest(stack, tenant, current, (PNGSUITE / "basn0g08.png").read_bytes())
    ingest(stack, tenant, gone, (PNGSUITE / "basn6a08.png").read_bytes())
    ddb = stack.dynamodb_client()
    s3 = stack.s3()

    # an older catalogue for `old` v1: md-webp missing from the item and from the bucket
    dropped = "md-webp"
    item = ddb.get_item(TableName=H.TABLE, Key=version_key(tenant, old, 1), ConsistentRead=True)["Item"]
    full_variants = item["variants"]["L"]
    removed = [v for v in full_variants if v["M"]["name"]["S"] == dropped]
    assert len(removed) == 1, full_variants
    kept = [v for v in full_variants if v["M"]["name"]["S"] != dropped]
    ddb.update_item(TableName=H.TABLE, Key=version_key(tenant, old, 1),
                    UpdateExpression="SET variants = :v", ExpressionAttributeValues={":v": {"L": kept}})
    missing_obj = f"{tenant}/v1/{old}/{CATALOGUE[dropped]}"
    s3.delete_object(Bucket=H.DERIVED, Key=missing_obj)
    assert len(stack.manifest(tenant, old)["versions"][1]["variants"]) == 7

    # a version taken down: not `ready`, so the backfill must not bring anything back
    ddb.update_item(TableName=H.TABLE, Key=version_key(tenant, gone, 1),
                    UpdateExpression="SET #s = :s, variants = :v",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={":s": {"S": "taken_down"}, ":v": {"L": kept}})
    for k in objects(stack, f"{tenant}/v1/{gone}/"):
        s3.delete_object(Bucket=H.DERIVED, Key=k)

    before = objects(stack, f"{tenant}/")
    assert missing_obj not in before and len(before) == 15
    manifest_before = {k: stack.manifest(tenant, k)["items"] for k in (old, current, gone)}

    # first run
    ready = ready_versions(stack)
    assert len(ready) >= 2
    d, writes = backfill_ok(stack, {})
    pages = page_calls(stack, d["executionArn"])

    m = stack.manifest(tenant, old)["versions"][1]
    assert m["status"] == "ready", m
    names = [v["name"] for v in m["variants"]]
    assert sorted(names) == sorted(CATALOGUE), f"variants after backfill: {names}"
    by_name = {v["name"]: v for v in m["variants"]}
    restored = by_name[dropped]
    was = {k: v.get("S", v.get("N")) for k, v in removed[0]["M"].items()}
    assert restored["derivative"] == CATALOGUE[dropped], restored
    assert (restored["width"], restored["height"]) == (int(was["width"]), int(was["height"])), (restored, was)
    head = s3.head_object(Bucket=H.DERIVED, Key=missing_obj)
    assert head["ContentLength"] == restored["bytes"], (head["ContentLength"], restored)
    assert head["ContentType"] == "image/webp"
    assert head.get("CacheControl") == CACHE_CONTROL
    assert head.get("Metadata", {}).get("cache-tag") == f"asset:{tenant}/{old}", head.get("Metadata")
    with Image.open(io.BytesIO(stack.get_derived(missing_obj))) as im:
        assert im.format == "WEBP" and im.size == (restored["width"], restored["height"])
    assert any(w.startswith("PUT ") and missing_obj in w for w in writes), (
        f"the proxy log shows no write of {missing_obj}: {writes[:20]}")

    after = objects(stack, f"{tenant}/")
    assert set(after) == set(before) | {missing_obj}, sorted(set(after) ^ (set(before) | {missing_obj}))
    cur = f"{tenant}/v1/{current}/"
    assert {k: v for k, v in after.items() if k.startswith(cur)} == \
        {k: v for k, v in before.items() if k.startswith(cur)}, "a current version was re-rendered"
    assert stack.manifest(tenant, current)["items"] == manifest_before[current], "a current version's item changed"
    assert not objects(stack, f"{tenant}/v1/{gone}/"), "the backfill rendered a taken-down version"
    assert stack.manifest(tenant, gone)["items"] == manifest_before[gone], "a taken-down version's item changed"

    # second run: everything is current, nothing is written anywhere
    manifest_mid = {k: stack.manifest(tenant, k)["items"] for k in (old, current, gone)}
    _, writes = backfill_ok(stack, {})
    assert not writes, f"the second backfill wrote to the derived bucket: {writes[:20]}"
    assert objects(stack, f"{tenant}/") == after, "objects changed in the second backfill"
    assert {k: stack.manifest(tenant, k)["items"] for k in (old, current, gone)} == manifest_mid

    # the listing went through the manifest pages until their cursor ran out
    assert pages and pages[0].get("cursor") is None, pages[:5]


def test_backfill_steps_directly(stack: H.Harness):
    """The precompute function's backfill steps on their own: the count, a full listing through
    the cursor, and `backfill` of a current version answering `current`."""
    tenant, key = "bf-steps", "one/two.png"
    n = ingest(stack, tenant, key, (PNGSUITE / "basn3p08.png").read_bytes())

    def call(payload: dict) -> Any:
        status, headers, body = stack.invoke_direct(payload)
        assert status == 200 and "x-amz-function-error" not in headers, f"{payload}: HTTP {status} {body[:500]!r}"
        return json.loads(body)

    total = call({"step": "backfill_count"})["total"]
    seen, cursor, pages = [], None, 0
    while True:
        page = call({"step": "backfill_page", "cursor": cursor, "limit": 2})
        assert len(page["items"]) <= 2, page
        seen.extend((i["tenant"], i["key"], i["version"]) for i in page["items"])
        cursor = page["cursor"]
        pages += 1
        assert pages < 10_000
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "an item listed twice"
    ready = ready_versions(stack)
    assert total == len(ready), f"backfill_count {total}, the table holds {len(ready)} ready versions"
    assert ready <= set(seen), f"ready versions not listed: {sorted(ready - set(seen))[:20]}"
    assert (tenant, key, n) in seen
    out = call({"step": "backfill", "tenant": tenant, "key": key, "version": n})
    assert out["outcome"] == "current" and out["variants"] == 8, out
