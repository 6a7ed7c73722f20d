"""`pixelfront tenant --aws` end to end: the command writes moto's tenant policy table and the
KeyValueStore stand-in (kvs.py, the real HTTP API with ETags); then the real CloudFront Function
decides on the stand-in's contents and the transformer (`cargo lambda watch`, its IAM role
enforced) on the table's. A fresh store fails closed at both; a key rotation and retirement
behave the same at both; the KeyValueStore writes name the current ETag and survive another
writer; `check` finds a store that drifted.

Run: PATH=~/.cache/pixelfront/venv/bin:$PATH python -m pytest tests/integration -q
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

import harness as H

pytestmark = pytest.mark.usefixtures("stack")

SAMPLE = H.REPO_ROOT / "samples" / "Landscape_6.jpg"
FORWARDED = "x-pixelfront-request"

# The minified copy: the code the template embeds and CloudFront runs (edge/minify.mjs).
EDGE_FUNCTION = "edge/viewer-request.min.js"
_EDGE_RUNNER = """
import { runViewerRequest, fakeKvs } from './edge/harness.mjs';
const input = JSON.parse(process.argv[1]);
input.kvs = fakeKvs(input.kvs, { loaded: false });
process.stdout.write(JSON.stringify(await runViewerRequest(input)));
"""


@pytest.fixture(scope="module")
def cli(stack):
    """The pixelfront binary, built once (a no-op when `cargo test` built it already)."""
    env = {**os.environ}
    env.setdefault("CARGO_TARGET_DIR", str(H.Path.home() / ".cache" / "pixelfront" / "target"))
    subprocess.run(["cargo", "build", "-q", "-p", "pixelfront"], cwd=H.REPO_ROOT, env=env,
                   check=True, timeout=1800)
    return stack.tenant_cli


@pytest.fixture(scope="module")
def asset(stack):
    stack.warm_up_transform()
    tenant, key = "rotor", "p/landscape.jpg"
    up = stack.upload(f"{tenant}/{key}", SAMPLE.read_bytes())
    out = stack.run(stack.event_for(f"{tenant}/{key}", up))
    assert out["status"] == "SUCCEEDED", stack.history_text(out["executionArn"])
    n = max(stack.manifest(tenant, key)["versions"])
    return {"tenant": tenant, "uri": f"/img/{tenant}/v{n}/{key}"}


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def sign(uri: str, kid: str, secret: str) -> tuple[str, str]:
    exp = int(time.time()) + 600
    out = subprocess.run(["node", "edge/sign.mjs", "--kid", kid, "--secret", secret, "--exp", str(exp),
                          f"{uri}?w=200&fmt=png"],
                         cwd=H.REPO_ROOT, capture_output=True, text=True, check=True, timeout=60)
    path, query = out.stdout.strip().split("?", 1)
    return path, query


def at_edge(stack: H.Harness, path: str, query: str) -> dict:
    """The real viewer-request function (its minified copy, as deployed) reading what the stand-in
    holds now."""
    payload = {"uri": path, "querystring": query, "kvs": stack.kvs.store_contents(), "headers": {}}
    out = subprocess.run(["node", "--input-type=module", "-e", _EDGE_RUNNER, json.dumps(payload)],
                         cwd=H.REPO_ROOT, capture_output=True, text=True, timeout=60, check=True,
                         env={**os.environ, "PIXELFRONT_EDGE_FUNCTION": EDGE_FUNCTION})
    return json.loads(out.stdout)


def both(stack: H.Harness, path: str, query: str) -> tuple[tuple[int, bytes], tuple[int, bytes]]:
    """(status, reason) at the edge and at the transformer for one viewer request. Admitted,
    the transformer gets it as CloudFront forwards a miss; refused, it gets the viewer's
    request bare, as if it had reached the origin anyway. A 200's body is left out."""
    req = at_edge(stack, path, query)
    if "statusCode" in req:
        edge = (req["statusCode"], req["body"]["data"].encode())
        status, _, body = stack.invoke_url(path, query)
    else:
        edge = (200, b"")
        status, _, body = stack.invoke_url(req["uri"], "", {FORWARDED: f"{path}?{query}"})
    return edge, (status, b"" if status == 200 else body[:80])


def test_a_fresh_store_fails_closed_until_init(stack, cli, asset):
    path, query = asset["uri"], "w=200&fmt=png"
    ok(cli("remove", "#default"))
    try:
        assert "#default" not in stack.kvs.store_contents()
        edge, origin = both(stack, path, query)
        assert edge == (503, b"tenant policies not loaded")
        assert origin[0] == 503, origin
        ok(cli("init"))
        assert both(stack, path, query) == ((200, b""), (200, b""))
    finally:
        cli("init")


