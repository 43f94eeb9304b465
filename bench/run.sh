#!/usr/bin/env bash
# Measures the ack path side by side, in one run, on this machine:
#   - the bare-axum ceiling (verify + parse + fixed answer; examples/bench_peer.rs),
#   - cusp answering `/cusp reflect` with the observation durably logged,
#   - cusp acknowledging Events API `message` events, each in the inbox before its 200,
# and prints req/s, p50/p99 at 32 connections and at 1, peak RSS (VmHWM) and rows lost
# (rows stored vs requests answered 200; every request has its own trigger_id/event_id).
#
# Usage: bench/run.sh [--postgres [URL]] [--bolt] [--duration 10s] [--no-build]
#   --postgres  run cusp on a fresh database created on URL's server
#               (default postgres://postgres@127.0.0.1:5432/test), dropped afterwards.
#   --bolt      also run Bolt for JavaScript (bench/bolt/app.js) answering the same signed
#               `/cusp reflect` pool ephemerally, at 32 and 1 connections, and print cusp's
#               ratio to it; first checks that both answer 200 with an ephemeral body.
#               Installs bench/bolt/node_modules with `npm ci` when missing.
# MALLOC_ARENA_MAX, TOKIO_WORKER_THREADS, CUSP_DB_MAX_CONNECTIONS, CUSP_SQLITE_CACHE_KIB: passed
# to cusp when set (nothing else of the caller's environment is); BENCH_MALLOC=/path/lib.so
# preloads another malloc into cusp alone; BENCH_SMAPS=FILE keeps cusp's smaps after the drain.
# Needs: cargo, wrk (installed from Debian's packages if missing), sqlite3 or psql;
# node >= 20 and npm for --bolt.
# Everything listens on 127.0.0.1; nothing leaves the machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
duration=10s
pg_url=""
build=1
bolt=0
while [ $# -gt 0 ]; do
  case "$1" in
    --postgres)
      if [ $# -gt 1 ] && [[ "$2" == postgres* ]]; then pg_url=$2; shift; else pg_url=postgres://postgres@127.0.0.1:5432/test; fi ;;
    --duration) duration=$2; shift ;;
    --no-build) build=0 ;;
    --bolt) bolt=1 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if ! command -v wrk >/dev/null; then
  echo "wrk is missing; installing it from Debian's packages" >&2
  if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi

if [ "$bolt" = 1 ]; then
  command -v node >/dev/null && command -v npm >/dev/null || { echo "--bolt needs node (>= 20) and npm" >&2; exit 2; }
  if [ ! -d "$here/bolt/node_modules" ]; then
    echo "installing Bolt for JavaScript in bench/bolt (npm ci)" >&2
    (cd "$here/bolt" && npm ci --no-audit --no-fund >&2)
  fi
  bolt_version=$(cd "$here/bolt" && node -p 'require("@slack/bolt/package.json").version')
fi

target=${CARGO_TARGET_DIR:-$root/target}
if [ "$build" = 1 ]; then
  (cd "$root" && cargo build --release --locked --bin cusp --example bench_peer)
fi
cusp_bin=$target/release/cusp
peer_bin=$target/release/examples/bench_peer

work=$(mktemp -d /tmp/cusp-bench.XXXXXX)
pids=()
pg_db=""
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$pg_db" ]; then psql -q "$pg_url" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
token="xoxb-bench-$secret"
run_id=$(date +%s)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The Slack stand-in: auth.test for cusp's start, somewhere for the workers to post.
"$peer_bin" slack --token "$token" >"$work/slack.url" 2>"$work/slack.log" &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/slack.url" ] && break; sleep 0.1; done
slack_url=$(head -1 "$work/slack.url")

if [ -n "$pg_url" ]; then
  pg_db="cusp_bench_$$"
  psql -q "$pg_url" -c "CREATE DATABASE $pg_db" >/dev/null
  db_url="${pg_url%/*}/$pg_db"
  count() { psql -qtA "$db_url" -c "$1"; }
  backend=postgres
