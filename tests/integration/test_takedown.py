"""End-to-end tests of the takedown (DMCA) and erasure (GDPR Art. 17) workflow (docs/takedown.md).

Assets go through the real precompute pipeline first (versions, eight derivatives each), are
copied to the replica bucket as CRR would, and then a real execution of
statemachine/takedown.asl.json (STANDARD, in moto) runs the `takedown` function under
`cargo lambda watch`. The function purges SeaweedFS (originals, replica, derived), invalidates a
CloudFront distribution in moto through the CloudFront fault router, marks the manifest and
writes the audit table. Every test uses its own tenant.

Run: PATH=~/.cache/pixelfront/venv/bin:$PATH python -m pytest tests/integration/test_takedown.py -q
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

import harness as H

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
PNGSUITE = CORPUS / "pngsuite"
# small real PNGs (32x32): fast to render, distinct bytes per version
PNGS = [PNGSUITE / n for n in ("basn2c08.png", "basn0g08.png", "basn6a08.png", "basn3p08.png",
                               "basn2c16.png", "basn0g16.png", "basn4a08.png", "basn6a16.png")]
DERIVATIVES = {"w160-h160-q75.webp", "w320-q80.webp", "w320-q60.avif", "w640-q80.webp",
               "w640-q60.avif", "w640-q80.jpeg", "w1280-q80.webp", "w1280-q60.avif"}
MAX_PATHS_IN_FLIGHT = 3000
MAP_CONCURRENCY = 2

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture(scope="module", autouse=True)
def _takedown_ready(stack: H.Harness):
    """The takedown machine must exist (a missing ASL file fails every test here, it never skips)
    and the function must be built before moto's Lambda client calls it."""
    stack.workflow_arn(H.TAKEDOWN_MACHINE)
    try:
        stack.warm_up_function(H.TAKEDOWN_NAME)
    except H.StartupError as e:
        pytest.fail(f"the takedown function does not start:\n{e}")


# ------------------------------------------------------------------------------------------
# helpers


def request_id() -> str:
    return f"req-{uuid.uuid4().hex[:20]}"


def ingest(stack: H.Harness, tenant: str, key: str, body: bytes) -> tuple[tuple[str, str, int], int]:
    """Upload an original and run the real precompute execution -> (upload, manifest version)."""
    full = f"{tenant}/{key}"
    up = stack.upload(full, body, "image/png")
    d = stack.run(stack.event_for(full, up))
    assert d["status"] == "SUCCEEDED", f"precompute of {full}: {d['status']}\n{stack.history_text(d['executionArn'])}"
    m = stack.manifest(tenant, key)
    n = m["sources"].get(up[0])
    assert n is not None and m["versions"][n]["status"] == "ready", json.dumps(m["items"], default=str)[:2000]
    prefix = f"{tenant}/v{n}/{key}/"
    assert set(direct(stack.derived_objects(prefix), prefix)) == {f"{prefix}{d}" for d in DERIVATIVES}
    return up, n


def direct(objects: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The objects directly under `prefix` (one version's derivatives; derivative names never
    contain `/`), not those of a longer key `{key}/x`."""
    return {k: v for k, v in objects.items() if "/" not in k[len(prefix):]}


def derivative_paths(tenant: str, key: str, versions: list[int]) -> set[str]:
    """The exact invalidation paths of the eight variants of each version."""
    return {f"/{tenant}/v{n}/{key}/{d}" for n in versions for d in DERIVATIVES}


def exact(versions: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [v for v in versions if v["key"] == key]


def vset(entries: list[dict[str, Any]]) -> set[tuple[str, str, str | None, bool]]:
    return {(e["bucket"], e["key"], e.get("version_id"), bool(e.get("delete_marker"))) for e in entries}


def snapshot(stack: H.Harness, tenant: str, key: str, versions: list[int]) -> dict[str, Any]:
    """What exists of an asset: every S3 version and delete marker of its original in both
    buckets, its derived objects per version."""
    full = f"{tenant}/{key}"
    derived: dict[str, dict] = {}
    for n in versions:
        prefix = f"{tenant}/v{n}/{key}/"
        derived.update(direct(stack.derived_objects(prefix), prefix))
    return {
        "primary": exact(stack.object_versions(H.ORIGINALS, full), full),
        "replica": exact(stack.object_versions(H.REPLICA, full, replica=True), full),
        "derived": derived,
    }


def parse_ts(s: str) -> datetime:
    """RFC 3339 with any fraction length and Z -> aware datetime."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", s)
    assert m, f"not an RFC 3339 timestamp: {s!r}"
    frac = (m.group(2) or ".0")[:7]
    tz = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(m.group(1) + frac + tz)


