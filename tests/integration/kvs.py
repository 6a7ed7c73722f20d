"""A stand-in for the CloudFront KeyValueStore data plane (service `cloudfront-keyvaluestore`,
API version 2022-07-26, rest-json), for the integration tests. There is no emulator for it
(moto has none), so this serves ONE store, named by its ARN, over the real HTTP API as
botocore's service model describes it:

    GET    /key-value-stores/{KvsARN}              DescribeKeyValueStore  -> ETag header
    GET    /key-value-stores/{KvsARN}/keys         ListKeys (?NextToken=&MaxResults=, 10 by default, 1-50)
    POST   /key-value-stores/{KvsARN}/keys         UpdateKeys  If-Match, {"Puts": [{Key, Value}], "Deletes": [{Key}]}
    GET    /key-value-stores/{KvsARN}/keys/{Key}   GetKey
    PUT    /key-value-stores/{KvsARN}/keys/{Key}   PutKey      If-Match, {"Value": ...}  -> ETag header
    DELETE /key-value-stores/{KvsARN}/keys/{Key}   DeleteKey   If-Match                  -> ETag header

{KvsARN} and {Key} arrive URL-encoded as single path segments ('/' as %2F). The ETag is the
store's version: every successful write replaces it and returns the new one; a write whose
If-Match is not the current ETag fails with 409 ConflictException. Errors are answered as AWS
rest-json services do: the `x-amzn-ErrorType` header names the error and the JSON body carries
`Message` (the modeled member); botocore (RestJSONParser: header first, then `code` in the body;
message from `message`/`Message`) and the Rust SDK (aws-smithy json_errors: the same header,
then `code`/`__type`; message from `message`/`Message`/`errorMessage`) both read that.

Limits checked (400 ValidationException unless said otherwise): a key of 1-512 characters, a
value of at most 1,024 bytes (UTF-8), If-Match present on writes, MaxResults 1-50, the whole
store at most 5 MB (402 ServiceQuotaExceededException), the one ARN served (anything else: 404
ResourceNotFoundException), GetKey/DeleteKey of a missing key (404 ResourceNotFoundException).
The stand-in's own choices: a body over 64 KB is refused unread (413, ValidationException); a
path or method that is no operation answers 404 UnknownOperationException; UpdateKeys needs at
least one put or delete, no key twice, and fails whole on a missing key to delete. Not modeled:
presigned URLs, the Host name, IAM (any SigV4A-shaped request is the account's owner).

Authentication: the real API accepts only SigV4A. A request must carry `Authorization:
AWS4-ECDSA-P256-SHA256 Credential=<key>/<date>/cloudfront-keyvaluestore/aws4_request, ...` and
`X-Amz-Region-Set`; otherwise 403 AccessDeniedException. The ECDSA signature itself is NOT
verified: that needs the P-256 key pair derived from the caller's secret (and the secret), which
the stand-in does not hold; checking the algorithm, scope and headers is what catches a client
that signs with plain SigV4, for the wrong service, or without the region set.

Test hooks, under /_standin/ (a path the real API cannot have; no authentication):

    GET    /_standin/health        {"ok": true, "arn", "pid", "port"}
    GET    /_standin/store         {"arn", "etag", "item_count", "total_size_in_bytes", "items": {key: value}}
    GET    /_standin/log[?since=N] {"writes": [{"seq", "write", "op", "key", "value", "deleted", "etag", "at",
                                   "if_match" | "trigger"}]}: one entry per key written or deleted, in
                                   order (`seq` > N); `write` numbers the request (an UpdateKeys has one
                                   entry per key, all with the same `write` and resulting `etag`); `at`
                                   is time.time(); API writes carry the If-Match they were accepted
                                   with, the stand-in's own writes (op ConcurrentWrite) a `trigger`.
    POST   /_standin/write         {"puts": {key: value}, "deletes": [key]}: another writer changes
                                   the store now (op `ConcurrentWrite`; with neither, only the ETag
                                   changes) -> {"etag"}
    POST   /_standin/inject        {"after": "DescribeKeyValueStore", "times": 1, "puts": ..., "deletes": ...}:
                                   right after each of the next `times` successful calls of that
                                   operation (inside the same lock, so nothing gets in between) another
                                   writer changes the store as /write does. A client that describes
                                   and then writes with that ETag gets ConflictException and must
                                   describe again and retry.
    GET    /_standin/requests      {"requests": [{"at", "method", "path", "host", "operation", "status", "error"}]}:
                                   the last 1,000 API calls (hooks not included), oldest first;
                                   `host` is the Host header as sent (and signed)
    GET    /_standin/inject        the injections still armed;  DELETE /_standin/inject disarms them
    POST   /_standin/reset         empty store, new ETag, log emptied (sequence numbers go on), injections disarmed

Run: python kvs.py --arn ARN [--port 0] [--ready-file F] [--parent-pid PID]
Binds 127.0.0.1 only; when listening, writes {"port", "pid", "arn", "endpoint"} to the ready
file (atomically) and exits when the parent process given by --parent-pid is gone.
`KvsStandIn` below starts it as a child process and stops it by its PID (harness.ManagedProcess).

Reaching it with an AWS SDK: the service's endpoint rules turn an overridden endpoint
`http://127.0.0.1:PORT` into `http://{account id of the ARN}.127.0.0.1:PORT`, a name that does not
resolve. `route_to(client, endpoint)` registers a botocore `before-send` hook that puts
127.0.0.1:PORT back into the URL after signing; the `host` header botocore signed stays as it is.
A Rust client needs the same: an interceptor whose `modify_before_transmit` rewrites the request
URI's authority (the signed Host header is left alone), or a custom endpoint resolver returning
http://127.0.0.1:PORT with the sigv4a auth scheme (signing name cloudfront-keyvaluestore,
region set "*"). Another way that needs no hook: use the stand-in as the client's HTTP proxy
(botocore `Config(proxies={"http": endpoint})`); it accepts absolute-form request targets
(`GET http://123456789012.127.0.0.1:PORT/key-value-stores/...`) and serves them itself.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
SERVICE = "cloudfront-keyvaluestore"
SIGV4A_ALGORITHM = "AWS4-ECDSA-P256-SHA256"
ARN_RE = re.compile(r"^arn:aws:cloudfront::(?P<account>\d{12}):key-value-store/[A-Za-z0-9-]{1,64}$")

# CloudFront's documented limits: "Key size - 512 characters", value 1 KB (the import-file page
# says "1024 characters"; counted here as UTF-8 bytes, the stricter reading), store 5 MB.
MAX_KEY_CHARS = 512
MAX_VALUE_BYTES = 1024
MAX_STORE_BYTES = 5 * 1024 * 1024
LIST_DEFAULT, LIST_MAX = 10, 50
# The stand-in's own guard, not an AWS limit: bigger request bodies are refused unread.
MAX_BODY_BYTES = 64 * 1024
MAX_REQUESTS = 1000  # API calls remembered for GET /_standin/requests

OPERATIONS = ("DescribeKeyValueStore", "GetKey", "ListKeys", "PutKey", "DeleteKey", "UpdateKeys")

# error shape -> HTTP status, from the service model
ERROR_STATUS = {
    "ValidationException": 400,
    "ServiceQuotaExceededException": 402,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ConflictException": 409,
    "InternalServerException": 500,
}


class KvsError(Exception):
    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or ERROR_STATUS.get(code, 400)


def new_etag() -> str:
    """An opaque version id shaped like the service's (e.g. `KV1F83G8C2ARO7P`)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "KV" + "".join(secrets.choice(alphabet) for _ in range(13))


