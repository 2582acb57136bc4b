-- Admits one request under every rate limit given, or under none: the limits' windows are
-- shared by every replica, and Redis runs this whole script before any other command.
--
-- KEYS, two per limited entity: its window (a hash: opened, requests, tokens) and its
-- requests in flight (a sorted set: request id -> when the mark lapses, in ms).
-- ARGV: now (ms), when this request's mark lapses (ms), the request id, the window's length
-- (ms), then three per entity: rpm, tpm, max parallel requests (-1: no such limit).
--
-- Returns {1, opened, requests, tokens, ...} (per entity, the request counted), or
-- {0, entity, opened, requests, tokens, in_flight} for the first entity with no room.
local now = tonumber(ARGV[1])
local lapses = tonumber(ARGV[2])
local request = ARGV[3]
local window_ms = tonumber(ARGV[4])
local entities = #KEYS / 2

local seen = {}
for i = 1, entities do
  local window, in_flight_key = KEYS[2 * i - 1], KEYS[2 * i]
  local rpm = tonumber(ARGV[4 + 3 * i - 2])
  local tpm = tonumber(ARGV[4 + 3 * i - 1])
  local parallel = tonumber(ARGV[4 + 3 * i])
  local stored = redis.call('HMGET', window, 'opened', 'requests', 'tokens')
  local opened = tonumber(stored[1])
  local requests = tonumber(stored[2]) or 0
  local tokens = tonumber(stored[3]) or 0
  if not opened or now >= opened + window_ms then
    opened, requests, tokens = now, 0, 0
  end
  local in_flight = 0
  if parallel >= 0 then
    -- Marks of requests whose replica never took them back (it died) lapse here.
    redis.call('ZREMRANGEBYSCORE', in_flight_key, '-inf', now)
    in_flight = redis.call('ZCARD', in_flight_key)
  end
  if (rpm >= 0 and requests >= rpm) or (tpm >= 0 and tokens >= tpm)
      or (parallel >= 0 and in_flight >= parallel) then
    return {0, i, opened, requests, tokens, in_flight}
  end
  seen[i] = {opened, requests, tokens, parallel}
end

local reply = {1}
for i = 1, entities do
  local window, in_flight_key = KEYS[2 * i - 1], KEYS[2 * i]
  local opened, requests, tokens, parallel = unpack(seen[i])
  requests = requests + 1
  redis.call('HSET', window, 'opened', opened, 'requests', requests, 'tokens', tokens)
  redis.call('PEXPIRE', window, 2 * window_ms)
  if parallel >= 0 then
    redis.call('ZADD', in_flight_key, lapses, request)
    redis.call('PEXPIRE', in_flight_key, lapses - now)
  end
  reply[#reply + 1] = opened
  reply[#reply + 1] = requests
  reply[#reply + 1] = tokens
end
return reply