def takedown_ok(stack: H.Harness, request: dict, rid: str, timeout: float = 900) -> dict:
    d = stack.run_takedown(request, rid, timeout=timeout)
    assert d["status"] == "SUCCEEDED", (
        f"takedown {rid}: {d['status']} error={d.get('error')!r} cause={d.get('cause')!r}\n"
        f"{stack.history_text(d['executionArn'], 12000)}")
    return d


def new_invalidations(stack: H.Harness, before: set[str]) -> list[dict]:
    return [i for i in stack.list_invalidations() if i["id"] not in before]


def assert_asset_gone(stack: H.Harness, tenant: str, key: str, versions: list[int], status: str) -> None:
    """No S3 version or delete marker of the original in either bucket, no derived object of any
    version, every manifest version item marked `status`."""
    full = f"{tenant}/{key}"
    left = exact(stack.object_versions(H.ORIGINALS, full), full)
    assert not left, f"originals still holds {full}: {left}"
    left = exact(stack.object_versions(H.REPLICA, full, replica=True), full)
    assert not left, f"the replica still holds {full}: {left}"
    for n in versions:
        prefix = f"{tenant}/v{n}/{key}/"
        left = [v for v in stack.object_versions(H.DERIVED, prefix) if "/" not in v["key"][len(prefix):]]
        assert not left, f"derived still holds under {prefix}: {[v['key'] for v in left]}"
    m = stack.manifest(tenant, key)
    assert sorted(m["versions"]) == sorted(versions), f"manifest versions {sorted(m['versions'])}"
    for n in versions:
        assert m["versions"][n]["status"] == status, f"v{n} status {m['versions'][n]['status']!r}, expected {status!r}"


def check_invalidations(invs: list[dict], rid: str, expected_paths: set[str]) -> None:
    """The request's invalidations in moto: caller references `{rid}-{i}` (distinct), each path
    invalidated exactly once, tag and path batches separate, never a wildcard (it would reach
    `{key}/x`), batch sizes inside CloudFront's in-flight limits at the map's concurrency."""
    dump = json.dumps(invs, default=str)[:4000]
    assert invs, f"no invalidation was created for {rid}"
    for inv in invs:
        assert re.fullmatch(re.escape(rid) + r"-\d+", inv["caller_reference"]), f"caller reference: {dump}"
    refs = [i["caller_reference"] for i in invs]
    assert len(refs) == len(set(refs)), f"the same batch was invalidated twice: {dump}"
    paths = [p for i in invs for p in i["paths"]]
    assert sorted(paths) == sorted(expected_paths), (
        f"invalidated paths differ: missing {sorted(expected_paths - set(paths))}, "
        f"unexpected {sorted(set(paths) - expected_paths)}, duplicated "
        f"{sorted({p for p in paths if paths.count(p) > 1})}")
    for inv in invs:
        tags = [p for p in inv["paths"] if p.startswith("#")]
        assert not tags or len(tags) == len(inv["paths"]), f"tags and paths mixed in one invalidation: {inv}"
        assert not any("*" in p for p in inv["paths"]), f"a wildcard path: {inv}"
        assert len(inv["paths"]) <= MAX_PATHS_IN_FLIGHT // MAP_CONCURRENCY, f"batch of {len(inv['paths'])} paths"


