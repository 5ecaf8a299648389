-- Start the jobs a worker's poll found, as arq's start_jobs does one at a time (WATCH the
-- job's in-progress key; EXISTS; ZSCORE; MULTI, PSETEX, EXEC): a job is taken when it is
-- still queued, due, and held by no worker. At most ARGV[3] are taken.
-- KEYS: 1 the queue (zset), 2.. each job's in-progress key
-- ARGV: 1 now (ms), 2 the in-progress mark's lifetime (ms), 3 free slots, 4.. the job ids
--       (ARGV[i + 2] is the job of KEYS[i])
-- Returns the ids taken, each followed by its score.
local taken = {}
local free = tonumber(ARGV[3])
local now = tonumber(ARGV[1])
for i = 2, #KEYS do
  if #taken >= 2 * free then
    break
  end
  local id = ARGV[i + 2]
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) <= now and redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('PSETEX', KEYS[i], ARGV[2], '1')
    taken[#taken + 1] = id
    taken[#taken + 1] = score
  end
end
return taken
