"""The CloudFront KeyValueStore stand-in (kvs.py) against the real botocore client.

These tests need no other part of the harness (no SeaweedFS, moto or cargo): one stand-in
process for the module, started through `kvs.KvsStandIn` (harness.ManagedProcess) and stopped by
its PID in the fixture's finalizer; the store is emptied before every test.

How a client reaches it: `boto3.client("cloudfront-keyvaluestore", endpoint_url=...)` signs with
SigV4A (awscrt) as the endpoint rules say, but the same rules build the URL as
`{scheme}://{account id from the ARN}.{authority of endpoint_url}`, i.e.
`http://123456789012.127.0.0.1:PORT`, which does not resolve. `kvs.route_to` registers a
botocore `before-send` hook that swaps 127.0.0.1:PORT back into the URL after signing; the
signed `host` header (`123456789012.127.0.0.1:PORT`) is sent unchanged (the stand-in records
it, see test_round_trip). A Rust client (aws-sdk-cloudfrontkeyvaluestore) needs the same trick:
an interceptor that rewrites the request URI's authority in `modify_before_transmit` (after
signing, Host header untouched), or a custom endpoint resolver that returns
http://127.0.0.1:PORT with the sigv4a auth scheme (signing name cloudfront-keyvaluestore,
signing region set "*"). Without a hook, the stand-in also serves as the client's own HTTP
proxy (absolute-form request targets; test_reached_as_an_http_proxy).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import botocore
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.crt.auth import CrtSigV4AsymAuth
from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))

import kvs as KVS  # noqa: E402

ACCOUNT = "123456789012"
CREDS = Credentials("kvs-test", "kvs-test-secret")


@pytest.fixture(scope="module")
def standin(request, tmp_path_factory):
    s = KVS.KvsStandIn(tmp_path_factory.mktemp("kvs"), KVS.new_arn(ACCOUNT))

    def stop() -> None:
        pid = s.pid
        s.stop()
        if pid is not None:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)  # reaped: the PID is gone

    request.addfinalizer(stop)
    return s.start()


@pytest.fixture(scope="module")
def client(standin):
    return standin.client()


@pytest.fixture(autouse=True)
def empty_store(standin):
    standin.reset()
    yield
    standin.disarm()


def code_of(e: ClientError) -> tuple[str, int]:
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


def etag_of(client, arn: str) -> str:
    return client.describe_key_value_store(KvsARN=arn)["ETag"]


def put_with_retry(client, arn: str, key: str, value: str, attempts: int = 10) -> tuple[dict, int]:
    """What a writer does: describe for the ETag, put with If-Match, on ConflictException
    describe again and retry. -> (PutKey response, attempts used)"""
    for attempt in range(1, attempts + 1):
        etag = etag_of(client, arn)
        try:
            return client.put_key(KvsARN=arn, Key=key, Value=value, IfMatch=etag), attempt
        except client.exceptions.ConflictException:
            continue
    raise AssertionError(f"put {key!r} still conflicting after {attempts} attempts")


# --------------------------------------------------------------------------------------------
# raw HTTP: requests botocore would not send


def _quote(s: str) -> str:
    return urllib.parse.quote(s, safe="")


def api_path(arn: str, key: str | None = None, keys: bool = False) -> str:
    path = f"/key-value-stores/{_quote(arn)}"
    if key is not None:
        return f"{path}/keys/{_quote(key)}"
    return f"{path}/keys" if keys else path


def signed(standin, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
           algorithm: str = "sigv4a", service: str = KVS.SERVICE) -> dict[str, str]:
    """Headers of a request signed as a client would: SigV4A (awscrt) or SigV4, for `service`,
    Host = {account}.127.0.0.1:PORT (what the endpoint rules produce)."""
    req = AWSRequest(method=method, url=f"http://{ACCOUNT}.127.0.0.1:{standin.port}{path}",
                     data=body, headers=dict(headers or {}))
    if algorithm == "sigv4a":
        CrtSigV4AsymAuth(CREDS, service, "*").add_auth(req)
    else:
        SigV4Auth(CREDS, service, "us-east-1").add_auth(req)
    out = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in req.headers.items()}
    out.setdefault("host", f"{ACCOUNT}.127.0.0.1:{standin.port}")
    return out


def send(standin, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=30)
    try:
        conn.request(method, path, body, headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def fake_sigv4a(standin) -> dict[str, str]:
    """Headers that pass the stand-in's SigV4A checks (it does not verify the signature)."""
    return {"Host": f"{ACCOUNT}.127.0.0.1:{standin.port}", "X-Amz-Date": "20260101T000000Z",
            "X-Amz-Region-Set": "*",
            "Authorization": f"{KVS.SIGV4A_ALGORITHM} Credential=kvs-test/20260101/{KVS.SERVICE}/aws4_request, "
                             "SignedHeaders=host;x-amz-date;x-amz-region-set, Signature=3045"}


