"""End-to-end tests of the tenant API on AWS's parts (docs/tenant-api.md): the `api` function
under `cargo lambda watch` with its role's credentials (template.yaml ApiFunctionRole), API keys
in the key table (moto's DynamoDB, behind the IAM gate), upload URLs presigned by the function
and sent straight to SeaweedFS (which checks the SigV4 query signature: key, content type and
length are signed), the real precompute execution, lookups and listings through moto, and a
takedown request that starts the real takedown workflow in moto.

Run: PATH=~/.cache/pixelfront/venv/bin:$PATH python -m pytest tests/integration/test_api.py -q
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

import harness as H

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
PNG = (CORPUS / "pngsuite" / "basn2c08.png").read_bytes()
PNG2 = (CORPUS / "pngsuite" / "basn0g08.png").read_bytes()

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture(scope="module", autouse=True)
def _api_ready(stack: H.Harness):
    """The api binary is built before the first test's calls (a first invoke compiles it)."""
    try:
        stack.warm_up_function(H.API_NAME)
    except H.StartupError as e:
        pytest.fail(f"the api function does not start:\n{e}")


def api_key(stack: H.Harness, tenant: str) -> str:
    """A key as `pixelfront tenant api-key-add` makes it, stored as its hash only."""
    kid = secrets.token_hex(8)
    key = f"pfk_{kid}_{base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b'=').decode()}"
    stack.dynamodb_client().put_item(TableName=H.API_KEY_TABLE, Item={
        "kid": {"S": kid}, "tenant": {"S": tenant},
        "hash": {"S": hashlib.sha256(key.encode()).hexdigest()}, "created_at": {"S": "2026-12-07T00:00:00Z"}})
    return key


def cli_key(stack: H.Harness, tenant: str) -> str:
    """A key made by `pixelfront tenant --aws api-key-add`, as the operator runs it (its calls
    checked against TenantPolicyOperatorPolicy)."""
    done = stack.tenant_cli("api-key-add", tenant)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def call(stack: H.Harness, method: str, path: str, key: str | None, body: Any = None,
         query: str = "") -> tuple[int, dict[str, str], Any]:
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    raw = json.dumps(body).encode() if body is not None else b""
    status, hdrs, data = stack.invoke_api(path, query, headers, method, raw)
    try:
        parsed = json.loads(data) if data else None
    except json.JSONDecodeError:
        parsed = data.decode(errors="replace")
    return status, hdrs, parsed


