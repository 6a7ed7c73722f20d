#!/usr/bin/env bash
# Cache hits of two or more `pixelfront dev` binaries and of nginx, interleaved in one run.
#
#   OLD=/path/to/old/pixelfront bash bench/dev_compare.sh            # old, new and nginx
#   BINS="a=/path/a b=/path/b" bash bench/dev_compare.sh               # any labelled binaries
#
# Uploads the first two corpus photos with the first binary (fresh temporary data directory,
# --rate-limit $RATE_LIMIT), waits until both are `ready`, and picks the `md-webp` variant of the second
# (what bench/dev_bench.sh's run 1 requests). It copies that derivative file, byte for byte,
# into a document root for nginx (Debian's package), started in the foreground on a free port
# of 127.0.0.1 with the minimal configuration written below (2 workers, sendfile, no access
# log, keep-alive unbounded as the local stack's) and stopped by its PID at the end.
# Then, ROUNDS times, in the same order each round: for each binary, start it on the same data
# (default cache), warm the URL once (checked to be `X-Cache: Hit`), run
# `wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency` after a WARMUP run, stop it; then the
# same wrk run against nginx. With MISSES=1, each round also runs every binary with
# --cache-mb 0 over the 16 variant URLs round-robin (bench/dev_round_robin.lua).
# Prints one line per run and a table: median req/s (range), p50 and p99 ms (ranges), the
# server's CPU time per request (µs, from /proc: less sensitive than req/s to other processes
# on the cores), and each binary's median req/s over nginx's. Exits non-zero on wrk errors or a non-Hit warm-up.
# With CEILING=<binary of local/examples/static_ceiling.rs>, each round also measures hyper
# serving the same bytes with nothing else (label "ceiling"): the most any hyper-based server
# can do here (BENCHMARKS.md, "The nginx ratio").
#
# Needs wrk, nginx (apt-get install -y wrk nginx), curl, jq, python3. Settings, from the
# environment: BINS, or OLD (new is target/release/pixelfront), PHOTOS, THREADS (2),
# CONNECTIONS (64), DURATION (10s), WARMUP (2s), ROUNDS (3), MISSES (0), NGINX (nginx),
# RATE_LIMIT (0: off; 4000000000 measures the limiter's cost without refusing anything).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
if [[ -z ${BINS:-} ]]; then
  [[ -n ${OLD:-} ]] || { echo "dev_compare: set OLD=<old binary> or BINS=\"label=path ...\"" >&2; exit 1; }
  BINS="old=$OLD new=$root/target/release/pixelfront"
fi
PHOTOS=${PHOTOS:-$root/../shared/corpus/photos}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-3}
MISSES=${MISSES:-0}
NGINX=${NGINX:-nginx}
RATE_LIMIT=${RATE_LIMIT:-0}
CEILING=${CEILING:-}
TOKEN=bench-admin-token
TENANT=bench

for tool in wrk curl jq python3 "$NGINX"; do
  command -v "$tool" >/dev/null || { echo "dev_compare: $tool not found" >&2; exit 1; }
