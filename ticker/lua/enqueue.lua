-- Enqueue an arq job once: arq's enqueue_job (WATCH, EXISTS, MULTI, PSETEX, ZADD, EXEC:
-- three round trips) as one atomic step. Nothing happens when the job, or its result, is
-- already held, so a job id keeps enqueueing idempotent.
-- KEYS: 1 job key, 2 result key, 3 queue zset
-- ARGV: 1 job id, 2 score (ms it is due), 3 job key lifetime (ms), 4 the serialized job
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then
  return 0
end
redis.call('PSETEX', KEYS[1], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1
