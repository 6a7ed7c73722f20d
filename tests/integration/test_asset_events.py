"""Asset events on EventBridge (docs/tenant-api.md#events): the precompute workflow (real
execution in moto) announces each version it settles, "Asset Ready" or "Asset Failed" with the
tenant, key, version and status, on the default bus; a rule of the tenant's delivers them to an
SQS queue, as a tenant's backend would subscribe.

Run: PATH=~/.cache/pixelfront/venv/bin:$PATH python -m pytest tests/integration/test_asset_events.py -q
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

import harness as H

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
PNG = (CORPUS / "pngsuite" / "basn2c08.png").read_bytes()

pytestmark = pytest.mark.usefixtures("stack")


def test_ready_and_failed_versions_are_announced_on_eventbridge(stack: H.Harness):
    tenant = f"ev-{uuid.uuid4().hex[:10]}"
    sqs, events = stack.moto_client("sqs"), stack.moto_client("events")
    queue = sqs.create_queue(QueueName=f"{tenant}-assets")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["pixelfront"], "detail-type": ["Asset Ready", "Asset Failed"], "detail": {"tenant": [tenant]}}
    events.put_rule(Name=f"{tenant}-assets", EventPattern=json.dumps(pattern))
    events.put_targets(Rule=f"{tenant}-assets", Targets=[{"Id": "backend", "Arn": queue_arn}])

    good = stack.upload(f"{tenant}/a.png", PNG, "image/png")
    d = stack.run(stack.event_for(f"{tenant}/a.png", good))
    assert d["status"] == "SUCCEEDED", stack.history_text(d["executionArn"])
    bad = stack.upload(f"{tenant}/bad.png", b"\x89PNG\r\n\x1a\n not really", "image/png")
    d = stack.run(stack.event_for(f"{tenant}/bad.png", bad))
    assert d["status"] == "FAILED", stack.history_text(d["executionArn"])

    seen: list[tuple[str, str, int, str]] = []
    deadline = time.monotonic() + 30
    while len(seen) < 2 and time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            e = json.loads(m["Body"])
            assert e["source"] == "pixelfront"
            seen.append((e["detail-type"], e["detail"]["key"], e["detail"]["version"], e["detail"]["status"]))
    assert sorted(seen) == [("Asset Failed", "bad.png", 1, "failed"), ("Asset Ready", "a.png", 1, "ready")], seen