else
  db_url="sqlite://$work/cusp.db"
  count() { sqlite3 "$work/cusp.db" "$1"; }
  backend=sqlite
fi

cusp_port=$(free_port)
# Memory settings under test reach cusp from the caller's environment (README "Performance").
tuning=()
for name in MALLOC_ARENA_MAX TOKIO_WORKER_THREADS CUSP_DB_MAX_CONNECTIONS CUSP_SQLITE_CACHE_KIB; do
  [ -n "${!name:-}" ] && tuning+=("$name=${!name}")
done
# Another malloc for cusp alone (LD_PRELOAD here would load it into every process).
[ -n "${BENCH_MALLOC:-}" ] && tuning+=("LD_PRELOAD=$BENCH_MALLOC")
# From $work, so that no .env of the checkout applies.
(cd "$work" && exec env -i PATH="$PATH" HOME="$work" DATABASE_URL="$db_url" SLACK_SIGNING_SECRET="$secret" \
  SLACK_BOT_TOKEN="$token" SLACK_API_URL="$slack_url" CUSP_ADDR="127.0.0.1:$cusp_port" \
  ${tuning[@]+"${tuning[@]}"} RUST_LOG="${RUST_LOG:-warn}" "$cusp_bin" serve >"$work/cusp.log" 2>&1) &
cusp_pid=$!
pids+=($cusp_pid)
# Where cusp's memory is: its status sampled every 0.2 s for the whole run, so the
# breakdown at the peak (heap vs mapped files vs shared memory, threads) can be printed.
( while kill -0 "$cusp_pid" 2>/dev/null; do
    awk '/^(VmRSS|RssAnon|RssFile|RssShmem|Threads):/ { printf "%s=%s ", $1, $2 } END { print "" }' \
      "/proc/$cusp_pid/status" 2>/dev/null || true
    sleep 0.2
  done >"$work/rss.samples" ) &
pids+=($!)
ceiling_port=$(free_port)
"$peer_bin" ceiling --addr "127.0.0.1:$ceiling_port" --secret "$secret" >"$work/ceiling.log" 2>&1 &
ceiling_pid=$!
pids+=($ceiling_pid)
if [ "$bolt" = 1 ]; then
  bolt_port=$(free_port)
  # exec, so that $! is node itself (its VmHWM is Bolt's peak RSS).
  (cd "$work" && exec env -i PATH="$PATH" HOME="$work" SLACK_SIGNING_SECRET="$secret" PORT="$bolt_port" \
    NODE_ENV=production node "$here/bolt/app.js" >"$work/bolt.log" 2>&1) &
  bolt_pid=$!
  pids+=($bolt_pid)
  for _ in $(seq 300); do
    grep -q listening "$work/bolt.log" 2>/dev/null && break
    kill -0 "$bolt_pid" 2>/dev/null || { echo "Bolt did not start:" >&2; cat "$work/bolt.log" >&2; exit 1; }
    sleep 0.1
  done
fi
for _ in $(seq 300); do
  curl -fs "http://127.0.0.1:$cusp_port/healthz" >/dev/null 2>&1 && break
  kill -0 "$cusp_pid" 2>/dev/null || { echo "cusp did not start:" >&2; cat "$work/cusp.log" >&2; exit 1; }
  sleep 0.1
done

