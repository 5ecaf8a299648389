-- Fan one event out to the delivery queues of the endpoints it matches, once.
-- The dispatcher's cursor moves in the same step, so a second dispatcher (another
-- worker process) or a re-run after a crash finds the event done and adds nothing.
-- An endpoint deleted meanwhile (its hash gone) gets nothing, so no queue is orphaned.
-- KEYS: 1 dispatcher cursor, then pairs (endpoint hash, endpoint queue)
-- ARGV: 1 event id, 2 envelope
local function parse(s)
  local ms, seq = string.match(s, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local cur = redis.call('GET', KEYS[1])
if cur then
  local cm, cs = parse(cur)
  local em, es = parse(ARGV[1])
  if not (cm < em or (cm == em and cs < es)) then return 0 end
end
for i = 2, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then redis.call('RPUSH', KEYS[i + 1], ARGV[2]) end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
