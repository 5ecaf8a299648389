-- The events after a client's last id, or 'reset' when some of them are no
-- longer retained (or the id is unknown), read in one atomic step.
-- The reply: {verdict, the stream's last id, the data's epoch, entries}.
-- KEYS: 1 events stream, 2 epoch ; ARGV: 1 last id (validated "ms-seq"), 2 max
-- entries, 3 'check' to give the verdict only (the caller holds the events itself),
-- 4 the epoch the last id belongs to ('' : the current one)
local function parse(s)
  local ms, seq = string.match(s, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end

local last_id = ARGV[1]
-- Another epoch (or none: the data is gone): the id belongs to a history that is no more.
local epoch = redis.call('GET', KEYS[2])
if not epoch or (ARGV[4] ~= '' and ARGV[4] ~= epoch) then
  return {'reset', '0-0', epoch or ''}
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  if last_id == '0-0' then return {'range', '0-0', epoch} end
  return {'reset', '0-0', epoch}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last, maxdel, first, added, length = '0-0', nil, nil, nil, 0
for i = 1, #info, 2 do
  local k = info[i]
  if k == 'last-generated-id' then last = info[i + 1]
  elseif k == 'max-deleted-entry-id' then maxdel = info[i + 1]
  elseif k == 'entries-added' then added = tonumber(info[i + 1])
  elseif k == 'length' then length = tonumber(info[i + 1])
  elseif k == 'first-entry' and info[i + 1] then first = info[i + 1][1] end
end
if less(last, last_id) then return {'reset', last, epoch} end
-- Entries after the client's id that were deleted (XDEL) mean a gap (Redis 7).
if maxdel and less(last_id, maxdel) then return {'reset', last, epoch} end
-- Trimming removes the oldest entries. If any were removed (or, on Redis < 7,
-- if we cannot tell) and the client's id is older than what is left, some of
-- what it missed may be gone: a fresh snapshot is the safe answer.
local trimmed = (added == nil) or (added > length)
if trimmed then
  if first == nil then
    if last_id ~= last then return {'reset', last, epoch} end
  elseif less(last_id, first) then
    return {'reset', last, epoch}
  end
end
if ARGV[3] == 'check' then return {'range', last, epoch} end
local entries = redis.call('XRANGE', KEYS[1], '(' .. last_id, '+', 'COUNT', ARGV[2])
if #entries >= tonumber(ARGV[2]) then return {'reset', last, epoch} end
return {'range', last, epoch, entries}
