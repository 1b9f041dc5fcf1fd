-- create: POST /v2/Services/{VA}/Verifications with a new phone number every request.
-- args: AUTH_HEADER SERVICE_SID [PER_THREAD_LIMIT=10000000]
-- Thread t sends number(t * 50,000,000 + k) for k = 0, 1, 2, ...; expects 201.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
  init_common(args[1])
  path = "/v2/Services/" .. args[2] .. "/Verifications"
  limit = tonumber(args[3] or "10000000")
  base = tid * 50000000
  counter = 0
end

function request()
  if counter >= limit then ran_out = ran_out + 1 end
  local n = number(base + counter)
  counter = counter + 1
  return wrk.format("POST", path, FORM_HEADERS, "To=" .. form_number(n) .. "&Channel=sms")
end

function response(status, headers, body) expect(status, body, 201, '"status":"pending"') end
