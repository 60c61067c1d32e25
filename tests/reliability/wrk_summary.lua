-- For load_test.cpp: counts answers that are not 2xx (wrk itself counts only
-- 4xx and 5xx) and prints wrk's summary as one JSON line, "wrk-summary {...}".
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non_2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
  end
end

function done(summary, latency, requests)
  local non = 0
  for _, thread in ipairs(threads) do
    non = non + thread:get("non_2xx")
  end
  local e = summary.errors
  io.write(string.format(
    'wrk-summary {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"non_2xx":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout, non,
    latency:percentile(50), latency:percentile(99), latency.max))
end