def item_size(key: str, value: str) -> int:
    # Size accounting of the stand-in: UTF-8 bytes of key + value. The real service's
    # TotalSizeInBytes may count differently (overhead per item, other encoding).
    return len(key.encode("utf-8")) + len(value.encode("utf-8"))


def check_key(key: Any, where: str = "Key") -> str:
    if not isinstance(key, str):
        raise KvsError("ValidationException", f"{where} must be a string")
    if not 1 <= len(key) <= MAX_KEY_CHARS:
        raise KvsError("ValidationException",
                       f"{where} must be 1 to {MAX_KEY_CHARS} characters long, got {len(key)}")
    return key


def check_value(value: Any, key: str) -> str:
    if not isinstance(value, str):
        raise KvsError("ValidationException", f"Value of key {key!r} must be a string")
    n = len(value.encode("utf-8"))
    if n > MAX_VALUE_BYTES:
        raise KvsError("ValidationException",
                       f"Value of key {key!r} is {n} bytes; the maximum is {MAX_VALUE_BYTES} bytes")
    return value


class Store:
    """One key value store. `call` and the snapshot/log/reset methods take the lock; the others
    expect their caller to hold it (`call`, or the hook handler for the stand-in's own writes)."""

    def __init__(self, arn: str):
        self.arn = arn
        self.lock = threading.Lock()
        self.items: dict[str, str] = {}
        self.size = 0
        self.etag = new_etag()
        self.created = time.time()
        self.last_modified = self.created
        self.log: list[dict[str, Any]] = []
        self._seq = 0
        self._writes = 0
        self.injections: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []  # the last MAX_REQUESTS API calls answered

    # ---- the API ------------------------------------------------------------------------------
    def call(self, op: str, fn, *args) -> Any:
        """Run one operation under the lock; after a success, fire the injections armed for it."""
        with self.lock:
            result = fn(*args)
            self._fire(op)
            return result

    def describe(self) -> tuple[dict[str, Any], str]:
        return {"ItemCount": len(self.items), "TotalSizeInBytes": self.size, "KvsARN": self.arn,
                "Created": self.created, "LastModified": self.last_modified, "Status": "READY"}, self.etag

    def get(self, key: str) -> dict[str, Any]:
        if key not in self.items:
            raise KvsError("ResourceNotFoundException", f"Key {key!r} not found in {self.arn}")
        return {"Key": key, "Value": self.items[key], "ItemCount": len(self.items), "TotalSizeInBytes": self.size}

    def list(self, token: str | None, max_results: int) -> dict[str, Any]:
        keys = sorted(self.items)
        start = 0
        if token is not None:
            after = decode_token(token)
            start = next((i for i, k in enumerate(keys) if k > after), len(keys))
        page = keys[start:start + max_results]
        out: dict[str, Any] = {"Items": [{"Key": k, "Value": self.items[k]} for k in page]}
        if start + max_results < len(keys):
            out["NextToken"] = encode_token(page[-1])
        return out

    def write(self, op: str, changes: list[tuple[str, str | None]], if_match: str,
              missing_is_error: bool = True) -> tuple[dict[str, Any], str]:
        """Apply puts (value) and deletes (None) all or nothing, if If-Match is the current ETag."""
        if if_match != self.etag:
            raise KvsError("ConflictException",
                           f"Pre-condition failed: If-Match {if_match!r} is not the current ETag of the key value store")
        self._apply(op, changes, missing_is_error, if_match=if_match)
        return {"ItemCount": len(self.items), "TotalSizeInBytes": self.size}, self.etag

    # ---- another writer -----------------------------------------------------------------------
    def concurrent_write(self, changes: list[tuple[str, str | None]], trigger: str) -> str:
        """A write by someone else (no If-Match); deleting a missing key is a no-op here."""
        self._apply("ConcurrentWrite", changes, missing_is_error=False, trigger=trigger)
        return self.etag

    def arm(self, after: str, times: int, changes: list[tuple[str, str | None]]) -> None:
        self.injections.append({"after": after, "remaining": times, "changes": changes})

    def _fire(self, op: str) -> None:
        for inj in self.injections:
            if inj["after"] == op and inj["remaining"] > 0:
                inj["remaining"] -= 1
                try:
                    self._apply("ConcurrentWrite", inj["changes"], missing_is_error=False, trigger=f"after {op}")
                except KvsError as e:  # e.g. over the quota: log it, the call itself succeeded
                    sys.stderr.write(f"injected write after {op} failed: {e.code}: {e.message}\n")
        self.injections = [i for i in self.injections if i["remaining"] > 0]

    def _apply(self, op: str, changes: list[tuple[str, str | None]], missing_is_error: bool,
               trigger: str | None = None, if_match: str | None = None) -> None:
        new_items, new_size = dict(self.items), self.size
        for key, value in changes:
            old = new_items.pop(key, None)
            if old is not None:
                new_size -= item_size(key, old)
            elif value is None and missing_is_error:
                raise KvsError("ResourceNotFoundException", f"Key {key!r} not found in {self.arn}")
            if value is not None:
                new_items[key] = value
                new_size += item_size(key, value)
        if new_size > MAX_STORE_BYTES:
            raise KvsError("ServiceQuotaExceededException",
                           f"The key value store would hold {new_size} bytes; the limit is {MAX_STORE_BYTES} bytes")
        self.items, self.size = new_items, new_size
        self.etag = new_etag()
        self.last_modified = time.time()
        self._writes += 1
        extra = {"trigger": trigger} if trigger else {"if_match": if_match}
        for key, value in changes or [(None, None)]:  # a bare ETag bump is logged as one entry
            self._seq += 1
            self.log.append({"seq": self._seq, "write": self._writes, "op": op, "key": key, "value": value,
                             "deleted": key is not None and value is None, "etag": self.etag,
                             "at": self.last_modified, **extra})

    # ---- hooks --------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {"arn": self.arn, "etag": self.etag, "item_count": len(self.items),
                    "total_size_in_bytes": self.size, "items": dict(sorted(self.items.items()))}

    def log_since(self, seq: int) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(e) for e in self.log if e["seq"] > seq]

    def reset(self) -> str:
        with self.lock:
            self.items, self.size = {}, 0
            self.etag = new_etag()
            self.last_modified = time.time()
            self.log = []
            self.injections = []
            self.requests = []
            return self.etag


