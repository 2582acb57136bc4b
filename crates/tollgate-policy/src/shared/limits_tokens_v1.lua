-- Counts the tokens a request used against the tpm windows of the entities it was admitted
-- under; a window that has ended since is opened again by them, as in one replica's memory.
--
-- KEYS: the windows. ARGV: now (ms), the window's length (ms), the tokens.
local now = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local tokens = tonumber(ARGV[3])
for _, window in ipairs(KEYS) do
  local opened = tonumber(redis.call('HGET', window, 'opened'))
  if not opened or now >= opened + window_ms then
    redis.call('HSET', window, 'opened', now, 'requests', 0, 'tokens', tokens)
  else
    redis.call('HINCRBY', window, 'tokens', tokens)
  end
  redis.call('PEXPIRE', window, 2 * window_ms)
end
return 1
