-- renew: extend the leases of requests still in flight on this replica (concurrency slots, budget
-- reservations). A member already gone (expired, or released) is not brought back (ZADD XX).
--
-- KEYS[1]  a level's 'conc' or 'resv' sorted set; KEYS[2] (optional) a key living as long ('resvsum')
-- ARGV     lease seconds, then request ids

local expiry = fmt(now_s() + tonumber(ARGV[1]))
for j = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[j])
end
for k = 1, #KEYS do
  redis.call('EXPIRE', KEYS[k], math.ceil(tonumber(ARGV[1])) + WINDOW)
end
return 1