def encode_token(last_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_key}).encode()).decode()


def decode_token(token: str) -> str:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        if isinstance(doc, dict) and isinstance(doc.get("after"), str):
            return doc["after"]
    except (ValueError, UnicodeError, binascii.Error):
        pass
    raise KvsError("ValidationException", "NextToken is not a token this key value store handed out")


def check_sigv4a(headers, query: str = "") -> None:
    """Raise 403 AccessDeniedException unless the request is signed with SigV4A for this
    service. The ECDSA signature is not verified (see the module docstring)."""
    auth = headers.get("Authorization")
    if not auth:
        if "X-Amz-Algorithm=" in query:
            raise KvsError("AccessDeniedException", "the stand-in accepts the Authorization header only, not a presigned URL")
        raise KvsError("AccessDeniedException", "Missing Authentication Token: the request is not signed")
    algorithm, _, rest = auth.strip().partition(" ")
    if algorithm != SIGV4A_ALGORITHM:
        raise KvsError("AccessDeniedException",
                       f"Authorization algorithm {algorithm!r} is not accepted: this API requires SigV4A ({SIGV4A_ALGORITHM})")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if eq:
            fields[name] = value
    credential = fields.get("Credential", "")
    scope = credential.split("/")
    # SigV4A credential scope: <access key>/<yyyymmdd>/<service>/aws4_request (no region)
    if len(scope) != 4 or not scope[0] or not re.fullmatch(r"\d{8}", scope[1]) or scope[3] != "aws4_request":
        raise KvsError("AccessDeniedException",
                       f"Credential {credential!r} is not <access key>/<date>/{SERVICE}/aws4_request")
    if scope[2] != SERVICE:
        raise KvsError("AccessDeniedException",
                       f"Credential should be scoped to the service '{SERVICE}', not {scope[2]!r}")
    if not fields.get("SignedHeaders") or not fields.get("Signature"):
        raise KvsError("AccessDeniedException", "Authorization header lacks SignedHeaders or Signature")
    if not headers.get("X-Amz-Region-Set"):
        raise KvsError("AccessDeniedException", "SigV4A requires the X-Amz-Region-Set header")
    if not headers.get("X-Amz-Date"):
        raise KvsError("AccessDeniedException", "the request has no X-Amz-Date header")


