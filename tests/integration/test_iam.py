"""IAM as the account enforces it: the gate's request mapping, the template's roles, and proof
that a permission missing from template.yaml fails the end-to-end path.

The first tests need no servers (request -> action tables, the template resolver, the state
machines' invoke permissions). The last ones take a permission away from a running function's
role and see the gate deny the call by name, and the pipeline fail as it would in an account.
"""

from __future__ import annotations

import io
import json
import threading

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from PIL import Image

import harness as H
import iam as IAM
from iam_actions import cloudfront_needs, dynamodb_needs, s3_missing_key_needs, s3_needs
from test_transform import forward

ARN_S3 = "arn:aws:s3:::"
TABLE_ARN = f"arn:aws:dynamodb:{H.REGION}:{H.ACCOUNT}:table/{H.TABLE}"


def _s3(method: str, path: str, **headers: str) -> list[tuple[str, str]]:
    return [(n.action, n.resource) for n in s3_needs(method, path, {"Host": "127.0.0.1:9000", **headers})]


@pytest.mark.parametrize("method, path, headers, expected", [
    ("GET", "/originals/acme/a%20b.jpg", {}, [("s3:GetObject", ARN_S3 + "originals/acme/a b.jpg")]),
    ("GET", "/originals/acme/a.jpg?versionId=v1&x-id=GetObject", {},
     [("s3:GetObjectVersion", ARN_S3 + "originals/acme/a.jpg")]),
    ("GET", "/originals/acme/a.jpg?versionId=v1", {}, [("s3:GetObjectVersion", ARN_S3 + "originals/acme/a.jpg")]),
    ("HEAD", "/derived/acme/v1/a.jpg/w640-q80.webp", {}, [("s3:GetObject", ARN_S3 + "derived/acme/v1/a.jpg/w640-q80.webp")]),
    ("PUT", "/derived/k/w1.webp?x-id=PutObject", {}, [("s3:PutObject", ARN_S3 + "derived/k/w1.webp")]),
    # a presigned PUT (the tenant API's upload URL): the signature's parameters name no operation
    ("PUT", "/originals/acme/a.png?x-id=PutObject&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=k%2F2026"
     "&X-Amz-Date=20261207T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=content-length%3Bhost&X-Amz-Signature=ab",
     {}, [("s3:PutObject", ARN_S3 + "originals/acme/a.png")]),
    ("PUT", "/derived/k/w1.webp", {"x-amz-tagging": "pixelfront-on-demand=1"},
     [("s3:PutObject", ARN_S3 + "derived/k/w1.webp"), ("s3:PutObjectTagging", ARN_S3 + "derived/k/w1.webp")]),
    ("PUT", "/derived/k/copy", {"x-amz-copy-source": "/originals/k%20x?versionId=3"},
     [("s3:PutObject", ARN_S3 + "derived/k/copy"), ("s3:GetObjectVersion", ARN_S3 + "originals/k x")]),
    ("DELETE", "/originals/acme/a.jpg?versionId=v1&x-id=DeleteObject", {},
     [("s3:DeleteObjectVersion", ARN_S3 + "originals/acme/a.jpg")]),
    ("DELETE", "/derived/acme/v1/a.jpg/w1.webp", {}, [("s3:DeleteObject", ARN_S3 + "derived/acme/v1/a.jpg/w1.webp")]),
    ("GET", "/originals?versions&prefix=acme%2Fa.jpg&delimiter=%2F", {}, [("s3:ListBucketVersions", ARN_S3 + "originals")]),
    ("GET", "/derived?list-type=2&prefix=acme%2F", {}, [("s3:ListBucket", ARN_S3 + "derived")]),
    ("HEAD", "/derived", {}, [("s3:ListBucket", ARN_S3 + "derived")]),
    ("GET", "/originals/acme/a.jpg?tagging", {}, [("s3:GetObjectTagging", ARN_S3 + "originals/acme/a.jpg")]),
    ("PUT", "/originals?versioning", {}, None),
    ("GET", "/originals/a.jpg?torrent", {}, None),
])
def test_s3_requests_map_to_the_actions_aws_authorizes(method, path, headers, expected):
    got = _s3(method, path, **headers)
    if expected is None:  # anything the table does not know is denied, by name
        assert len(got) == 1 and got[0][0] == "unmapped:s3", got
        return
    assert got == expected


