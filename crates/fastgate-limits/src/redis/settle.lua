-- Settles one admitted request: gives back its concurrency slots and quota
-- reservation and counts what it really used (docs/limits.md).
--
-- KEYS: the minute windows whose tokens/minute held the worst case, then the
--   concurrency sets holding a slot, then (with a quota) the totals hash, the
--   reservation lease set and the reservation amounts hash.
-- ARGV: 1 request id, 2 used tokens, 3 used nano-USD, 4 tokens held in the
--   windows, 5 number of windows, 6 number of concurrency sets, 7 1 when there
--   is a quota, then the start (ms) of each window as admitted.
-- Reply: 1.

local function int(x) return string.format('%d', x) end

local rid = ARGV[1]
local utok, unanos, held = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local nw, nc = tonumber(ARGV[5]), tonumber(ARGV[6])

-- A window is corrected only while it is the one the request was counted in.
for i = 1, nw do
  local v = redis.call('HMGET', KEYS[i], 's', 't')
  if v[1] and v[1] == ARGV[7 + i] then
    local tok = math.max((tonumber(v[2]) or 0) + utok - held, 0)
    redis.call('HSET', KEYS[i], 't', int(tok))
  end
end

for j = 1, nc do
  redis.call('ZREM', KEYS[nw + j], rid)
end

if ARGV[7] == '1' then
  local qk, qx, qr = KEYS[nw + nc + 1], KEYS[nw + nc + 2], KEYS[nw + nc + 3]
  -- Counters that are gone are seeded again from the store, which counts this
  -- usage through the ledger: nothing to add here then.
  if redis.call('EXISTS', qk) == 1 then
    local v = redis.call('HGET', qr, rid)
    if v then
      -- Not yet given back by the lease purge.
      local a, b = string.match(v, '^(%d+) (%d+)$')
      local r = redis.call('HMGET', qk, 'rtok', 'rnanos')
      redis.call('HSET', qk,
        'rtok', int(math.max((tonumber(r[1]) or 0) - (tonumber(a) or 0), 0)),
        'rnanos', int(math.max((tonumber(r[2]) or 0) - (tonumber(b) or 0), 0)))
      redis.call('HDEL', qr, rid)
      redis.call('ZREM', qx, rid)
    end
    if utok > 0 then redis.call('HINCRBY', qk, 'tok', int(utok)) end
    if unanos > 0 then redis.call('HINCRBY', qk, 'nanos', int(unanos)) end
  end
end
return 1