def check_router_calls(calls: list[dict], invs: list[dict], faults: int) -> None:
    """What the CloudFront fault router saw during one request: exactly `faults` faults, every
    other call forwarded and answered 201, one per invalidation in moto, and every batch that
    drew a fault issued again until it got through (no purge silently dropped)."""
    dump = json.dumps(calls, default=str)[:4000]
    faulted = [c for c in calls if c["outcome"] == "fault"]
    ok = [c for c in calls if c["outcome"] == "forwarded" and c["status"] == 201]
    assert len(faulted) == faults, f"{len(faulted)} faults served, {faults} armed: {dump}"
    assert len(calls) == faults + len(ok), f"calls other than faults and successes: {dump}"
    assert len(ok) == len(invs), f"{len(ok)} successful CreateInvalidation calls, {len(invs)} invalidations in moto: {dump}"
    assert {c["id"] for c in ok} == {i["id"] for i in invs}
    ok_refs = {c["caller_reference"] for c in ok}
    for c in faulted:
        assert c["caller_reference"] in ok_refs, f"batch {c['caller_reference']} failed and was never retried: {dump}"
    by_id = {i["id"]: i for i in invs}
    for c in ok:
        assert sorted(c["paths"]) == sorted(by_id[c["id"]]["paths"]), f"moto stored other paths than sent: {c}"


def check_audit(stack: H.Harness, tenant: str, key: str, rid: str, *, action: str, reason: str,
                requester: str, status: str, versions: list[int], before: dict[str, Any],
                invs: list[dict]) -> dict:
    """The audit item of one asset proves what was removed: every S3 version and delete marker
    of both buckets, every derivative (entries deduplicated: a retried step may repeat one), and
    the ids of the invalidations moto holds for it (every invalidation of the request that
    carried one of the asset's paths; ids of the request's other invalidations are tolerated,
    unknown ids are not)."""
    items = stack.audit_items(tenant, key)
    assert list(items) == [rid], f"audit items of {tenant}/{key}: {list(items)}"
    item = items[rid]
    dump = json.dumps(item, default=str)[:4000]
    for attr, want in (("request_id", rid), ("action", action), ("reason", reason), ("requester", requester),
                       ("tenant", tenant), ("key", key), ("status", status)):
        assert item.get(attr) == want, f"{attr}: {item.get(attr)!r}, expected {want!r}\n{dump}"
    started, finished = parse_ts(item["started_at"]), parse_ts(item["finished_at"])
    assert started <= finished, dump
    assert sorted(item["versions"]) == sorted(versions), f"versions {item['versions']}"
    deleted = item["deleted"]
    unparsed = [e for lst in deleted.values() for e in lst if "unparsed" in e]
    assert not unparsed, f"audit entries that are not JSON objects: {unparsed}"
    assert vset(deleted["originals"]) == vset(before["primary"]), (
        f"deleted_originals {deleted['originals']}\nexpected {before['primary']}")
    assert vset(deleted["replica"]) == vset(before["replica"]), (
        f"deleted_replica {deleted['replica']}\nexpected {before['replica']}")
    assert all(e["bucket"] == H.ORIGINALS for e in deleted["originals"]), deleted["originals"]
    assert all(e["bucket"] == H.REPLICA for e in deleted["replica"]), deleted["replica"]
    markers = {v["version_id"] for v in before["primary"] if v["delete_marker"]}
    assert {e["version_id"] for e in deleted["originals"] if e["delete_marker"]} == markers
    derivs = deleted["derivatives"]
    assert all(e["bucket"] == H.DERIVED and not e["delete_marker"] for e in derivs), derivs
    assert sorted(e["key"] for e in derivs) == sorted(before["derived"]), (
        f"deleted_derivatives {sorted(e['key'] for e in derivs)}\nexpected {sorted(before['derived'])}")
    mine = {f"#asset:{tenant}/{key}"} | derivative_paths(tenant, key, versions)
    must = {i["id"] for i in invs if mine & set(i["paths"])}
    allowed = {i["id"] for i in invs}
    got = set(item["invalidation_ids"])
    assert must <= got <= allowed, (
        f"audit invalidation ids {sorted(got)}: missing {sorted(must - got)}, unknown to moto {sorted(got - allowed)}")
    return item


def deleted_count(item: dict) -> int:
    return sum(len(v) for v in item["deleted"].values())


