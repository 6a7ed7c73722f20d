#!/usr/bin/env bash
# Load test of the local stack (`pixelfront dev`) on 127.0.0.1 with wrk.
#
#   bash bench/dev_bench.sh
#
# Starts the release binary on a fresh temporary data directory (--rate-limit 0, a known admin
# token), uploads two corpus photos and waits until their manifests are `ready`, then measures:
#   1. cache hits: one standard variant URL, warmed once (X-Cache: Hit thereafter);
#   2. stored-derivative misses: the server restarted on the same data with --cache-mb 0, the
#      8 standard variants of both photos requested round-robin (bench/dev_round_robin.lua);
#   3. a cold burst: N concurrent requests (200) for one never-requested non-standard variant,
#      fired at once; wall time, p50/p99, identical bodies, and the on-demand render count
#      from /metrics (1 if the misses coalesce). It runs on the first server, before 2.
# wrk, the Python client and the server share the machine's cores; each wrk run reports the CPU
# seconds used by the server, by wrk and by anything else (which should be about 0).
# Exits non-zero if a check fails (a miss among the hits, a hit or render among the misses,
# a non-200, differing bodies, or other than 1 on-demand render for the burst).
#
# Needs wrk (apt-get install -y wrk), curl, jq and python3. Settings, from the environment:
#   BIN (target/release/pixelfront), PHOTOS (../shared/corpus/photos), THREADS (2),
#   CONNECTIONS (64), DURATION (15s), ROUNDS (3: the table gives the median and the range),
#   WARMUP (2s), BURST (200), COLD_QUERY (w=1000&fmt=webp&q=70), PYTHON (python3).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${BIN:-$root/target/release/pixelfront}
PHOTOS=${PHOTOS:-$root/../shared/corpus/photos}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-15s}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2s}
BURST=${BURST:-200}
COLD_QUERY=${COLD_QUERY:-w=1000&fmt=webp&q=70}
PYTHON=${PYTHON:-python3}
TOKEN=bench-admin-token
TENANT=bench

for tool in wrk curl jq "$PYTHON"; do
  command -v "$tool" >/dev/null || { echo "dev_bench: $tool not found" >&2; exit 1; }
done
[[ -x $BIN ]] || { echo "dev_bench: no $BIN (cargo build --release -p pixelfront)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/pixelfront-dev-bench.XXXXXX")
data=$work/data
log=$work/server.log
TOOL=dev_bench
# shellcheck source=bench/dev_lib.sh
source "$(dirname "$0")/dev_lib.sh"
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

