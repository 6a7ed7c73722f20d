#!/usr/bin/env bash
# Upload throughput of the local stack (`pixelfront dev`): N sequential uploads over HTTP, each
# acknowledged (202) only once the original is on disk and its version committed to SQLite.
#
#   bash bench/upload_bench.sh [BIN...]
#
# For each binary given (default: target/release/pixelfront), starts it on a fresh temporary
# data directory (--rate-limit 0), uploads N distinct small PNGs (64x48, so the background
# renders stay cheap) one after the other with keep-alive, and prints uploads per second and
# the mean time per acknowledged upload. Several binaries (old and new) are run in turn, ROUNDS
# times each, alternating, so they see the same disk. Settings, from the environment:
#   N (200), ROUNDS (3), PYTHON (python3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
N=${N:-200}
ROUNDS=${ROUNDS:-3}
PYTHON=${PYTHON:-python3}
TOKEN=bench-admin-token
[[ $# -gt 0 ]] || set -- "$root/target/release/pixelfront"

work=$(mktemp -d "${TMPDIR:-/tmp}/pixelfront-upload-bench.XXXXXX")
PID=
cleanup() {
  [[ -n $PID ]] && { kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

run_one() {
  local bin=$1 data=$work/data-$RANDOM log=$work/server.log addr=
  PIXELFRONT_ADMIN_TOKEN=$TOKEN "$bin" dev --addr 127.0.0.1:0 --data "$data" --rate-limit 0 \
    >/dev/null 2>"$log" &
  PID=$!
  for _ in $(seq 100); do
    addr=$(grep -o 'listening on http://[0-9.:]*' "$log" | sed 's|.*http://||' || true)
    [[ -n $addr ]] && break
    sleep 0.1
  done
  [[ -n $addr ]] || { echo "upload_bench: $bin did not start" >&2; cat "$log" >&2; exit 1; }
  "$PYTHON" - "$addr" "$N" "$TOKEN" <<'PY'
import http.client, struct, sys, time, zlib
addr, n, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
host, port = addr.rsplit(":", 1)
def png(seed):
    w, h = 64, 48
    raw = b"".join(b"\0" + bytes(((x * 7 + y * 3 + seed) % 256) for x in range(w * 3)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
bodies = [png(i) for i in range(n)]
conn = http.client.HTTPConnection(host, int(port))
started = time.perf_counter()
for i, body in enumerate(bodies):
    conn.request("PUT", f"/originals/bench/u{i}.png", body, {"Authorization": f"Bearer {token}"})
    r = conn.getresponse(); r.read()
    if r.status != 202:
        sys.exit(f"upload {i}: {r.status}")
took = time.perf_counter() - started
print(f"{n / took:8.1f} uploads/s  {took / n * 1000:6.2f} ms per upload")
PY
  kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=
  rm -rf "$data"
}

for round in $(seq "$ROUNDS"); do
  for bin in "$@"; do
    printf 'round %s  %-60s ' "$round" "$bin"
    run_one "$bin"
  done
done