def arm(stack: H.Harness) -> tuple[set[str], int]:
    """Before a request: the invalidation ids moto has, the router's call count."""
    return {i["id"] for i in stack.list_invalidations()}, len(stack.cdn.snapshot())


# ------------------------------------------------------------------------------------------
# tests


def test_takedown_end_to_end(stack: H.Harness):
    tenant, key = "td-e2e", "photos/cat.png"
    full = f"{tenant}/{key}"
    # a sibling whose S3 key and derived prefix start with this asset's: must survive untouched
    decoy_key = "photos/cat.png.orig"
    decoy_up, _ = ingest(stack, tenant, decoy_key, PNGS[2].read_bytes())
    up1, n1 = ingest(stack, tenant, key, PNGS[0].read_bytes())
    up2, n2 = ingest(stack, tenant, key, PNGS[1].read_bytes())
    assert (n1, n2) == (1, 2)
    stack.replicate(full, up1[0])
    stack.replicate(full, up2[0])
    stack.s3().delete_object(Bucket=H.ORIGINALS, Key=full)  # a delete marker on top
    before = snapshot(stack, tenant, key, [1, 2])
    assert sum(v["delete_marker"] for v in before["primary"]) == 1 and len(before["primary"]) == 3, before["primary"]
    assert len(before["replica"]) == 2, before["replica"]
    assert len(before["derived"]) == 16
    decoy_derived = stack.derived_objects(f"{tenant}/v1/{decoy_key}/")

    inv_before, calls_before = arm(stack)
    stack.cdn_faults(3)
    rid = request_id()
    request = {"tenant": tenant, "key": key, "reason": "dmca", "requester": "legal@example.com"}
    d = takedown_ok(stack, request, rid)
    assert stack.cdn.pending() == 0, "not all armed CloudFront faults were consumed"

    assert_asset_gone(stack, tenant, key, [1, 2], "taken_down")

    invs = new_invalidations(stack, inv_before)
    check_invalidations(invs, rid, {f"#asset:{full}"})
    check_router_calls(stack.cdn.snapshot()[calls_before:], invs, faults=3)
    ids = {i["id"] for i in invs}

    item = check_audit(stack, tenant, key, rid, action="takedown", reason="dmca", requester="legal@example.com",
                       status="taken_down", versions=[1, 2], before=before, invs=invs)
    assert set(item["invalidation_ids"]) == ids
    summary = stack.audit_request(rid)
    assert summary is not None, f"no #request/{rid} item"
    assert isinstance(summary["record_json"], dict), summary
    assert summary["record_json"].get("request_id") == rid, summary

    out = json.loads(d["output"])
    assert out["request_id"] == rid, out
    assert out["action"] == "takedown", out
    assert set(out["invalidation_ids"]) == ids, out
    assert out["deleted"] == deleted_count(item) == 3 + 2 + 16, out
    assert out["assets"] == [full], out

    # the sibling key is untouched
    assert [v["version_id"] for v in exact(stack.object_versions(H.ORIGINALS, f"{tenant}/{decoy_key}"),
                                           f"{tenant}/{decoy_key}")] == [decoy_up[0]]
    assert stack.derived_objects(f"{tenant}/v1/{decoy_key}/") == decoy_derived
    assert stack.manifest(tenant, decoy_key)["versions"][1]["status"] == "ready"
    assert not stack.audit_items(tenant, decoy_key)


