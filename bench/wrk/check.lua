-- check: POST /v2/Services/{VA}/VerificationCheck with the right code for verifications that were
-- created beforehand (verifyd: verifyd_bench_loader; peer: its seed script) with code 135790.
-- args: AUTH_HEADER SERVICE_SID FIRST COUNT [CODE=135790]
-- The COUNT numbers number(FIRST) ... number(FIRST+COUNT-1) are split between the wrk threads,
-- so each number is checked at most once; each check should answer 200 "approved". A thread
-- that uses up its share counts `ran_out` (and its further checks answer 404).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
  init_common(args[1])
  path = "/v2/Services/" .. args[2] .. "/VerificationCheck"
  local first, count = tonumber(args[3]), tonumber(args[4])
  code = args[5] or "135790"
  nthreads = tonumber(args[6] or "2")
  per = math.floor(count / nthreads)
  base = first + tid * per
  counter = 0
end

function request()
  if counter >= per then ran_out = ran_out + 1 end
  local n = number(base + counter)
  counter = counter + 1
  return wrk.format("POST", path, FORM_HEADERS, "To=" .. form_number(n) .. "&Code=" .. code)
end

function response(status, headers, body) expect(status, body, 200, '"status":"approved"') end
