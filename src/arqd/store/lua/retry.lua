-- Put a failed or cancelled task back in its queue with a fresh retry budget. Its last
-- error goes with the attempts it ended (their events keep it, and the attempt count it
-- had): the attempts of the new budget are counted from 1, and a success among them shows
-- no error of the old ones.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  task id, ARGV[2] events stream cap
-- Returns  the task's hash as it is once queued (HGETALL's reply), or 'missing', or the
--          task's status when it cannot be retried
local prefix, id, maxlen = KEYS[1], ARGV[1], ARGV[2]
local key = prefix .. 't:' .. id
local f = redis.call('HMGET', key, 's', 't', 'prio', 'wf')
local state = f[1]
if not state then
  return 'missing'
end
if state ~= FAILED and state ~= CANCELLED then
  return status_name(state)
end
redis.call('ZREM', prefix .. status_name(state), id)
redis.call('PERSIST', key)
redis.call('HDEL', key, 'ftime', 'cxl', 'error')
local _, now_text = now_ms()
redis.call('HSET', key, 's', QUEUED, 'att', 0, 'due', now_text)
push_ready(prefix, id, f[3] or '0', false)
emit(prefix, maxlen, id, 'queued', f[2], 0)
wake(prefix)
if f[4] then  -- a workflow's member: its workflow runs again (common.lua, workflows)
  workflows().reopened(prefix, f[4], key)
end
return redis.call('HGETALL', key)