metric() { # metric 'pixelfront_edge_requests_total{result="hit"}'
  curl -sf "http://$ADDR/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

# cpu_ticks: "busy server children" clock ticks: all CPUs' busy time (/proc/stat, less idle,
# iowait and steal), the server's user+system time, and this shell's reaped children's (wrk).
cpu_ticks() {
  local busy srv kids
  busy=$(awk 'NR == 1 { print $2 + $3 + $4 + $7 + $8 }' /proc/stat)
  srv=$(awk '{ print $14 + $15 }' "/proc/$PID/stat")
  kids=$(sed 's/^.*) //' "/proc/$$/stat" | awk '{ print $14 + $15 }')
  echo "$busy $srv $kids"
}

# wrk_run OUTFILE WRK-ARGS...: one measured run; fails on socket errors or non-2xx. Writes
# OUTFILE.cpu: CPU seconds used during the run by the server, by wrk, and by anything else.
wrk_run() {
  local out=$1 b0 s0 k0 b1 s1 k1
  shift
  read -r b0 s0 k0 < <(cpu_ticks)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" >"$out"
  read -r b1 s1 k1 < <(cpu_ticks)
  awk -v hz="$(getconf CLK_TCK)" -v b=$((b1 - b0)) -v s=$((s1 - s0)) -v k=$((k1 - k0)) \
    'BEGIN { o = b - s - k; if (o < 0) o = 0; printf "%.1f %.1f %.1f\n", s / hz, k / hz, o / hz }' >"$out.cpu"
  if grep -q 'Non-2xx' "$out" || grep -q 'Socket errors' "$out"; then
    cat "$out" >&2
    echo "dev_bench: wrk saw errors" >&2
    exit 1
  fi
}

# wrk_parse OUTFILE: "requests rps p50_ms p99_ms" from wrk's --latency output, then the CPU
# seconds of OUTFILE.cpu (server, wrk, other).
wrk_parse() {
  printf "%s " "$(wrk_summary "$1")"
  cat "$1.cpu"
}

# summary FILE of wrk_parse lines: "rps_med rps_min rps_max p50_med … p99_max cpu_srv cpu_wrk
# cpu_other srv_us_per_request" (medians over the rounds, with the ranges of the first three)
summary() {
  "$PYTHON" - "$1" <<'EOF'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
cols = list(zip(*rows))
out = []
for c in (1, 2, 3):
    v = cols[c]
    out += [statistics.median(v), min(v), max(v)]
for c in (4, 5, 6):  # CPU seconds: server, wrk, other (medians)
    out.append(statistics.median(cols[c]))
out.append(statistics.median(r[4] / r[0] * 1e6 for r in rows))  # server CPU µs per request
print(" ".join(f"{x:.3f}" for x in out))
EOF
}

echo "dev_bench: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2)"
echo "dev_bench: data in $data; wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds"

# --- Setup: two photos, rendered -------------------------------------------------------------
start_server "$BIN" --rate-limit 0
mapfile -t photos < <(find "$PHOTOS" -maxdepth 1 -type f -iname '*.jpg' | sort | head -n 2)
[[ ${#photos[@]} -eq 2 ]] || { echo "dev_bench: need two .jpg photos in $PHOTOS" >&2; exit 1; }
keys=()
for p in "${photos[@]}"; do
  key=$(basename "$p")
  keys+=("$key")
  code=$(curl -s -o "$work/upload.json" -w '%{http_code}' -X PUT \
    -H "Authorization: Bearer $TOKEN" --data-binary "@$p" "http://$ADDR/originals/$TENANT/$key")
  [[ $code == 202 ]] || { cat "$work/upload.json" >&2; echo "dev_bench: upload of $key: HTTP $code" >&2; exit 1; }
done
: >"$work/variants.txt"
for key in "${keys[@]}"; do
  status=rendering
  for _ in $(seq 1 1200); do
    curl -sf "http://$ADDR/manifest/$TENANT/$key" >"$work/manifest.json"
    status=$(jq -r .status "$work/manifest.json")
    [[ $status != rendering ]] && break
    sleep 0.25
  done
  [[ $status == ready ]] || { cat "$work/manifest.json" >&2; echo "dev_bench: $key is $status" >&2; exit 1; }
  jq -r '.variants[].url' "$work/manifest.json" >>"$work/variants.txt"
  echo "dev_bench: $key ready ($(jq '.variants | length' "$work/manifest.json") variants)"
done
[[ $(wc -l <"$work/variants.txt") -eq 16 ]] || { echo "dev_bench: expected 8 variants per photo" >&2; exit 1; }

# --- 1. Cache hits ---------------------------------------------------------------------------
hit_path=$(jq -r '.variants[] | select(.name == "md-webp") | .url' "$work/manifest.json")
hit_path=${hit_path:-$(head -n 1 "$work/variants.txt")}
hit_name=$(jq -r --arg u "$hit_path" '.variants[] | select(.url == $u) | .name' "$work/manifest.json")
hit_bytes=$(curl -sf "http://$ADDR$hit_path" | wc -c) # the warming request
[[ $(x_cache "$hit_path") == Hit ]] || { echo "dev_bench: $hit_path is not a cache hit after warming" >&2; exit 1; }
echo "dev_bench: 1. cache hits on $hit_path ($hit_bytes bytes)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "http://$ADDR$hit_path" >/dev/null
hits0=$(metric 'pixelfront_edge_requests_total{result="hit"}')
miss0=$(metric 'pixelfront_edge_requests_total{result="miss"}')
: >"$work/hits.txt"
total=0
for r in $(seq 1 "$ROUNDS"); do
  wrk_run "$work/wrk.txt" "http://$ADDR$hit_path"
  wrk_parse "$work/wrk.txt" | tee -a "$work/hits.txt" | awk -v r="$r" '{ printf "   round %d: %d requests, %s req/s, p50 %s ms, p99 %s ms; CPU s: server %s, wrk %s, other %s\n", r, $1, $2, $3, $4, $5, $6, $7 }'
  total=$((total + $(tail -n 1 "$work/hits.txt" | cut -d' ' -f1)))
done
hits=$(($(metric 'pixelfront_edge_requests_total{result="hit"}') - hits0))
misses=$(($(metric 'pixelfront_edge_requests_total{result="miss"}') - miss0))
echo "   /metrics: +$hits hits, +$misses misses (wrk counted $total completed requests)"
[[ $misses -eq 0 ]] || { echo "dev_bench: cache-hit runs missed the cache" >&2; exit 1; }
read -r h_rps h_rps_lo h_rps_hi h_p50 h_p50_lo h_p50_hi h_p99 h_p99_lo h_p99_hi h_srv h_wrk h_oth h_us < <(summary "$work/hits.txt")

# --- 3. Cold burst: one non-standard variant, BURST requests at once -------------------------
cold_path="/img/$TENANT/v1/${keys[0]}?$COLD_QUERY"
renders0=$(metric 'pixelfront_renders_total{kind="on_demand"}')
render_s0=$(metric 'pixelfront_render_duration_seconds_sum{kind="on_demand"}')
echo "dev_bench: 3. $BURST concurrent cold requests for $cold_path"
"$PYTHON" - "$ADDR" "$cold_path" "$BURST" >"$work/burst.json" <<'EOF'
# Opens every connection first, then releases all requests at once through a barrier.
import hashlib, http.client, json, statistics, sys, threading, time

addr, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = addr.rsplit(":", 1)
conns = []
for _ in range(n):
    c = http.client.HTTPConnection(host, int(port), timeout=300)
    c.connect()
    conns.append(c)
gate = threading.Barrier(n + 1)
results = [None] * n

def one(i):
    c = conns[i]
    gate.wait()
    sent = time.perf_counter()
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    done = time.perf_counter()
    results[i] = (sent, done, r.status, r.getheader("x-cache"), hashlib.sha256(body).hexdigest(), len(body))

threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
gate.wait()
start = time.perf_counter()
for t in threads:
    t.join()
lat = sorted((d - s) * 1000 for s, d, *_ in results)
def pct(p):  # nearest rank
    return lat[max(0, min(len(lat) - 1, -(-p * len(lat) // 100) - 1))]
print(json.dumps({
    "wall_ms": (max(d for _, d, *_ in results) - start) * 1000,
    "send_spread_ms": (max(s for s, *_ in results) - start) * 1000,
    "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": lat[-1],
    "statuses": sorted({r[2] for r in results}),
    "x_cache": {k: sum(1 for r in results if r[3] == k) for k in sorted({str(r[3]) for r in results})},
    "distinct_bodies": len({r[4] for r in results}),
    "bytes": results[0][5],
}))
EOF
renders_burst=$(($(metric 'pixelfront_renders_total{kind="on_demand"}') - renders0))
render_ms=$(awk -v a="$render_s0" -v b="$(metric 'pixelfront_render_duration_seconds_sum{kind="on_demand"}')" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
after=$(x_cache "$cold_path")
jq -c --argjson renders "$renders_burst" --argjson render_ms "$render_ms" --arg after "$after" '. + {on_demand_renders: $renders, render_ms: $render_ms, next_request: $after}' "$work/burst.json" | sed 's/^/   /'
read -r c_wall c_spread c_p50 c_p99 c_bodies c_bytes c_status < <(jq -r '[.wall_ms, .send_spread_ms, .p50_ms, .p99_ms, .distinct_bodies, .bytes, (.statuses | map(tostring) | join(","))] | map(tostring) | join(" ")' "$work/burst.json")
c_xcache=$(jq -r '.x_cache | to_entries | map("\(.value) \(.key)") | join(", ")' "$work/burst.json")
[[ $c_status == 200 ]] || { echo "dev_bench: burst statuses $c_status" >&2; exit 1; }

# --- 2. Stored-derivative misses: restart with --cache-mb 0 on the same data -----------------
stop_server
start_server "$BIN" --rate-limit 0 --cache-mb 0
echo "dev_bench: 2. stored-derivative misses, --cache-mb 0, 16 variant URLs round-robin"
[[ $(x_cache "$(head -n 1 "$work/variants.txt")") == Miss ]] || { echo "dev_bench: expected a miss with --cache-mb 0" >&2; exit 1; }
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$here/dev_round_robin.lua" "http://$ADDR" -- "$work/variants.txt" >/dev/null
hits0=$(metric 'pixelfront_edge_requests_total{result="hit"}')
renders0=$(metric 'pixelfront_renders_total{kind="on_demand"}')
: >"$work/misses.txt"
for r in $(seq 1 "$ROUNDS"); do
  wrk_run "$work/wrk.txt" -s "$here/dev_round_robin.lua" "http://$ADDR" -- "$work/variants.txt"
  wrk_parse "$work/wrk.txt" | tee -a "$work/misses.txt" | awk -v r="$r" '{ printf "   round %d: %d requests, %s req/s, p50 %s ms, p99 %s ms; CPU s: server %s, wrk %s, other %s\n", r, $1, $2, $3, $4, $5, $6, $7 }'
done
hits=$(($(metric 'pixelfront_edge_requests_total{result="hit"}') - hits0))
renders=$(($(metric 'pixelfront_renders_total{kind="on_demand"}') - renders0))
[[ $hits -eq 0 && $renders -eq 0 ]] || { echo "dev_bench: $hits hits, $renders renders during the miss runs" >&2; exit 1; }
mean_bytes=$(jq -s 'map(.variants[].bytes) | add / length | floor' \
  <(for k in "${keys[@]}"; do curl -sf "http://$ADDR/manifest/$TENANT/$k"; done))
read -r m_rps m_rps_lo m_rps_hi m_p50 m_p50_lo m_p50_hi m_p99 m_p99_lo m_p99_hi m_srv m_wrk m_oth m_us < <(summary "$work/misses.txt")
stop_server

# --- Table -----------------------------------------------------------------------------------
f1() { printf '%.1f' "$1"; }
f2() { printf '%.2f' "$1"; }
commas() { printf '%.0f' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }
range() { echo "$($1 "$2") ($($1 "$3")–$($1 "$4"))"; }
secs=$(awk -v d="$DURATION" 'BEGIN { n = d + 0; if (d ~ /m$/) n *= 60; if (d ~ /h$/) n *= 3600; print n }')
cores=$(nproc)
echo
echo "| run | load | req/s (range) | p50 ms (range) | p99 ms (range) | CPU s: server / wrk / other (of $((cores * secs))) | server CPU µs/request |"
echo "|---|---|---:|---:|---:|---:|---:|"
echo "| 1. cache hits: 1 URL ($hit_name), $hit_bytes B | wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $ROUNDS | $(range commas "$h_rps" "$h_rps_lo" "$h_rps_hi") | $(range f2 "$h_p50" "$h_p50_lo" "$h_p50_hi") | $(range f2 "$h_p99" "$h_p99_lo" "$h_p99_hi") | $(f1 "$h_srv") / $(f1 "$h_wrk") / $(f1 "$h_oth") | $(printf '%.0f' "$h_us") |"
echo "| 2. stored-derivative misses: 16 URLs, mean $mean_bytes B, \`--cache-mb 0\` | wrk -t$THREADS -c$CONNECTIONS -d$DURATION, median of $ROUNDS | $(range commas "$m_rps" "$m_rps_lo" "$m_rps_hi") | $(range f2 "$m_p50" "$m_p50_lo" "$m_p50_hi") | $(range f2 "$m_p99" "$m_p99_lo" "$m_p99_hi") | $(f1 "$m_srv") / $(f1 "$m_wrk") / $(f1 "$m_oth") | $(printf '%.0f' "$m_us") |"
echo "| 3. cold burst: \`$COLD_QUERY\`, $c_bytes B | $BURST requests at once, 1 round | wall $(f1 "$c_wall") ms | $(f1 "$c_p50") | $(f1 "$c_p99") | render $render_ms ms | |"
echo
echo "cold burst: all $BURST answered 200; distinct bodies: $c_bodies; X-Cache: $c_xcache;" \
  "on-demand renders: $renders_burst; all requests sent within $(f1 "$c_spread") ms of the release"
if [[ $c_bodies -ne 1 || $renders_burst -ne 1 ]]; then
  echo "dev_bench: FAILED: the burst gave $c_bodies distinct bodies and $renders_burst on-demand renders (want 1 and 1)" >&2
  exit 1
fi
if awk -v a="$h_oth" -v b="$m_oth" -v cap="$((cores * secs))" 'BEGIN { exit !(a > cap / 10 || b > cap / 10) }'; then
  echo "dev_bench: WARNING: other processes used over 10 % of the CPU during a run; the figures are low" >&2
fi