class _BodyTooLarge(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    store: Store

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pixelfront-kvs-standin"
    timeout = 60  # an idle or stalled connection does not hold a thread forever
    # headers and body go out in two writes; with Nagle on, the second waits for the client's
    # delayed ACK (~40 ms per request on Linux)
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.address_string()} {format % args}\n")
        sys.stderr.flush()

    # ---- plumbing -----------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(1026)
                try:
                    size = int(line.split(b";", 1)[0].strip() or b"x", 16)
                except ValueError:
                    raise KvsError("ValidationException", "malformed chunked request body") from None
                if size < 0 or len(out) + size > MAX_BODY_BYTES:
                    raise _BodyTooLarge()
                if size == 0:
                    while self.rfile.readline(1026) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline(3)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise KvsError("ValidationException", f"bad Content-Length {length!r}") from None
        if n < 0:
            raise KvsError("ValidationException", f"bad Content-Length {length!r}")
        if n > MAX_BODY_BYTES:
            raise _BodyTooLarge()
        data = self.rfile.read(n)
        if len(data) < n:
            self.close_connection = True
            raise KvsError("ValidationException", "request body shorter than its Content-Length")
        return data

    def _send(self, status: int, doc: Any, headers: dict[str, str] | None = None) -> None:
        if getattr(self, "_operation", None) is not None:
            store: Store = self.server.store  # type: ignore[attr-defined]
            with store.lock:
                store.requests.append({"at": time.time(), "method": self.command, "path": self.path,
                                       "host": self.headers.get("Host"), "operation": self._operation,
                                       "status": status, "error": (headers or {}).get("x-amzn-ErrorType")})
                del store.requests[:-MAX_REQUESTS]
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Requests http.server itself rejects (malformed request line, header too long, unknown
        method): answered as the API's errors are, always with a status line, then closed."""
        self.close_connection = True
        self._operation = None
        if self.request_version == "HTTP/0.9":  # not a parsable request: answer HTTP/1.0, not bare HTML
            self.request_version = "HTTP/1.0"
        error = "ValidationException"
        if code == 501:  # no do_<METHOD>
            code, error = 404, "UnknownOperationException"
        try:
            self._send(code, {"Message": message or explain or "bad request"}, {"x-amzn-ErrorType": error})
        except (ConnectionError, OSError):
            pass

    def _send_error(self, e: KvsError) -> None:
        self._send(e.status, {"Message": e.message}, {"x-amzn-ErrorType": e.code})

    def _handle(self) -> None:
        self._operation: str | None = None  # set for API calls (recorded), not for hooks
        if self.request_version == "HTTP/0.9":  # "GET /path" and nothing else
            self.send_error(400, "HTTP/0.9 requests are not supported")
            return
        try:
            try:
                body = self._read_body()
            except _BodyTooLarge:
                self.close_connection = True  # the body stays unread
                raise KvsError("ValidationException",
                               f"request body larger than the stand-in's limit of {MAX_BODY_BYTES} bytes", 413)
            target = self.path
            if "://" in target.split("?", 1)[0]:  # absolute-form (a client talking to us as a proxy)
                u = urllib.parse.urlsplit(target)
                target = u.path + (f"?{u.query}" if u.query else "")
            raw_path, _, query = target.partition("?")
            if raw_path.startswith("/_standin/") or raw_path == "/_standin":
                self._hook(raw_path, query, body)
                return
            self._api(raw_path, query, body)
        except KvsError as e:
            self._send_error(e)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - answer, log, keep serving
            self.log_message("internal error: %r", e)
            self.close_connection = True
            self._send_error(KvsError("InternalServerException", f"stand-in error: {e!r}"))

    def do_GET(self):  # noqa: N802
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    # ---- the API ------------------------------------------------------------------------------
    def _api(self, raw_path: str, query: str, body: bytes) -> None:
        store: Store = self.server.store  # type: ignore[attr-defined]
        segments = raw_path.split("/")[1:]  # split before decoding: {KvsARN} and {Key} may hold %2F
        method, n = self.command, len(segments)
        op = None
        if segments and segments[0] == "key-value-stores" and (n <= 2 or segments[2] == "keys"):
            op = {("GET", 2): "DescribeKeyValueStore", ("GET", 3): "ListKeys", ("POST", 3): "UpdateKeys",
                  ("GET", 4): "GetKey", ("PUT", 4): "PutKey", ("DELETE", 4): "DeleteKey"}.get((method, n))
        self._operation = op or "unknown"
        check_sigv4a(self.headers, query)  # authentication comes first, whatever the path
        if op is None:
            raise KvsError("UnknownOperationException", f"no operation {method} {raw_path}", 404)
        try:
            parts = [urllib.parse.unquote(s, errors="strict") for s in segments]
        except UnicodeDecodeError:
            raise KvsError("ValidationException", "the path is not valid percent-encoded UTF-8") from None
        if parts[1] != store.arn:
            raise KvsError("ResourceNotFoundException", f"Key value store {parts[1]!r} not found")
        key = check_key(parts[3]) if n == 4 else None
        if_match = (self.headers.get("If-Match") or "").strip()
        if op in ("PutKey", "DeleteKey", "UpdateKeys") and not if_match:
            raise KvsError("ValidationException", "If-Match (the current ETag of the key value store) is required")

        if op == "DescribeKeyValueStore":
            doc, etag = store.call(op, store.describe)
            self._send(200, doc, {"ETag": etag})
        elif op == "GetKey":
            self._send(200, store.call(op, store.get, key))
        elif op == "ListKeys":
            q = urllib.parse.parse_qs(query, keep_blank_values=True)
            token = q.get("NextToken", [None])[0]
            max_text = q.get("MaxResults", [None])[0]
            max_results = LIST_DEFAULT
            if max_text is not None:
                try:
                    max_results = int(max_text)
                except ValueError:
                    raise KvsError("ValidationException", f"MaxResults {max_text!r} is not an integer") from None
                if not 1 <= max_results <= LIST_MAX:
                    raise KvsError("ValidationException", f"MaxResults must be 1 to {LIST_MAX}, got {max_results}")
            self._send(200, store.call(op, store.list, token or None, max_results))
        elif op == "PutKey":
            doc = _json_object(body)
            if "Value" not in doc:
                raise KvsError("ValidationException", "Value is required")
            value = check_value(doc["Value"], key)
            out, etag = store.call(op, store.write, op, [(key, value)], if_match)
            self._send(200, out, {"ETag": etag})
        elif op == "DeleteKey":
            out, etag = store.call(op, store.write, op, [(key, None)], if_match)
            self._send(200, out, {"ETag": etag})
        else:  # UpdateKeys
            changes = _update_changes(_json_object(body))
            out, etag = store.call(op, store.write, op, changes, if_match)
            self._send(200, out, {"ETag": etag})

    # ---- test hooks ---------------------------------------------------------------------------
    def _hook(self, raw_path: str, query: str, body: bytes) -> None:
        store: Store = self.server.store  # type: ignore[attr-defined]
        name = raw_path[len("/_standin/"):].strip("/")
        method = self.command
        if (method, name) == ("GET", "health"):
            self._send(200, {"ok": True, "arn": store.arn, "pid": os.getpid(), "port": self.server.server_address[1]})
        elif (method, name) == ("GET", "store"):
            self._send(200, store.snapshot())
        elif (method, name) == ("GET", "log"):
            since = urllib.parse.parse_qs(query).get("since", ["0"])[0]
            try:
                seq = int(since)
            except ValueError:
                raise KvsError("ValidationException", f"since={since!r} is not an integer") from None
            self._send(200, {"writes": store.log_since(seq)})
        elif (method, name) == ("POST", "write"):
            changes = _hook_changes(_json_object(body, allow_empty=True))
            with store.lock:
                etag = store.concurrent_write(changes, "hook")
            self._send(200, {"etag": etag})
        elif (method, name) == ("POST", "inject"):
            doc = _json_object(body, allow_empty=True)
            after = doc.get("after", "DescribeKeyValueStore")
            times = doc.get("times", 1)
            if after not in OPERATIONS:
                raise KvsError("ValidationException", f"after must be one of {OPERATIONS}")
            if not isinstance(times, int) or isinstance(times, bool) or times < 1:
                raise KvsError("ValidationException", "times must be a positive integer")
            changes = _hook_changes(doc)
            with store.lock:
                store.arm(after, times, changes)
            self._send(200, {"armed": self._injections(store)})
        elif (method, name) == ("GET", "requests"):
            with store.lock:
                requests = [dict(r) for r in store.requests]
            self._send(200, {"requests": requests})
        elif (method, name) == ("GET", "inject"):
            self._send(200, {"armed": self._injections(store)})
        elif (method, name) == ("DELETE", "inject"):
            with store.lock:
                store.injections = []
            self._send(200, {"armed": []})
        elif (method, name) == ("POST", "reset"):
            self._send(200, {"etag": store.reset()})
        else:
            self._send(404, {"error": f"no stand-in hook {method} {raw_path}"})

    @staticmethod
    def _injections(store: Store) -> list[dict[str, Any]]:
        with store.lock:
            return [{"after": i["after"], "remaining": i["remaining"],
                     "puts": {k: v for k, v in i["changes"] if v is not None},
                     "deletes": [k for k, v in i["changes"] if v is None]} for i in store.injections]


