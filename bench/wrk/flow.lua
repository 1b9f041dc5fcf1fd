-- flow: the sign-in flow of a real app, three requests in order:
--   1. POST .../Verifications      To, Channel=sms, CustomCode=<6 random digits>  -> 201 pending
--   2. POST .../VerificationCheck  To, Code=<a wrong code>                        -> 200 pending
--   3. POST .../VerificationCheck  To, Code=<the right code>                      -> 200 approved
-- args: AUTH_HEADER SERVICE_SID (a service with custom_code_enabled) [BASE=20000000] [STRIDE=5000000]
--
-- wrk does not tell a script which connection a request() or response() belongs to, so each flow
-- is keyed by its phone number (the `to` field of every 2xx answer): a response queues the next
-- step of its flow, and the next request() on any of the thread's connections sends it. A step is
-- thus always sent after the answer to the previous one; new flows start when nothing is queued.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
  init_common(args[1])
  local svc = "/v2/Services/" .. args[2]
  create_path = svc .. "/Verifications"
  check_path = svc .. "/VerificationCheck"
  base = tonumber(args[3] or "20000000") + tid * tonumber(args[4] or "5000000")
  limit = tonumber(args[4] or "5000000")
  counter = 0
  flows = {}
  queue, qhead, qtail = {}, 1, 0
  math.randomseed(os.time() * 1000 + tid * 7919)
end

function request()
  if qhead <= qtail then
    local n = queue[qhead]
    queue[qhead] = nil
    qhead = qhead + 1
    local f = flows[n]
    local code = f.code
    if f.step == 2 then code = string.format("%06d", (tonumber(code) + 1) % 1000000) end
    return wrk.format("POST", check_path, FORM_HEADERS, "To=" .. form_number(n) .. "&Code=" .. code)
  end
  if counter >= limit then ran_out = ran_out + 1 end
  local n = number(base + counter)
  counter = counter + 1
  local code = string.format("%06d", math.random(0, 999999))
  flows[n] = { step = 1, code = code }
  flows_started = flows_started + 1
  return wrk.format("POST", create_path, FORM_HEADERS,
    "To=" .. form_number(n) .. "&Channel=sms&CustomCode=" .. code)
end

local WANT = {
  { 201, '"status":"pending"' },
  { 200, '"status":"pending"' },
  { 200, '"status":"approved"' },
}

function response(status, headers, body)
  local n = body:match('"to":"(%+%d+)"')
  local f = n and flows[n]
  if f == nil then
    -- An error body carries no `to`: its flow cannot be continued.
    expect(status, body, -1)
    flows_failed = flows_failed + 1
    return
  end
  local want = WANT[f.step]
  if not expect(status, body, want[1], want[2]) then
    flows[n] = nil
    flows_failed = flows_failed + 1
    return
  end
  if f.step == 3 then
    flows[n] = nil
    flows_completed = flows_completed + 1
  else
    f.step = f.step + 1
    qtail = qtail + 1
    queue[qtail] = n
  end
end
