"""IAM as an AWS account enforces it, for the end-to-end tests.

SeaweedFS and moto accept every call a known key signs; an account refuses what the caller's
role does not allow. This module closes that gap for the harness:

* `Template` reads `template.yaml` (CloudFormation tags included), resolves `!Sub`, `!GetAtt`,
  `!Ref`, `!If` and the other intrinsic functions the roles use against the harness's physical
  names, and returns each role's policy documents exactly as written there.
* `IamGate` maps an access key to the role whose credentials it stands for, evaluates a call's
  actions against that role's policies with moto's IAM policy evaluator (explicit deny wins,
  then any allow, otherwise denied), and records every denial with the call and the missing
  permission. The proxies in front of the emulators (harness.py) ask it before forwarding and
  answer a denied call with the error AWS answers (S3 `AccessDenied`, DynamoDB
  `AccessDeniedException`, CloudFront `AccessDenied`).
* `iam_actions.py` says which IAM actions and resources one HTTP request needs.

Only identity-based policies are evaluated: the stack uses no permission boundaries, no SCPs
and no resource policies that grant the functions anything.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from moto.iam.access_control import IAMPolicy, PermissionResult

PARTITION = "aws"


# --------------------------------------------------------------------------------------------
# template.yaml with its CloudFormation tags


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns `!Tag value` into the long form (`{"Fn::Tag": value}`)."""


