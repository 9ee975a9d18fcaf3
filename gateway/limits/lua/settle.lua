-- settle: a request ended. Replace its token reservation with the real count, add its cost to the
-- spend counters of the day and month it was admitted in, and free its concurrency slot.
-- ``release`` is the same call with 0 tokens and no cost; ``cancel`` (an unused ticket) also takes the
-- request out of the window, as if it had never been admitted.
--
-- KEYS[i]  base of level i (as in admit)
-- ARGV     request id, reserved tokens, real tokens, cost USD, day id, month id,
--          day counter expire-at, month counter expire-at (epoch s), reserved USD (as admit was given it),
--          stamp (a ticket's time of use: its window member is re-scored to it; '' = keep the admit time),
--          cancel ('1': drop the window member),
--          then per level: windowed ('1' when the level has rpm/tpm), slot ('1' when it has a concurrency limit),
--          budget ('1' when admit reserved the estimated cost on it)

local reqid, reserved, real, cost = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local day, month, day_exp, month_exp, resv_usd = ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local stamp, cancel = ARGV[10], ARGV[11] == '1'
local now = now_s()

for i = 1, #KEYS do
  local base = KEYS[i]
  local o = 11 + (i - 1) * 3
  local windowed, slot, budget = ARGV[o + 1] == '1', ARGV[o + 2] == '1', ARGV[o + 3] == '1'
  if windowed then
    trim_window(base, now)
    local old = reqid .. ':' .. reserved
    local score = redis.call('ZSCORE', base .. 'win', old)
    -- Tokens count in the minute the request was admitted; a reservation already out of the window
    -- (a request longer than a minute) has been counted in full and is left alone.
    if score and cancel then
      redis.call('ZREM', base .. 'win', old)
      if redis.call('ZCARD', base .. 'win') == 0 then
        redis.call('DEL', base .. 'tok')
      else
        redis.call('DECRBY', base .. 'tok', reserved)
      end
    elseif score then
      redis.call('ZREM', base .. 'win', old)
      redis.call('ZADD', base .. 'win', stamp ~= '' and stamp or score, reqid .. ':' .. real)
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
