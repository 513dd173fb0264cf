-- One admission: check every scope and the quota, then count all of them or
-- nothing (docs/limits.md). Time is Redis's own, so a fleet shares one clock.
--
-- KEYS: per scope (sorted by kind, id): minute window, day window, concurrency
--   set; then, with a quota: totals hash, reservation lease set, reservation
--   amounts hash.
-- ARGV: 1 request id, 2 lease ms, 3 demand tokens, 4 demand nano-USD,
--   5 number of scopes, 6 1 when there is a quota; per scope 4 limits
--   (requests/minute, requests/day, tokens/minute, max concurrent; '-' = none);
--   with a quota: requests, tokens, budget nano-USD ('-' = none), period end ms
--   (-1 = never), seed requests, tokens, nano-USD.
-- Reply, refused: {0, code, scope index (0 = quota), used, retry ms or -1};
--   codes 1 concurrency, 2 rpm, 3 rpd, 4 tpm, 5 quota requests, 6 quota tokens,
--   7 budget. Admitted: {1, now, per scope: minute start, minute requests,
--   minute tokens, day start, day requests} (start -1 = no window kept).

if redis.replicate_commands then redis.replicate_commands() end

local MINUTE, DAY, GRACE = 60000, 86400000, 5000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rid = ARGV[1]
local lease = tonumber(ARGV[2])
local dtok = tonumber(ARGV[3])
local dnanos = tonumber(ARGV[4])
local n = tonumber(ARGV[5])
local has_quota = ARGV[6] == '1'

-- Integers as Redis arguments: Lua's default number formatting switches to an
-- exponent for large values, which HINCRBY would reject.
local function int(x) return string.format('%d', x) end

-- An open window's start and counts; a closed (or never opened) one is empty.
local function window(key, len)
  local v = redis.call('HMGET', key, 's', 'r', 't')
  local s = tonumber(v[1])
  if s == nil or now >= s + len then return nil, 0, 0 end
  return s, tonumber(v[2]) or 0, tonumber(v[3]) or 0
end

local function until_end(s, len)
  if s then return s + len - now end
  return -1
end

-- Checks, scope by scope: concurrency, requests/minute, requests/day, tokens/minute.
local st = {}
for i = 1, n do
  local k, a = (i - 1) * 3, 6 + (i - 1) * 4
  local s = {
    rpm = tonumber(ARGV[a + 1]), rpd = tonumber(ARGV[a + 2]),
    tpm = tonumber(ARGV[a + 3]), conc = tonumber(ARGV[a + 4]),
    mr = 0, mt = 0, dr = 0,
  }
  if s.conc then
    -- Slots whose lease ran out belong to requests that were never settled
    -- (a crashed instance): they come back here.
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    local f = redis.call('ZCARD', KEYS[k + 3])
    if f + 1 > s.conc then return {0, 1, i, f, 1000} end
  end
  if s.rpm or s.tpm then
    s.ms, s.mr, s.mt = window(KEYS[k + 1], MINUTE)
    if s.rpm and s.mr + 1 > s.rpm then
      return {0, 2, i, s.mr, until_end(s.ms, MINUTE)}
    end
  end
  if s.rpd then
    s.ds, s.dr = window(KEYS[k + 2], DAY)
    if s.dr + 1 > s.rpd then return {0, 3, i, s.dr, until_end(s.ds, DAY)} end
  end
  if s.tpm and s.mt + dtok > s.tpm then
    return {0, 4, i, s.mt, until_end(s.ms, MINUTE)}
  end
  st[i] = s
end