def assert_aws_error(status: int, headers: dict[str, str], body: bytes, code: str, http_status: int) -> None:
    assert status == http_status, (status, headers, body)
    assert headers.get("x-amzn-errortype") == code, headers
    assert headers.get("content-type") == "application/json"
    doc = json.loads(body)
    assert isinstance(doc.get("Message"), str) and doc["Message"], doc


# --------------------------------------------------------------------------------------------
# the API through botocore


def test_round_trip(standin, client):
    arn = standin.arn
    d = client.describe_key_value_store(KvsARN=arn)
    assert (d["KvsARN"], d["ItemCount"], d["TotalSizeInBytes"], d["Status"]) == (arn, 0, 0, "READY")
    assert d["ETag"] and d["Created"] and d["LastModified"]
    e0 = d["ETag"]

    put = client.put_key(KvsARN=arn, Key="tenant-a", Value='{"k":"v1"}', IfMatch=e0)
    assert put["ETag"] != e0
    assert (put["ItemCount"], put["TotalSizeInBytes"]) == (1, len("tenant-a") + len('{"k":"v1"}'))
    g = client.get_key(KvsARN=arn, Key="tenant-a")
    assert (g["Key"], g["Value"], g["ItemCount"], g["TotalSizeInBytes"]) == ("tenant-a", '{"k":"v1"}', 1, 18)
    assert etag_of(client, arn) == put["ETag"], "Describe returns the ETag of the last write"

    # keys travel as one URL-encoded path segment
    odd = "a/b c%?#&=+é/../x"
    put2 = client.put_key(KvsARN=arn, Key=odd, Value="odd", IfMatch=put["ETag"])
    assert client.get_key(KvsARN=arn, Key=odd)["Value"] == "odd"
    assert [i["Key"] for i in client.list_keys(KvsARN=arn)["Items"]] == sorted(["tenant-a", odd])

    # a second put of the same key replaces the value and changes the ETag again
    put3 = client.put_key(KvsARN=arn, Key="tenant-a", Value="v2", IfMatch=put2["ETag"])
    assert put3["ETag"] not in (e0, put["ETag"], put2["ETag"])
    assert client.get_key(KvsARN=arn, Key="tenant-a")["Value"] == "v2"

    dele = client.delete_key(KvsARN=arn, Key="tenant-a", IfMatch=put3["ETag"])
    assert dele["ETag"] != put3["ETag"] and dele["ItemCount"] == 1
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_key(KvsARN=arn, Key="tenant-a")
    assert standin.store_contents() == {odd: "odd"}
    assert standin.etag() == dele["ETag"]

    log = standin.write_log()
    assert [(w["op"], w["key"], w["value"], w["deleted"], w["if_match"], w["etag"]) for w in log] == [
        ("PutKey", "tenant-a", '{"k":"v1"}', False, e0, put["ETag"]),
        ("PutKey", odd, "odd", False, put["ETag"], put2["ETag"]),
        ("PutKey", "tenant-a", "v2", False, put2["ETag"], put3["ETag"]),
        ("DeleteKey", "tenant-a", None, True, put3["ETag"], dele["ETag"]),
    ]
    assert [w["seq"] for w in log] == sorted(w["seq"] for w in log) and len({w["seq"] for w in log}) == 4
    assert all(a["at"] <= b["at"] for a, b in zip(log, log[1:]))
    assert standin.write_log(since=log[1]["seq"]) == log[2:]

    # the client signed {account}.127.0.0.1:PORT (endpoint rules) and the stand-in got that Host
    seen = standin.requests()
    assert {r["host"] for r in seen} == {f"{ACCOUNT}.127.0.0.1:{standin.port}"}
    assert seen[0]["operation"] == "DescribeKeyValueStore" and seen[-1]["operation"] == "GetKey"


