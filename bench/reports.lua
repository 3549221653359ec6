-- wrk script for bench/service.py: every request is the next one of a file the bench wrote,
-- each with its own report, Idempotency-Key and token (requests end with a NUL byte, which no
-- HTTP head or JSON body holds). Prints one JSON line: statuses, sent, p50 and p99 latency.
-- Run with one thread (-t 1): the file is read by each thread, and they would send the same.

prepared, statuses, sent = {}, {}, 0
available = 0

function init(args)
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local start = 1
  while true do
    local stop = string.find(data, "\0", start, true)
    if not stop then break end
    prepared[#prepared + 1] = string.sub(data, start, stop - 1)
    start = stop + 1
  end
  available = #prepared
end

function request()
  sent = sent + 1
  return prepared[sent] or prepared[#prepared]  -- exhausted: the bench says so, never counts it
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local counted, total_sent, available = {}, 0, 0
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counted[#counted + 1] = string.format('"%d": %d', status, n)
    end
    total_sent = total_sent + thread:get("sent")
    available = available + thread:get("available")
  end
  io.write(string.format(
    '{"statuses": {%s}, "sent": %d, "available": %d, "seconds": %.3f, "p50_ms": %.2f, "p99_ms": %.2f}\n',
    table.concat(counted, ", "), total_sent, available, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
