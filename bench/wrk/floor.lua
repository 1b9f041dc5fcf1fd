-- floor: GET / on the floor server (bench/floor/floor_server.cc), which answers 200 to anything.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

function init(args)
  req = wrk.format("GET", "/")
end

function request() return req end

function response(status, headers, body) expect(status, body, 200) end
