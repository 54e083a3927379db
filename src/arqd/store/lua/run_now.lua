-- Run a scheduled task now: out of the scheduled set (its delay, or its backoff before a
-- retry, cut short) to the back of its priority's ready list, and a worker woken.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  task id, ARGV[2] events stream cap
-- Returns  the task's hash as it is once queued (HGETALL's reply), or 'missing', or the
--          task's status when it is not scheduled
local prefix, id, maxlen = KEYS[1], ARGV[1], ARGV[2]
local key = prefix .. 't:' .. id
local f = redis.call('HMGET', key, 's', 't', 'prio', 'att')
local state = f[1]
if not state then
  return 'missing'
end
if state ~= SCHEDULED then
  return status_name(state)
end
redis.call('ZREM', prefix .. 'scheduled', id)
local _, now_text = now_ms()
redis.call('HSET', key, 's', QUEUED, 'due', now_text)
push_ready(prefix, id, f[3] or '0', false)
emit(prefix, maxlen, id, 'queued', f[2], f[4] or 0)
wake(prefix)
return redis.call('HGETALL', key)
