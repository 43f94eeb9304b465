#!/usr/bin/env bash
# A connection flood against the release build of cusp, on loopback only: CONNECTIONS
# clients each send half a request line and never finish it (issue 12's "connection
# exhaustion" finding), reconnecting whenever the server closes them, for HOLD_SECS.
# Meanwhile /healthz is asked twice a second. Prints how /healthz fared, cusp's RSS
# before, at its peak and SETTLE_SECS after the flood, and what the listener shed.
#
#   bench/slowloris.sh                      # 20,000 connections for 20 s
#   CONNECTIONS=5000 HOLD_SECS=10 bench/slowloris.sh
#   CUSP_BIN=target/release/cusp bench/slowloris.sh   # skip the build
#
# CUSP_MAX_CONNECTIONS, CUSP_HTTP_HEADER_TIMEOUT_SECS and CUSP_HTTP_REQUEST_TIMEOUT_SECS
# are passed through to cusp (unset: its defaults). Needs python3 and curl.
set -euo pipefail

CONNECTIONS=${CONNECTIONS:-20000}
HOLD_SECS=${HOLD_SECS:-20}
SETTLE_SECS=${SETTLE_SECS:-15}
cd "$(dirname "$0")/.."

if [[ -z "${CUSP_BIN:-}" ]]; then
  cargo build --release --locked --quiet
  CUSP_BIN="${CARGO_TARGET_DIR:-target}/release/cusp"
fi
# The flood needs a descriptor per connection (plus cusp's own, in this shell's limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (( $(ulimit -n) < CONNECTIONS + 256 )); then
  echo "ulimit -n is $(ulimit -n): too low for $CONNECTIONS connections" >&2
  exit 1
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# A stand-in for Slack's Web API: cusp only calls auth.test at start.
slack_port=$(free_port)
python3 - "$slack_port" <<'PY' &
import http.server, sys
class Slack(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b'{"ok":true,"team_id":"T0BENCH","user_id":"U0BENCH","bot_id":"B0BENCH"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Slack).serve_forever()
PY
pids+=($!)

port=$(free_port)
SLACK_SIGNING_SECRET=bench-secret SLACK_BOT_TOKEN=xoxb-bench \
  SLACK_API_URL="http://127.0.0.1:$slack_port/api" DATABASE_URL="sqlite://$work/cusp.db" \
  CUSP_ADDR="127.0.0.1:$port" RUST_LOG=${RUST_LOG:-warn} \
  "$CUSP_BIN" serve >"$work/cusp.log" 2>&1 &
cusp=$!
pids+=($cusp)
for _ in $(seq 100); do
  curl -fs -m 1 "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.2
done
curl -fs -m 1 "http://127.0.0.1:$port/healthz" >/dev/null || { cat "$work/cusp.log"; exit 1; }

rss() { awk '/^VmRSS/ {print $2}' "/proc/$cusp/status"; }
before=$(rss)
( peak=0; while kill -0 "$cusp" 2>/dev/null; do
    now=$(rss 2>/dev/null || echo 0); (( now > peak )) && peak=$now && echo "$peak" >"$work/peak"
    sleep 0.2
  done ) &
pids+=($!)

# The flood: each client sends half a request line, waits for the server to close it,
# and connects again, until HOLD_SECS are over.
python3 - "$port" "$CONNECTIONS" "$HOLD_SECS" >"$work/flood" <<'PY' &
import asyncio, sys, time
port, count, hold = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
stats = {"connects": 0, "closed_by_server": 0, "answered_503": 0, "connect_errors": 0}
async def client(deadline):
    while time.monotonic() < deadline:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            stats["connect_errors"] += 1
            await asyncio.sleep(0.1)
            continue
        stats["connects"] += 1
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHo")
            data = await asyncio.wait_for(reader.read(64), max(0.01, deadline - time.monotonic()))
            if data.startswith(b"HTTP/1.1 503"):
                stats["answered_503"] += 1
            stats["closed_by_server"] += 1
        except (asyncio.TimeoutError, OSError):
            pass
        finally:
            writer.close()
async def main():
    deadline = time.monotonic() + hold
    await asyncio.gather(*(client(deadline) for _ in range(count)))
asyncio.run(main())
print(" ".join(f"{k}={v}" for k, v in stats.items()))
PY
flood=$!

sleep 2  # let the flood build up
ok=0; total=0; times=()
end=$((SECONDS + HOLD_SECS - 2))
while (( SECONDS < end )); do
  out=$(curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}' "http://127.0.0.1:$port/healthz" || true)
  total=$((total + 1))
  [[ "$out" == 200* ]] && { ok=$((ok + 1)); times+=("${out#* }"); }
  sleep 0.5
done
wait "$flood"
sleep "$SETTLE_SECS"
after=$(rss)
peak=$(cat "$work/peak" 2>/dev/null || echo "$before")
metrics=$(curl -s -m 5 "http://127.0.0.1:$port/metrics" | grep -E '^cusp_http_connections_(shed|timed_out)' || true)

echo "flood: $CONNECTIONS connections for ${HOLD_SECS}s: $(cat "$work/flood")"
echo "healthz during the flood: $ok of $total answered 200"
if (( ${#times[@]} )); then
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "healthz latency: p50 %.1f ms, max %.1f ms\n", a[int((NR+1)/2)]*1000, a[NR]*1000}'
fi
echo "cusp RSS: before $((before / 1024)) MiB, peak $((peak / 1024)) MiB, ${SETTLE_SECS}s after $((after / 1024)) MiB"
echo "$metrics"
grep -m3 "connection limit" "$work/cusp.log" || true
