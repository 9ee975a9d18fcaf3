-- reconcile: rebuild one level's spend counters from the database after Redis lost them.
-- Only the first replica to get here writes (the marker doubles as SET NX); a counter already higher
-- than the database total (requests settled here but not yet flushed to the database) is kept.
--
-- KEYS[1]  base of the level
-- ARGV     day id, month id, day USD, month USD, day expire-at, month expire-at, marker TTL seconds
-- Reply    1 when this call rebuilt the counters, 0 when another replica already had

local base = KEYS[1]
if redis.call('EXISTS', base .. 'epoch') == 1 then return 0 end
local function raise_to(key, value, expire_at)
  local cur = tonumber(redis.call('GET', key)) or 0
  if tonumber(value) > cur then redis.call('SET', key, value) end
  if redis.call('EXISTS', key) == 1 then redis.call('EXPIREAT', key, expire_at) end
end
raise_to(base .. 'spend:d:' .. ARGV[1], ARGV[3], ARGV[5])
raise_to(base .. 'spend:m:' .. ARGV[2], ARGV[4], ARGV[6])
local t = redis.call('TIME')
redis.call('SET', base .. 'epoch', t[1], 'EX', ARGV[7])
return 1
