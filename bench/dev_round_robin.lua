-- wrk script for bench/dev_bench.sh: GET the request paths listed (one per line) in the file
-- named after `--`, round-robin. Each thread starts at a different offset, so the threads do
-- not ask for the same URL at the same moment.
--
--   wrk -t2 -c64 -d15s --latency -s bench/dev_round_robin.lua http://127.0.0.1:PORT -- paths.txt

local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

local paths = {}
local i = 0

function init(args)
  local f = assert(io.open(args[1], "r"), "usage: -- <file of request paths>")
  for line in f:lines() do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
  f:close()
  assert(#paths > 0, "no request paths in " .. args[1])
  i = ((offset or 0) * 7) % #paths
end

function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
