-- wrk script: GET with the API key from AMOGATE_KEY (when set); prints a JSON summary.
function init(args)
  local key = os.getenv("AMOGATE_KEY")
  if key and key ~= "" then wrk.headers["X-API-KEY"] = key end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
