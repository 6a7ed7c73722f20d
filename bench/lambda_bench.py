"""Cold start, per-invocation time and peak memory of the precompute Lambda.

Runs the release `precompute` binary as Lambda would: a Lambda Runtime API emulator (this
script) hands it events one at a time, against real emulators for its stores (SeaweedFS as S3,
moto as DynamoDB, started by tests/integration/harness.py on 127.0.0.1 and stopped by PID).
For each corpus photo and each thread count (Lambda vCPUs scale with memory: 1 vCPU per
1,769 MB), one fresh process handles two uploads of the photo:

- cold: process start → init done (first `next` call) → first event handled;
- warm: the second event, in the same process;
- peak RSS (VmHWM) of the process after both.

Each event is a bare EventBridge event, so one invocation does everything the state machine's
tasks do (assign, GetObject, decode, 8 variants, 8 PutObjects, manifest ready).

    ~/.cache/pixelfront/venv/bin/python bench/lambda_bench.py --bin <release precompute> \
        [--threads 1,2] [--results bench/results-lambda.json]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import harness as H  # noqa: E402

PHOTOS = ROOT.parent / "shared" / "corpus" / "photos"


class RuntimeApi:
    """The part of the Lambda Runtime API a function uses: next, response, error, init error."""

    def __init__(self, function_name: str = "precompute") -> None:
        self.events: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.next_calls: list[float] = []
        function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, body: bytes = b"{}", headers: dict | None = None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                if not self.path.endswith("/runtime/invocation/next"):
                    return self._reply(404)
                api.next_calls.append(time.monotonic())
                event = api.events.get()
                if event is None:  # shut down: leave the function waiting
                    time.sleep(3600)
                    return
                request_id, payload = event
                api.results.put(("sent", request_id, time.monotonic(), None))
                self._reply(200, json.dumps(payload).encode(), {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 900_000),
                    "Lambda-Runtime-Invoked-Function-Arn": function_arn,
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
                })

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = self.path.split("/")
                kind = parts[-1]
                request_id = parts[-2] if len(parts) >= 2 else ""
                api.results.put((kind, request_id, time.monotonic(), body))
                self._reply(202)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.events.put(None)
        self.server.shutdown()


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


class LambdaProcess:
    """One fresh function process served by its own RuntimeApi, as one Lambda execution
    environment: started on construction, then invoked one event at a time with `invoke`.
    `stdout`/`stderr` are passed to Popen. Use as a context manager (it stops the process by
    its PID)."""

    def __init__(self, binary: str, env: dict, function_name: str = "precompute",
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) -> None:
        self.api = RuntimeApi(function_name)
        env = dict(env, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{self.api.port}")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([binary], env=env, stdout=stdout, stderr=stderr,
                                     start_new_session=True)

    def invoke(self, payload, timeout: float = 600) -> dict:
        """Hands the function one event and waits for its answer -> {"sent", "done", "body"}
        (monotonic times the event left and the response arrived; the response bytes).
        Raises on an init error, a function error, the process exiting, or the timeout."""
        request_id = str(uuid.uuid4())
        self.api.events.put((request_id, payload))
        sent = done = None
        outcome = None
        deadline = time.monotonic() + timeout
        while done is None:
            try:
                kind, rid, at, body = self.api.results.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"function process exited ({self.proc.returncode})")
                if time.monotonic() > deadline:
                    raise
                continue
            if kind == "sent" and rid == request_id:
                sent = at
            elif kind in ("response", "error") and rid == request_id:
                done, outcome = at, (kind, body)
            elif kind == "error" and rid == "init":
                raise RuntimeError(f"init error: {body!r}")
        if outcome[0] != "response":
            raise RuntimeError(f"function error: {outcome[1][:500]!r}")
        return {"sent": sent, "done": done, "body": outcome[1]}

    @property
    def init_done(self) -> float:
        """When the runtime first asked for an event (init done); the start time if it never did."""
        return self.api.next_calls[0] if self.api.next_calls else self.started

    def peak_rss_kib(self) -> int:
        return vm_hwm_kib(self.proc.pid)

    def close(self) -> None:
        self.api.close()
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "LambdaProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_process(binary: str, env: dict, events: list[dict], timeout: float = 600) -> dict:
    with LambdaProcess(binary, env) as fn:
        timings = [fn.invoke(payload, timeout) for payload in events]
        peak_kib = fn.peak_rss_kib()
    started, init_done = fn.started, fn.init_done
    return {
        "init_ms": round((init_done - started) * 1000, 1),
        "cold_ms": round((timings[0]["done"] - started) * 1000, 1),
        "first_invoke_ms": round((timings[0]["done"] - timings[0]["sent"]) * 1000, 1),
        "warm_invoke_ms": round((timings[1]["done"] - timings[1]["sent"]) * 1000, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="release build of functions/precompute")
    ap.add_argument("--threads", default="1,2", help="comma-separated rayon thread counts")
    ap.add_argument("--results", help="write the results as JSON here")
    args = ap.parse_args()
    binary = str(Path(args.bin).resolve())
    if not os.access(binary, os.X_OK):
        print(f"lambda_bench: {binary} is not an executable", file=sys.stderr)
        return 2
    photos = sorted(PHOTOS.glob("*.jpg"))
    if not photos:
        print(f"lambda_bench: no photos in {PHOTOS}", file=sys.stderr)
        return 2

    stack = H.Harness(with_lambda=False).start()
    rows = []
    try:
        base_env = stack.function_env()
        for threads in [int(t) for t in args.threads.split(",")]:
            memory_mb = 1769 * threads
            env = dict(base_env, PIXELFRONT_THREADS=str(threads),
                       AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory_mb),
                       AWS_LAMBDA_FUNCTION_NAME="precompute",
                       AWS_LAMBDA_FUNCTION_VERSION="$LATEST", RUST_LOG="warn")
            for photo in photos:
                body = photo.read_bytes()
                events = []
                for run in ("cold", "warm"):
                    key = f"bench/t{threads}/{run}/{photo.name.replace('_', '-')}"
                    events.append(stack.event_for(key, stack.upload(key, body)))
                print(f"lambda_bench: {photo.name} ({len(body) / 1e6:.1f} MB), "
                      f"{threads} thread(s)", file=sys.stderr, flush=True)
                r = run_process(binary, env, events)
                r.update(photo=photo.name, bytes=len(body), threads=threads,
                         memory_mb_equivalent=memory_mb)
                rows.append(r)
                print(f"  init {r['init_ms']} ms, cold {r['cold_ms']} ms, warm "
                      f"{r['warm_invoke_ms']} ms, peak {r['peak_rss_mib']} MiB",
                      file=sys.stderr, flush=True)
    finally:
        stack.stop()

    print(f"{'photo':44} {'thr':>3} {'init ms':>8} {'cold ms':>8} {'warm ms':>8} {'peak MiB':>9}")
    for r in rows:
        print(f"{r['photo']:44} {r['threads']:>3} {r['init_ms']:>8} {r['cold_ms']:>8} "
              f"{r['warm_invoke_ms']:>8} {r['peak_rss_mib']:>9}")
    if args.results:
        Path(args.results).write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