def test_takedown_is_idempotent(stack: H.Harness):
    tenant, key = "td-idem", "a/b.png"
    full = f"{tenant}/{key}"
    up, _ = ingest(stack, tenant, key, PNGS[3].read_bytes())
    stack.replicate(full, up[0])
    rid = request_id()
    request = {"tenant": tenant, "key": key, "reason": "tenant", "requester": "ops@example.com"}
    first = takedown_ok(stack, request, rid)
    assert_asset_gone(stack, tenant, key, [1], "taken_down")

    audit = stack.audit_items(tenant, key)
    summary = stack.audit_request(rid)
    assert list(audit) == [rid] and summary is not None
    invs = stack.list_invalidations()
    calls = len(stack.cdn.snapshot())
    manifest = stack.manifest(tenant, key)["items"]

    # the same request again: Step Functions answers with the existing execution or refuses
    try:
        arn = stack.start_workflow(H.TAKEDOWN_MACHINE, request, rid)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "ExecutionAlreadyExists", e.response["Error"]
    else:
        assert arn == first["executionArn"], f"a second execution {arn} for request {rid}"
        again = stack.wait_execution(arn)
        assert again["status"] == "SUCCEEDED", again

    assert stack.audit_items(tenant, key) == audit
    assert stack.audit_request(rid) == summary
    assert stack.list_invalidations() == invs
    assert len(stack.cdn.snapshot()) == calls
    assert stack.manifest(tenant, key)["items"] == manifest
    assert_asset_gone(stack, tenant, key, [1], "taken_down")

    # the function itself: `begin` of a finished request says so and changes nothing
    status, out = stack.invoke_takedown({"step": "begin", "request_id": rid, "request": request})
    assert status == 200, f"begin of a finished request: HTTP {status} {out}"
    assert out.get("already_done") is True, out
    assert out.get("request_id") == rid, out
    assert stack.audit_items(tenant, key) == audit
    assert stack.audit_request(rid) == summary
    assert stack.list_invalidations() == invs
    assert stack.manifest(tenant, key)["items"] == manifest


def test_gdpr_erasure(stack: H.Harness):
    tenant, key = "td-erase", "people/face.png"
    full = f"{tenant}/{key}"
    up, _ = ingest(stack, tenant, key, PNGS[4].read_bytes())
    stack.replicate(full, up[0])
    before = snapshot(stack, tenant, key, [1])
    assert len(before["primary"]) == 1 and len(before["replica"]) == 1 and len(before["derived"]) == 8

    inv_before, calls_before = arm(stack)
    rid = request_id()
    request = {"tenant": tenant, "key": key, "reason": "gdpr", "requester": "dpo@example.com"}
    d = takedown_ok(stack, request, rid)

    assert_asset_gone(stack, tenant, key, [1], "erased")
    invs = new_invalidations(stack, inv_before)
    check_invalidations(invs, rid, {f"#asset:{full}"})
    check_router_calls(stack.cdn.snapshot()[calls_before:], invs, faults=0)
    item = check_audit(stack, tenant, key, rid, action="erase", reason="gdpr", requester="dpo@example.com",
                       status="erased", versions=[1], before=before, invs=invs)
    assert set(item["invalidation_ids"]) == {i["id"] for i in invs}
    out = json.loads(d["output"])
    assert out["action"] == "erase" and out["request_id"] == rid, out
    assert out["deleted"] == deleted_count(item) == 1 + 1 + 8, out
    assert out["assets"] == [f"{tenant}/{key}"], out


def test_batch_takedown(stack: H.Harness):
    """Three keys of one tenant with 17 versions in all, purged by their three tags in one
    batch; two throttling answers on the way."""
    tenant = "td-batch"
    counts = {"b/one.png": 8, "b/two.png": 6, "b/three.png": 3}
    versions: dict[str, list[int]] = {}
    for key, count in counts.items():
        for i in range(count):
            up, n = ingest(stack, tenant, key, PNGS[i % len(PNGS)].read_bytes())
            versions.setdefault(key, []).append(n)
            if i == 0:
                stack.replicate(f"{tenant}/{key}", up[0])
        assert versions[key] == list(range(1, count + 1))
    befores = {key: snapshot(stack, tenant, key, versions[key]) for key in counts}

    inv_before, calls_before = arm(stack)
    stack.cdn_faults(2, "Throttling")
    rid = request_id()
    request = {"tenant": tenant, "keys": list(counts), "reason": "dmca", "requester": "legal@example.com"}
    d = takedown_ok(stack, request, rid, timeout=1200)

    expected_paths = set()
    for key in counts:
        assert_asset_gone(stack, tenant, key, versions[key], "taken_down")
        expected_paths.add(f"#asset:{tenant}/{key}")
    invs = new_invalidations(stack, inv_before)
    check_invalidations(invs, rid, expected_paths)
    assert len(invs) == 1, f"three tags in {len(invs)} batches"
    check_router_calls(stack.cdn.snapshot()[calls_before:], invs, faults=2)
    ids = {i["id"] for i in invs}
    audited_ids: set[str] = set()
    deleted = 0
    for key in counts:
        item = check_audit(stack, tenant, key, rid, action="takedown", reason="dmca", requester="legal@example.com",
                           status="taken_down", versions=versions[key], before=befores[key], invs=invs)
        audited_ids |= set(item["invalidation_ids"])
        deleted += deleted_count(item)
    assert audited_ids == ids, f"invalidations not in any audit item: {ids - audited_ids}"
    out = json.loads(d["output"])
    assert out["request_id"] == rid, out
    assert set(out["invalidation_ids"]) == ids, out
    assert out["deleted"] == deleted, out
    assert len(out["assets"]) == 3 and out["assets"] == sorted(out["assets"]), out


