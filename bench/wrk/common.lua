-- Shared by every bench/wrk scenario script (loaded with dofile from the script's directory).
--
-- Each wrk thread runs its own copy of the scenario script; the counters below are globals of
-- that copy, and done() (run once in wrk's main Lua state) adds them up with thread:get().
-- done() prints one line `BENCH_RESULT {json}` that bench/run.sh picks up.

-- The phone numbers of the benchmark, the same function as bench/loader.cc: 12 area codes x 8M
-- subscriber numbers; it wraps around, so number(i) = number(i + 96,000,000).
areacodes = { "201", "202", "203", "205", "206", "207", "208", "209", "210", "212", "213", "214" }
NUMBER_SPACE = #areacodes * 8000000

function number(i)
  local ac = areacodes[math.floor(i / 8000000) % #areacodes + 1]
  return "+1" .. ac .. tostring(2000000 + i % 8000000)
end

-- "+12012000000" -> "%2B12012000000" (form encoding of the leading +).
function form_number(n) return "%2B" .. n:sub(2) end

FORM_HEADERS = nil -- set by init_common
function init_common(auth)
  FORM_HEADERS = { ["Authorization"] = auth, ["Content-Type"] = "application/x-www-form-urlencoded" }
end

-- Per-thread counters (globals so that done() can read them).
non2xx = 0        -- responses with a status outside 200-299
unexpected = 0    -- 2xx responses that are not what the scenario expects (wrong status or body)
ran_out = 0       -- requests sent after the thread used up its pre-created range
flows_started = 0
flows_completed = 0
flows_failed = 0
first_bad = ""    -- the first unexpected response of the thread, for the report

COUNTERS = { "non2xx", "unexpected", "ran_out", "flows_started", "flows_completed", "flows_failed" }

function note_bad(status, body)
  if first_bad == "" then first_bad = tostring(status) .. " " .. (body or ""):sub(1, 200) end
end

-- Call from response(): counts non-2xx and wrong 2xx; returns true when the response is as expected.
-- `want_body` (optional) is a plain substring the body must contain.
function expect(status, body, want_status, want_body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    note_bad(status, body)
    return false
  end
  if status ~= want_status or (want_body ~= nil and not body:find(want_body, 1, true)) then
    unexpected = unexpected + 1
    note_bad(status, body)
    return false
  end
  return true
end

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local function json_string(s)
  s = tostring(s):gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. s .. '"'
end

function done(summary, latency, requests)
  local totals = {}
  for _, name in ipairs(COUNTERS) do totals[name] = 0 end
  local bad = ""
  for _, t in ipairs(threads) do
    for _, name in ipairs(COUNTERS) do totals[name] = totals[name] + (tonumber(t:get(name)) or 0) end
    local b = t:get("first_bad")
    if bad == "" and b ~= nil then bad = b end
  end
  local e = summary.errors
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.timeout),
    string.format('"wrk_status_errors":%d', e.status),
    string.format('"latency_us":{"mean":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}',
      latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)),
  }
  for _, name in ipairs(COUNTERS) do table.insert(parts, string.format('"%s":%d', name, totals[name])) end
  table.insert(parts, '"first_bad":' .. json_string(bad))
  io.write("BENCH_RESULT {" .. table.concat(parts, ",") .. "}\n")
end
