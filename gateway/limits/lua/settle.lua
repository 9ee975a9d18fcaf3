-- settle: a request ended. Replace its token reservation with the real count, add its cost to the
-- spend counters of the day and month it was admitted in, and free its concurrency slot.
-- ``release`` is the same call with 0 tokens and no cost.
--
-- KEYS[i]  base of level i (as in admit)
-- ARGV     request id, reserved tokens, real tokens, cost USD, day id, month id,
--          day counter expire-at, month counter expire-at (epoch s), reserved USD (as admit was given it),
--          then per level: windowed ('1' when the level has rpm/tpm), slot ('1' when it has a concurrency limit),
--          budget ('1' when admit reserved the estimated cost on it)

local reqid, reserved, real, cost = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local day, month, day_exp, month_exp, resv_usd = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local now = now_s()

for i = 1, #KEYS do
  local base = KEYS[i]
  local o = 9 + (i - 1) * 3
  local windowed, slot, budget = ARGV[o + 1] == '1', ARGV[o + 2] == '1', ARGV[o + 3] == '1'
  if windowed then
    trim_window(base, now)
    local old = reqid .. ':' .. reserved
    local score = redis.call('ZSCORE', base .. 'win', old)
    -- Tokens count in the minute the request was admitted; a reservation already out of the window
    -- (a request longer than a minute) has been counted in full and is left alone.
    if score then
      redis.call('ZREM', base .. 'win', old)
      redis.call('ZADD', base .. 'win', score, reqid .. ':' .. real)
      redis.call('INCRBY', base .. 'tok', real - tonumber(reserved))
    end
  end
  if slot then redis.call('ZREM', base .. 'conc', reqid) end
  if budget then unreserve(base, reqid .. ':' .. resv_usd, resv_usd) end
  if cost > 0 then
    local d, m = base .. 'spend:d:' .. day, base .. 'spend:m:' .. month
    redis.call('INCRBYFLOAT', d, ARGV[4])
    redis.call('EXPIREAT', d, day_exp)
    redis.call('INCRBYFLOAT', m, ARGV[4])
    redis.call('EXPIREAT', m, month_exp)
  end
end
return 1
