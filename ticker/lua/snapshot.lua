-- The live items, the stream id they reflect and the data's epoch, in one atomic step.
-- An empty Redis gets its epoch here if no event has written one yet (SET NX: every
-- node and the publish step agree on the first one written).
-- KEYS: 1 live zset, 2 events stream, 3 epoch ; ARGV: 1 item key prefix, 2 a new epoch
local last = '0-0'
if redis.call('EXISTS', KEYS[2]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1] end
  end
end
local epoch = redis.call('GET', KEYS[3])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[3], epoch)
end
local out = {last, epoch}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local doc = redis.call('HGET', ARGV[1] .. id, 'item')
  if doc then out[#out + 1] = doc end
end
return out
