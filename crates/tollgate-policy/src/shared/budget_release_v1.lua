-- Gives back a reservation whose request never reached a provider.
--
-- KEYS, two per budget: the account and its leases. ARGV: the lease, the amount it reserved.
local lease = ARGV[1]
local amount = tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  if redis.call('ZREM', KEYS[2 * i], lease) == 1 then
    redis.call('HINCRBY', KEYS[2 * i - 1], 'reserved', -amount)
  end
end
return 1