@pytest.mark.parametrize("case", ["missing-reason", "unknown-reason"])
def test_bad_request_fails_and_deletes_nothing(stack: H.Harness, case: str):
    tenant, key = f"td-bad-{case}", "x/y.png"
    full = f"{tenant}/{key}"
    up, _ = ingest(stack, tenant, key, PNGS[5].read_bytes())
    stack.replicate(full, up[0])
    before = snapshot(stack, tenant, key, [1])
    request: dict[str, Any] = {"tenant": tenant, "key": key, "requester": "legal@example.com"}
    if case == "unknown-reason":
        request["reason"] = "because"
    inv_before, calls_before = arm(stack)
    rid = request_id()
    d = stack.run_takedown(request, rid)
    assert d["status"] == "FAILED", f"{d['status']} output={d.get('output')!r}\n{stack.history_text(d['executionArn'])}"
    assert d.get("error") == "InvalidRequest", f"error {d.get('error')!r} cause {d.get('cause')!r}"

    assert snapshot(stack, tenant, key, [1]) == before, "something was deleted"
    assert stack.manifest(tenant, key)["versions"][1]["status"] == "ready"
    assert not stack.audit_items(tenant, key)
    assert stack.audit_request(rid) is None
    assert not new_invalidations(stack, inv_before)
    assert len(stack.cdn.snapshot()) == calls_before

    # and the function says the same when asked directly
    status, out = stack.invoke_takedown({"step": "begin", "request_id": rid, "request": request})
    assert status != 200 and isinstance(out, dict) and out.get("errorType") == "InvalidRequest", (status, out)


def test_unknown_asset_is_not_found(stack: H.Harness):
    rid = request_id()
    d = stack.run_takedown({"tenant": "td-none", "key": "no/such.png", "reason": "dmca",
                            "requester": "legal@example.com"}, rid)
    assert d["status"] == "FAILED", f"{d['status']} output={d.get('output')!r}"
    assert d.get("error") == "NotFound", f"error {d.get('error')!r} cause {d.get('cause')!r}"
    assert stack.audit_request(rid) is None