def test_rotation_and_retirement_reach_edge_and_transformer_alike(stack, cli, asset):
    tenant, uri = asset["tenant"], asset["uri"]
    ok(cli("add", tenant))
    try:
        ok(cli("key-add", tenant, "k1", "--secret", "first-secret"))
        ok(cli("sign", tenant, "on"))
        old = sign(uri, "k1", "first-secret")
        assert both(stack, *old) == ((200, b""), (200, b""))
        assert both(stack, uri, "w=200&fmt=png") == ((403, b"signature required"),) * 2

        # Rotation: a generated secret is printed once; both keys verify during the overlap.
        secret = ok(cli("key-add", tenant, "k2")).strip()
        assert len(secret) == 64
        new = sign(uri, "k2", secret)
        for url in (old, new):
            assert both(stack, *url) == ((200, b""), (200, b"")), url

        # Retirement: k1 is refused at the edge and at the transformer; k2 still serves.
        before = len(stack.kvs.write_log())
        ok(cli("key-remove", tenant, "k1"))
        assert both(stack, *old) == ((403, b"unknown key"),) * 2
        assert both(stack, *new) == ((200, b""), (200, b""))

        # The KeyValueStore write named the ETag the store had just before it.
        writes = stack.kvs.write_log()[before:]
        assert [w["key"] for w in writes] == [tenant], writes
        assert writes[0]["if_match"], writes
        assert json.loads(writes[0]["value"])["keys"] == {"k2": secret}
        listed = ok(cli("list"))
        assert f"{tenant}\tsign=on\tkeys=[k2]\treferers=[]" in listed, listed
        ok(cli("check"))
    finally:
        cli("sign", tenant, "off")
        cli("remove", tenant)
    assert tenant not in stack.kvs.store_contents()


def test_another_writer_between_describe_and_put_is_retried(stack, cli):
    ok(cli("add", "busy"))
    try:
        stack.kvs.inject_after("DescribeKeyValueStore", times=2, puts={"other-tenant": "{}"})
        ok(cli("referer-add", "busy", "shop.example.com"))
        stored = json.loads(stack.kvs.store_contents()["busy"])
        assert stored["referers"] == ["shop.example.com"]
        assert not stack.kvs.armed(), "both injected writes fired: the command re-read the ETag twice"
    finally:
        stack.kvs.disarm()
        cli("remove", "busy")
        stack.kvs.concurrent_write(deletes=["other-tenant"])


def test_check_finds_drift_and_load_repairs_it(stack, cli, tmp_path):
    ok(cli("add", "drifty"))
    try:
        stack.kvs.concurrent_write(puts={"drifty": json.dumps({"sign": False, "referers": ["x.example"]})})
        result = cli("check")
        assert result.returncode == 1, result
        assert "drifty\tdifferent" in result.stdout
        tenants = tmp_path / "tenants.json"
        tenants.write_text(json.dumps({"#default": {}, "drifty": {}}))
        ok(cli("load", str(tenants)))
        ok(cli("check"))
        # A bad file is refused before anything is written.
        tenants.write_text(json.dumps({"drifty": {"sign": True}}))
        result = cli("load", str(tenants))
        assert result.returncode == 2 and "signs but has no key" in result.stderr, result
    finally:
        cli("remove", "drifty")


@pytest.mark.iam_denials_expected
def test_another_store_is_a_clear_failure_and_a_rerun_finishes(stack, cli):
    """The operator policy names the stack's store only: another ARN is refused as AWS refuses
    it, before anything is written to the table."""
    wrong = {"PIXELFRONT_KVS_ARN": "arn:aws:cloudfront::123456789012:key-value-store/none"}
    result = cli("add", "nowhere", env=wrong)
    assert result.returncode == 1, result
    assert "AccessDeniedException" in result.stderr and "step 2/3 (edge)" in result.stderr, result.stderr
    assert "cloudfront-keyvaluestore:DescribeKeyValueStore" in result.stderr
    try:
        ok(cli("add", "nowhere"))
        assert "nowhere" in stack.kvs.store_contents()
    finally:
        cli("remove", "nowhere")


@pytest.mark.iam_denials_expected
def test_every_call_is_checked_against_the_operator_policy(stack, cli):
    """The command's calls pass the IAM gates only as TenantPolicyOperatorPolicy allows them:
    without kvs PutKey the change stops at step 2 with AWS's error, the table untouched;
    without dynamodb PutItem it stops at step 3 with the edge already loosened, and running it
    again with the permission back finishes it."""
    def add_without(action: str, step: str) -> None:
        n = stack.iam.denial_count()
        stack.iam.revoke(H.OPERATOR_POLICY, action)
        try:
            result = cli("add", "denied")
        finally:
            stack.iam.restore()
        assert result.returncode == 1 and "AccessDeniedException" in result.stderr, result.stderr
        assert f"step {step}" in result.stderr, result.stderr
        denials = [str(d) for d in stack.iam.denials_since(n)]
        assert any(f"lacks {action}" in d for d in denials), denials

    add_without("cloudfront-keyvaluestore:PutKey", "2/3 (edge)")
    assert "denied" not in stack.kvs.store_contents()
    assert cli("show", "denied").returncode == 2, "the table has no entry"
    add_without("dynamodb:PutItem", "3/3")
    try:
        ok(cli("add", "denied"))
        ok(cli("check"))
    finally:
        cli("remove", "denied")