def _json_object(body: bytes, allow_empty: bool = False) -> dict[str, Any]:
    if not body.strip():
        if allow_empty:
            return {}
        raise KvsError("ValidationException", "the request body is empty")
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KvsError("ValidationException", "the request body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise KvsError("ValidationException", "the request body must be a JSON object")
    return doc


def _update_changes(doc: dict[str, Any]) -> list[tuple[str, str | None]]:
    """UpdateKeys' {"Puts": [{Key, Value}], "Deletes": [{Key}]} -> [(key, value or None)].
    The stand-in's choices where the real service's answer is not documented: at least one put
    or delete, no key twice in one request (ValidationException), and deleting a missing key
    fails the whole request (ResourceNotFoundException, as DeleteKey does)."""
    puts, deletes = doc.get("Puts") or [], doc.get("Deletes") or []
    if not isinstance(puts, list) or not isinstance(deletes, list):
        raise KvsError("ValidationException", "Puts and Deletes must be lists")
    changes: list[tuple[str, str | None]] = []
    for i, p in enumerate(puts):
        if not isinstance(p, dict) or "Key" not in p or "Value" not in p:
            raise KvsError("ValidationException", f"Puts[{i}] needs Key and Value")
        key = check_key(p["Key"], f"Puts[{i}].Key")
        changes.append((key, check_value(p["Value"], key)))
    for i, d in enumerate(deletes):
        if not isinstance(d, dict) or "Key" not in d:
            raise KvsError("ValidationException", f"Deletes[{i}] needs Key")
        changes.append((check_key(d["Key"], f"Deletes[{i}].Key"), None))
    if not changes:
        raise KvsError("ValidationException", "UpdateKeys needs at least one put or delete")
    seen: set[str] = set()
    for key, _ in changes:
        if key in seen:
            raise KvsError("ValidationException", f"key {key!r} appears more than once in one UpdateKeys request")
        seen.add(key)
    return changes


def _hook_changes(doc: dict[str, Any]) -> list[tuple[str, str | None]]:
    puts, deletes = doc.get("puts") or {}, doc.get("deletes") or []
    if not isinstance(puts, dict) or not isinstance(deletes, list):
        raise KvsError("ValidationException", "puts must be an object {key: value}, deletes a list of keys")
    changes = [(check_key(k), check_value(v, k)) for k, v in puts.items()]
    changes += [(check_key(k), None) for k in deletes if k not in puts]
    return changes


# --------------------------------------------------------------------------------------------
# the process


def serve(arn: str, port: int = 0, ready_file: Path | None = None, parent_pid: int | None = None) -> None:
    server = _Server((HOST, port), _Handler)
    server.store = Store(arn)
    bound = server.server_address[1]
    if ready_file is not None:
        tmp = ready_file.with_name(ready_file.name + ".tmp")
        tmp.write_text(json.dumps({"port": bound, "pid": os.getpid(), "arn": arn,
                                   "endpoint": f"http://{HOST}:{bound}"}))
        os.replace(tmp, ready_file)
    print(f"kvs stand-in for {arn} on http://{HOST}:{bound} (pid {os.getpid()})", flush=True)
    if parent_pid:
        def watch_parent() -> None:
            while True:
                time.sleep(1)
                if os.getppid() != parent_pid:
                    print(f"parent {parent_pid} is gone, exiting", flush=True)
                    server.shutdown()
                    return
        threading.Thread(target=watch_parent, daemon=True).start()
    def on_sigterm(signum, frame):  # harness.ManagedProcess.stop: terminate, then wait
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="CloudFront KeyValueStore data-plane stand-in (one store)")
    p.add_argument("--arn", required=True, help="arn:aws:cloudfront::<account>:key-value-store/<id>")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    p.add_argument("--ready-file", type=Path, help="written with {port, pid, arn, endpoint} once listening")
    p.add_argument("--parent-pid", type=int, help="exit when this process is no longer the parent")
    a = p.parse_args(argv)
    if not ARN_RE.match(a.arn):
        p.error(f"--arn {a.arn!r} is not arn:aws:cloudfront::<12 digits>:key-value-store/<id>")
    serve(a.arn, a.port, a.ready_file, a.parent_pid)


