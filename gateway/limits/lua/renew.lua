-- renew: extend the concurrency leases of requests still in flight on this replica.
-- A member already gone (expired, or released) is not brought back (ZADD XX).
--
-- KEYS[1]  a level's 'conc' sorted set
-- ARGV     lease seconds, then request ids

local expiry = fmt(now_s() + tonumber(ARGV[1]))
for j = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[j])
end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + WINDOW)
return 1