def _construct_tag(loader: yaml.Loader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    """template.yaml as plain data, intrinsic functions in their long form."""
    with open(path) as f:
        return yaml.load(f, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


class TemplateError(ValueError):
    """Something in the template this resolver cannot evaluate."""


@dataclass
class Template:
    """The template with its parameters and the harness's physical names.

    `physical` maps a logical id to what `!Ref` returns for it (bucket name, table name,
    distribution id, ...); ARNs are built from those like CloudFormation builds them."""

    doc: dict[str, Any]
    params: dict[str, str]
    physical: dict[str, str]
    region: str
    account: str
    stack: str = "pixelfront"

    @classmethod
    def load(cls, path: Path, overrides: dict[str, str], physical: dict[str, str],
             region: str, account: str) -> "Template":
        doc = load_template(path)
        params = {name: str(p.get("Default", "")) for name, p in (doc.get("Parameters") or {}).items()}
        unknown = set(overrides) - set(params)
        if unknown:
            raise TemplateError(f"unknown parameters {sorted(unknown)}")
        params.update(overrides)
        return cls(doc, params, physical, region, account)

    @property
    def resources(self) -> dict[str, Any]:
        return self.doc["Resources"]

    # ---- intrinsic functions ---------------------------------------------------------------
    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.doc["Conditions"][name]))

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Partition": PARTITION, "AWS::Region": self.region, "AWS::AccountId": self.account,
            "AWS::StackName": self.stack, "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.physical:
            return self.physical[name]
        if name in self.resources:
            return f"{self.stack}-{name}"
        raise TemplateError(f"!Ref {name}: no such parameter or resource")

    def get_att(self, logical: str, attr: str) -> str:
        if attr != "Arn":
            raise TemplateError(f"!GetAtt {logical}.{attr}: only Arn is resolved")
        res = self.resources.get(logical)
        if res is None:
            raise TemplateError(f"!GetAtt {logical}.Arn: no such resource")
        kind, name = res["Type"], self.ref(logical)
        region, account = self.region, self.account
        if kind == "AWS::S3::Bucket":
            return f"arn:{PARTITION}:s3:::{name}"
        if kind == "AWS::DynamoDB::Table":
            return f"arn:{PARTITION}:dynamodb:{region}:{account}:table/{name}"
        if kind == "AWS::Logs::LogGroup":
            group = self.resolve(res["Properties"].get("LogGroupName", name))
            return f"arn:{PARTITION}:logs:{region}:{account}:log-group:{group}:*"
        if kind == "AWS::IAM::Role":
            return f"arn:{PARTITION}:iam::{account}:role/{name}"
        if kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            return f"arn:{PARTITION}:lambda:{region}:{account}:function:{name}"
        if kind == "AWS::SQS::Queue":
            return f"arn:{PARTITION}:sqs:{region}:{account}:{name}"
        if kind == "AWS::CloudFront::KeyValueStore":
            return f"arn:{PARTITION}:cloudfront::{account}:key-value-store/{name}"
        raise TemplateError(f"!GetAtt {logical}.Arn: type {kind} is not resolved")

    def _sub(self, value: Any) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))

        def one(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                logical, attr = name.split(".", 1)
                return self.get_att(logical, attr)
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def resolve(self, node: Any) -> Any:
        """`node` with every intrinsic function evaluated; `AWS::NoValue` items are dropped."""
        if isinstance(node, list):
            out = [self.resolve(n) for n in node]
            return [n for n in out if n is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::GetAtt":
                return self.get_att(*arg)
            if key == "Fn::Sub":
                return self._sub(arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::Equals":
                a, b = (self.resolve(x) for x in arg)
                return str(a) == str(b)
            if key == "Fn::And":
                return all(self.resolve(x) for x in arg)
            if key == "Fn::Or":
                return any(self.resolve(x) for x in arg)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self.resolve(items))
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not resolved")
        out = {k: self.resolve(v) for k, v in node.items()}
        return {k: v for k, v in out.items() if v is not _NO_VALUE}

    # ---- roles ------------------------------------------------------------------------------
    def function_role(self, function: str) -> str:
        """The logical id of the role a function runs with (`Role: !GetAtt X.Arn`)."""
        role = self.resources[function]["Properties"].get("Role")
        if not (isinstance(role, dict) and "Fn::GetAtt" in role):
            raise TemplateError(f"{function}: Role is not `!GetAtt <role>.Arn`")
        return role["Fn::GetAtt"][0]

    def role_policies(self, role: str) -> list[dict[str, Any]]:
        """Every identity policy document attached to role `role`, resolved; for a managed
        policy of the template (what an operator is given), its own document."""
        res = self.resources[role]
        if res["Type"] == "AWS::IAM::ManagedPolicy":
            return [self.resolve(res["Properties"]["PolicyDocument"])]
        if res["Type"] != "AWS::IAM::Role":
            raise TemplateError(f"{role} is not an AWS::IAM::Role")
        props = res.get("Properties", {})
        if props.get("ManagedPolicyArns"):
            raise TemplateError(f"{role}: managed policies are not evaluated here")
        docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        for logical, other in self.resources.items():
            if other["Type"] not in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy"):
                continue
            if "Condition" in other and not self.condition(other["Condition"]):
                continue
            p = other["Properties"]
            targets = [p.get("RoleName")] + list(p.get("Roles") or [])
            if {"Ref": role} in targets:
                docs.append(p["PolicyDocument"])
        resolved = [self.resolve(d) for d in docs]
        for d in resolved:
            for st in d["Statement"]:
                # moto's evaluator permits a statement without Resource: never let a list that
                # !If emptied turn into "everything".
                if not st.get("Resource"):
                    raise TemplateError(f"{role}: a statement has no Resource: {st}")
        return resolved


_NO_VALUE = object()


# --------------------------------------------------------------------------------------------
# the gate


@dataclass(frozen=True)
class Need:
    """One IAM action on one resource ARN that a call needs."""

    action: str
    resource: str


@dataclass
class Denial:
    """A call the caller's role does not allow, as AWS would refuse it."""

    role: str
    action: str
    resource: str
    call: str
    at: float = field(default_factory=time.time)

    def __str__(self) -> str:
        return f"{self.role} lacks {self.action} on {self.resource} (call: {self.call})"


class IamGate:
    """Access key -> role; a call's needs -> allowed or the first denial (recorded)."""

    def __init__(self, template: Template, principals: dict[str, str], trusted: set[str]):
        """`principals`: access key -> logical id of a role in the template. `trusted`: keys of
        the harness itself (setting up and inspecting state), never checked."""
        self.template = template
        self.principals = dict(principals)
        self.trusted = set(trusted)
        self._policies = {role: template.role_policies(role) for role in set(principals.values())}
        self._revoked: dict[str, set[str]] = {}
        self._sessions: dict[str, list[dict[str, Any]]] = {}  # access key -> its session policy
        self._lock = threading.Lock()
        self.denials: list[Denial] = []
        self.checked = 0

    def role_of(self, access_key: str | None) -> str | None:
        """The role behind `access_key`; None for the harness's own keys."""
        if access_key in self.trusted:
            return None
        return self.principals.get(access_key or "", f"<unknown access key {access_key!r}>")

    def allowed(self, role: str, need: Need, access_key: str | None = None) -> bool:
        """Whether `role`'s policies, as written in the template, allow `need`; for temporary
        credentials, their session policy must allow it too (the intersection)."""
        with self._lock:
            if need.action in self._revoked.get(role, set()):
                return False
            docs = self._policies.get(role)
            session = self._sessions.get(access_key or "")
        if docs is None:
            return False
        return _permits(docs, need) and (session is None or _permits(session, need))

    def register_session(self, access_key: str, role: str, policy: dict[str, Any] | None) -> None:
        """Temporary credentials `access_key` of `role`, narrowed by a session `policy`."""
        docs = self.template.role_policies(role)
        with self._lock:
            self._policies.setdefault(role, docs)
            self.principals[access_key] = role
            self._sessions[access_key] = [policy] if policy is not None else []
            if policy is None:
                del self._sessions[access_key]

    def is_session(self, access_key: str | None) -> bool:
        with self._lock:
            return (access_key or "") in self._sessions

    def trusts(self, role: str, caller_role: str) -> bool:
        """Whether `role`'s trust policy lets `caller_role` assume it (an Allow of
        sts:AssumeRole naming the caller's role ARN as an AWS principal)."""
        doc = self.template.resolve(self.template.resources[role]["Properties"]["AssumeRolePolicyDocument"])
        caller = self.template.get_att(caller_role, "Arn")
        for st in doc["Statement"]:
            principal = st.get("Principal")
            aws = principal.get("AWS") if isinstance(principal, dict) else None
            names = aws if isinstance(aws, list) else [aws]
            actions = st.get("Action") if isinstance(st.get("Action"), list) else [st.get("Action")]
            if st.get("Effect") == "Allow" and "sts:AssumeRole" in actions and caller in names:
                return True
        return False

    def role_with_arn(self, arn: str) -> str | None:
        """The logical id of the template role whose ARN is `arn`."""
        for logical, res in self.template.resources.items():
            if res["Type"] == "AWS::IAM::Role" and self.template.get_att(logical, "Arn") == arn:
                return logical
        return None

    def check(self, access_key: str | None, needs: list[Need], call: str) -> Denial | None:
        """The first of `needs` the key's role lacks (recorded as a denial), or None."""
        role = self.role_of(access_key)
        if role is None:
            return None
        with self._lock:
            self.checked += 1
        for need in needs:
            if not self.allowed(role, need, access_key):
                denial = Denial(role, need.action, need.resource, call)
                with self._lock:
                    self.denials.append(denial)
                return denial
        return None

    def record(self, denial: Denial) -> None:
        """Record a denial decided outside `check` (a trust policy that does not name the caller)."""
        with self._lock:
            self.denials.append(denial)

    def revoke(self, role: str, action: str) -> None:
        """Take `action` away from `role` until `restore` (the negative tests)."""
        with self._lock:
            self._revoked.setdefault(role, set()).add(action)

    def restore(self) -> None:
        with self._lock:
            self._revoked.clear()

    def denials_since(self, n: int) -> list[Denial]:
        with self._lock:
            return list(self.denials[n:])

    def denial_count(self) -> int:
        with self._lock:
            return len(self.denials)


def _permits(docs: list[dict[str, Any]], need: Need) -> bool:
    """Explicit deny wins, then any allow; nothing said is a deny."""
    permitted = False
    for doc in docs:
        result = IAMPolicy(json.dumps(doc)).is_action_permitted(need.action, need.resource)
        if result == PermissionResult.DENIED:
            return False
        permitted = permitted or result == PermissionResult.PERMITTED
    return permitted


def principal_of(headers: Any, query: str) -> str | None:
    """The access key that signed a request: SigV4 `Authorization` header or presigned query."""
    auth = headers.get("Authorization") or ""
    m = re.search(r"Credential=([^/,\s]+)/", auth)
    if m:
        return m.group(1)
    m = re.search(r"(?:^|&)X-Amz-Credential=([^/&%]+)(?:/|%2F)", query)
    return m.group(1) if m else None


def assumed_role_arn(account: str, role: str) -> str:
    return f"arn:{PARTITION}:sts::{account}:assumed-role/{role}/pixelfront-it"


def not_authorized_message(account: str, denial: Denial) -> str:
    """The sentence AWS puts in an access-denied error."""
    return (f"User: {assumed_role_arn(account, denial.role)} is not authorized to perform: "
            f"{denial.action} on resource: {denial.resource} because no identity-based policy "
            f"allows the {denial.action} action")


def s3_access_denied(account: str, denial: Denial) -> bytes:
    """S3's 403 error document for a denied call."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>AccessDenied</Code><Message>{html.escape(not_authorized_message(account, denial))}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId><HostId>pixelfront-iam-gate</HostId></Error>"
    ).encode()


def dynamodb_access_denied(account: str, denial: Denial) -> tuple[bytes, dict[str, str]]:
    """DynamoDB's 400 AccessDeniedException body and headers for a denied call."""
    body = json.dumps({"__type": "com.amazon.coral.service#AccessDeniedException",
                       "Message": not_authorized_message(account, denial)}).encode()
    return body, {"x-amzn-ErrorType": "AccessDeniedException", "x-amzn-RequestId": str(uuid.uuid4())}


def kvs_access_denied(account: str, denial: Denial) -> tuple[bytes, dict[str, str]]:
    """The KeyValueStore API's 403 (rest-json: the code in `x-amzn-ErrorType`)."""
    body = json.dumps({"Message": not_authorized_message(account, denial)}).encode()
    return body, {"x-amzn-ErrorType": "AccessDeniedException", "x-amzn-RequestId": str(uuid.uuid4())}


def cloudfront_access_denied(account: str, denial: Denial) -> bytes:
    """CloudFront's 403 error document for a denied call."""
    return (
        '<?xml version="1.0"?>\n'
        '<ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">'
        f"<Error><Type>Sender</Type><Code>AccessDenied</Code>"
        f"<Message>{html.escape(not_authorized_message(account, denial))}</Message></Error>"
        f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
