-- Adds usage counted elsewhere (while Redis was unreachable) to quota totals
-- that Redis still has; totals it has lost are seeded from the store instead.
--
-- KEYS: quota totals hashes. ARGV: per key, requests, tokens, nano-USD.
-- Reply: how many totals were updated.

local done = 0
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    local a = (i - 1) * 3
    redis.call('HINCRBY', KEYS[i], 'req', ARGV[a + 1])
    redis.call('HINCRBY', KEYS[i], 'tok', ARGV[a + 2])
    redis.call('HINCRBY', KEYS[i], 'nanos', ARGV[a + 3])
    done = done + 1
  end
end
return done