def test_reached_as_an_http_proxy(standin):
    import boto3
    from botocore.config import Config

    c = boto3.client(KVS.SERVICE, region_name="us-east-1", endpoint_url=standin.endpoint,
                     aws_access_key_id=CREDS.access_key, aws_secret_access_key=CREDS.secret_key,
                     config=Config(proxies={"http": standin.endpoint}, retries={"max_attempts": 1}))
    e = c.describe_key_value_store(KvsARN=standin.arn)["ETag"]
    assert c.put_key(KvsARN=standin.arn, Key="via-proxy", Value="v", IfMatch=e)["ETag"] != e
    assert standin.store_contents() == {"via-proxy": "v"}
    last = standin.requests()[-1]
    assert last["path"].startswith(f"http://{ACCOUNT}.127.0.0.1:{standin.port}/key-value-stores/")
    assert (last["operation"], last["status"]) == ("PutKey", 200)


def test_list_keys_pages(standin, client):
    arn = standin.arn
    keys = [f"k{i:02d}" for i in range(23)]
    client.update_keys(KvsARN=arn, IfMatch=etag_of(client, arn), Puts=[{"Key": k, "Value": k.upper()} for k in keys])

    pages, token = [], None
    while True:
        r = client.list_keys(KvsARN=arn, **({"NextToken": token} if token else {}))
        pages.append([i["Key"] for i in r["Items"]])
        token = r.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [10, 10, 3], "default page size 10"
    assert sum(pages, []) == keys
    assert client.list_keys(KvsARN=arn, MaxResults=50)["Items"] == [{"Key": k, "Value": k.upper()} for k in keys]
    assert "NextToken" not in client.list_keys(KvsARN=arn, MaxResults=50)
    seven = [p["Items"] for p in client.get_paginator("list_keys").paginate(KvsARN=arn, PaginationConfig={"PageSize": 7})]
    assert [len(p) for p in seven] == [7, 7, 7, 2]
    # a key written between two pages after the cursor shows up; the cursor is the last key seen
    r = client.list_keys(KvsARN=arn, MaxResults=20)
    client.put_key(KvsARN=arn, Key="k99", Value="late", IfMatch=etag_of(client, arn))
    assert [i["Key"] for i in client.list_keys(KvsARN=arn, NextToken=r["NextToken"])["Items"]] == ["k20", "k21", "k22", "k99"]

    for bad in ({"MaxResults": 51}, {"NextToken": "not-a-token"}):
        with pytest.raises(client.exceptions.ValidationException):
            client.list_keys(KvsARN=arn, **bad)
    standin.reset()
    assert client.list_keys(KvsARN=arn)["Items"] == []


def test_update_keys_all_or_nothing(standin, client):
    arn = standin.arn
    e0 = etag_of(client, arn)
    r1 = client.update_keys(KvsARN=arn, IfMatch=e0, Puts=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"},
                                                          {"Key": "c", "Value": "3"}])
    assert (r1["ItemCount"], r1["TotalSizeInBytes"]) == (3, 6) and r1["ETag"] != e0
    r2 = client.update_keys(KvsARN=arn, IfMatch=r1["ETag"], Puts=[{"Key": "b", "Value": "22"}], Deletes=[{"Key": "a"}])
    assert standin.store_contents() == {"b": "22", "c": "3"}
    assert (r2["ItemCount"], r2["TotalSizeInBytes"]) == (2, 5)
    log = standin.write_log()
    assert [(w["write"], w["op"], w["key"], w["deleted"], w["etag"]) for w in log] == [
        (log[0]["write"], "UpdateKeys", "a", False, r1["ETag"]),
        (log[0]["write"], "UpdateKeys", "b", False, r1["ETag"]),
        (log[0]["write"], "UpdateKeys", "c", False, r1["ETag"]),
        (log[0]["write"] + 1, "UpdateKeys", "b", False, r2["ETag"]),
        (log[0]["write"] + 1, "UpdateKeys", "a", True, r2["ETag"]),
    ]

    # a failing request changes nothing: not the keys, not the ETag, not the log
    failing = [
        ({"Puts": [{"Key": "d", "Value": "4"}], "Deletes": [{"Key": "missing"}]}, "ResourceNotFoundException", 404),
        ({"Puts": [{"Key": "d", "Value": "4"}, {"Key": "e", "Value": "x" * 1025}]}, "ValidationException", 400),
        ({"Puts": [{"Key": "d", "Value": "4"}], "Deletes": [{"Key": "d"}]}, "ValidationException", 400),
        ({}, "ValidationException", 400),
    ]
    for kw, code, status in failing:
        with pytest.raises(ClientError) as ei:
            client.update_keys(KvsARN=arn, IfMatch=r2["ETag"], **kw)
        assert code_of(ei.value) == (code, status), kw
    assert standin.store_contents() == {"b": "22", "c": "3"}
    assert etag_of(client, arn) == r2["ETag"]
    assert len(standin.write_log()) == 5


