-- Fire a schedule's tick: compare and advance its next fire time, and enqueue the tick's
-- tasks, together. Every worker that finds the tick due sends this; only the first finds
-- the stored next time (and version) it expects, and so only one enqueues: no leader, no
-- lock. A tick's task id comes from the schedule and the tick, so even a resend after a
-- lost reply makes no second task.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  events stream cap, ARGV[2] schedule name, ARGV[3] the next time (ms) the
--          sender found, ARGV[4] the version it computed with, ARGV[5] the next time
--          after this tick (ms), ARGV[6] ticks dropped by the misfire policy, ARGV[7] '0'
--          when runs may not overlap, ARGV[8] the number of tasks N, then per task:
--          id, type, payload JSON, priority, due time (ms; the tick plus its jitter)
-- Returns  {outcome, Redis's time}: 'fired', 'stale' (another worker fired it, the
--          schedule changed, was paused or deleted) or 'overlap' (skipped: the previous
--          run is not finished)
local prefix, maxlen, name = KEYS[1], ARGV[1], ARGV[2]
local key = prefix .. 'sc:' .. name
local now, now_text = now_ms()
local f = redis.call('HMGET', key, 'next', 'ver', 'paused', 'ltask')
if f[1] ~= ARGV[3] or f[2] ~= ARGV[4] or f[3] then
  return {'stale', now}
end
redis.call('HSET', key, 'next', ARGV[5])
redis.call('ZADD', prefix .. 'scnext', ARGV[5], name)
local n = tonumber(ARGV[8])
local first_type = ARGV[10] or ''
if tonumber(ARGV[6]) > 0 then
  redis.call('HINCRBY', key, 'dropped', ARGV[6])
  emit(prefix, maxlen, '', 'schedule_misfired', first_type, 0,
       cjson.encode({schedule = name, dropped = tonumber(ARGV[6])}))
end
if ARGV[7] == '0' and f[4] then
  local status = redis.call('HGET', prefix .. 't:' .. f[4], 's')
  if status == QUEUED or status == SCHEDULED or status == ACTIVE then
    redis.call('HINCRBY', key, 'skipped', n)
    emit(prefix, maxlen, '', 'schedule_skipped', first_type, 0,
         cjson.encode({schedule = name, running = f[4]}))
    return {'overlap', now}
  end
end
local woke = false
for i = 9, 8 + 5 * n, 5 do
  local id, task_type, data, prio, due = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local task_key = prefix .. 't:' .. id
  if redis.call('EXISTS', task_key) == 0 then
    local fields = {'t', task_type, 'd', data, 'c', now_text, 'sched', name}
    if prio ~= '0' then
      fields[#fields + 1], fields[#fields + 2] = 'prio', prio
    end
    if tonumber(due) > now then
      fields[#fields + 1], fields[#fields + 2] = 's', SCHEDULED
      fields[#fields + 1], fields[#fields + 2] = 'due', due
      redis.call('HSET', task_key, unpack(fields))
      redis.call('ZADD', prefix .. 'scheduled', due, id)
      emit(prefix, maxlen, id, 'scheduled', task_type, '0')
      woke = true
    else
      fields[#fields + 1], fields[#fields + 2] = 's', QUEUED
      redis.call('HSET', task_key, unpack(fields))
      woke = push_ready(prefix, id, prio, false) or woke
      emit(prefix, maxlen, id, 'queued', task_type, '0')
    end
    redis.call('HSET', key, 'last', due, 'ltask', id, 'fired', now_text)
    redis.call('HINCRBY', key, 'runs', 1)
  end
end
if woke then
  wake(prefix)
end
return {'fired', now}
