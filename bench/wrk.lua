-- wrk script of the kontor benchmark.
--
--   wrk ... -s bench/wrk.lua http://127.0.0.1:PORT -- MODE N
--
-- MODE: healthz  GET /healthz
--       get      GET /crm/v3/objects/contacts/{id}, id uniform in 1..N
--       search   POST /crm/v3/objects/contacts/search, EQ filter on the e-mail of a
--                contact i uniform in 0..N-1 (load.py names contact i
--                contact<i>@example<i % 100>.com)
-- The Authorization header comes from wrk's -H option.
-- `done` prints one line: "BENCH key=value ...", latencies in microseconds.

local threads = 0

function setup(thread)
   threads = threads + 1
   thread:set("thread_no", threads)
end

function init(args)
   mode = args[1] or "healthz"
   n = tonumber(args[2] or "1")
   math.randomseed(os.time() * 1000 + (thread_no or 0) * 7919)
   if mode == "healthz" then
      healthz_request = wrk.format("GET", "/healthz")
   elseif mode == "search" then
      wrk.headers["Content-Type"] = "application/json"
   elseif mode ~= "get" then
      error("unknown mode " .. tostring(mode))
   end
end

function request()
   if mode == "get" then
      return wrk.format("GET", "/crm/v3/objects/contacts/" .. math.random(1, n))
   elseif mode == "search" then
      local i = math.random(0, n - 1)
      local body = string.format(
         '{"filterGroups":[{"filters":[{"propertyName":"email","operator":"EQ","value":"contact%d@example%d.com"}]}]}',
         i, i % 100)
      return wrk.format("POST", "/crm/v3/objects/contacts/search", nil, body)
   end
   return healthz_request
end

function done(summary, latency, requests)
   local secs = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_s=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%.1f " ..
      "errors_status=%d errors_connect=%d errors_read=%d errors_write=%d errors_timeout=%d\n",
      summary.requests, secs, summary.requests / secs,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
      e.status, e.connect, e.read, e.write, e.timeout))
end
