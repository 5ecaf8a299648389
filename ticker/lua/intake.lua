-- Record an accepted item, once per idempotency key.
-- KEYS: 1 idempotency key (a placeholder on the same slot when unused), 2 item
--       hash, 3 history list, 4 listing index (zset by creation time)
-- ARGV: 1 body hash, 2 response JSON, 3 ttl (0: no idempotency key), 4 submitted
--       JSON, 5 principal,
--       6 created_at, 7 history entry JSON, 8 status (queued | embargoed),
--       9 item id, 10 creation time (ms), 11 newest entries the index keeps
if ARGV[3] ~= '0' then
  local prev = redis.call('GET', KEYS[1])
  if prev then return prev end
  redis.call('SET', KEYS[1], ARGV[1] .. '\n' .. ARGV[2], 'EX', ARGV[3])
end
redis.call('HSET', KEYS[2], 'status', ARGV[8], 'submitted', ARGV[4], 'version', '1',
  'principal', ARGV[5], 'created_at', ARGV[6])
redis.call('RPUSH', KEYS[3], ARGV[7])
redis.call('ZADD', KEYS[4], ARGV[10], ARGV[9])
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -tonumber(ARGV[11]) - 1)
return false
