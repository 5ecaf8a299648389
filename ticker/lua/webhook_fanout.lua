-- Fan one event out to the delivery queues of the endpoints it matches, once.
-- The dispatcher's cursor moves in the same step, so a second dispatcher (another
-- worker process) or a re-run after a crash finds the event done and adds nothing.
-- KEYS: 1 dispatcher cursor, 2.. endpoint queues ; ARGV: 1 event id, 2 envelope
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
for i = 2, #KEYS do redis.call('RPUSH', KEYS[i], ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[1])
return 1
