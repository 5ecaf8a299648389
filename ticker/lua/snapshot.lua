-- The live items and the stream id they reflect, read in one atomic step.
-- KEYS: 1 live zset, 2 events stream ; ARGV: 1 item key prefix
local last = '0-0'
if redis.call('EXISTS', KEYS[2]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1] end
  end
end
local out = {last}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local doc = redis.call('HGET', ARGV[1] .. id, 'item')
  if doc then out[#out + 1] = doc end
end
return out