def test_stale_if_match_is_a_conflict(standin, client):
    arn = standin.arn
    e0 = etag_of(client, arn)
    e1 = client.put_key(KvsARN=arn, Key="k", Value="v", IfMatch=e0)["ETag"]
    calls = [
        lambda: client.put_key(KvsARN=arn, Key="k", Value="stale", IfMatch=e0),
        lambda: client.put_key(KvsARN=arn, Key="new", Value="stale", IfMatch=e0),
        lambda: client.delete_key(KvsARN=arn, Key="k", IfMatch=e0),
        lambda: client.update_keys(KvsARN=arn, IfMatch=e0, Puts=[{"Key": "k", "Value": "stale"}]),
        lambda: client.put_key(KvsARN=arn, Key="k", Value="made-up", IfMatch="KV0000000000000"),
    ]
    for call in calls:
        with pytest.raises(client.exceptions.ConflictException) as ei:
            call()
        assert code_of(ei.value) == ("ConflictException", 409)
        assert "If-Match" in ei.value.response["Error"]["Message"]
    assert standin.store_contents() == {"k": "v"}
    assert standin.etag() == e1
    assert [w["op"] for w in standin.write_log()] == ["PutKey"]
    assert client.put_key(KvsARN=arn, Key="k", Value="fresh", IfMatch=e1)["ETag"] != e1


def test_concurrent_write_after_describe(standin, client):
    """Another writer changes the store right after the client's DescribeKeyValueStore: the
    client's write with the described ETag conflicts, it describes again and succeeds."""
    arn = standin.arn
    armed = standin.inject_after("DescribeKeyValueStore", puts={"other": "theirs"})
    assert armed == [{"after": "DescribeKeyValueStore", "remaining": 1, "puts": {"other": "theirs"}, "deletes": []}]
    described = etag_of(client, arn)
    assert standin.armed() == []
    assert standin.etag() != described, "the injected write happened right after the describe"
    with pytest.raises(client.exceptions.ConflictException):
        client.put_key(KvsARN=arn, Key="mine", Value="v", IfMatch=described)

    standin.inject_after("DescribeKeyValueStore", times=2)  # bare ETag bumps, twice
    r, attempts = put_with_retry(client, arn, "mine", "v")
    assert attempts == 3
    assert standin.store_contents() == {"mine": "v", "other": "theirs"}
    log = standin.write_log()
    assert [(w["op"], w.get("trigger"), w["key"]) for w in log] == [
        ("ConcurrentWrite", "after DescribeKeyValueStore", "other"),
        ("ConcurrentWrite", "after DescribeKeyValueStore", None),
        ("ConcurrentWrite", "after DescribeKeyValueStore", None),
        ("PutKey", None, "mine"),
    ]
    assert log[-1]["etag"] == r["ETag"] == standin.etag()
    assert len({w["etag"] for w in log}) == 4, "every write, injected or not, makes a new ETag"
    # out of band, now (no trigger)
    before = standin.etag()
    after = standin.concurrent_write(deletes=["other"])
    assert after != before and standin.store_contents() == {"mine": "v"}
    assert standin.write_log()[-1]["trigger"] == "hook"


def test_concurrent_writers(standin, client):
    """8 threads, 5 keys each, describe-put-retry: every key lands once, the log is a total order."""
    arn = standin.arn
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        c = standin.client()
        try:
            for i in range(5):
                put_with_retry(c, arn, f"t{t}-{i}", f"{t}.{i}", attempts=200)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    assert standin.store_contents() == {f"t{t}-{i}": f"{t}.{i}" for t in range(8) for i in range(5)}
    log = standin.write_log()
    assert len(log) == 40 and len({w["etag"] for w in log}) == 40
    assert [w["seq"] for w in log] == sorted(w["seq"] for w in log)
    # one linear history: each write was accepted with the ETag the write before it produced
    assert all(b["if_match"] == a["etag"] for a, b in zip(log, log[1:])), log
    conflicts = [r for r in standin.requests() if r["error"] == "ConflictException"]
    assert conflicts, "8 racing writers never conflicted: nothing raced"
    assert all(r["status"] == 409 for r in conflicts)


