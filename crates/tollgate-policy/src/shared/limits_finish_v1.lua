-- Ends a request's place under its rate limits: its tokens are counted against the tpm
-- windows it was admitted under (a window that has ended since is opened again by them, as in
-- one replica's memory), and its in-flight marks are taken back.
--
-- KEYS: the windows to count tokens in (ARGV[3] of them), then the in-flight sets it was
-- marked in. ARGV: now (ms), the window's length (ms), how many windows, the tokens, the
-- request id.
local now = tonumber(ARGV[1])
local window_ms = tonumber(ARGV[2])
local windows = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local request = ARGV[5]
for i = 1, windows do
  local window = KEYS[i]
  local opened = tonumber(redis.call('HGET', window, 'opened'))
  if not opened or now >= opened + window_ms then
    redis.call('HSET', window, 'opened', now, 'requests', 0, 'tokens', tokens)
  else
    redis.call('HINCRBY', window, 'tokens', tokens)
  end
  redis.call('PEXPIRE', window, 2 * window_ms)
end
for i = windows + 1, #KEYS do
  redis.call('ZREM', KEYS[i], request)
end
return 1
