"""Which IAM actions, on which resources, one HTTP request to S3, DynamoDB or CloudFront needs.

Follows the AWS service authorization reference: an S3 GET of an object with a `versionId` is
`s3:GetObjectVersion`, a `PutObject` carrying `x-amz-tagging` needs `s3:PutObjectTagging` as
well, `ListObjectVersions` is `s3:ListBucketVersions` on the bucket; each item of a DynamoDB
`TransactWriteItems` is authorized as its own `PutItem`/`UpdateItem`/`DeleteItem`/
`ConditionCheckItem`. A request this module cannot name maps to an `unmapped:` action that no
policy allows, so a call the harness does not understand fails loudly instead of passing.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from iam import PARTITION, Need


def _unmapped(service: str, what: str) -> list[Need]:
    return [Need(f"unmapped:{service}", what)]


# --------------------------------------------------------------------------------------------
# S3 (path-style: the functions force it whenever an endpoint is set)


def s3_bucket_and_key(path: str, host: str) -> tuple[str, str]:
    """(bucket, key) of a path-style or virtual-hosted request; key "" for a bucket request."""
    raw = urllib.parse.unquote(urllib.parse.urlsplit(path).path)
    host_name = host.split(":", 1)[0]
    m = re.match(r"^([a-z0-9][a-z0-9.-]*)\.(?:127\.0\.0\.1|localhost)$", host_name)
    if m:
        return m.group(1), raw.lstrip("/")
    bucket, _, key = raw.lstrip("/").partition("/")
    return bucket, key


PRESIGN_PARAMS = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                  "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token")


def s3_needs(method: str, path: str, headers: Any, body: bytes | None = None) -> list[Need]:
    """The IAM needs of one S3 REST request."""
    bucket, key = s3_bucket_and_key(path, headers.get("Host") or "")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query, keep_blank_values=True)
    # A presigned request's signature travels in the query; it names no operation.
    for auth in PRESIGN_PARAMS:
        query.pop(auth, None)
    bucket_arn = f"arn:{PARTITION}:s3:::{bucket}"
    object_arn = f"{bucket_arn}/{key}"
    versioned = "versionId" in query
    if not bucket:
        return _unmapped("s3", f"{method} {path}")
    if not key:
        if method == "GET" and "versions" in query:
            return [Need("s3:ListBucketVersions", bucket_arn)]
        if method == "GET" and not (set(query) - {"list-type", "prefix", "delimiter", "continuation-token",
                                                  "max-keys", "start-after", "encoding-type", "marker",
                                                  "fetch-owner"}):
            return [Need("s3:ListBucket", bucket_arn)]
        if method == "HEAD":
            return [Need("s3:ListBucket", bucket_arn)]
        if method == "POST" and "delete" in query:
            return _multi_delete_needs(bucket_arn, body or b"")
        return _unmapped("s3", f"{method} {path}")
    if method in ("GET", "HEAD"):
        if "tagging" in query:
            return [Need("s3:GetObjectVersionTagging" if versioned else "s3:GetObjectTagging", object_arn)]
        if "acl" in query:
            return [Need("s3:GetObjectVersionAcl" if versioned else "s3:GetObjectAcl", object_arn)]
        if set(query) - {"versionId", "partNumber", "x-id", "response-content-type", "response-cache-control"}:
            return _unmapped("s3", f"{method} {path}")
        return [Need("s3:GetObjectVersion" if versioned else "s3:GetObject", object_arn)]
    if method == "PUT":
        if "tagging" in query:
            return [Need("s3:PutObjectVersionTagging" if versioned else "s3:PutObjectTagging", object_arn)]
        if set(query) - {"uploadId", "partNumber", "x-id"}:
            return _unmapped("s3", f"{method} {path}")
        needs = [Need("s3:PutObject", object_arn)]
        if headers.get("x-amz-tagging"):
            needs.append(Need("s3:PutObjectTagging", object_arn))
        source = headers.get("x-amz-copy-source")
        if source:
            src = urllib.parse.unquote(source).lstrip("/")
            src_path, _, src_query = src.partition("?")
            action = "s3:GetObjectVersion" if "versionId=" in src_query else "s3:GetObject"
            needs.append(Need(action, f"arn:{PARTITION}:s3:::{src_path}"))
        return needs
    if method == "POST" and ("uploads" in query or "uploadId" in query):
        return [Need("s3:PutObject", object_arn)]
    if method == "DELETE":
        if "uploadId" in query:
            return [Need("s3:AbortMultipartUpload", object_arn)]
        if "tagging" in query:
            return [Need("s3:DeleteObjectVersionTagging" if versioned else "s3:DeleteObjectTagging", object_arn)]
        return [Need("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", object_arn)]
    return _unmapped("s3", f"{method} {path}")


def _multi_delete_needs(bucket_arn: str, body: bytes) -> list[Need]:
    text = body.decode("utf-8", "replace")
    needs = []
    for obj in re.findall(r"<Object>(.*?)</Object>", text, re.S):
        key = re.search(r"<Key>(.*?)</Key>", obj, re.S)
        if not key:
            continue
        action = "s3:DeleteObjectVersion" if "<VersionId>" in obj else "s3:DeleteObject"
        needs.append(Need(action, f"{bucket_arn}/{key.group(1)}"))
    return needs or _unmapped("s3", "POST ?delete without objects")


def s3_missing_key_needs(method: str, path: str, headers: Any) -> Need | None:
    """For a GET/HEAD of an object: the permission without which S3 answers a missing key with
    403 AccessDenied instead of 404 (s3:ListBucket on the bucket)."""
    if method not in ("GET", "HEAD"):
        return None
    bucket, key = s3_bucket_and_key(path, headers.get("Host") or "")
    if not bucket or not key:
        return None
    return Need("s3:ListBucket", f"arn:{PARTITION}:s3:::{bucket}")


# --------------------------------------------------------------------------------------------
# DynamoDB (JSON 1.0 protocol: X-Amz-Target DynamoDB_20120810.<Operation>)


_TRANSACT_ITEM_ACTIONS = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
                          "ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}


def dynamodb_needs(target: str, body: bytes, region: str, account: str) -> list[Need]:
    """The IAM needs of one DynamoDB API call."""
    op = target.rsplit(".", 1)[-1] if target.startswith("DynamoDB_") else ""
    if not op:
        return _unmapped("dynamodb", f"X-Amz-Target {target!r}")
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return _unmapped("dynamodb", f"{op} with a body that is not JSON")

    def table_arn(name: str, index: str | None = None) -> str:
        arn = f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{name}"
        return f"{arn}/index/{index}" if index else arn

    if op in ("TransactWriteItems", "TransactGetItems"):
        needs = []
        for item in doc.get("TransactItems", []):
            for kind, spec in item.items():
                action = _TRANSACT_ITEM_ACTIONS.get(kind)
                if action is None:
                    return _unmapped("dynamodb", f"{op} item {kind}")
                needs.append(Need(f"dynamodb:{action}", table_arn(spec.get("TableName", ""))))
        return needs
    if op in ("BatchWriteItem", "BatchGetItem"):
        return [Need(f"dynamodb:{op}", table_arn(name)) for name in doc.get("RequestItems", {})]
    if "TableName" not in doc:
        return _unmapped("dynamodb", f"{op} without TableName")
    return [Need(f"dynamodb:{op}", table_arn(doc["TableName"], doc.get("IndexName")))]


# --------------------------------------------------------------------------------------------
# CloudFront (REST, API version 2020-05-31)


_CF_INVALIDATIONS = re.compile(r"^/\d{4}-\d{2}-\d{2}/distribution/(?P<dist>[^/]+)/invalidation(?P<one>/[^/]+)?/?$")


_KVS_PATH = re.compile(r"^/key-value-stores/(?P<arn>[^/]+)(?P<keys>/keys(?:/(?P<key>.+))?)?$")
# (method, has /keys, names a key) -> the KeyValueStore API operation, which is the IAM action
_KVS_OPS = {("GET", False, False): "DescribeKeyValueStore", ("GET", True, False): "ListKeys",
            ("GET", True, True): "GetKey", ("PUT", True, True): "PutKey",
            ("DELETE", True, True): "DeleteKey", ("POST", True, False): "UpdateKeys"}


def kvs_needs(method: str, path: str) -> list[Need]:
    """The IAM needs of one CloudFront KeyValueStore data-plane call: the action is the
    operation's name, the resource the store's ARN from the path."""
    m = _KVS_PATH.match(urllib.parse.urlsplit(path).path)
    if not m:
        return _unmapped("cloudfront-keyvaluestore", f"{method} {path}")
    op = _KVS_OPS.get((method, bool(m.group("keys")), bool(m.group("key"))))
    if op is None:
        return _unmapped("cloudfront-keyvaluestore", f"{method} {path}")
    return [Need(f"cloudfront-keyvaluestore:{op}", urllib.parse.unquote(m.group("arn")))]


def cloudfront_needs(method: str, path: str, account: str) -> list[Need]:
    """The IAM needs of one CloudFront API call the functions make."""
    m = _CF_INVALIDATIONS.match(urllib.parse.urlsplit(path).path)
    if not m:
        return _unmapped("cloudfront", f"{method} {path}")
    arn = f"arn:{PARTITION}:cloudfront::{account}:distribution/{m.group('dist')}"
    if method == "POST" and not m.group("one"):
        return [Need("cloudfront:CreateInvalidation", arn)]
    if method == "GET":
        return [Need("cloudfront:GetInvalidation" if m.group("one") else "cloudfront:ListInvalidations", arn)]
    return _unmapped("cloudfront", f"{method} {path}")
