-- Reads (never counts) where a key stands: its rate windows and concurrency
-- slots, and its quota's totals and live reservations.
--
-- KEYS: with a key scope: minute window, day window, concurrency set; then with
--   a quota: totals hash, reservation lease set, reservation amounts hash.
-- ARGV: 1 1 when there is a key scope, 2 1 when there is a quota.
-- Reply: {now, minute start, minute requests, minute tokens, day start,
--   day requests, slots in use, quota exists (0/1), requests, tokens, nano-USD,
--   reserved tokens, reserved nano-USD, live reservations}; starts are -1 when
--   no window is open.

local MINUTE, DAY = 60000, 86400000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local reply = {now, -1, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0}
local q = 0
if ARGV[1] == '1' then
  q = 3
  local m = redis.call('HMGET', KEYS[1], 's', 'r', 't')
  local ms = tonumber(m[1])
  if ms and now < ms + MINUTE then
    reply[2], reply[3], reply[4] = ms, tonumber(m[2]) or 0, tonumber(m[3]) or 0
  end
  local d = redis.call('HMGET', KEYS[2], 's', 'r')
  local ds = tonumber(d[1])
  if ds and now < ds + DAY then
    reply[5], reply[6] = ds, tonumber(d[2]) or 0
  end
  reply[7] = redis.call('ZCOUNT', KEYS[3], '(' .. now, '+inf')
end
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[q + 1]) == 1 then
  local v = redis.call('HMGET', KEYS[q + 1], 'req', 'tok', 'nanos')
  reply[8] = 1
  reply[9], reply[10], reply[11] = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
  -- Only reservations whose lease is still running hold anything.
  local live = redis.call('ZRANGEBYSCORE', KEYS[q + 2], '(' .. now, '+inf')
  for _, id in ipairs(live) do
    local r = redis.call('HGET', KEYS[q + 3], id)
    if r then
      local a, b = string.match(r, '^(%d+) (%d+)$')
      reply[12] = reply[12] + (tonumber(a) or 0)
      reply[13] = reply[13] + (tonumber(b) or 0)
    end
  end
  reply[14] = #live
end
return reply
