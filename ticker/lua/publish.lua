-- The one atomic step: store the item, update the live set, append the event
-- to the stream and publish it (carrying its stream id). Idempotent on the
-- item id and version: a job that runs twice publishes once.
--
-- KEYS: 1 item hash, 2 live zset, 3 events stream, 4 dedupe key, 5 recent zset
--       of the edition (4 and 5 are a placeholder on the same slot when unused),
--       6 the data's epoch, 7 the count of items added to the recent zset, 8 the
--       publishing worker's share of that count (7 and 8: placeholders when absent)
-- ARGV: 1 item id, 2 version, 3 event type, 4 item JSON ('' keeps the stored one),
--       5 event body JSON without id, 6 score (ms), 7 channel, 8 maxlen,
--       9 minid ('0' for none), 10 dedupe ttl (s; 0: no dedupe key), 11 status,
--       12 live action (add | remove | keep), 13 recent window (ms; 0: no recent
--       zset), 14 publish command,
--       15 the draft revision the job read ('' when versions are immutable),
--       16 an epoch for an empty Redis (kept only if there is none yet),
--       17 the item's story facts JSON ('' or absent: none), stored beside it,
--       18 how many of the recent zset's items other workers added, as the worker's
--       near-duplicate decision knew it ('' or absent: no decision to check),
--       19 '1' when KEYS[8] is the publishing worker's own count
local item, live, events = KEYS[1], KEYS[2], KEYS[3]
local dedupe = ARGV[10] ~= '0' and KEYS[4] or ''
local recent = ARGV[13] ~= '0' and KEYS[5] or ''
local id, version = ARGV[1], tonumber(ARGV[2])

local done = tonumber(redis.call('HGET', item, 'published_version') or '0')
if done >= version then
  return {'exists', redis.call('HGET', item, 'event_id') or ''}
end
-- Changes apply in version order: a later one waits for the one before it.
if done ~= version - 1 then
  return {'wait', tostring(done)}
end
-- An unpublished draft edited since the job read it: the job must read again.
if ARGV[15] ~= '' and (redis.call('HGET', item, 'rev') or '0') ~= ARGV[15] then
  return {'stale', ''}
end
if redis.call('HGET', item, 'status') == 'cancelled' then
  return {'cancelled', ''}
end
if dedupe ~= '' then
  local first = redis.call('GET', dedupe)
  if first and first ~= id then
    redis.call('HSET', item, 'status', 'duplicate', 'duplicate_of', first)
    return {'duplicate', first}
  end
end
-- Another worker added to the edition's recent items since this one's decision read
-- them: the decision may have missed a telling of the same story, so it is made again.
if ARGV[18] and ARGV[18] ~= '' then
  local all = tonumber(redis.call('GET', KEYS[7]) or '0')
  local mine = tonumber(redis.call('GET', KEYS[8]) or '0')
  if all - mine ~= tonumber(ARGV[18]) then
    return {'changed', ''}
  end
end
if dedupe ~= '' then
  redis.call('SET', dedupe, id, 'EX', ARGV[10])
end

-- A retraction (a kill) purges the item's earlier events from the stream, so no
-- replay returns the killed text; a resume from before them gets a reset (the
-- stream records the deletion: resume.lua). 'event_ids' lists the item's events;
-- an item published before it was kept is found by reading the stream.
if ARGV[3] == 'item.retracted' then
  local ids = redis.call('HGET', item, 'event_ids')
  if ids then
    for eid in string.gmatch(ids, '%S+') do
      redis.call('XDEL', events, eid)
    end
  else
    for _, entry in ipairs(redis.call('XRANGE', events, '-', '+')) do
      local fields = entry[2]
      for i = 1, #fields, 2 do
        if fields[i] == 'item' and fields[i + 1] == id then
          redis.call('XDEL', events, entry[1])
        end
      end
    end
  end
end

-- The first event of an empty Redis (new, or one that lost its data) starts an epoch:
-- API nodes that knew another one reset, and ids from before are not resumed.
local epoch = redis.call('GET', KEYS[6])
if not epoch then
  epoch = ARGV[16]
  redis.call('SET', KEYS[6], epoch)
end

local body = ARGV[5]
local eid = redis.call('XADD', events, 'MAXLEN', '~', ARGV[8], '*',
  'type', ARGV[3], 'item', id, 'data', body)
if ARGV[9] ~= '0' then
  redis.call('XTRIM', events, 'MINID', '~', ARGV[9])
end

-- The id clients see (the envelope's): the stream id and the epoch.
local token = eid .. '.' .. epoch
redis.call('HSET', item, 'published_version', version, 'event_id', token, 'status', ARGV[11])
-- The item's own stream entries (plain ids), for a retraction to purge.
if ARGV[3] == 'item.retracted' then
  redis.call('HSET', item, 'event_ids', eid)
else
  local ids = redis.call('HGET', item, 'event_ids')
  redis.call('HSET', item, 'event_ids', ids and (ids .. ' ' .. eid) or eid)
end
if ARGV[4] ~= '' then
  redis.call('HSET', item, 'item', ARGV[4])
end
if ARGV[17] and ARGV[17] ~= '' then
  redis.call('HSET', item, 'facts', ARGV[17])
end

local action = ARGV[12]
if action == 'add' then
  redis.call('ZADD', live, ARGV[6], id)
  if recent ~= '' then
    -- Scores never go back (a worker's clock or a slow job may be behind the last one):
    -- a worker reading the items from the newest score it has seen misses none.
    local at = ARGV[6]
    local newest = redis.call('ZRANGE', recent, -1, -1, 'WITHSCORES')[2]
    if newest and tonumber(newest) > tonumber(at) then
      at = newest
    end
    redis.call('ZADD', recent, at, id)
    redis.call('ZREMRANGEBYSCORE', recent, '-inf', tonumber(ARGV[6]) - tonumber(ARGV[13]))
    redis.call('INCR', KEYS[7])
    redis.call('PEXPIRE', KEYS[7], ARGV[13])
    if ARGV[19] == '1' then
      redis.call('INCR', KEYS[8])
      redis.call('PEXPIRE', KEYS[8], ARGV[13])
    end
  end
elseif action == 'remove' then
  redis.call('ZREM', live, id)
  if recent ~= '' then redis.call('ZREM', recent, id) end
end

redis.call(ARGV[14], ARGV[7], '{"id":"' .. token .. '",' .. string.sub(body, 2))
return {'published', token}