done
labels=()
declare -A bin
for b in $BINS; do
  labels+=("${b%%=*}")
  bin[${b%%=*}]=${b#*=}
  [[ -x ${b#*=} ]] || { echo "dev_compare: no binary ${b#*=}" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/pixelfront-dev-compare.XXXXXX")
data=$work/data
log=$work/server.log
NGINX_PID=
CEILING_PID=
TOOL=dev_compare
# shellcheck source=bench/dev_lib.sh
source "$here/dev_lib.sh"

cleanup() {
  stop_server
  if [[ -n $NGINX_PID ]]; then
    kill -TERM "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
  fi
  if [[ -n $CEILING_PID ]]; then
    kill -TERM "$CEILING_PID" 2>/dev/null || true
    wait "$CEILING_PID" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ticks PID...: user + system clock ticks used so far by the processes.
ticks() {
  local t=0 p
  for p in "$@"; do
    t=$((t + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
  done
  echo "$t"
}

# run LABEL KIND URL [SCRIPT-ARGS...]: one measured wrk run (with bench/dev_round_robin.lua
# over the paths file SCRIPT-ARGS names, if any), appended to $work/results.txt as
# "label kind rps p50_ms p99_ms server_cpu_us_per_request". The server's processes are
# $PID, or nginx's master and workers.
run() {
  local label=$1 kind=$2 url=$3 pids t0 t1
  shift 3
  local script=()
  [[ $# -gt 0 ]] && script=(-s "$here/dev_round_robin.lua")
  if [[ $label == nginx ]]; then
    mapfile -t pids < <(echo "$NGINX_PID"; pgrep -P "$NGINX_PID")
  elif [[ $label == ceiling ]]; then
    pids=("$CEILING_PID")
  else
    pids=("$PID")
  fi
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "${script[@]}" "$url" "$@" >/dev/null
  t0=$(ticks "${pids[@]}")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${script[@]}" "$url" "$@" >"$work/wrk.txt"
  t1=$(ticks "${pids[@]}")
  if grep -q 'Non-2xx\|Socket errors' "$work/wrk.txt"; then
    cat "$work/wrk.txt" >&2
    echo "dev_compare: wrk saw errors ($label $kind)" >&2
    exit 1
  fi
  wrk_summary "$work/wrk.txt" | awk -v l="$label" -v k="$kind" -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" '
    { printf "%s %s %.0f %.3f %.3f %.1f\n", l, k, $2, $3, $4, t / hz / $1 * 1e6 }
  ' | tee -a "$work/results.txt" | sed 's/^/   /'
}

echo "dev_compare: $(nproc) cores, $(wrk --version 2>&1 | head -n 1 | cut -d' ' -f1-2), $("$NGINX" -v 2>&1)"
echo "dev_compare: ${labels[*]} and nginx; wrk -t$THREADS -c$CONNECTIONS -d$DURATION (after $WARMUP), $ROUNDS rounds"

# --- Setup: two photos, rendered by the first binary -----------------------------------------
start_server "${bin[${labels[0]}]}" --rate-limit "$RATE_LIMIT"
mapfile -t photos < <(find "$PHOTOS" -maxdepth 1 -type f -iname '*.jpg' | sort | head -n 2)
[[ ${#photos[@]} -eq 2 ]] || { echo "dev_compare: need two .jpg photos in $PHOTOS" >&2; exit 1; }
: >"$work/variants.txt"
for p in "${photos[@]}"; do
  key=$(basename "$p")
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Authorization: Bearer $TOKEN" \
    --data-binary "@$p" "http://$ADDR/originals/$TENANT/$key")
  [[ $code == 202 ]] || { echo "dev_compare: upload of $key: HTTP $code" >&2; exit 1; }
  status=rendering
  for _ in $(seq 1 1200); do
    curl -sf "http://$ADDR/manifest/$TENANT/$key" >"$work/manifest.json"
    status=$(jq -r .status "$work/manifest.json")
    [[ $status != rendering ]] && break
    sleep 0.25
  done
  [[ $status == ready ]] || { echo "dev_compare: $key is $status" >&2; exit 1; }
  jq -r '.variants[].url' "$work/manifest.json" >>"$work/variants.txt"
done
hit_path=$(jq -r '.variants[] | select(.name == "md-webp") | .url' "$work/manifest.json")
curl -sf "http://$ADDR$hit_path" >"$work/hit.body"
stop_server
sum=$(sha256sum <"$work/hit.body" | cut -d' ' -f1)
file=$(find "$data/derived" -type f -size "$(stat -c %s "$work/hit.body")c" -exec sha256sum {} + |
  awk -v s="$sum" '$1 == s { print $2; exit }')
[[ -n $file ]] || { echo "dev_compare: no stored derivative equals $hit_path" >&2; exit 1; }
echo "dev_compare: $hit_path, $(stat -c %s "$file") bytes; nginx serves a copy of $file"

# --- nginx: the same file from disk ------------------------------------------------------------
mkdir -p "$work/www" "$work/nginx"
cp "$file" "$work/www/hit.webp"
chmod 755 "$work" "$work/www" && chmod 644 "$work/www/hit.webp"
nginx_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  types { image/webp webp; }
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/www;
    add_header Cache-Control "public, max-age=31536000, immutable";
  }
}
CONF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>"$work/nginx/stderr.log" &
NGINX_PID=$!
for _ in $(seq 1 100); do
  curl -sf -o /dev/null "http://127.0.0.1:$nginx_port/hit.webp" && break
  kill -0 "$NGINX_PID" 2>/dev/null || { cat "$work/nginx/stderr.log" "$work/nginx/error.log" >&2; echo "dev_compare: nginx exited" >&2; NGINX_PID=; exit 1; }
  sleep 0.05
done
cmp -s "$work/hit.body" <(curl -sf "http://127.0.0.1:$nginx_port/hit.webp") ||
  { echo "dev_compare: nginx does not serve the same bytes" >&2; exit 1; }

# --- The ceiling: hyper and the bytes, nothing else ---------------------------------------------
if [[ -n $CEILING ]]; then
  "$CEILING" "$work/www/hit.webp" >"$work/ceiling.out" 2>&1 &
  CEILING_PID=$!
  ceiling_addr=
  for _ in $(seq 1 100); do
    ceiling_addr=$(sed -n 's#^listening on http://##p' "$work/ceiling.out")
    [[ -n $ceiling_addr ]] && break
    sleep 0.05
  done
  [[ -n $ceiling_addr ]] || { cat "$work/ceiling.out" >&2; echo "dev_compare: $CEILING did not listen" >&2; exit 1; }
  cmp -s "$work/hit.body" <(curl -sf "http://$ceiling_addr/") ||
    { echo "dev_compare: the ceiling server does not serve the same bytes" >&2; exit 1; }
fi

# --- Rounds ------------------------------------------------------------------------------------
: >"$work/results.txt"
for r in $(seq 1 "$ROUNDS"); do
  echo "dev_compare: round $r"
  for l in "${labels[@]}"; do
    start_server "${bin[$l]}" --rate-limit "$RATE_LIMIT"
    curl -sf -o /dev/null "http://$ADDR$hit_path"
    [[ $(x_cache "$hit_path") == Hit ]] || { echo "dev_compare: $l: not a hit after warming" >&2; exit 1; }
    run "$l" hits "http://$ADDR$hit_path"
    stop_server
  done
  [[ -z $CEILING ]] || run ceiling hits "http://$ceiling_addr/"
  run nginx hits "http://127.0.0.1:$nginx_port/hit.webp"
  if [[ $MISSES == 1 ]]; then
    for l in "${labels[@]}"; do
      start_server "${bin[$l]}" --rate-limit "$RATE_LIMIT" --cache-mb 0
      run "$l" misses "http://$ADDR" -- "$work/variants.txt"
      stop_server
    done
  fi
done

# --- Table -------------------------------------------------------------------------------------
echo
python3 - "$work/results.txt" "${labels[@]}" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
labels = sys.argv[2:]
def cell(vals, fmt):
    return f"{fmt(statistics.median(vals))} ({fmt(min(vals))}–{fmt(max(vals))})"
n = lambda v: f"{v:,.0f}"
f2 = lambda v: f"{v:.2f}"
f1 = lambda v: f"{v:.1f}"
nginx = [float(r[2]) for r in rows if r[0] == "nginx"]
print("| server | run | req/s, median (range) | p50 ms | p99 ms | server CPU µs/request | req/s ÷ nginx's |")
print("|---|---|---:|---:|---:|---:|---:|")
for kind in ("hits", "misses"):
    for label in labels + ["ceiling", "nginx"]:
        sel = [r for r in rows if r[0] == label and r[1] == kind]
        if not sel:
            continue
        rps = [float(r[2]) for r in sel]
        ratio = f"{statistics.median(rps) / statistics.median(nginx):.2f}" if kind == "hits" else ""
        print(f"| {label} | {kind} | {cell(rps, n)} | {cell([float(r[3]) for r in sel], f2)} | "
              f"{cell([float(r[4]) for r in sel], f2)} | {cell([float(r[5]) for r in sel], f1)} | {ratio} |")
PY
