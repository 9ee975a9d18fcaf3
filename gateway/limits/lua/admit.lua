-- admit: check and take every limit of a key and its team in one atomic step.
--
-- KEYS[i]  base of level i (the key, then its team; 1 or 2 levels)
-- ARGV     request id, estimated tokens, lease seconds, skip_epoch ('1' after a reconcile attempt),
--          estimated cost USD (reserved against budgets; '0' = none), share ('1' for a request; below 1 for
--          a ticket, which is admitted only if every limit, scaled by the share, still holds with it),
--          then per level: rpm, tpm, max_concurrency, budget_daily, budget_monthly ('' = unlimited)
-- Reply    {status, now, req_limit, req_remaining, req_reset_ms, tok_limit, tok_remaining, tok_reset_ms,
--           level, kind, retry_ms, limit, used, missing, reserved}
--          status 'ok' | 'deny' | 'reconcile' (levels in ``missing`` lost their spend counters);
--          ``now`` is the server's time: the client derives the UTC day and month from it.

local reqid, est, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local skip_epoch = ARGV[4] == '1'
local est_usd_s = ARGV[5]
local est_usd = tonumber(est_usd_s)
local share = tonumber(ARGV[6])
local now = now_s()

local L = {}
for i = 1, #KEYS do
  local o = 6 + (i - 1) * 5
  L[i] = {
    base = KEYS[i],
    rpm = tonumber(ARGV[o + 1]), tpm = tonumber(ARGV[o + 2]), conc = tonumber(ARGV[o + 3]),
    bd = tonumber(ARGV[o + 4]), bm = tonumber(ARGV[o + 5]),
  }
end

local function reply(status, h, deny, missing)
  h = h or {}
  deny = deny or {}
  return {
    status, fmt(now),
    h.rl or '', h.rr or '', h.rres or '', h.tl or '', h.tr or '', h.tres or '',
    deny.level or '', deny.kind or '', deny.retry_ms or '', deny.limit or '', deny.used or '', missing or '',
    deny.reserved or '',
  }
end