# run NAME URL PATH KIND CONNS POOL [DURATION]: one wrk run over a freshly signed pool (the
# timestamps must be within Slack's 5 minutes); leaves its BENCH line in $work/NAME.out.
run() {
  local name=$1 url=$2 path=$3 kind=$4 conns=$5 pool=$6 time=${7:-$duration} ctype
  case "$kind" in
    command) ctype=application/x-www-form-urlencoded ;;
    event) ctype=application/json ;;
  esac
  "$peer_bin" sign --secret "$secret" --kind "$kind" --count "$pool" --run "r${run_id}${name}" >"$work/pool"
  BENCH_POOL="$work/pool" BENCH_PATH="$path" BENCH_CTYPE="$ctype" \
    wrk -t1 -c"$conns" -d"$time" -s "$here/sign.lua" "$url" >"$work/$name.wrk" 2>&1
  grep '^BENCH' "$work/$name.wrk" >"$work/$name.out" || { cat "$work/$name.wrk" >&2; exit 1; }
  echo "pool=$pool" >>"$work/$name.out"
}
# CPU time (clock ticks) and context switches of cusp's threads so far: where the time goes.
ticks() { awk '{ print $14 + $15 }' "/proc/$cusp_pid/stat"; }
switches() { cat /proc/"$cusp_pid"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n }'; }
# cost NAME ANSWERED TICKS0 SWITCHES0: cusp's CPU µs and context switches per answered request.
cost() {
  awk -v t="$(( $(ticks) - $3 ))" -v hz="$(getconf CLK_TCK)" -v s="$(( $(switches) - $4 ))" -v n="$2" -v name="$1" \
    'BEGIN { if (n > 0) printf "%s: cusp used %.0f us of CPU and %.1f context switches per request\n", name, t / hz * 1e6 / n, s / n }'
}
field() { sed -n "s/.*\b$2=\([0-9]*\).*/\1/p" "$work/$1.out" | head -1; }
ok() { echo $(( $(field "$1" requests) - $(field "$1" non2xx) )); }
rps() { echo "$1 $(field "$2" duration_us)" | awk '{ printf "%.0f", $1 / ($2 / 1e6) }'; }
ms() { awk -v us="$(field "$1" "$2")" 'BEGIN { printf "%.2f", us / 1000 }'; }
# Rows expected but missing; a wrapped pool repeats ids, so only the pool's size counts.
lost() {
  local answered=$1 pool=$2 stored=$3
  [ "$answered" -gt "$pool" ] && answered=$pool
  echo $(( answered > stored ? answered - stored : 0 ))
}

ceiling="http://127.0.0.1:$ceiling_port"
server="http://127.0.0.1:$cusp_port"
echo "cusp settings: ${tuning[*]:-defaults}" >&2
echo "cusp on $backend; wrk -t1 for $duration per run; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

run ceiling32 "$ceiling" /slack/commands command 32 200000
run ceiling1 "$ceiling" /slack/commands command 1 100000

if [ "$bolt" = 1 ]; then
  bolt_url="http://127.0.0.1:$bolt_port"
  # answer NAME URL: one signed `/cusp reflect` by curl; the measure is void unless it
  # is a 200 with an ephemeral body (a signature mismatch would be a fast 401).
  answer() {
    "$peer_bin" sign --secret "$secret" --kind command --count 1 --run "r${run_id}check$1" >"$work/check.pool"
    IFS=$'\t' read -r ts sig body <"$work/check.pool"
    local code
    code=$(curl -s -o "$work/$1.answer" -w '%{http_code}' -X POST -H 'Content-Type: application/x-www-form-urlencoded' \
      -H "X-Slack-Request-Timestamp: $ts" -H "X-Slack-Signature: $sig" --data-raw "$body" "$2/slack/commands")
    if [ "$code" != 200 ] || ! grep -q '"response_type":"ephemeral"' "$work/$1.answer"; then
      echo "$1 did not answer a signed /cusp reflect with 200 and an ephemeral body (HTTP $code):" >&2
      head -c 500 "$work/$1.answer" >&2; echo >&2; cat "$work/$1.log" >&2 2>/dev/null || true
      exit 1
    fi
  }
  answer bolt "$bolt_url"
  answer cusp "$server"
  # Node compiles hot code as it runs: 3 s of the same requests first, not counted, so
  # that Bolt is measured at its best (cusp is compiled ahead of time).
  run boltwarm "$bolt_url" /slack/commands command 32 100000 3s
  bolt_t0=$(awk '{ print $14 + $15 }' "/proc/$bolt_pid/stat")
  run bolt32 "$bolt_url" /slack/commands command 32 200000
  bolt_cpu=$(awk -v t="$(( $(awk '{ print $14 + $15 }' "/proc/$bolt_pid/stat") - bolt_t0 ))" -v hz="$(getconf CLK_TCK)" \
    -v n="$(ok bolt32)" -v us="$(field bolt32 duration_us)" \
    'BEGIN { if (n > 0) printf "bolt @32: node used %.0f us of CPU per request, %.2f of a core over the run\n", t / hz * 1e6 / n, t / hz / (us / 1e6) }')
  run bolt1 "$bolt_url" /slack/commands command 1 100000
