"""A stand-in for STS `AssumeRole`, the one STS call the functions make (the transformer's
tenant-scoped reads, shared/src/store/scoped.rs). moto's STS would hand out keys SeaweedFS does
not know, and SeaweedFS refuses any request carrying a session token; so the harness answers
AssumeRole itself:

* the caller's role must allow `sts:AssumeRole` on the role (IAM gate) and the role's trust
  policy must name the caller's role, as in an account;
* the session policy must be JSON of at most 2,048 characters (AWS: `PackedPolicyTooLarge`);
* the credentials are one of a pool of keys SeaweedFS knows, registered with the gate as that
  role narrowed by the session policy. The S3 proxies check each call against both and re-sign
  it with the pool key's own secret, without the session token, before SeaweedFS sees it.
"""

from __future__ import annotations

import html
import json
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import iam as IAM

MAX_POLICY_CHARS = 2048
POOL_SIZE = 256


def pool_keys() -> list[tuple[str, str]]:
    """(access key, secret) of every temporary credential the stand-in can hand out."""
    return [(f"ASIAPIXELFRONT{i:04d}", f"pool-secret-{i:04d}") for i in range(POOL_SIZE)]


class StsStandIn:
    """AssumeRole answers and the sessions they created."""

    def __init__(self, gate: IAM.IamGate, account: str):
        self.gate = gate
        self.account = account
        self._pool = pool_keys()
        self._next = 0
        self._lock = threading.Lock()
        self.calls: list[dict[str, Any]] = []  # one per AssumeRole answered

    def secret_of(self, access_key: str) -> str | None:
        return dict(self._pool).get(access_key)

    def answer(self, caller_key: str | None, body: bytes) -> tuple[int, bytes]:
        """(status, XML) of one STS request."""
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items()}
        if form.get("Action") != "AssumeRole":
            return 400, _error("InvalidAction", f"the harness answers AssumeRole only, not {form.get('Action')!r}")
        role_arn, policy_text = form.get("RoleArn", ""), form.get("Policy")
        role = self.gate.role_with_arn(role_arn)
        call = f"STS AssumeRole {role_arn} ({form.get('RoleSessionName')})"
        denial = self.gate.check(caller_key, [IAM.Need("sts:AssumeRole", role_arn)], call)
        caller_role = self.gate.role_of(caller_key)
        if denial is None and role is not None and caller_role is not None and not self.gate.trusts(role, caller_role):
            denial = IAM.Denial(caller_role, "sts:AssumeRole", role_arn, f"{call}: not trusted by {role}")
            self.gate.record(denial)
        if denial is not None:
            return 403, _error("AccessDenied", IAM.not_authorized_message(self.account, denial))
        if role is None:
            return 400, _error("ValidationError", f"no role {role_arn} in template.yaml")
        policy = None
        if policy_text is not None:
            if len(policy_text) > MAX_POLICY_CHARS:
                return 400, _error("PackedPolicyTooLarge", f"the session policy has {len(policy_text)} characters")
            try:
                policy = json.loads(policy_text)
            except ValueError:
                return 400, _error("MalformedPolicyDocument", "the session policy is not JSON")
        with self._lock:
            if self._next >= len(self._pool):
                return 500, _error("InternalFailure", f"harness STS pool of {POOL_SIZE} keys used up")
            access, secret = self._pool[self._next]
            self._next += 1
            self.calls.append({"role": role, "session": form.get("RoleSessionName"), "policy": policy,
                               "access_key": access, "at": time.time()})
        self.gate.register_session(access, role, policy)
        expires = (datetime.now(timezone.utc) + timedelta(seconds=int(form.get("DurationSeconds") or 3600)))
        xml = (
            '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>'
            f"<Credentials><AccessKeyId>{access}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey>"
            f"<SessionToken>pixelfront-it-{uuid.uuid4().hex}</SessionToken>"
            f"<Expiration>{expires.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration></Credentials>"
            f"<AssumedRoleUser><AssumedRoleId>AROAPIXELFRONT:{html.escape(form.get('RoleSessionName', ''))}</AssumedRoleId>"
            f"<Arn>{IAM.assumed_role_arn(self.account, role)}</Arn></AssumedRoleUser>"
            "<PackedPolicySize>10</PackedPolicySize></AssumeRoleResult>"
            f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata></AssumeRoleResponse>"
        )
        return 200, xml.encode()


def _error(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{html.escape(message)}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()


def resign(method: str, path: str, headers: Any, access: str, secret: str, region: str) -> list[tuple[str, str]]:
    """The headers of a bodiless S3 request signed again with `access`/`secret` and no session
    token, for the same Host, path and query (so SeaweedFS accepts the pool key)."""
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    host = headers.get("Host") or ""
    dropped = {"authorization", "x-amz-security-token", "x-amz-date", "x-amz-content-sha256", "host",
               "content-length", "transfer-encoding", "connection"}
    kept = {k: v for k, v in headers.items() if k.lower() not in dropped}
    req = AWSRequest(method=method, url=f"http://{host}{path}", headers=kept, data=b"")
    S3SigV4Auth(Credentials(access, secret), "s3", region).add_auth(req)
    return [("Host", host), *req.headers.items()]
