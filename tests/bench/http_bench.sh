#!/usr/bin/env bash
# HTTP throughput benchmark: the Atelier server against a minimal raw-Asio baseline, same run,
# same machine. See tests/bench/README.md.
#
# Usage: tests/bench/http_bench.sh [BUILD_DIR]        (default: build/release)
#
# Environment:
#   DURATION=5         seconds per wrk run
#   CONNECTIONS=32     keep-alive connections
#   WARMUP=1           seconds of unmeasured load before each run (0 to skip)
#   PIN=1              pin wrk to CPU 0 and the servers to CPU 1 (0: let the scheduler decide)
#   GOAL=50000         req/s that atelier /healthz must reach
#   BENCH_STRICT=1     exit 1 when /healthz is below GOAL (default: report only)
#
# Exit status: 0 when every run happened (whatever the numbers, unless BENCH_STRICT=1),
# 1 when something failed to run (missing binary, server did not start, non-2xx answers).
set -euo pipefail

BUILD_DIR=${1:-build/release}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-32}
WARMUP=${WARMUP:-1}
PIN=${PIN:-1}
GOAL=${GOAL:-50000}
BENCH_STRICT=${BENCH_STRICT:-0}

BASELINE_BIN="$BUILD_DIR/tests/bench/http_bench_baseline"
ATELIER_BIN="$BUILD_DIR/server/app/atelier"

die() {
  echo "http_bench: $*" >&2
  exit 1
}

command -v wrk >/dev/null || die "wrk not found (Debian: apt-get install wrk)"
[[ -x "$BASELINE_BIN" ]] || die "$BASELINE_BIN not built (cmake --build --preset release)"
[[ -x "$ATELIER_BIN" ]] || die "$ATELIER_BIN not built (cmake --build --preset release)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/atelier-bench.XXXXXX")
SERVER_PID=""
WRK_PID=""

# run_wrk ARGS...: runs wrk in the background and waits, so that a TERM or INT reaches the traps at
# once instead of after the run.
run_wrk() {
  "${WRK_PREFIX[@]}" wrk "$@" &
  WRK_PID=$!
  local rc=0
  wait "$WRK_PID" || rc=$?
  WRK_PID=""
  return "$rc"
}

stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    # Give it a moment to shut down cleanly, then insist.
    for _ in $(seq 50); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  [[ -n "$WRK_PID" ]] && kill "$WRK_PID" 2>/dev/null
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# With two cores, wrk (-t1) gets one and the server the other, so neither steals the other's
# CPU and runs are comparable. Pinning makes that explicit; PIN=0 leaves it to the scheduler.
WRK_PREFIX=()
SERVER_PREFIX=()
if [[ "$PIN" == 1 ]] && command -v taskset >/dev/null && (($(nproc) >= 2)); then
  WRK_PREFIX=(taskset -c 0)
  SERVER_PREFIX=(taskset -c 1)
fi

# http_status PORT PATH: prints the status code of a GET, or 000 when nothing answered.
http_status() {
  if command -v curl >/dev/null; then
    curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1$2" || echo 000
  else
    # Plain bash fallback for images without curl.
    (
      exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
      printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
      read -r -t 2 _ code _ <&3 && echo "$code"
    ) 2>/dev/null || echo 000
  fi
}

# start_server NAME READY_PATH CMD...: starts CMD in the background (output to $WORK/NAME.log),
# waits up to 10s for its "listening on http://127.0.0.1:PORT" line and for READY_PATH to answer
# 200, and sets PORT.
start_server() {
  local name=$1 ready=$2
  shift 2
  local log="$WORK/$name.log"
  "${SERVER_PREFIX[@]}" "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  PORT=""
  local deadline=$((SECONDS + 10))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      cat "$log" >&2
      die "$name exited during start-up"
    fi
    if [[ -z "$PORT" ]]; then
      PORT=$(grep -m1 -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$log" | grep -oE '[0-9]+$' ||
        true)
    fi
    if [[ -n "$PORT" && "$(http_status "$PORT" "$ready")" == 200 ]]; then
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$log" >&2
  die "$name not ready within 10s (port: ${PORT:-not announced}, waited for $ready -> 200)"
}

# to_ms VALUE: wrk latency ("812.00us", "1.23ms", "1.01s") in milliseconds.
to_ms() {
  awk -v v="$1" 'BEGIN {
    n = v + 0
    if (v ~ /us$/) n /= 1000
    else if (v ~ /ms$/) n = n
    else if (v ~ /m$/) n *= 60000
    else if (v ~ /s$/) n *= 1000
    printf "%.2f", n
  }'
}

