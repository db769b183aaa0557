-- wrk script for bench/label/run.sh: POST /api/rank, each request a new (annotator, item) pair, so every
-- answer should be 200. args: tokens file, number of items, candidates per item.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  tokens = {}
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
  items = tonumber(args[2])
  k = tonumber(args[3])
  nthreads = tonumber(args[4])
  n, ok, conflict, other = 0, 0, 0, 0
end

function request()
  -- Thread tid's n-th request covers pair p = n * nthreads + tid: annotator p mod A, item p div A + 1.
  local p = n * nthreads + tid
  n = n + 1
  local a = p % #tokens
  local item = math.min(math.floor(p / #tokens) + 1, items)
  local c = (item - 1) * k
  local groups = {}
  for j = 1, k do groups[#groups + 1] = string.format("[%d]", c + j) end
  local body = string.format('{"item_id": %d, "ranking": [%s]}', item, table.concat(groups, ", "))
  return wrk.format("POST", "/api/rank",
    {["Authorization"] = "Bearer " .. tokens[a + 1], ["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 409 then conflict = conflict + 1 else other = other + 1 end
end

function done(summary, latency, requests)
  local o, c, x = 0, 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok"); c = c + t:get("conflict"); x = x + t:get("other")
  end
  io.write(string.format("answers: 200 %d, 409 %d, other %d; socket errors: connect %d read %d write %d timeout %d\n",
    o, c, x, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