def test_virtual_hosted_requests_and_multi_delete_are_mapped():
    assert [(n.action, n.resource) for n in s3_needs("GET", "/k/a.jpg", {"Host": "originals.127.0.0.1:9000"})] == \
        [("s3:GetObject", ARN_S3 + "originals/k/a.jpg")]
    body = (b"<Delete><Object><Key>a</Key><VersionId>1</VersionId></Object>"
            b"<Object><Key>b</Key></Object></Delete>")
    assert [(n.action, n.resource) for n in s3_needs("POST", "/derived?delete", {"Host": "h"}, body)] == \
        [("s3:DeleteObjectVersion", ARN_S3 + "derived/a"), ("s3:DeleteObject", ARN_S3 + "derived/b")]
    assert s3_missing_key_needs("GET", "/derived/x", {"Host": "h"}) == IAM.Need("s3:ListBucket", ARN_S3 + "derived")
    assert s3_missing_key_needs("PUT", "/derived/x", {"Host": "h"}) is None


def test_dynamodb_calls_map_per_item():
    def needs(op: str, doc: dict) -> list[tuple[str, str]]:
        return [(n.action, n.resource) for n in
                dynamodb_needs(f"DynamoDB_20120810.{op}", json.dumps(doc).encode(), H.REGION, H.ACCOUNT)]

    assert needs("GetItem", {"TableName": H.TABLE}) == [("dynamodb:GetItem", TABLE_ARN)]
    assert needs("Query", {"TableName": H.TABLE, "IndexName": "by-status"}) == \
        [("dynamodb:Query", f"{TABLE_ARN}/index/by-status")]
    audit = f"arn:aws:dynamodb:{H.REGION}:{H.ACCOUNT}:table/{H.AUDIT_TABLE}"
    assert needs("TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": H.TABLE}}, {"Update": {"TableName": H.TABLE}},
        {"ConditionCheck": {"TableName": H.AUDIT_TABLE}}, {"Delete": {"TableName": H.TABLE}}]}) == [
        ("dynamodb:PutItem", TABLE_ARN), ("dynamodb:UpdateItem", TABLE_ARN),
        ("dynamodb:ConditionCheckItem", audit), ("dynamodb:DeleteItem", TABLE_ARN)]
    assert needs("PutItem", {})[0][0] == "unmapped:dynamodb"
    assert dynamodb_needs("Nonsense", b"{}", H.REGION, H.ACCOUNT)[0].action == "unmapped:dynamodb"


def test_cloudfront_calls_map_to_the_distribution():
    arn = f"arn:aws:cloudfront::{H.ACCOUNT}:distribution/E1"
    assert cloudfront_needs("POST", "/2020-05-31/distribution/E1/invalidation", H.ACCOUNT) == \
        [IAM.Need("cloudfront:CreateInvalidation", arn)]
    assert cloudfront_needs("GET", "/2020-05-31/distribution/E1/invalidation/I2", H.ACCOUNT) == \
        [IAM.Need("cloudfront:GetInvalidation", arn)]
    assert cloudfront_needs("DELETE", "/2020-05-31/distribution/E1", H.ACCOUNT)[0].action == "unmapped:cloudfront"


def test_the_principal_is_the_signing_key():
    auth = ("AWS4-HMAC-SHA256 Credential=it-TransformFunctionRole/20261207/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=abc")
    assert IAM.principal_of({"Authorization": auth}, "") == "it-TransformFunctionRole"
    assert IAM.principal_of({}, "X-Amz-Credential=AKIA1%2F20261207%2Fus-east-1") == "AKIA1"
    assert IAM.principal_of({}, "") is None


def _template(**physical: str) -> IAM.Template:
    return IAM.Template.load(H.TEMPLATE, {"ReplicaBucketName": H.REPLICA, "ReplicaRegion": H.REPLICA_REGION},
                             {"OriginalsBucket": H.ORIGINALS, "DerivedBucket": H.DERIVED, "ManifestTable": H.TABLE,
                              "AuditTable": H.AUDIT_TABLE, "Distribution": "E1", **physical}, H.REGION, H.ACCOUNT)