ROWS=()        # "target|req/s|p99 ms"
FAILED=0
HEALTHZ_RPS=""
BASELINE_RPS=""

# bench LABEL PORT PATH: one wrk run; appends a row.
bench() {
  local label=$1 port=$2 path=$3
  local url="http://127.0.0.1:$port$path"
  local status
  status=$(http_status "$port" "$path")
  if [[ "$status" != 200 ]]; then
    echo "http_bench: $label: GET $path answered $status, expected 200" >&2
    FAILED=1
  fi
  if ((WARMUP > 0)); then
    run_wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "$url" >/dev/null 2>&1 || true
  fi
  local out="$WORK/wrk-${label//[^A-Za-z0-9]/_}.txt"
  if ! run_wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$url" >"$out" 2>&1; then
    cat "$out" >&2
    echo "http_bench: wrk failed for $label" >&2
    FAILED=1
    ROWS+=("$label|-|-")
    return
  fi
  local rps p99 non2xx errors
  rps=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
  errors=$(grep -m1 'Socket errors:' "$out" || true)
  if [[ -n "$non2xx" ]]; then
    echo "http_bench: $label: $non2xx non-2xx/3xx responses" >&2
    FAILED=1
  fi
  [[ -n "$errors" ]] && echo "http_bench: $label: $errors" >&2
  [[ -n "$rps" ]] || { cat "$out" >&2; FAILED=1; rps=0; }
  ROWS+=("$label|$rps|$(to_ms "${p99:-0}")")
  LAST_RPS=$rps
}

echo "http_bench: wrk -t1 -c$CONNECTIONS -d${DURATION}s, build $BUILD_DIR," \
  "$( ((${#WRK_PREFIX[@]} > 0)) && echo "wrk on CPU 0, server on CPU 1" || echo "unpinned")"

# 1. The ceiling: raw Asio, one thread, fixed response.
start_server baseline / "$BASELINE_BIN" 1 0
bench "baseline /" "$PORT" /
BASELINE_RPS=$LAST_RPS
stop_server

# One I/O thread per core the server gets: pinned to one core, a second thread only adds
# context switches (measured: ~10% fewer req/s and 6x the p99).
if [[ ${#SERVER_PREFIX[@]} -gt 0 ]]; then IO_THREADS=1; else IO_THREADS=$(nproc); fi

# 2. Atelier as deployed for load: warnings only.
start_server atelier-warn /readyz "$ATELIER_BIN" serve --port 0 --io-threads "$IO_THREADS" \
  --data-dir "$(mktemp -d "$WORK/data.XXXXXX")" --log-level warn
bench "atelier /healthz" "$PORT" /healthz
HEALTHZ_RPS=$LAST_RPS
bench "atelier /api/v1/info" "$PORT" /api/v1/info
stop_server

# 3. The price of access logging: every request logged (to a file here, not a terminal).
start_server atelier-info /readyz "$ATELIER_BIN" serve --port 0 --io-threads "$IO_THREADS" \
  --data-dir "$(mktemp -d "$WORK/data.XXXXXX")" --log-level info
bench "atelier /healthz (log info)" "$PORT" /healthz
stop_server

echo
printf '%-30s %12s %10s %10s\n' target "req/s" "p99 ms" "vs base"
printf '%-30s %12s %10s %10s\n' ------------------------------ ------------ ---------- ----------
for row in "${ROWS[@]}"; do
  IFS='|' read -r label rps p99 <<<"$row"
  ratio=$(awk -v a="$rps" -v b="$BASELINE_RPS" \
    'BEGIN { if (a ~ /^[0-9]+$/ && b > 0) printf "%.2fx", a / b; else print "-" }')
  printf '%-30s %12s %10s %10s\n' "$label" "$rps" "$p99" "$ratio"
done
echo

if ((FAILED)); then
  echo "http_bench: FAILED: some runs did not complete cleanly (see messages above)" >&2
  exit 1
fi

if ((${HEALTHZ_RPS:-0} >= GOAL)); then
  echo "goal: atelier /healthz >= $GOAL req/s: PASS ($HEALTHZ_RPS req/s)"
else
  echo "goal: atelier /healthz >= $GOAL req/s: BELOW GOAL ($HEALTHZ_RPS req/s)"
  [[ "$BENCH_STRICT" == 1 ]] && exit 1
fi
exit 0