fi

rows0=$(count "SELECT COUNT(*) FROM observations")
t0=$(ticks); s0=$(switches)
run reflect32 "$server" /slack/commands command 32 400000
sleep 1
rows1=$(count "SELECT COUNT(*) FROM observations")
reflect_cost=$(cost "reflect @32" "$(ok reflect32)" "$t0" "$s0")
run reflect1 "$server" /slack/commands command 1 200000
sleep 1
rows2=$(count "SELECT COUNT(*) FROM observations")

inbox0=$(count "SELECT COUNT(*) FROM inbox")
t0=$(ticks); s0=$(switches)
run events32 "$server" /slack/events event 32 400000
events_cost=$(cost "events @32" "$(ok events32)" "$t0" "$s0")
sleep 1
inbox1=$(count "SELECT COUNT(*) FROM inbox")
drain_start=$(date +%s.%N)
drained="no"
for _ in $(seq 600); do
  pending=$(count "SELECT COUNT(*) FROM inbox WHERE status IN ('pending','working')")
  [ "$pending" = 0 ] && { drained=$(awk -v s="$drain_start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f s", e - s }'); break; }
  sleep 0.1
done
[ "$drained" = "no" ] && drained="not within 60 s ($pending pending)"

rss() { awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$1/status"; }
cusp_rss=$(rss "$cusp_pid")
ceiling_rss=$(rss "$ceiling_pid")
[ "$bolt" = 1 ] && bolt_rss=$(rss "$bolt_pid")

c32=$(ok ceiling32); c1=$(ok ceiling1)
r32=$(ok reflect32); r1=$(ok reflect1); e32=$(ok events32)
printf '\n%s\n' "Ack path, $backend, wrk -t1 -d$duration, $(date -u +%Y-%m-%dT%H:%MZ), load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| %-44s | %10s | %7s | %7s | %9s | %7s | %-10s | %s |\n' "stack" "req/s @32" "p50" "p99" "req/s @1" "p50 @1" "peak RSS" "lost"
printf '| %-44s | %10s | %7s | %7s | %9s | %7s | %-10s | %s |\n' "---" "---" "---" "---" "---" "---" "---" "---"
printf '| %-44s | %10s | %7s | %7s | %9s | %7s | %-10s | %s |\n' "bare axum: verify + parse + fixed answer" \
  "$(rps "$c32" ceiling32)" "$(ms ceiling32 p50_us)" "$(ms ceiling32 p99_us)" "$(rps "$c1" ceiling1)" "$(ms ceiling1 p50_us)" "$ceiling_rss" "-"
if [ "$bolt" = 1 ]; then
  b32=$(ok bolt32); b1=$(ok bolt1)
  printf '| %-44s | %10s | %7s | %7s | %9s | %7s | %-10s | %s |\n' "Bolt for JavaScript $bolt_version, node $(node --version)" \
    "$(rps "$b32" bolt32)" "$(ms bolt32 p50_us)" "$(ms bolt32 p99_us)" "$(rps "$b1" bolt1)" "$(ms bolt1 p50_us)" "$bolt_rss" "-"
fi
printf '| %-44s | %10s | %7s | %7s | %9s | %7s | %-10s | %s |\n' "cusp /cusp reflect ($backend)" \
  "$(rps "$r32" reflect32)" "$(ms reflect32 p50_us)" "$(ms reflect32 p99_us)" "$(rps "$r1" reflect1)" "$(ms reflect1 p50_us)" "$cusp_rss" \
  "$(lost "$r32" 400000 $((rows1 - rows0))) of $r32 @32, $(lost "$r1" 200000 $((rows2 - rows1))) of $r1 @1"
printf '| %-44s | %10s | %7s | %7s | %9s | %7s | %-10s | %s |\n' "cusp Events API message ack ($backend)" \
  "$(rps "$e32" events32)" "$(ms events32 p50_us)" "$(ms events32 p99_us)" "-" "-" "$cusp_rss" \
  "$(lost "$e32" 400000 $((inbox1 - inbox0))) of $e32"
awk -v r="$(rps "$r32" reflect32)" -v c="$(rps "$c32" ceiling32)" 'BEGIN { printf "\nreflect at 32 conns: %.2fx the ceiling\n", r / c }'
if [ "$bolt" = 1 ]; then
  awk -v r32="$(rps "$r32" reflect32)" -v b32="$(rps "$b32" bolt32)" -v r1="$(rps "$r1" reflect1)" -v b1="$(rps "$b1" bolt1)" \
    -v c="$(rps "$c32" ceiling32)" \
    'BEGIN { printf "cusp vs Bolt: %.2fx at 32 conns (target 8x), %.2fx at 1 conn; Bolt at 32 conns is %.2fx the ceiling\n", r32 / b32, r1 / b1, b32 / c }'
  echo "answer bodies: cusp $(wc -c <"$work/cusp.answer") bytes, Bolt $(wc -c <"$work/bolt.answer") bytes; Bolt non-2xx (warm-up/32/1): $(field boltwarm non2xx)/$(field bolt32 non2xx)/$(field bolt1 non2xx), socket errors $(field bolt32 socket_errors)/$(field bolt1 socket_errors)"
  if [ $(( $(field boltwarm non2xx) + $(field bolt32 non2xx) + $(field bolt1 non2xx) )) -gt 0 ]; then
    echo "WARNING: Bolt answered non-2xx (see its log below): its figures do not measure answered commands"
    sed 's/\x1b\[[0-9;]*m//g' "$work/bolt.log" | cut -c1-200 | sort | uniq -c | sort -rn | head -5
  fi
  echo "$bolt_cpu"
  echo "Bolt warnings/errors logged: $(grep -c -E 'WARN|ERROR' "$work/bolt.log" || true)"
fi
echo "non-2xx: ceiling $(field ceiling32 non2xx)/$(field ceiling1 non2xx), reflect $(field reflect32 non2xx)/$(field reflect1 non2xx), events $(field events32 non2xx); socket errors: reflect $(field reflect32 socket_errors), events $(field events32 socket_errors)"
echo "$reflect_cost (the 1 s pause after the run included)"
echo "$events_cost"
echo "inbox drained (handled by the inbox worker after the ack): $drained"
# The sample with the largest VmRSS, in MiB: what the peak was made of.
awk '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (v["VmRSS:"] + 0 > best) { best = v["VmRSS:"] + 0; line = sprintf("heap and stacks %.1f MiB, mapped files %.1f MiB, shared memory %.1f MiB, %d threads", v["RssAnon:"] / 1024, v["RssFile:"] / 1024, v["RssShmem:"] / 1024, v["Threads:"]) } }
  END { if (best) printf "cusp RSS at its largest sample (%.1f MiB): %s\n", best / 1024, line }' "$work/rss.samples"
echo "cusp after the drain: $(awk '/^(VmRSS|RssAnon|RssFile|Threads):/ { printf "%s %s ", $1, $2 }' "/proc/$cusp_pid/status")"
[ -n "${BENCH_SMAPS:-}" ] && cp "/proc/$cusp_pid/smaps" "$BENCH_SMAPS"
echo "cusp warnings/errors logged: $(grep -c -E 'WARN|ERROR' "$work/cusp.log" || true)"
grep -E 'ERROR' "$work/cusp.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-200 | sort | uniq -c | sort -rn | head -5 || true
