#!/usr/bin/env bash
# What bench/dev_bench.sh and bench/dev_compare.sh share: starting and stopping one
# `pixelfront dev` on a free port of 127.0.0.1, asking it for a URL's X-Cache, and reading
# wrk's --latency output. Sourced, not run. The caller sets TOOL (its name, for messages),
# data (the data directory), log (the server's stderr file) and TOKEN (the admin token).

PID=
ADDR=

# stop_server: SIGTERM to the running server, if any, and wait for it.
stop_server() {
  if [[ -n $PID ]]; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
  fi
}

# start_server BINARY [flags...]: starts `BINARY dev` on $data; sets PID and ADDR (host:port).
start_server() {
  local b=$1
  shift
  : >"$log"
  RUST_LOG=${RUST_LOG:-info} PIXELFRONT_ADMIN_TOKEN=$TOKEN \
    "$b" dev --addr 127.0.0.1:0 --data "$data" "$@" >/dev/null 2>"$log" &
  PID=$!
  ADDR=
  for _ in $(seq 1 400); do
    ADDR=$(sed -n 's#.*listening on http://\([^ ]*\).*#\1#p' "$log" | head -n 1)
    [[ -n $ADDR ]] && return 0
    if ! kill -0 "$PID" 2>/dev/null; then
      cat "$log" >&2
      echo "$TOOL: $b exited before listening" >&2
      PID=
      exit 1
    fi
    sleep 0.05
  done
  echo "$TOOL: $b did not listen within 20 s" >&2
  exit 1
}

# x_cache PATH: the X-Cache header (Hit or Miss) of GET http://$ADDR/PATH.
x_cache() {
  curl -sf -o /dev/null -D - "http://$ADDR$1" | tr -d '\r' | awk -F': ' 'tolower($1) == "x-cache" { print $2 }'
}

# wrk_summary FILE: "requests req/s p50_ms p99_ms" (one line) from wrk's --latency output.
wrk_summary() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
      return v
    }
    /requests in/ { n = $1 }
    /Requests\/sec:/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { printf "%d %.0f %.3f %.3f\n", n, rps, p50, p99 }
  ' "$1"
}
