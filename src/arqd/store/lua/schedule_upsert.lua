-- Create or change a schedule, or pause, resume or delete one (atomic, so concurrent
-- upserts of one name leave one schedule with one next fire time).
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  events stream cap, ARGV[2] schedule name, ARGV[3] what to do:
--   upsert  ARGV[4] definition JSON, ARGV[5] version, ARGV[6] next fire time (ms): the
--           same version changes nothing; another replaces the definition and, unless
--           the schedule is paused, its next time
--   pause   ARGV[4] reason: it keeps its definition and has no next time until resumed
--   resume  ARGV[4] next fire time (ms)
--   delete
-- Returns  1 if it changed anything, else 0 (for delete: 0 when there was none)
local prefix, maxlen, name, op = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local key, times = prefix .. 'sc:' .. name, prefix .. 'scnext'
local f = redis.call('HMGET', key, 'ver', 'paused', 'def')
local event, detail
if op == 'upsert' then
  if f[1] == ARGV[5] then
    return 0
  end
  redis.call('HSET', key, 'def', ARGV[4], 'ver', ARGV[5])
  if not f[2] then
    redis.call('HSET', key, 'next', ARGV[6])
    redis.call('ZADD', times, ARGV[6], name)
  end
  event = f[1] and 'schedule_changed' or 'schedule_created'
elseif not f[3] then
  return 0  -- no such schedule
elseif op == 'pause' then
  if f[2] then
    return 0
  end
  redis.call('HSET', key, 'paused', '1', 'reason', ARGV[4])
  redis.call('HDEL', key, 'next')
  redis.call('ZREM', times, name)
  event, detail = 'schedule_paused', ARGV[4]
elseif op == 'resume' then
  if not f[2] then
    return 0
  end
  redis.call('HDEL', key, 'paused', 'reason')
  redis.call('HSET', key, 'next', ARGV[4])
  redis.call('ZADD', times, ARGV[4], name)
  event = 'schedule_resumed'
elseif op == 'delete' then
  redis.call('DEL', key)
  redis.call('ZREM', times, name)
  event = 'schedule_deleted'
else
  return redis.error_reply('unknown operation ' .. op)
end
emit(prefix, maxlen, '', event, '', 0, cjson.encode({schedule = name, reason = detail}))
return 1