def put(url: str, body: bytes, content_type: str) -> int:
    req = urllib.request.Request(url, data=body, method="PUT", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def grant(stack: H.Harness, key: str, tenant: str, asset: str, body: bytes) -> dict[str, Any]:
    status, _, g = call(stack, "POST", f"/api/v1/tenants/{tenant}/uploads", key,
                        {"key": asset, "content_type": "image/png", "content_length": len(body)})
    assert status == 201, g
    return g


def render(stack: H.Harness, tenant: str, asset: str) -> None:
    """The precompute execution the upload's S3 event starts on AWS."""
    full = f"{tenant}/{asset}"
    head = stack.s3().head_object(Bucket=H.ORIGINALS, Key=full)
    up = (head["VersionId"], head["ETag"].strip('"'), head["ContentLength"])
    d = stack.run(stack.event_for(full, up))
    assert d["status"] == "SUCCEEDED", stack.history_text(d["executionArn"])


def test_a_tenant_key_uploads_through_a_presigned_url_and_finds_its_variants(stack: H.Harness):
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    key = cli_key(stack, tenant)
    items = stack.dynamodb_client().scan(TableName=H.API_KEY_TABLE)["Items"]
    assert not any(key in json.dumps(i) for i in items), "the key itself is never stored"
    other = api_key(stack, f"o-{uuid.uuid4().hex[:10]}")
    assets = f"/api/v1/tenants/{tenant}/assets"

    assert call(stack, "GET", assets, None)[0] == 401
    assert call(stack, "GET", assets, "pfk_0123456789abcdef_" + "A" * 43)[0] == 401
    # The console signs in with whoami (no admin token on AWS: operators use IAM).
    status, _, who = call(stack, "GET", "/api/v1/whoami", key)
    assert (status, who["caller"], who["tenant"]) == (200, "tenant", tenant), who
    assert call(stack, "GET", "/api/v1/whoami", None)[0] == 401
    status, _, body = call(stack, "GET", assets, other)
    assert (status, body) == (403, {"error": "this API key is for another tenant"})

    g = grant(stack, key, tenant, "photos/a.png", PNG)
    url = g["upload"]["url"]
    assert url.startswith(f"http://{H.HOST}:") and f"/{H.ORIGINALS}/{tenant}/photos/a.png?" in url, url
    assert "X-Amz-Signature=" in url and g["upload"]["headers"]["Content-Type"] == "image/png"
    # SeaweedFS checks the signature: another key, type or length is refused.
    assert put(url.replace("/photos/a.png?", "/photos/b.png?"), PNG, "image/png") == 403
    assert put(url, PNG, "image/jpeg") == 403
    assert put(url, PNG + b"\0", "image/png") == 403
    assert put(url, PNG, "image/png") == 200
    listed = stack.s3().list_objects_v2(Bucket=H.ORIGINALS, Prefix=f"{tenant}/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [f"{tenant}/photos/a.png"]

    status, _, body = call(stack, "GET", f"{assets}/photos/a.png", key)
    assert status == 404, body  # no version until the pipeline assigns one
    render(stack, tenant, "photos/a.png")
    status, _, view = call(stack, "GET", f"{assets}/photos/a.png", key, query="wait=5")
    assert (status, view["status"], view["version"]) == (200, "ready", 1), view
    assert len(view["variants"]) == 8
    assert all(v["url"].startswith(f"{H.API_DELIVERY_BASE}/img/{tenant}/v1/photos/a.png?") for v in view["variants"])

    # Listing (a scan of the manifest through moto), paged.
    stack.upload(f"{tenant}/photos/b.png", PNG2, "image/png")
    render(stack, tenant, "photos/b.png")
    status, _, page = call(stack, "GET", assets, key, query="prefix=photos/&limit=1")
    assert status == 200 and [a["key"] for a in page["assets"]] == ["photos/a.png"], page
    status, _, page2 = call(stack, "GET", assets, key, query=f"prefix=photos/&limit=1&cursor={page['next_cursor']}")
    assert [a["key"] for a in page2["assets"]] == ["photos/b.png"] and page2["next_cursor"] is None, page2

    # The latest alias.
    status, hdrs, _ = call(stack, "GET", f"/img/{tenant}/latest/photos/a.png", None, query="w=640")
    assert (status, hdrs.get("location")) == (302, f"/img/{tenant}/v1/photos/a.png?w=640")

    # A removed key stops working at once.
    kid = key.split("_")[1]
    listed = stack.tenant_cli("api-keys", tenant)
    assert listed.returncode == 0 and listed.stdout.startswith(kid), listed
    removed = stack.tenant_cli("api-key-remove", tenant, kid)
    assert removed.returncode == 0, removed.stderr
    assert call(stack, "GET", assets, key)[0] == 401
    assert stack.tenant_cli("api-key-remove", tenant, kid).returncode == 2


def test_a_tenant_key_requests_a_takedown_that_runs_the_workflow(stack: H.Harness):
    stack.workflow_arn(H.TAKEDOWN_MACHINE)
    stack.warm_up_function(H.TAKEDOWN_NAME)
    tenant = f"t-{uuid.uuid4().hex[:10]}"
    key = api_key(stack, tenant)
    stack.upload(f"{tenant}/a.png", PNG, "image/png")
    render(stack, tenant, "a.png")
    takedowns = f"/api/v1/tenants/{tenant}/takedowns"
    dmca = {"key": "a.png", "reason": "dmca", "requester": "legal@example.com"}
    assert call(stack, "POST", takedowns, key, dmca)[0] == 403
    request_id = f"req-{uuid.uuid4().hex[:12]}"
    status, _, accepted = call(stack, "POST", takedowns, key, {"key": "a.png", "request_id": request_id})
    assert status == 202, accepted
    assert accepted["status_url"] == f"/api/v1/tenants/{tenant}/takedowns/{request_id}"
    # The same request again is accepted; the id for another asset is a conflict.
    assert call(stack, "POST", takedowns, key, {"key": "a.png", "request_id": request_id})[0] == 202
    assert call(stack, "POST", takedowns, key, {"key": "b.png", "request_id": request_id})[0] == 409
    deadline = time.monotonic() + 600
    while True:
        status, _, record = call(stack, "GET", f"{takedowns}/{request_id}", key)
        assert status == 200, record
        if record["status"] != "in_progress":
            break
        assert time.monotonic() < deadline, record
        time.sleep(1)
    assert record["status"] == "finished", record
    assert record["records"][0]["reason"] == "tenant" and record["records"][0]["status"] == "taken_down"
    status, _, view = call(stack, "GET", f"/api/v1/tenants/{tenant}/assets/a.png", key)
    assert (status, view["status"]) == (200, "taken_down")
    assert call(stack, "GET", f"/img/{tenant}/latest/a.png", None)[0] == 404
    other = api_key(stack, f"o-{uuid.uuid4().hex[:10]}")
    assert call(stack, "GET", f"/api/v1/tenants/o-x/takedowns/{request_id}", other)[0] == 403
