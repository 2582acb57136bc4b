-- Settles a request: its reservation is given back and its cost charged, to every budget it
-- reserved against. The first charge of a period that takes an account past its alert
-- threshold is marked, so one replica alone sends the alert.
--
-- KEYS, two per budget: the account and its leases. ARGV: now (ms), the lease, the amount it
-- reserved, the cost, how long an untouched account is kept (ms), then three per budget: its
-- period's first ms, its seed, its alert threshold (-1: none).
--
-- Returns, per budget: spent this period after the charge, and 1 if this charge is the one
-- to alert about (else 0).
local now = tonumber(ARGV[1])
local lease = ARGV[2]
local amount = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local ttl = tonumber(ARGV[5])

local reply = {}
for i = 1, #KEYS / 2 do
  local account, leases = KEYS[2 * i - 1], KEYS[2 * i]
  local period = tonumber(ARGV[5 + 3 * i - 2])
  local seed = tonumber(ARGV[5 + 3 * i - 1])
  local threshold = tonumber(ARGV[5 + 3 * i])
  -- A lease that lapsed meanwhile was given back already.
  if redis.call('ZREM', leases, lease) == 1 then
    redis.call('HINCRBY', account, 'reserved', -amount)
  end
  account_now(account, leases, now, period, seed)
  local spent = redis.call('HINCRBY', account, 'spent', cost)
  keep(account, leases, ttl)
  local alert = 0
  if threshold >= 0 and cost > 0 and spent >= threshold then
    local current = redis.call('HGET', account, 'period')
    if redis.call('HGET', account, 'alerted') ~= current then
      redis.call('HSET', account, 'alerted', current)
      alert = 1
    end
  end
  reply[#reply + 1] = spent
  reply[#reply + 1] = alert
end
return reply
