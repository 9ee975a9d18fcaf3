-- Shared helpers, prepended to every script by gateway/limits/_scripts.py.
--
-- Key layout (``base`` is passed in KEYS, e.g. ``interlock:{t.acme}:k.key1:``):
--   base..'win'             sorted set: one member per request in the last WINDOW seconds,
--                           member ``<request id>:<tokens>``, score = admit time (server clock)
--   base..'tok'             integer: sum of the tokens of the members of 'win'
--   base..'conc'            sorted set: in-flight requests, member = request id, score = lease expiry
--   base..'spend:d:YYYYMMDD', base..'spend:m:YYYYMM'   USD spent (INCRBYFLOAT), UTC periods
--   base..'epoch'           marker: the spend counters were rebuilt from the database
--   base..'resv', base..'resvsum'   budget reservations of requests in flight and their USD total

local WINDOW = 60

-- Scores as fixed-point text: Lua's default number formatting keeps only 14 digits (100 us).
local function fmt(x)
  return string.format('%.6f', x)
end

-- The server's clock, so replicas with skewed clocks agree.
local function now_s()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Civil date from days since 1970-01-01 and back (H. Hinnant's algorithms; Redis Lua has no os.date).
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then y = y + 1 end
  return y, m, d
end

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = m > 2 and m - 3 or m + 9
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

-- The UTC day and month containing ``now``: ids for key names, and their bounds in epoch seconds.
local function periods(now)
  local days = math.floor(now / 86400)
  local y, m, d = civil(days)
  local ny, nm = y, m + 1
  if nm == 13 then ny, nm = y + 1, 1 end
  return {
    day = string.format('%04d%02d%02d', y, m, d),
    month = string.format('%04d%02d', y, m),
    day_start = days * 86400,
    day_end = (days + 1) * 86400,
    month_start = days_from_civil(y, m, 1) * 86400,
    month_end = days_from_civil(ny, nm, 1) * 86400,
  }
end

-- Drop window members older than WINDOW and take their tokens off the running total.
local function trim_window(base, now)
  local win = base .. 'win'
  local cutoff = fmt(now - WINDOW)
  local old = redis.call('ZRANGEBYSCORE', win, '-inf', cutoff)
  if #old == 0 then return end
  local freed = 0
  for _, member in ipairs(old) do
    freed = freed + tonumber(string.match(member, ':(%d+)$'))
  end
  redis.call('ZREMRANGEBYSCORE', win, '-inf', cutoff)
  if redis.call('ZCARD', win) == 0 then
    redis.call('DEL', base .. 'tok')
  else
    redis.call('DECRBY', base .. 'tok', freed)
  end
end

-- Budget reservations of requests in flight: base..'resv' holds ``<request id>:<USD>`` scored by lease
-- expiry (renewed like concurrency slots), base..'resvsum' their total. A crashed replica's reservations
-- expire with their lease; the total is dropped with the last member, so float drift never accumulates.
local function trim_reservations(base, now)
  local key = base .. 'resv'
  local old = redis.call('ZRANGEBYSCORE', key, '-inf', fmt(now))
  if #old == 0 then return end
  local freed = 0
  for _, member in ipairs(old) do
    freed = freed + tonumber(string.match(member, ':([^:]+)$'))
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now))
  if redis.call('ZCARD', key) == 0 then
    redis.call('DEL', base .. 'resvsum')
  else
    redis.call('INCRBYFLOAT', base .. 'resvsum', string.format('%.12f', -freed))
  end
end

-- Drop one reservation (its request settled or failed); a reservation already expired is left alone.
local function unreserve(base, member, usd)
  local key = base .. 'resv'
  if redis.call('ZREM', key, member) == 0 then return end
  if redis.call('ZCARD', key) == 0 then
    redis.call('DEL', base .. 'resvsum')
  else
    redis.call('INCRBYFLOAT', base .. 'resvsum', '-' .. usd)
  end
end