def test_takedown_of_many_derivatives_and_an_over_long_tag(stack: H.Harness):
    """An asset with 1,500 stored on-demand renders besides its eight variants: the audit record
    must list every one of them, more than one 400 KB DynamoDB item holds (so they go into
    chunk items). In the same request, an asset whose cache tag would be over CloudFront's 256
    characters: no tag item is sent for it, the exact paths of its derivatives purge it."""
    from concurrent.futures import ThreadPoolExecutor

    tenant = "td-many"
    big_key = "big/" + "p" * 200 + ".png"  # tag `asset:td-many/big/ppp….png`: 221 characters
    long_key = "long/" + "q" * 300 + ".png"  # tag over 256 characters
    ingest(stack, tenant, big_key, PNGS[6].read_bytes())
    ingest(stack, tenant, long_key, PNGS[7].read_bytes())
    assert len(f"asset:{tenant}/{big_key}") <= 256 < len(f"asset:{tenant}/{long_key}")

    s3 = stack.s3()
    extra = [f"{tenant}/v1/{big_key}/w{w}-h{h}-q75.webp" for w in range(1, 51) for h in range(1, 31)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=H.DERIVED, Key=k, Body=b"x", ContentType="image/webp"),
                      extra))
    before_big = {v["key"] for v in stack.object_versions(H.DERIVED, f"{tenant}/v1/{big_key}/")}
    assert len(before_big) == 8 + 1500, len(before_big)

    inv_before, _ = arm(stack)
    rid = request_id()
    request = {"tenant": tenant, "keys": [big_key, long_key], "reason": "tenant", "requester": "ops@example.com"}
    d = takedown_ok(stack, request, rid, timeout=1200)

    assert_asset_gone(stack, tenant, big_key, [1], "taken_down")
    assert_asset_gone(stack, tenant, long_key, [1], "taken_down")
    invs = new_invalidations(stack, inv_before)
    check_invalidations(invs, rid, {f"#asset:{tenant}/{big_key}"} | derivative_paths(tenant, long_key, [1]))

    items = stack.audit_items(tenant, big_key)
    assert list(items) == [rid], list(items)
    derivs = items[rid]["deleted"]["derivatives"]
    assert {e["key"] for e in derivs} == before_big, f"{len(derivs)} of {len(before_big)} derivatives audited"
    raw = [it for it in stack._query_pk(H.AUDIT_TABLE, f"{tenant}/{big_key}") if "#" in it["sk"]]
    chunks = [it for it in raw if it["attribute"] == "deleted_derivatives"]
    assert len(chunks) >= 2, f"{len(chunks)} derivative chunk item(s) for {sum(len(json.dumps(e)) for e in derivs)} bytes"
    out = json.loads(d["output"])
    assert out["deleted"] == sum(deleted_count(i) for k in (big_key, long_key)
                                 for i in stack.audit_items(tenant, k).values()), out


def test_takedown_of_k_leaves_k_slash_x_and_a_derivative_like_key(stack: H.Harness):
    """`k/a.png`, `k/a.png/x.png` and `k/a.png/w640-q80.webp` (a key whose last segment is one
    of `k/a.png`'s derivative names): a takedown of `k/a.png` deletes its own original and
    derivatives only (delimited listings), lists only those in its audit item, and purges its
    tag alone; the others keep everything."""
    tenant, key = "td-exact", "k/a.png"
    others = ["k/a.png/x.png", "k/a.png/w640-q80.webp"]
    ups = {k: ingest(stack, tenant, k, PNGS[i].read_bytes())[0] for i, k in enumerate(others)}
    up, _ = ingest(stack, tenant, key, PNGS[2].read_bytes())
    stack.replicate(f"{tenant}/{key}", up[0])
    before = snapshot(stack, tenant, key, [1])
    assert set(before["derived"]) == {f"{tenant}/v1/{key}/{d}" for d in DERIVATIVES}
    kept = {k: snapshot(stack, tenant, k, [1]) for k in others}

    inv_before, _ = arm(stack)
    rid = request_id()
    request = {"tenant": tenant, "key": key, "reason": "dmca", "requester": "legal@example.com"}
    d = takedown_ok(stack, request, rid)

    assert_asset_gone(stack, tenant, key, [1], "taken_down")
    invs = new_invalidations(stack, inv_before)
    check_invalidations(invs, rid, {f"#asset:{tenant}/{key}"})
    item = check_audit(stack, tenant, key, rid, action="takedown", reason="dmca", requester="legal@example.com",
                       status="taken_down", versions=[1], before=before, invs=invs)
    assert json.loads(d["output"])["deleted"] == deleted_count(item) == 1 + 1 + 8
    for k in others:
        assert snapshot(stack, tenant, k, [1]) == kept[k], f"{k} changed"
        assert [v["version_id"] for v in exact(stack.object_versions(H.ORIGINALS, f"{tenant}/{k}"),
                                               f"{tenant}/{k}")] == [ups[k][0]]
        assert stack.manifest(tenant, k)["versions"][1]["status"] == "ready"
        assert not stack.audit_items(tenant, k)
