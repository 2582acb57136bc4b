-- Takes a request's in-flight marks back when it ends.
--
-- KEYS: the in-flight sets it was marked in. ARGV: the request id.
for _, in_flight in ipairs(KEYS) do
  redis.call('ZREM', in_flight, ARGV[1])
end
return 1
