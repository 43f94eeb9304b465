-- wrk script: cycles through a pool of pre-signed requests (wrk's Lua has no
-- HMAC-SHA256). The pool file is written by `bench_peer sign`, one request a line:
-- `timestamp<TAB>signature<TAB>body`. Each request has its own trigger_id/event_id, so
-- the pool must hold at least as many requests as the run sends (run.sh checks).
--
-- Environment: BENCH_POOL (the file), BENCH_PATH (/slack/commands or /slack/events),
-- BENCH_CTYPE (the Content-Type). Prints one `BENCH key=value …` line for run.sh.

local pool = {}
local size = 0
local next_index = 0

function init(args)
  local path = os.getenv("BENCH_PATH")
  local ctype = os.getenv("BENCH_CTYPE")
  for line in io.lines(os.getenv("BENCH_POOL")) do
    local ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    size = size + 1
    pool[size] = wrk.format("POST", path, {
      ["Content-Type"] = ctype,
      ["X-Slack-Request-Timestamp"] = ts,
      ["X-Slack-Signature"] = sig,
    }, body)
  end
end

function request()
  next_index = next_index % size + 1
  return pool[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d non2xx=%d socket_errors=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.max))
end