def test_validation(standin, client):
    arn = standin.arn
    e = etag_of(client, arn)
    e = client.put_key(KvsARN=arn, Key="k" * 512, Value="x" * 1024, IfMatch=e)["ETag"]  # both at the limit
    e = client.put_key(KvsARN=arn, Key="é" * 512, Value="é" * 512, IfMatch=e)["ETag"]  # 512 characters, 1,024 bytes
    too_big = [
        {"Key": "k", "Value": "x" * 1025},
        {"Key": "k", "Value": "é" * 513},  # 513 characters but 1,026 bytes
        {"Key": "k" * 513, "Value": "v"},
    ]
    for kw in too_big:
        with pytest.raises(client.exceptions.ValidationException) as ei:
            client.put_key(KvsARN=arn, IfMatch=e, **kw)
        assert code_of(ei.value) == ("ValidationException", 400)
    with pytest.raises(client.exceptions.ValidationException):
        client.update_keys(KvsARN=arn, IfMatch=e, Puts=[{"Key": "k" * 513, "Value": "v"}])
    assert standin.etag() == e and len(standin.store_contents()) == 2

    # If-Match is required by the model, so botocore will not send a write without it
    for method, path, body in (("PUT", api_path(arn, "k"), b'{"Value": "v"}'), ("DELETE", api_path(arn, "k"), b""),
                               ("POST", api_path(arn, keys=True), b'{"Puts": [{"Key": "k", "Value": "v"}]}')):
        status, headers, data = send(standin, method, path, body, signed(standin, method, path, body))
        assert_aws_error(status, headers, data, "ValidationException", 400)
        assert b"If-Match" in data


def test_store_size_quota(standin, client):
    arn = standin.arn
    value = "v" * 1000
    keys, total, e = [], 0, etag_of(client, arn)
    # fill to just under 5 MB, 40 keys per UpdateKeys (the stand-in refuses bodies over 64 KB)
    while True:
        batch = []
        while len(batch) < 40:
            k = f"fill-{len(keys) + len(batch):05d}"
            if total + len(k) + len(value) > KVS.MAX_STORE_BYTES:
                break
            batch.append({"Key": k, "Value": value})
            total += len(k) + len(value)
        if not batch:
            break
        r = client.update_keys(KvsARN=arn, IfMatch=e, Puts=batch)
        e = r["ETag"]
        keys += [b["Key"] for b in batch]
    assert r["TotalSizeInBytes"] == total and r["ItemCount"] == len(keys)
    room = KVS.MAX_STORE_BYTES - total
    assert 0 <= room < len("fill-00000") + 1000
    with pytest.raises(client.exceptions.ServiceQuotaExceededException) as ei:
        client.put_key(KvsARN=arn, Key="over", Value="x" * (room - len("over") + 1), IfMatch=e)
    assert code_of(ei.value) == ("ServiceQuotaExceededException", 402)
    assert standin.etag() == e
    # exactly at the limit is fine; replacing a value counts the new size, not both
    e = client.put_key(KvsARN=arn, Key="over", Value="x" * (room - len("over")), IfMatch=e)["ETag"]
    assert client.describe_key_value_store(KvsARN=arn)["TotalSizeInBytes"] == KVS.MAX_STORE_BYTES
    r = client.put_key(KvsARN=arn, Key="over", Value="y" * (room - len("over")), IfMatch=e)
    assert r["TotalSizeInBytes"] == KVS.MAX_STORE_BYTES


def test_not_found(standin, client):
    arn = standin.arn
    e = etag_of(client, arn)
    with pytest.raises(client.exceptions.ResourceNotFoundException) as ei:
        client.get_key(KvsARN=arn, Key="nope")
    assert code_of(ei.value) == ("ResourceNotFoundException", 404)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.delete_key(KvsARN=arn, Key="nope", IfMatch=e)
    assert standin.etag() == e, "a failed delete does not change the ETag"
    other = KVS.new_arn(ACCOUNT)
    for call in (lambda: client.describe_key_value_store(KvsARN=other),
                 lambda: client.list_keys(KvsARN=other),
                 lambda: client.put_key(KvsARN=other, Key="k", Value="v", IfMatch=e)):
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            call()
    assert standin.store_contents() == {}


# --------------------------------------------------------------------------------------------
# authentication