-- The quota: seeded from the store's totals when Redis has no counters for it,
-- expired reservations given back, then requests, tokens and budget checked.
local qk, qx, qr, qttl
if has_quota then
  local qb, qa = n * 3, 6 + n * 4
  qk, qx, qr = KEYS[qb + 1], KEYS[qb + 2], KEYS[qb + 3]
  local qreq, qtok, qbud = tonumber(ARGV[qa + 1]), tonumber(ARGV[qa + 2]), tonumber(ARGV[qa + 3])
  local pend = tonumber(ARGV[qa + 4])
  local remain = -1
  if pend >= 0 then
    remain = math.max(pend - now, 0)
    qttl = remain + DAY
  else
    qttl = 30 * DAY
  end
  if redis.call('EXISTS', qk) == 0 then
    -- Reservations without their totals refer to counters that are gone.
    redis.call('DEL', qx, qr)
    redis.call('HSET', qk, 'req', ARGV[qa + 5], 'tok', ARGV[qa + 6],
      'nanos', ARGV[qa + 7], 'rtok', 0, 'rnanos', 0)
    redis.call('PEXPIRE', qk, qttl)
  else
    local gone = redis.call('ZRANGEBYSCORE', qx, '-inf', now)
    if #gone > 0 then
      local rt, rn = 0, 0
      for _, id in ipairs(gone) do
        local v = redis.call('HGET', qr, id)
        if v then
          local a, b = string.match(v, '^(%d+) (%d+)$')
          rt, rn = rt + (tonumber(a) or 0), rn + (tonumber(b) or 0)
          redis.call('HDEL', qr, id)
        end
      end
      redis.call('ZREMRANGEBYSCORE', qx, '-inf', now)
      local r = redis.call('HMGET', qk, 'rtok', 'rnanos')
      redis.call('HSET', qk,
        'rtok', int(math.max((tonumber(r[1]) or 0) - rt, 0)),
        'rnanos', int(math.max((tonumber(r[2]) or 0) - rn, 0)))
    end
  end
  local v = redis.call('HMGET', qk, 'req', 'tok', 'nanos', 'rtok', 'rnanos')
  local req, tok, nanos = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
  local rtok, rnanos = tonumber(v[4]) or 0, tonumber(v[5]) or 0
  if qreq and req + 1 > qreq then return {0, 5, 0, req, remain} end
  if qtok and tok + rtok + dtok > qtok then return {0, 6, 0, tok + rtok, remain} end
  if qbud and nanos + rnanos + dnanos > qbud then return {0, 7, 0, nanos + rnanos, remain} end
end

-- Everything passed: count.
local reply = {1, now}
for i = 1, n do
  local s, k = st[i], (i - 1) * 3
  if s.conc then
    redis.call('ZADD', KEYS[k + 3], now + lease, rid)
    redis.call('PEXPIRE', KEYS[k + 3], lease + GRACE)
  end
  if s.rpm or s.tpm then
    local add = 0
    if s.tpm then add = dtok end
    if s.ms then
      redis.call('HINCRBY', KEYS[k + 1], 'r', 1)
      if add > 0 then redis.call('HINCRBY', KEYS[k + 1], 't', int(add)) end
      s.mr, s.mt = s.mr + 1, s.mt + add
    else
      s.ms, s.mr, s.mt = now, 1, add
      redis.call('HSET', KEYS[k + 1], 's', int(now), 'r', 1, 't', int(add))
      redis.call('PEXPIRE', KEYS[k + 1], MINUTE + GRACE)
    end
  end
  if s.rpd then
    if s.ds then
      redis.call('HINCRBY', KEYS[k + 2], 'r', 1)
      s.dr = s.dr + 1
    else
      s.ds, s.dr = now, 1
      redis.call('HSET', KEYS[k + 2], 's', int(now), 'r', 1)
      redis.call('PEXPIRE', KEYS[k + 2], DAY + GRACE)
    end
  end
  local n1 = #reply
  reply[n1 + 1] = s.ms or -1
  reply[n1 + 2] = s.mr
  reply[n1 + 3] = s.mt
  reply[n1 + 4] = s.ds or -1
  reply[n1 + 5] = s.dr
end
if has_quota then
  redis.call('HINCRBY', qk, 'req', 1)
  redis.call('HINCRBY', qk, 'rtok', int(dtok))
  redis.call('HINCRBY', qk, 'rnanos', int(dnanos))
  redis.call('ZADD', qx, now + lease, rid)
  redis.call('HSET', qr, rid, int(dtok) .. ' ' .. int(dnanos))
  redis.call('PEXPIRE', qk, qttl)
  redis.call('PEXPIRE', qx, qttl)
  redis.call('PEXPIRE', qr, qttl)
end
return reply
