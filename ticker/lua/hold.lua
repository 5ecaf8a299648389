-- Hold a near-duplicate for an editor: status held, the matched item and the match,
-- an entry in the history. Nothing is published. Changes nothing when the item was
-- cancelled or published, or edited (another revision) since the job read it;
-- a held item that was edited is held again with its new match.
--
-- KEYS: 1 item hash, 2 history list
-- ARGV: 1 the draft revision the job read, 2 duplicate_of, 3 match JSON,
--       4 history entry JSON
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'queued' and status ~= 'embargoed' and status ~= 'held' then
  return status or 'missing'
end
if (redis.call('HGET', KEYS[1], 'rev') or '0') ~= ARGV[1] then
  return 'stale'
end
redis.call('HSET', KEYS[1], 'status', 'held', 'duplicate_of', ARGV[2], 'match', ARGV[3])
redis.call('RPUSH', KEYS[2], ARGV[4])
return 'held'
