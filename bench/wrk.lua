-- One wrk script for every benchmark run, configured from the environment:
--   BENCH_METHOD       HTTP method (default GET)
--   BENCH_BODY         request body, sent as JSON
-- done() prints one line "BENCH_JSON {...}" with the totals and latency percentiles (µs).

local method = os.getenv("BENCH_METHOD")
if method and method ~= "" then
   wrk.method = method
end

local body = os.getenv("BENCH_BODY")
if body and body ~= "" then
   wrk.body = body
end
wrk.headers["Content-Type"] = "application/json"

done = function(summary, latency, requests)
   local errors = summary.errors
   io.write(string.format(
      'BENCH_JSON {"duration_us": %d, "requests": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p99": %d, "p999": %d}}\n',
      summary.duration, summary.requests, summary.bytes,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency:percentile(99.9)))
end
