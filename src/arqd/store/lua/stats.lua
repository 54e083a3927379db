-- Count a queue's tasks by status and find the age of its oldest ready task. Reads only.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- Returns  {queued, scheduled, active, succeeded, failed, cancelled, oldest ready age ms (-1)}
local prefix = KEYS[1]
local now = now_ms()
local queued, oldest = 0, nil
for _, prio in ipairs(redis.call('ZRANGE', prefix .. 'prios', 0, -1)) do
  local list = prefix .. 'q:' .. prio
  queued = queued + redis.call('LLEN', list)
  local id = redis.call('LINDEX', list, -1)
  if id then
    local f = redis.call('HMGET', prefix .. 't:' .. id, 'due', 'ctime')
    local since = tonumber(f[1] or f[2] or now)
    if not oldest or since < oldest then
      oldest = since
    end
  end
end
return {queued, redis.call('ZCARD', prefix .. 'scheduled'), redis.call('ZCARD', prefix .. 'active'),
  redis.call('ZCARD', prefix .. 'succeeded'), redis.call('ZCARD', prefix .. 'failed'),
  redis.call('ZCARD', prefix .. 'cancelled'), oldest and math.max(0, now - oldest) or -1}
