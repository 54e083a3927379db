-- Cancel a task: at once if queued or scheduled; a running one is asked to stop.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  task id, ARGV[2] events stream cap, ARGV[3] finished index cap,
-- ARGV[4]  default result TTL ms
-- Returns  'cancelled', 'requested' (running; the worker is told), 'missing',
--          or 'finished' when it had already finished
local prefix, id, maxlen = KEYS[1], ARGV[1], ARGV[2]
local key = prefix .. 't:' .. id
local f = redis.call('HMGET', key, 's', 't', 'prio', 'att', 'rttl', 'wf')
local state = f[1]
if not state then
  return 'missing'
end
if state == ACTIVE then
  redis.call('HSET', key, 'cxl', '1')
  emit(prefix, maxlen, id, 'cancel_requested', f[2], f[4] or 0)
  return 'requested'
end
if state == QUEUED then
  -- Ready in its priority's list, or throttled, or held by a limit or breaker.
  local prio = f[3] or 0
  if redis.call('LREM', prefix .. 'q:' .. prio, 1, id) == 1 then
    if redis.call('LLEN', prefix .. 'q:' .. prio) == 0 then
      redis.call('ZREM', prefix .. 'prios', prio)
    end
  elseif redis.call('ZREM', prefix .. 'throttled', id) == 0 then
    redis.call('LREM', prefix .. 'held:' .. f[2], 1, id)
  end
elseif state == SCHEDULED then
  redis.call('ZREM', prefix .. 'scheduled', id)
else
  return 'finished'
end
local now, now_text = now_ms()
redis.call('HSET', key, 's', CANCELLED, 'ftime', now_text)
redis.call('PEXPIRE', key, f[5] or ARGV[4])
index_finished(prefix, 'cancelled', id, now, tonumber(ARGV[3]), false)
emit(prefix, maxlen, id, 'cancelled', f[2], f[4] or 0)
if f[6] then  -- a workflow's member (common.lua, workflow_member_done)
  workflows().member_done(prefix, maxlen, f[6], 'x', now, now_text, key)
end
return 'cancelled'
