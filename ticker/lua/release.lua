-- An editor publishes a held item anyway: back to the queue under a new draft
-- revision (so a fresh ingest job runs), marked to skip the near-duplicate check.
--
-- KEYS: 1 item hash, 2 history list
-- ARGV: 1 history entry JSON
-- Returns {'released', new revision} or {'conflict', current status}.
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'held' then
  return {'conflict', status or 'missing'}
end
local rev = tostring(tonumber(redis.call('HGET', KEYS[1], 'rev') or '0') + 1)
redis.call('HSET', KEYS[1], 'status', 'queued', 'publish_anyway', '1', 'rev', rev)
redis.call('RPUSH', KEYS[2], ARGV[1])
return {'released', rev}