def test_sigv4a_required(standin):
    path = api_path(standin.arn)

    # unsigned, plain urllib (no proxies)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as ei:
        opener.open(f"{standin.endpoint}{path}", timeout=30)
    assert_aws_error(ei.value.code, {k.lower(): v for k, v in ei.value.headers.items()}, ei.value.read(),
                     "AccessDeniedException", 403)

    # SigV4 (HMAC), the right service
    status, headers, body = send(standin, "GET", path, headers=signed(standin, "GET", path, algorithm="sigv4"))
    assert_aws_error(status, headers, body, "AccessDeniedException", 403)
    assert b"AWS4-HMAC-SHA256" in body

    # SigV4A for another service
    status, headers, body = send(standin, "GET", path, headers=signed(standin, "GET", path, service="s3"))
    assert_aws_error(status, headers, body, "AccessDeniedException", 403)
    assert b"'s3'" in body

    # SigV4A without the region set header
    h = {k: v for k, v in signed(standin, "GET", path).items() if k.lower() != "x-amz-region-set"}
    status, headers, body = send(standin, "GET", path, headers=h)
    assert_aws_error(status, headers, body, "AccessDeniedException", 403)
    assert b"X-Amz-Region-Set" in body

    # a write is refused before anything else: the store does not change
    wpath = api_path(standin.arn, "k")
    status, headers, body = send(standin, "PUT", wpath, b'{"Value": "v"}',
                                 {**signed(standin, "PUT", wpath, b'{"Value": "v"}', algorithm="sigv4"),
                                  "If-Match": standin.etag()})
    assert status == 403 and standin.store_contents() == {}

    # positive control: the same request signed with SigV4A passes
    status, headers, body = send(standin, "GET", path, headers=signed(standin, "GET", path))
    assert status == 200 and headers["etag"] == standin.etag(), body


def test_botocore_with_sigv4_or_unsigned_is_denied(standin):
    for signature_version in ("v4", botocore.UNSIGNED):
        c = standin.client(signature_version=signature_version)
        with pytest.raises(c.exceptions.AccessDeniedException) as ei:
            c.describe_key_value_store(KvsARN=standin.arn)
        assert code_of(ei.value) == ("AccessDeniedException", 403)
    assert [r["error"] for r in standin.requests()] == ["AccessDeniedException"] * 2


# --------------------------------------------------------------------------------------------
# garbage


