-- Raises accounts to what the store says was spent this period, where they show less: a
-- settlement that never reached Redis (it was away) still counts once its spend record is
-- stored. The store lags behind Redis otherwise, so this changes nothing then.
--
-- KEYS, two per budget: the account and its leases. ARGV: now (ms), how long an untouched
-- account is kept (ms), then two per budget: its period's first ms, the store's figure.
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local raised = 0
for i = 1, #KEYS / 2 do
  local account, leases = KEYS[2 * i - 1], KEYS[2 * i]
  local period = tonumber(ARGV[2 + 2 * i - 1])
  local stored = tonumber(ARGV[2 + 2 * i])
  local spent = account_now(account, leases, now, period, stored)
  if spent < stored and tonumber(redis.call('HGET', account, 'period')) == period then
    redis.call('HSET', account, 'spent', stored)
    raised = raised + 1
  end
  keep(account, leases, ttl)
end
return raised
