"""Cold start, per-request latency and peak memory of the on-demand transformer Lambda.

Runs the release `transform` binary as Lambda runs it behind a Function URL: the Lambda Runtime
API emulator of bench/lambda_bench.py hands it API Gateway v2 (payload 2.0) events, the shape a
Function URL delivers, one at a time, while its stores are real emulators (SeaweedFS as S3
behind the test proxy, a second SeaweedFS as the replica, moto as DynamoDB), started by
tests/integration/harness.py on 127.0.0.1 and stopped by PID.

First every corpus photo is made `ready`: the release `precompute` binary, through the same
emulator, handles one bare EventBridge "Object Created" event per photo (manifest + the 8
standard variants). Then, for each round, thread count and photo, one fresh `transform`
process (its non-standard derivatives deleted beforehand) gets, in order:

- cold:      `w=500&q=72&fmt=webp` (→ w640-q75.webp): process start → init done (first `next`)
             → first request answered;
- warm_avif: `w=1000&fmt=avif&q=50` (→ w1080-q50.avif), rendered in the warm process;
- warm_jpeg: `w=300&fmt=jpeg&q=65` (→ w320-q70.jpeg), rendered in the warm process;
- hit:       the cold request again, now served from the derived bucket;
- warm_same: the cold request once more after deleting its stored derivative, i.e. the cold
             request's work in a warm process (cold − warm_same = the cold-start penalty);

and then its peak RSS (VmHWM) is read. Each answer must be HTTP 200 with the right
Content-Type, the image's magic bytes, and the expected `x-pixelfront-source`. The render time
(decode + resize + encode) of each request comes from the function's own `served` log line;
the rest of a request is the S3/DynamoDB round trips and the HTTP/JSON around them.

    ~/.cache/pixelfront/venv/bin/python bench/transform_bench.py \
        --bin target/release/transform --precompute-bin target/release/precompute \
        [--threads 1,2] [--rounds 5] [--results bench/results-transform.json]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import lambda_bench as LB

H = LB.H

TENANT = "bench"
# (name, query, content type, x-pixelfront-source, delete the derivative first)
REQUESTS = [
    ("cold", "w=500&q=72&fmt=webp", "image/webp", "rendered", False),
    ("warm_avif", "w=1000&fmt=avif&q=50", "image/avif", "rendered", False),
    ("warm_jpeg", "w=300&fmt=jpeg&q=65", "image/jpeg", "rendered", False),
    ("hit", "w=500&q=72&fmt=webp", "image/webp", "stored", False),
    ("warm_same", "w=500&q=72&fmt=webp", "image/webp", "rendered", True),
]


def log(msg: str) -> None:
    print(f"transform_bench: {msg}", file=sys.stderr, flush=True)


def function_url_event(path: str, query: str = "", headers: dict | None = None,
                       method: str = "GET") -> dict:
    """The API Gateway v2 (payload 2.0) event a Function URL sends (as harness.invoke_url)."""
    hdrs = {"host": "transform.lambda-url.us-east-1.on.aws",
            **{k.lower(): v for k, v in (headers or {}).items()}}
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": hdrs, "isBase64Encoded": False,
        "requestContext": {
            "accountId": "anonymous", "apiId": "transform", "domainName": hdrs["host"],
            "domainPrefix": "transform", "requestId": uuid.uuid4().hex, "routeKey": "$default",
            "stage": "$default", "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": 1767225600000,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "198.51.100.7", "userAgent": "pixelfront-bench"},
        },
    }


def image_kind(data: bytes) -> str | None:
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "image/avif"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    return None


def check_response(raw: bytes, content_type: str, source: str, label: str) -> tuple[dict, bytes]:
    """The function's answer (JSON with statusCode/headers/body/isBase64Encoded) must be a 200
    with `content_type`, matching magic bytes and `source`. -> (lower-cased headers, body)."""
    out = json.loads(raw)
    headers = {k.lower(): v for k, v in (out.get("headers") or {}).items()}
    body = out.get("body") or ""
    data = base64.b64decode(body) if out.get("isBase64Encoded") else body.encode()
    if out.get("statusCode") != 200:
        raise AssertionError(f"{label}: HTTP {out.get('statusCode')} {data[:300]!r}")
    problems = []
    if headers.get("content-type") != content_type:
        problems.append(f"content-type {headers.get('content-type')!r}")
    if image_kind(data) != content_type:
        problems.append(f"body is {image_kind(data) or 'not an image'}")
    if headers.get("x-pixelfront-source") != source:
        problems.append(f"x-pixelfront-source {headers.get('x-pixelfront-source')!r}")
    if problems:
        raise AssertionError(f"{label}: want {content_type} {source}; got " + ", ".join(problems))
    return headers, data


def check_width(data: bytes, derived_key: str, label: str) -> None:
    """The image is as wide as its derivative name says (`w640-q75.webp`: 640 px); the corpus
    photos are all wider than any width asked for here."""
    from PIL import Image
    want = int(derived_key.rsplit("/", 1)[-1].split("-")[0].split(".")[0].lstrip("w"))
    with Image.open(io.BytesIO(data)) as img:
        if img.width != want:
            raise AssertionError(f"{label}: {derived_key} is {img.width} px wide")


def served_lines(log_path: Path) -> tuple[list[dict], list[str]]:
    """The `served` log records of a transform process (JSON logs on stdout), and every
    warning or error line."""
    served, odd = [], []
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            if line.strip():
                odd.append(line[:300])
            continue
        fields = rec.get("fields") or {}
        if fields.get("message") == "served":
            served.append(fields)
        elif rec.get("level") in ("WARN", "ERROR"):
            odd.append(line[:300])
    return served, odd


def derived_keys(stack: H.Harness, prefix: str) -> set[str]:
    s3 = stack.s3()
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=H.DERIVED, Prefix=prefix):
        keys.update(o["Key"] for o in page.get("Contents", []))
    return keys


def delete_derived(stack: H.Harness, keys) -> None:
    s3 = stack.s3()
    for key in keys:
        s3.delete_object(Bucket=H.DERIVED, Key=key)


def ingest(stack: H.Harness, precompute: str, photos: list[Path], logs: Path) -> dict:
    """One precompute invocation (bare EventBridge event) per photo, in one process; each
    photo must end `ready`. -> {photo name: asset}."""
    env = dict(stack.function_env(), PIXELFRONT_THREADS="2",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="3538", AWS_LAMBDA_FUNCTION_NAME="precompute",
               AWS_LAMBDA_FUNCTION_VERSION="$LATEST", RUST_LOG="warn")
    assets = {}
    with open(logs / "precompute.log", "wb") as out, \
            LB.LambdaProcess(precompute, env, "precompute", stdout=out, stderr=out) as fn:
        for photo in photos:
            key = f"transform/{photo.name.replace('_', '-')}"
            s3_key = f"{TENANT}/{key}"
            t0 = time.monotonic()
            fn.invoke(stack.event_for(s3_key, stack.upload(s3_key, photo.read_bytes())))
            versions = stack.manifest(TENANT, key)["versions"]
            n = max(versions)
            if versions[n]["status"] != "ready":
                raise AssertionError(f"{photo.name}: manifest v{n} is {versions[n]!r}")
            prefix = f"{TENANT}/v{n}/{key}/"
            standard = derived_keys(stack, prefix)
            assets[photo.name] = {"key": key, "version": n, "prefix": prefix,
                                  "standard": standard, "path": f"/img/{TENANT}/v{n}/{key}"}
            log(f"{photo.name} ready as v{n} ({len(standard)} standard variants, "
                f"{(time.monotonic() - t0) * 1000:.0f} ms)")
    return assets


def run_transform(stack: H.Harness, binary: str, env: dict, asset: dict, log_path: Path) -> dict:
    # A fresh start: only the standard variants exist for the asset.
    delete_derived(stack, derived_keys(stack, asset["prefix"]) - asset["standard"])
    results = {}
    with open(log_path, "wb") as out, \
            LB.LambdaProcess(binary, env, "transform", stdout=out, stderr=out) as fn:
        derived_of = {}
        for name, query, ctype, source, delete_first in REQUESTS:
            if delete_first:
                delete_derived(stack, [derived_of[query]])
            t = fn.invoke(function_url_event(asset["path"], query))
            headers, data = check_response(t["body"], ctype, source, f"{asset['path']}?{query}")
            results[name] = {"query": query, "sent": t["sent"], "done": t["done"],
                             "bytes": len(data), "etag": headers.get("etag")}
            # The derived key, from the stored objects: the one new key (or the known one).
            if query not in derived_of:
                new = derived_keys(stack, asset["prefix"]) - asset["standard"] - set(derived_of.values())
                if len(new) != 1:
                    raise AssertionError(f"{name}: expected one new derivative, found {sorted(new)}")
                derived_of[query] = new.pop()
            results[name]["derived_key"] = derived_of[query]
            check_width(data, derived_of[query], name)
        peak_kib = fn.peak_rss_kib()
    if results["hit"]["etag"] != results["cold"]["etag"]:
        raise AssertionError(f"the stored hit's ETag {results['hit']['etag']} is not the "
                             f"cold render's {results['cold']['etag']}")
    served, odd = served_lines(log_path)
    if len(served) != len(REQUESTS):
        raise AssertionError(f"{len(served)} `served` log lines for {len(REQUESTS)} requests "
                             f"(RUST_LOG?); see {log_path}")
    row = {
        "init_ms": round((fn.init_done - fn.started) * 1000, 1),
        "cold_ms": round((results["cold"]["done"] - fn.started) * 1000, 1),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "requests": {},
    }
    for (name, *_), fields in zip(REQUESTS, served):
        r = results[name]
        if fields.get("key") != r["derived_key"]:
            raise AssertionError(f"{name}: log says {fields.get('key')}, expected {r['derived_key']}")
        row["requests"][name] = {
            "query": r["query"],
            "derived": r["derived_key"].rsplit("/", 1)[-1],
            "source": fields.get("source"),
            "bytes": r["bytes"],
            "invoke_ms": round((r["done"] - r["sent"]) * 1000, 1),
            "render_ms": fields.get("render_ms"),
        }
    if odd:
        row["log_warnings"] = odd
    return row


def megapixels(photo: Path) -> float:
    from PIL import Image
    with Image.open(photo) as img:
        return round(img.width * img.height / 1e6, 1)


def summarize(rows: list[dict]) -> list[dict]:
    """Median over rounds per (photo, threads)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["threads"], r["photo"]), []).append(r)
    out = []
    for (threads, photo), rs in groups.items():
        med = lambda f: round(statistics.median(f(r) for r in rs), 1)  # noqa: E731
        s = {"photo": photo, "megapixels": rs[0]["megapixels"], "threads": threads,
             "rounds": len(rs), "init_ms": med(lambda r: r["init_ms"]),
             "cold_ms": med(lambda r: r["cold_ms"]),
             "peak_rss_mib": med(lambda r: r["peak_rss_mib"]), "requests": {}}
        for name, *_ in REQUESTS:
            s["requests"][name] = {
                "derived": rs[0]["requests"][name]["derived"],
                "invoke_ms": med(lambda r: r["requests"][name]["invoke_ms"]),
                "render_ms": med(lambda r: r["requests"][name]["render_ms"]),
                "bytes": rs[0]["requests"][name]["bytes"],
            }
        out.append(s)
    return out