def test_garbage_is_refused_and_the_server_lives_on(standin, client):
    arn = standin.arn
    pid = standin.pid
    e = standin.etag()
    ok = fake_sigv4a(standin)
    put = api_path(arn, "k")
    cases = [
        ("PUT", put, b"{not json", {"If-Match": e}, "ValidationException", 400),
        ("PUT", put, b"\xff\xfe\x00garbage", {"If-Match": e}, "ValidationException", 400),
        ("PUT", put, b"[1, 2, 3]", {"If-Match": e}, "ValidationException", 400),
        ("PUT", put, b'{"Value": 17}', {"If-Match": e}, "ValidationException", 400),
        ("PUT", put, b'{"NoValue": "x"}', {"If-Match": e}, "ValidationException", 400),
        ("PUT", put, b"", {"If-Match": e}, "ValidationException", 400),
        ("POST", api_path(arn, keys=True), b'{"Puts": {"Key": "k"}}', {"If-Match": e}, "ValidationException", 400),
        ("POST", api_path(arn, keys=True), b'{"Puts": [7], "Deletes": "k"}', {"If-Match": e}, "ValidationException", 400),
        ("PUT", f"/key-value-stores/{_quote(arn)}/keys/%FF%FE", b'{"Value": "v"}', {"If-Match": e},
         "ValidationException", 400),
        ("PUT", f"/key-value-stores/{_quote(arn)}/keys/", b'{"Value": "v"}', {"If-Match": e}, "ValidationException", 400),
        ("GET", api_path(arn, keys=True) + "?MaxResults=lots", b"", {}, "ValidationException", 400),
        ("GET", api_path(arn, keys=True) + "?MaxResults=0", b"", {}, "ValidationException", 400),
        ("PATCH", put, b"", {}, "UnknownOperationException", 404),
        ("GET", "/key-value-stores", b"", {}, "UnknownOperationException", 404),
        ("GET", "/", b"", {}, "UnknownOperationException", 404),
        ("GET", "/key-value-stores/x/y/z/w/v", b"", {}, "UnknownOperationException", 404),
    ]
    for method, path, body, extra, code, http_status in cases:
        status, headers, data = send(standin, method, path, body, {**ok, **extra})
        assert_aws_error(status, headers, data, code, http_status)

    # a body over 64 KB is refused unread (and the connection closed)
    status, headers, data = send(standin, "PUT", put, b"x" * (KVS.MAX_BODY_BYTES + 1), {**ok, "If-Match": e})
    assert status == 413 and headers.get("connection") == "close"
    for cl in ("lots", "-5"):
        with socket.create_connection(("127.0.0.1", standin.port), timeout=10) as s:
            s.sendall(f"PUT {put} HTTP/1.1\r\nHost: x\r\nContent-Length: {cl}\r\n\r\n".encode())
            assert s.recv(4096).split(b" ")[1] == b"400"
    # a Content-Length far beyond what is sent: refused before reading
    with socket.create_connection(("127.0.0.1", standin.port), timeout=10) as s:
        s.sendall(f"PUT {put} HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\n\r\n".encode())
        assert s.recv(4096).split(b" ")[1] == b"413"
    # not HTTP at all; an unknown method; a huge header line; a truncated request
    for raw, expected in ((b"\x00\x01\x02 garbage garbage garbage\r\n\r\n", b"400"),
                          (b"\x00\x01\x02\r\n\r\n", b"400"),
                          (b"FROB / HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
                          (b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", b"431"),
                          (b"GET /key-value-st", b"400"),  # HTTP/0.9
                          (b"GET /key-value-stores/x HTTP/1.1\r\nHost: x\r\nContent-Len", None)):
        with socket.create_connection(("127.0.0.1", standin.port), timeout=10) as s:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            reply = s.recv(4096)
            if expected is None:  # the peer hung up inside the headers: a 4xx or nothing
                assert reply == b"" or reply.split(b" ")[1].startswith(b"4"), reply[:200]
            else:
                assert reply.startswith(b"HTTP/1.") and reply.split(b" ")[1] == expected, reply[:200]
                assert b"x-amzn-ErrorType: " in reply
    # chunked body, well-formed and not
    chunked = {**ok, "If-Match": e, "Transfer-Encoding": "chunked"}
    with socket.create_connection(("127.0.0.1", standin.port), timeout=10) as s:
        head = "".join(f"{k}: {v}\r\n" for k, v in chunked.items())
        s.sendall(f"PUT {put} HTTP/1.1\r\n{head}\r\nzz\r\n".encode())
        assert s.recv(4096).split(b" ")[1] == b"400"
    hook_404 = send(standin, "GET", "/_standin/nothing-here")
    assert hook_404[0] == 404
    # HEAD is no operation of this API; the answer has no body, and the connection stays usable
    conn = http.client.HTTPConnection("127.0.0.1", standin.port, timeout=10)
    try:
        for _ in range(2):
            conn.request("HEAD", api_path(arn), headers=ok)
            r = conn.getresponse()
            assert (r.status, r.getheader("x-amzn-ErrorType"), r.read()) == (404, "UnknownOperationException", b"")
    finally:
        conn.close()

    assert standin.alive() and standin.pid == pid
    assert standin.store_contents() == {} and standin.etag() == e
    assert client.put_key(KvsARN=arn, Key="k", Value="still here", IfMatch=e)["ItemCount"] == 1


# --------------------------------------------------------------------------------------------
# the process


def test_process_binds_loopback_and_stops_by_pid(tmp_path):
    s = KVS.KvsStandIn(tmp_path, name="kvs-lifecycle").start()
    try:
        info = json.loads(s.ready_file.read_text())
        assert info == {"port": s.port, "pid": s.pid, "arn": s.arn, "endpoint": s.endpoint}
        listening = _listeners(s.port)
        assert listening == {"127.0.0.1"}, listening
        assert s.client().describe_key_value_store(KvsARN=s.arn)["KvsARN"] == s.arn
    finally:
        pid = s.pid
        s.stop()
    assert not s.alive() and s.proc.popen.returncode == 0, "SIGTERM ends it cleanly"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()


def _listeners(port: int) -> set[str]:
    """Addresses listening on `port` (from /proc/net/tcp{,6})."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:  # LISTEN
                if len(addr) == 8:
                    out.add(socket.inet_ntoa(bytes.fromhex(addr)[::-1]))
                else:
                    out.add(addr)
    return out
