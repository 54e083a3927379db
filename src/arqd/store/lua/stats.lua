-- Count a queue's tasks by status and find the age of its oldest ready task. Reads only.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- Returns  {queued, scheduled, active, succeeded, failed, cancelled, oldest ready age ms (-1)}
--          queued counts ready, throttled and held tasks; the age is of the ready ones.
local prefix = KEYS[1]
local now = now_ms()
local queued, oldest = 0, nil
for _, prio in ipairs(redis.call('ZRANGE', prefix .. 'prios', '0', '-1')) do
  local list = prefix .. 'q:' .. prio
  queued = queued + redis.call('LLEN', list)
  local id = redis.call('LINDEX', list, '-1')
  if id then
    local f = redis.call('HMGET', prefix .. 't:' .. id, 'due', 'c')
    local since = tonumber(f[1] or f[2] or now)
    if not oldest or since < oldest then
      oldest = since
    end
  end
end
queued = queued + redis.call('ZCARD', prefix .. 'throttled')
for _, task_type in ipairs(redis.call('HKEYS', prefix .. 'running')) do
  queued = queued + redis.call('LLEN', prefix .. 'held:' .. task_type)
end
for _, task_type in ipairs(redis.call('SMEMBERS', prefix .. 'cbopen')) do
  if redis.call('HEXISTS', prefix .. 'running', task_type) == 0 then
    queued = queued + redis.call('LLEN', prefix .. 'held:' .. task_type)
  end
end
return {queued, redis.call('ZCARD', prefix .. 'scheduled'), redis.call('ZCARD', prefix .. 'active'),
  redis.call('ZCARD', prefix .. 'succeeded'), redis.call('ZCARD', prefix .. 'failed'),
  redis.call('ZCARD', prefix .. 'cancelled'), oldest and math.max(0, now - oldest) or -1}