def print_table(summary: list[dict]) -> None:
    def cell(req: dict) -> str:
        return f"{req['invoke_ms']:.0f} ({req['render_ms']:.0f})"

    cols = ["photo", "MP", "thr", "init", "cold", "cold req", "same warm", "avif warm",
            "jpeg warm", "hit", "peak MiB"]
    print("times in ms, median over rounds; request cells: whole request (render)")
    print(f"{cols[0]:36} {cols[1]:>5} {cols[2]:>3} {cols[3]:>6} {cols[4]:>7} "
          + " ".join(f"{c:>11}" for c in cols[5:10]) + f" {cols[10]:>9}")
    for s in summary:
        q = s["requests"]
        print(f"{s['photo']:36} {s['megapixels']:>5} {s['threads']:>3} {s['init_ms']:>6.1f} "
              f"{s['cold_ms']:>7.0f} {cell(q['cold']):>11} {cell(q['warm_same']):>11} "
              f"{cell(q['warm_avif']):>11} {cell(q['warm_jpeg']):>11} "
              f"{q['hit']['invoke_ms']:>11.1f} {s['peak_rss_mib']:>9}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="release build of functions/transform")
    ap.add_argument("--precompute-bin", required=True,
                    help="release build of functions/precompute (makes the photos ready)")
    ap.add_argument("--threads", default="1,2", help="comma-separated rayon thread counts")
    ap.add_argument("--rounds", type=int, default=5,
                    help="fresh processes per photo and thread count (the table shows medians)")
    ap.add_argument("--photos", type=int, default=0, help="only the first N photos (0: all)")
    ap.add_argument("--results", help="write the results as JSON here")
    args = ap.parse_args()
    binary = str(Path(args.bin).resolve())
    precompute = str(Path(args.precompute_bin).resolve())
    for b in (binary, precompute):
        if not os.access(b, os.X_OK):
            log(f"{b} is not an executable")
            return 2
    photos = sorted(LB.PHOTOS.glob("*.jpg"))
    if args.photos:
        photos = photos[:args.photos]
    if not photos:
        log(f"no photos in {LB.PHOTOS}")
        return 2
    thread_counts = [int(t) for t in args.threads.split(",")]
    logs = Path(tempfile.mkdtemp(prefix="transform-bench-"))

    stack = H.Harness(with_lambda=False).start()
    rows = []
    ok = False
    try:
        assets = ingest(stack, precompute, photos, logs)
        base_env = stack.function_env()
        for rnd in range(1, args.rounds + 1):
            for threads in thread_counts:
                memory_mb = 1769 * threads
                env = dict(base_env, PIXELFRONT_THREADS=str(threads),
                           AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(memory_mb),
                           AWS_LAMBDA_FUNCTION_NAME="transform",
                           AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
                           RUST_LOG="warn,transform=info")
                for photo in photos:
                    log_path = logs / f"transform-r{rnd}-t{threads}-{photo.stem}.log"
                    r = run_transform(stack, binary, env, assets[photo.name], log_path)
                    r.update(photo=photo.name, megapixels=megapixels(photo),
                             bytes=photo.stat().st_size, threads=threads, round=rnd,
                             memory_mb_equivalent=memory_mb)
                    rows.append(r)
                    q = r["requests"]
                    log(f"round {rnd}, {threads} thread(s), {photo.name}: init {r['init_ms']} ms, "
                        f"cold {r['cold_ms']} ms (render {q['cold']['render_ms']}), warm same "
                        f"{q['warm_same']['invoke_ms']} ms, avif {q['warm_avif']['invoke_ms']} ms, "
                        f"jpeg {q['warm_jpeg']['invoke_ms']} ms, hit {q['hit']['invoke_ms']} ms, "
                        f"peak {r['peak_rss_mib']} MiB")
                    for w in r.get("log_warnings", []):
                        log(f"  log: {w}")
        ok = not any("log_warnings" in r for r in rows)
    finally:
        stack.stop()
        if ok:
            shutil.rmtree(logs, ignore_errors=True)
        else:
            log(f"function logs kept in {logs}")

    summary = summarize(rows)
    print_table(summary)
    if args.results:
        Path(args.results).write_text(json.dumps(
            {"requests": [{"name": n, "query": q, "content_type": c, "source": s}
                          for n, q, c, s, _ in REQUESTS],
             "summary": summary, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
