"""pytest wiring for the integration harness (see harness.py).

One session-scoped stack (SeaweedFS, fault proxy, moto, router, CloudFront fault router, cargo
lambda watch). Stopped at the end of the session, on a startup failure, on Ctrl-C, on SIGTERM
and at interpreter exit. A failing test gets the function's log lines (and the routers' logs)
written during that test attached to its report. S3 and CloudFront faults are reset around
every test.

IAM: every call a function makes goes through the IAM gate (iam.py), which checks it against
that function's role in template.yaml. A test during which the gate denied any call fails, naming
the call and the missing permission, unless it is marked `iam_denials_expected` (the tests that
revoke a permission on purpose); revoked permissions are restored after every test.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as H  # noqa: E402

_STACK: H.Harness | None = None
_FAILED = False


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "iam_denials_expected: the test revokes a permission and expects the IAM gate to deny calls")


@pytest.fixture(scope="session")
def stack(request):
    global _STACK
    previous = signal.getsignal(signal.SIGTERM)

    def on_sigterm(signum, frame):  # turn SIGTERM into an exception so teardown runs
        raise KeyboardInterrupt("SIGTERM")

    signal.signal(signal.SIGTERM, on_sigterm)
    h = H.Harness()
    capman = request.config.pluginmanager.getplugin("capturemanager")
    try:
        # startup progress (the first build of the function can take minutes) goes to the terminal
        if capman is not None:
            with capman.global_and_fixture_disabled():
                h.start()
        else:
            h.start()
    except H.StartupError as e:
        h.keep_logs = True
        h.stop()
        pytest.exit(f"integration stack failed to start:\n{e}", returncode=3)
    _STACK = h
    try:
        yield h
    finally:
        h.keep_logs = _FAILED
        _STACK = None
        h.stop()
        signal.signal(signal.SIGTERM, previous)


@pytest.fixture(autouse=True)
def _per_test(request):
    """Reset S3 faults around each test and remember where the function log stood."""
    if "stack" not in request.fixturenames:
        yield
        return
    h: H.Harness = request.getfixturevalue("stack")
    h.s3_faults(0)
    h.cdn_faults(0)
    denials_before = h.iam.denial_count() if h.iam is not None else 0
    request.node._pf_denials_before = denials_before
    request.node._pf_log_offset = h.function_log_offset()
    request.node._pf_proxy_log_offset = _size(h.logs / "s3-fault-proxy.log")
    request.node._pf_cdn_log_offset = _size(h.logs / "cdn-fault-router.log")
    request.node._pf_router_log_offset = _size(h.logs / "lambda-router.log")
    try:
        yield
    finally:
        h.s3_faults(0)
        h.cdn_faults(0)
        if h.iam is not None:
            h.iam.restore()
    denied = h.iam.denials_since(denials_before) if h.iam is not None else []
    if denied and request.node.get_closest_marker("iam_denials_expected") is None:
        lines = "\n".join(f"  {d}" for d in denied[:20])
        more = f"\n  ... and {len(denied) - 20} more" if len(denied) > 20 else ""
        pytest.fail(f"IAM: template.yaml does not allow {len(denied)} call(s) the functions made:\n{lines}{more}",
                    pytrace=False)


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def _read_from(p: Path, offset: int, max_bytes: int = 16 * 1024) -> str:
    try:
        with open(p, "rb") as f:
            f.seek(0, 2)
            end = f.tell()
            f.seek(max(offset, end - max_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError as e:
        return f"<{e}>"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    global _FAILED
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        _FAILED = True
        h = _STACK
        if h is not None and hasattr(item, "_pf_log_offset"):
            rep.sections.append(
                ("cargo lambda watch log during this test", h.function_log_since(item._pf_log_offset))
            )
            rep.sections.append(
                ("s3 fault proxy log during this test",
                 _read_from(h.logs / "s3-fault-proxy.log", item._pf_proxy_log_offset)[-6000:])
            )
            rep.sections.append(
                ("cloudfront fault router log during this test",
                 _read_from(h.logs / "cdn-fault-router.log", getattr(item, "_pf_cdn_log_offset", 0))[-6000:])
            )
            rep.sections.append(
                ("lambda router log during this test",
                 _read_from(h.logs / "lambda-router.log", getattr(item, "_pf_router_log_offset", 0))[-6000:])
            )