-- 1. A level with a budget whose marker is gone (Redis restarted or was flushed) needs its spend rebuilt.
if not skip_epoch then
  local missing = {}
  for i, l in ipairs(L) do
    if (l.bd or l.bm) and redis.call('EXISTS', l.base .. 'epoch') == 0 then missing[#missing + 1] = tostring(i) end
  end
  if #missing > 0 then return reply('reconcile', nil, nil, table.concat(missing, ',')) end
end

-- 2. Current state of every level. Calendar periods only when a budget needs them: time spent here
-- is time on the one server every replica shares.
local P
for _, l in ipairs(L) do
  if l.rpm or l.tpm then
    trim_window(l.base, now)
    l.count = redis.call('ZCARD', l.base .. 'win')
    l.tokens = tonumber(redis.call('GET', l.base .. 'tok')) or 0
  end
  if l.conc then
    redis.call('ZREMRANGEBYSCORE', l.base .. 'conc', '-inf', fmt(now))
    l.inflight = redis.call('ZCARD', l.base .. 'conc')
  end
  if l.bd or l.bm then
    if not P then P = periods(now) end
    trim_reservations(l.base, now)
    l.reserved = tonumber(redis.call('GET', l.base .. 'resvsum')) or 0
  end
  if l.bd then l.spent_d = tonumber(redis.call('GET', l.base .. 'spend:d:' .. P.day)) or 0 end
  if l.bm then l.spent_m = tonumber(redis.call('GET', l.base .. 'spend:m:' .. P.month)) or 0 end
end

-- Seconds until the ``n``-th oldest window member (1-based) leaves the window.
local function member_expiry(base, n)
  local got = redis.call('ZRANGE', base .. 'win', n - 1, n - 1, 'WITHSCORES')
  if #got == 0 then return WINDOW end
  return math.max(0, tonumber(got[2]) + WINDOW - now)
end

-- Seconds until enough tokens leave the window to free ``needed``.
local function tokens_expiry(base, needed)
  local got = redis.call('ZRANGE', base .. 'win', 0, 999, 'WITHSCORES')
  local freed = 0
  for j = 1, #got, 2 do
    freed = freed + tonumber(string.match(got[j], ':(%d+)$'))
    if freed >= needed then return math.max(0, tonumber(got[j + 1]) + WINDOW - now) end
  end
  return WINDOW
end

-- 3. Checks, most lasting first, so the reason given is the one that decides when a retry can pass.
local deny
local function refuse(i, kind, retry, limit, used, reserved)
  deny = {level = tostring(i), kind = kind, retry_ms = tostring(math.ceil(retry * 1000)),
          limit = tostring(limit), used = tostring(used), reserved = reserved and tostring(reserved)}
end
-- A budget takes a request only if what is spent, what requests in flight reserved and this request's
-- estimate all fit: concurrency then cannot push spend past the budget, only estimates that fell short.
-- Refused with room left: retry in a second if it fits once the requests in flight settle.
local function check_budget(i, kind, budget, spent, reserved, period_end)
  budget = budget * share
  if spent >= budget then
    refuse(i, kind, period_end - now, budget, spent)
  elseif spent + reserved + est_usd > budget then
    local retry = spent + est_usd <= budget and 1 or period_end - now
    refuse(i, kind, retry, budget, spent, reserved)
  end
end
for i, l in ipairs(L) do
  if not deny and l.bm then check_budget(i, 'budget_monthly', l.bm, l.spent_m, l.reserved, P.month_end) end
end
for i, l in ipairs(L) do
  if not deny and l.bd then check_budget(i, 'budget_daily', l.bd, l.spent_d, l.reserved, P.day_end) end
end
for i, l in ipairs(L) do
  if not deny and l.rpm and l.count + 1 > l.rpm * share then
    refuse(i, 'rpm', member_expiry(l.base, l.count - l.rpm + 1), l.rpm, l.count)
  end
end
for i, l in ipairs(L) do
  if not deny and l.tpm and l.tokens + est > l.tpm * share then
    if est > l.tpm * share then
      refuse(i, 'tpm_too_large', -0.001, l.tpm, est)
    else
      refuse(i, 'tpm', tokens_expiry(l.base, l.tokens + est - l.tpm), l.tpm, l.tokens)
    end
  end
end
for i, l in ipairs(L) do
  if not deny and l.conc and l.inflight + 1 > l.conc * share then refuse(i, 'concurrency', 1, l.conc, l.inflight) end
end

-- 4. Admitted: take a request, the token reservation and a concurrency slot on every level.
if not deny then
  for _, l in ipairs(L) do
    if l.rpm or l.tpm then
      redis.call('ZADD', l.base .. 'win', fmt(now), reqid .. ':' .. est)
      redis.call('INCRBY', l.base .. 'tok', est)
      redis.call('EXPIRE', l.base .. 'win', WINDOW + 5)
      redis.call('EXPIRE', l.base .. 'tok', WINDOW + 5)
      l.count = l.count + 1
      l.tokens = l.tokens + est
    end
    if l.conc then
      redis.call('ZADD', l.base .. 'conc', fmt(now + lease), reqid)
      redis.call('EXPIRE', l.base .. 'conc', math.ceil(lease) + WINDOW)
    end
    if (l.bd or l.bm) and est_usd > 0 then
      redis.call('ZADD', l.base .. 'resv', fmt(now + lease), reqid .. ':' .. est_usd_s)
      redis.call('INCRBYFLOAT', l.base .. 'resvsum', est_usd_s)
      redis.call('EXPIRE', l.base .. 'resv', math.ceil(lease) + WINDOW)
      redis.call('EXPIRE', l.base .. 'resvsum', math.ceil(lease) + WINDOW)
    end
  end
end

-- 5. Header numbers: of all levels, the one with the least left.
local h = {}
for _, l in ipairs(L) do
  local reset = '0'
  if (l.rpm or l.tpm) and l.count > 0 then reset = tostring(math.floor(member_expiry(l.base, 1) * 1000 + 0.5)) end
  if l.rpm then
    local left = math.max(0, l.rpm - l.count)
    if h.rr == nil or left < tonumber(h.rr) then
      h.rl, h.rr = tostring(l.rpm), tostring(left)
      h.rres = reset
    end
  end
  if l.tpm then
    local left = math.max(0, l.tpm - l.tokens)
    if h.tr == nil or left < tonumber(h.tr) then
      h.tl, h.tr = tostring(l.tpm), tostring(left)
      h.tres = reset
    end
  end
end

if deny then return reply('deny', h, deny, nil) end
return reply('ok', h, nil, nil)