# --------------------------------------------------------------------------------------------
# for the tests: the stand-in as a child process, and clients that reach it


def new_arn(account: str = "123456789012") -> str:
    return f"arn:aws:cloudfront::{account}:key-value-store/{uuid.uuid4()}"


def route_to(client, endpoint: str) -> None:
    """Make a botocore `cloudfront-keyvaluestore` client send to `endpoint` (http://127.0.0.1:PORT).
    The endpoint rules build `http://{account}.127.0.0.1:PORT` from the ARN, which does not
    resolve; this `before-send` hook (after signing) puts the stand-in's host:port back into the
    URL. The signed `host` header is sent unchanged."""
    target = urllib.parse.urlsplit(endpoint)

    def before_send(request, **_: Any) -> None:
        u = urllib.parse.urlsplit(request.url)
        request.url = urllib.parse.urlunsplit((target.scheme, target.netloc, u.path, u.query, u.fragment))

    client.meta.events.register(f"before-send.{SERVICE}", before_send)


class KvsStandIn:
    """`python kvs.py` as a child process (harness.ManagedProcess: own session, log file, stopped
    by its PID), plus the hooks as methods."""

    def __init__(self, workdir: Path, arn: str | None = None, env: dict[str, str] | None = None,
                 name: str = "kvs-stand-in", log_path: Path | None = None):
        self.workdir = Path(workdir)
        self.arn = arn or new_arn()
        self.env = env
        self.name = name
        self.log_path = log_path or self.workdir / f"{name}.log"
        self.ready_file = self.workdir / f"{name}.ready.json"
        self.proc = None  # harness.ManagedProcess
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 30) -> "KvsStandIn":
        import harness as H  # here, not at the top: harness imports this module

        self.ready_file.unlink(missing_ok=True)
        argv = [sys.executable, str(Path(__file__).resolve()), "--arn", self.arn, "--port", "0",
                "--ready-file", str(self.ready_file), "--parent-pid", str(os.getpid())]
        env = dict(self.env) if self.env is not None else H.Harness._base_env()
        self.proc = H.ManagedProcess(self.name, argv, self.log_path, env)

        def ready() -> dict[str, Any] | None:
            if not self.ready_file.exists():
                return None
            return json.loads(self.ready_file.read_text())

        info = H.wait_until(ready, timeout, f"{self.name} ready file", 0.05, self.proc)
        self.port = int(info["port"])
        health = H.wait_until(lambda: self.hook("GET", "health"), timeout, f"{self.name} to answer", 0.05, self.proc)
        if health.get("pid") != self.proc.pid or health.get("arn") != self.arn:
            raise H.StartupError(f"{self.name}: port {self.port} answers as {health}, not pid {self.proc.pid}", self.proc)
        H.log(f"{self.name} on {self.endpoint} serves {self.arn}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            import harness as H

            self.proc.stop()
            H.log(f"stopped {self.name} (pid {self.proc.pid}, exit {self.proc.popen.returncode})")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.alive()

    # ---- hooks --------------------------------------------------------------------------------
    def hook(self, method: str, name: str, payload: Any = None, query: str = "") -> Any:
        import http.client

        conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        try:
            body = json.dumps(payload).encode() if payload is not None else None
            conn.request(method, f"/_standin/{name}" + (f"?{query}" if query else ""), body,
                         {"Content-Type": "application/json"} if body is not None else {})
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        if r.status != 200:
            raise RuntimeError(f"{method} /_standin/{name}: HTTP {r.status} {data[:500]!r}")
        return json.loads(data)

    def store(self) -> dict[str, Any]:
        """{"arn", "etag", "item_count", "total_size_in_bytes", "items": {key: value}}"""
        return self.hook("GET", "store")

    def store_contents(self) -> dict[str, str]:
        """The whole store: {key: value}."""
        return self.store()["items"]

    def etag(self) -> str:
        return self.store()["etag"]

    def write_log(self, since: int = 0) -> list[dict[str, Any]]:
        """Every key written or deleted, in order: [{"seq", "write", "op", "key", "value",
        "deleted", "etag", "at", "if_match" (API writes) or "trigger" (ConcurrentWrite)}]
        (entries with seq > since)."""
        return self.hook("GET", "log", query=f"since={int(since)}")["writes"]

    def concurrent_write(self, puts: dict[str, str] | None = None, deletes: list[str] | None = None) -> str:
        """Another writer changes the store now (no puts/deletes: only the ETag) -> new ETag."""
        return self.hook("POST", "write", {"puts": puts or {}, "deletes": deletes or []})["etag"]

    def inject_after(self, operation: str = "DescribeKeyValueStore", times: int = 1,
                     puts: dict[str, str] | None = None, deletes: list[str] | None = None) -> list[dict[str, Any]]:
        """Right after each of the next `times` successful `operation` calls, another writer
        changes the store (default: only the ETag)."""
        return self.hook("POST", "inject", {"after": operation, "times": times,
                                            "puts": puts or {}, "deletes": deletes or []})["armed"]

    def requests(self) -> list[dict[str, Any]]:
        """The last API calls answered: [{"at", "method", "path", "host", "operation", "status", "error"}]."""
        return self.hook("GET", "requests")["requests"]

    def armed(self) -> list[dict[str, Any]]:
        return self.hook("GET", "inject")["armed"]

    def disarm(self) -> None:
        self.hook("DELETE", "inject")

    def reset(self) -> str:
        return self.hook("POST", "reset")["etag"]

    # ---- clients ------------------------------------------------------------------------------
    def client(self, access_key: str = "kvs-test", secret_key: str = "kvs-test-secret", region: str = "us-east-1",
               **config: Any):
        """A boto3 `cloudfront-keyvaluestore` client (SigV4A through awscrt) that reaches the
        stand-in (route_to)."""
        import boto3
        from botocore.config import Config

        c = boto3.client(SERVICE, region_name=region, endpoint_url=self.endpoint,
                         aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                         config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30, **config))
        route_to(c, self.endpoint)
        return c


if __name__ == "__main__":
    main()
