-- Reserves a request's worst case against every budget given, or against none.
--
-- KEYS, two per budget: the account and its leases (see budget_account_v1.lua).
-- ARGV: now (ms), when the reservation lapses (ms), the lease ("request id:amount"), the
-- amount, the room each budget must have left for the reservation to be made without the
-- prompt counted (>= amount), how long an untouched account is kept (ms), then three per
-- budget: its max (-1: none), its period's first ms, its seed.
--
-- Returns {1}: reserved; {2}: every budget takes the amount but one has less than the room
-- (nothing reserved: count the prompt and ask again); {0, budget, spent}: the first budget
-- the amount does not fit.
local now = tonumber(ARGV[1])
local lapses = tonumber(ARGV[2])
local lease = ARGV[3]
local amount = tonumber(ARGV[4])
local room = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local budgets = #KEYS / 2

local tight = false
for i = 1, budgets do
  local max = tonumber(ARGV[6 + 3 * i - 2])
  local period = tonumber(ARGV[6 + 3 * i - 1])
  local seed = tonumber(ARGV[6 + 3 * i])
  local spent, reserved = account_now(KEYS[2 * i - 1], KEYS[2 * i], now, period, seed)
  if max >= 0 then
    if spent + reserved + amount > max then
      return {0, i, spent}
    end
    if spent + reserved + room > max then
      tight = true
    end
  end
end
if tight then
  return {2}
end
for i = 1, budgets do
  local account, leases = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('HINCRBY', account, 'reserved', amount)
  redis.call('ZADD', leases, lapses, lease)
  keep(account, leases, ttl)
end
return {1}
