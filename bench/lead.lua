-- wrk script: POST a distinct lead per request to /api/v1/leads/unsorted.
-- The API key comes from the AMOGATE_KEY environment variable.
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-API-KEY"] = os.getenv("AMOGATE_KEY")
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"source":"bench","form_name":"Bench form","lead":{"name":"Bench lead %d-%d","price":1000,' ..
    '"tags":["bench"]},"contact":{"name":"Mijoz %d","phone":"+99890%07d"},' ..
    '"utm":{"utm_source":"bench","utm_medium":"cpc"},"comment":"Benchmark lead"}',
    tid, counter, counter, (tid * 1000000 + counter) % 10000000)
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
