-- A budget account shared by every replica: a hash (period: the first ms of the period its
-- spend belongs to; spent and reserved: nano-dollars; alerted: the period an alert was last
-- sent for) and its leases (a sorted set: "request id:nano-dollars" -> when the reservation
-- lapses, in ms). Included at the top of every budget script.

local function lease_amount(lease)
  return tonumber(string.match(lease, ':(%d+)$')) or 0
end

-- The account's spend this period and what is reserved, once the reservations of replicas
-- that never settled them (they died) have lapsed, an account Redis does not have yet (or
-- lost) starts from `seed` (what the store says was spent this period), and a period that
-- has begun since the last request has started its spend again. A `period` earlier than the
-- stored one is a replica whose clock is behind at the boundary: the stored period stands.
local function account_now(account, leases, now, period, seed)
  local lapsed = redis.call('ZRANGEBYSCORE', leases, '-inf', now)
  if #lapsed > 0 then
    local freed = 0
    for _, lease in ipairs(lapsed) do
      freed = freed + lease_amount(lease)
    end
    redis.call('ZREMRANGEBYSCORE', leases, '-inf', now)
    redis.call('HINCRBY', account, 'reserved', -freed)
  end
  local stored = redis.call('HMGET', account, 'period', 'spent', 'reserved')
  local stored_period = tonumber(stored[1])
  if not stored_period then
    local reserved = 0
    for _, lease in ipairs(redis.call('ZRANGE', leases, 0, -1)) do
      reserved = reserved + lease_amount(lease)
    end
    redis.call('HSET', account, 'period', period, 'spent', seed, 'reserved', reserved)
    return seed, reserved
  end
  local spent = tonumber(stored[2]) or 0
  if stored_period < period then
    redis.call('HSET', account, 'period', period, 'spent', 0)
    spent = 0
  end
  return spent, tonumber(stored[3]) or 0
end

local function keep(account, leases, ttl)
  redis.call('PEXPIRE', account, ttl)
  redis.call('PEXPIRE', leases, ttl)
end