def test_the_roles_are_read_from_the_template_and_a_removed_statement_denies():
    t = _template()
    roles = {f: t.function_role(f) for f in H.FUNCTION_LOGICAL_IDS.values()}
    assert len(set(roles.values())) == len(roles) == 4, f"every function has a role of its own: {roles}"
    gate = IAM.IamGate(t, {"p": roles["PrecomputeFunction"], "t": roles["TransformFunction"]}, {"admin"})
    put = IAM.Need("s3:PutObject", ARN_S3 + "derived/acme/v1/a.jpg/w320-q80.webp")
    assert gate.check("admin", [IAM.Need("s3:Anything", "*")], "harness") is None
    assert gate.check("p", [put], "render") is None
    denial = gate.check("p", [IAM.Need("s3:DeleteObjectVersion", ARN_S3 + "originals/acme/a.jpg")], "delete")
    assert denial is not None and denial.role == roles["PrecomputeFunction"]
    assert "s3:DeleteObjectVersion" in str(denial) and "originals/acme/a.jpg" in str(denial)
    assert gate.check("nobody", [put], "render").role.startswith("<unknown access key")
    # The transformer's own role reads no original; the tenant-read role it assumes reads them,
    # the replica only when the template's HasReplica condition holds.
    original = IAM.Need("s3:GetObjectVersion", ARN_S3 + "originals/acme/a.jpg")
    assert gate.check("t", [original], "read") is not None
    reader = IAM.IamGate(t, {"r": "TenantOriginalsReadRole"}, set())
    replica = IAM.Need("s3:GetObject", ARN_S3 + f"{H.REPLICA}/acme/a.jpg")
    assert reader.check("r", [original, replica], "read") is None
    assert reader.trusts("TenantOriginalsReadRole", roles["TransformFunction"])
    assert not reader.trusts("TenantOriginalsReadRole", roles["PrecomputeFunction"])
    no_replica = IAM.Template.load(H.TEMPLATE, {}, t.physical, H.REGION, H.ACCOUNT)
    assert IAM.IamGate(no_replica, {"r": "TenantOriginalsReadRole"}, set()).check("r", [replica], "failover")
    # A session narrows its role to the intersection with the session policy.
    reader.register_session("s", "TenantOriginalsReadRole", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObjectVersion", "Resource": ARN_S3 + "originals/acme/*"}]})
    assert reader.check("s", [original], "read") is None
    other = IAM.Need("s3:GetObjectVersion", ARN_S3 + "originals/other/a.jpg")
    assert reader.check("s", [other], "read").role == "TenantOriginalsReadRole"

    # The same document with the PutObject statement taken out denies the render's write.
    role = roles["PrecomputeFunction"]
    policies = t.resources[role]["Properties"]["Policies"]
    for p in policies:
        p["PolicyDocument"]["Statement"] = [
            s for s in p["PolicyDocument"]["Statement"] if "s3:PutObject" not in json.dumps(s.get("Action"))]
    denial = IAM.IamGate(t, {"p": role}, set()).check("p", [put], "render")
    assert denial is not None and (denial.action, denial.resource) == (put.action, put.resource)


def test_every_workflow_may_invoke_exactly_the_functions_its_definition_names():
    t = _template(PrecomputeFunction="precompute", TakedownFunction="takedown", TransformFunction="transform")
    machines = {k: r for k, r in t.resources.items() if r["Type"] == "AWS::Serverless::StateMachine"}
    assert len(machines) == 3
    for logical, res in machines.items():
        props = res["Properties"]
        invoked = {v["Fn::GetAtt"][0] for v in props.get("DefinitionSubstitutions", {}).values()
                   if isinstance(v, dict) and "Fn::GetAtt" in v}
        allowed = {p["LambdaInvokePolicy"]["FunctionName"]["Ref"] for p in props.get("Policies", [])
                   if isinstance(p, dict) and "LambdaInvokePolicy" in p}
        assert invoked and invoked == allowed, f"{logical}: invokes {invoked}, may invoke {allowed}"
        definition = (H.REPO_ROOT / props["DefinitionUri"]).read_text()
        for name in props["DefinitionSubstitutions"]:
            assert "${" + name + "}" in definition, f"{logical}: {name} is not used by {props['DefinitionUri']}"


# ------------------------------------------------------------------------------------------
# against the running stack


def _jpeg(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((96, 64), 20 + seed).convert("RGB").save(buf, "JPEG", quality=80)
    return buf.getvalue()


def test_every_function_call_went_through_the_gate(stack: H.Harness):
    assert stack.iam is not None and stack.invoke_ports, "the harness runs each function with its role"
    before = stack.iam.checked
    up = stack.upload("iam/checked.jpg", _jpeg(1))
    out = stack.run(stack.event_for("iam/checked.jpg", up))
    assert out["status"] == "SUCCEEDED", stack.history_text(out["executionArn"])
    assert stack.iam.checked - before >= 10, "the render's reads and writes were checked"
    env = {f: stack.function_env(f)["AWS_ACCESS_KEY_ID"] for f in stack.invoke_ports}
    assert len(set(env.values())) == len(env) == 4 and H.ACCESS_KEY not in env.values(), env


@pytest.mark.iam_denials_expected
def test_a_permission_removed_from_the_render_role_fails_the_render_by_name(stack: H.Harness):
    role = stack.role_of_function(H.FUNCTION_NAME)
    stack.iam.revoke(role, "s3:PutObject")
    before = stack.iam.denial_count()
    up = stack.upload("iam/denied.jpg", _jpeg(2))
    out = stack.run(stack.event_for("iam/denied.jpg", up))
    stack.iam.restore()
    denied = stack.iam.denials_since(before)
    assert denied, "the gate let a write through that the role no longer allows"
    assert {(d.role, d.action) for d in denied} == {(role, "s3:PutObject")}, [str(d) for d in denied]
    assert all(d.resource.startswith(f"{ARN_S3}{H.DERIVED}/iam/v") for d in denied), [str(d) for d in denied]
    assert out["status"] == "FAILED", stack.history_text(out["executionArn"])
    versions = stack.manifest("iam", "denied.jpg")["versions"]
    assert [v["status"] for v in versions.values()] == ["failed"], versions


@pytest.mark.iam_denials_expected
def test_a_permission_removed_from_the_transformer_role_is_denied_not_served(stack: H.Harness):
    up = stack.upload("iam/tf.jpg", _jpeg(3))
    out = stack.run(stack.event_for("iam/tf.jpg", up))
    assert out["status"] == "SUCCEEDED", stack.history_text(out["executionArn"])
    stack.warm_up_transform()
    # The transformer reads originals through the tenant-read role it assumes per tenant; the
    # manifest names the S3 version, so it reads by version id.
    role = "TenantOriginalsReadRole"
    stack.iam.revoke(role, "s3:GetObjectVersion")
    before = stack.iam.denial_count()
    status, _, body = forward(stack, "/img/iam/v1/tf.jpg", "w=320&q=70&fmt=webp")
    stack.iam.restore()
    denied = stack.iam.denials_since(before)
    assert status >= 500 or status == 403, (status, body[:200])
    assert [(d.role, d.action, d.resource) for d in denied] == \
        [(role, "s3:GetObjectVersion", f"{ARN_S3}{H.ORIGINALS}/iam/tf.jpg")], [str(d) for d in denied]
    # With the permission back, the same request renders.
    status, headers, _ = forward(stack, "/img/iam/v1/tf.jpg", "w=320&q=70&fmt=webp")
    assert (status, headers.get("x-pixelfront-source")) == (200, "rendered")


def test_a_render_that_lands_after_its_takedown_deletes_what_it_wrote(stack: H.Harness, monkeypatch):
    """The takedown marks a version while its render is storing variants: the render's
    `ready` is refused and it deletes what it wrote, which needs s3:DeleteObject on the derived
    bucket (an account refuses the delete without it, and the variants would stay served)."""
    tenant, key = "iam", "race.jpg"
    marked = threading.Event()
    handle = H._FaultProxyHandler._handle

    def mark_on_first_write(self):
        if self.command == "PUT" and self.path.startswith(f"/{H.DERIVED}/{tenant}/v1/{key}/") \
                and not marked.is_set():
            stack.dynamodb_client().update_item(
                TableName=H.TABLE, Key={"pk": {"S": f"{tenant}/{key}"}, "sk": {"S": "v#0000000001"}},
                UpdateExpression="SET #s = :st", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":st": {"S": "taken_down"}})
            marked.set()
        return handle(self)

    monkeypatch.setattr(H._FaultProxyHandler, "_handle", mark_on_first_write)
    up = stack.upload(f"{tenant}/{key}", _jpeg(4))
    stack.run(stack.event_for(f"{tenant}/{key}", up))
    assert marked.is_set(), "the render never wrote a variant"
    versions = stack.manifest(tenant, key)["versions"]
    assert versions[1]["status"] == "taken_down", versions
    left = stack.derived_objects(f"{tenant}/v1/{key}/")
    assert not left, f"variants of a taken-down version stayed: {sorted(left)}"


def test_the_transformer_reads_an_original_through_its_tenants_session_only(stack: H.Harness):
    """Each tenant's originals are read through credentials of the tenant-read role narrowed by a
    session policy to that tenant's prefix (shared/src/store/scoped.rs)."""
    up = stack.upload("iamscope/a.jpg", _jpeg(5))
    out = stack.run(stack.event_for("iamscope/a.jpg", up))
    assert out["status"] == "SUCCEEDED", stack.history_text(out["executionArn"])
    stack.warm_up_transform()
    status, _, body = forward(stack, "/img/iamscope/v1/a.jpg", "w=320&q=70&fmt=webp")
    assert status == 200, body[:200]
    sessions = [c for c in stack.sts.calls if c["session"] == "pixelfront-iamscope"]
    assert sessions, f"no AssumeRole for the tenant: {stack.sts.calls}"
    for c in sessions:
        assert c["role"] == "TenantOriginalsReadRole"
        resources = {r for st in c["policy"]["Statement"] for r in [st["Resource"]] + [] for r in
                     (r if isinstance(r, list) else [r])}
        assert resources == {f"{ARN_S3}{H.ORIGINALS}/iamscope/*", f"{ARN_S3}{H.REPLICA}/iamscope/*",
                             f"{ARN_S3}{H.ORIGINALS}", f"{ARN_S3}{H.REPLICA}"}, resources


@pytest.mark.iam_denials_expected
def test_a_tenants_session_cannot_read_another_tenants_original(stack: H.Harness):
    """What a key-derivation bug would meet: tenant A's credentials asking for tenant B's object."""
    up = stack.upload("iamother/secret.jpg", _jpeg(6))
    stack.run(stack.event_for("iamother/secret.jpg", up))
    up = stack.upload("iamown/a.jpg", _jpeg(7))
    stack.run(stack.event_for("iamown/a.jpg", up))
    stack.warm_up_transform()
    status, _, _ = forward(stack, "/img/iamown/v1/a.jpg", "w=320&q=70&fmt=webp")
    assert status == 200
    session = next(c for c in stack.sts.calls if c["session"] == "pixelfront-iamown")
    s3 = boto3.client(
        "s3", endpoint_url=f"http://{H.HOST}:{stack.proxy.port}", region_name=H.REGION,
        aws_access_key_id=session["access_key"], aws_secret_access_key=stack.sts.secret_of(session["access_key"]),
        aws_session_token="pixelfront-it-token", config=Config(s3={"addressing_style": "path"}))
    assert s3.get_object(Bucket=H.ORIGINALS, Key="iamown/a.jpg")["Body"].read()[:2] == b"\xff\xd8"
    before = stack.iam.denial_count()
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        s3.get_object(Bucket=H.ORIGINALS, Key="iamother/secret.jpg")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    denied = stack.iam.denials_since(before)
    assert [(d.role, d.action, d.resource) for d in denied] == [
        ("TenantOriginalsReadRole", "s3:GetObject", f"{ARN_S3}{H.ORIGINALS}/iamother/secret.jpg")]
