-- Count a queue's tasks by status, and the held ones by what holds them; find the age of
-- its oldest queued task. The only writes: entries of finished indexes whose tasks have
-- expired are dropped first, so they are not counted. An entry's score is its finish
-- time, or for a task finished with a result TTL of its own, its expiry less the default
-- TTL (finish.lua): either way, expired once the score is older than the default TTL.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  default result TTL ms (succeeded, cancelled, expired), ARGV[2] dead-letter TTL ms
-- Returns  {queued, scheduled, active, succeeded, failed, cancelled, oldest queued age ms
--           (-1: none), throttled, held by a concurrency limit, held by a breaker, held by
--           a pause of their type, expired, 1 if the whole queue is paused else 0}
--          queued counts ready, throttled and held tasks, and the age is of the oldest of
--          them: the next of each ready list, the first and last of each held list, and
--          the first throttled (each list is about oldest first; the cost stays bounded).
local prefix = KEYS[1]
local now = now_ms()
local queued, oldest = 0, nil

local function consider(id)
  if id then
    local f = redis.call('HMGET', prefix .. 't:' .. id, 'due', 'c')
    local since = tonumber(f[1] or f[2] or now)
    if not oldest or since < oldest then
      oldest = since
    end
  end
end

for _, prio in ipairs(redis.call('ZRANGE', prefix .. 'prios', '0', '-1')) do
  local list = prefix .. 'q:' .. prio
  queued = queued + redis.call('LLEN', list)
  consider(redis.call('LINDEX', list, '-1'))
end

local throttled = redis.call('ZCARD', prefix .. 'throttled')
consider(redis.call('ZRANGE', prefix .. 'throttled', '0', '0')[1])

-- A type's held list: by a pause of the type while it lasts, by its breaker while that
-- is open or half-open, else by its concurrency limit.
local held = {concurrency = 0, breaker = 0, pause = 0}
local seen = {}
local function count_held(task_type, reason)
  if seen[task_type] then
    return
  end
  seen[task_type] = true
  local list = prefix .. 'held:' .. task_type
  local n = redis.call('LLEN', list)
  if n > 0 then
    held[reason] = held[reason] + n
    consider(redis.call('LINDEX', list, '0'))
    consider(redis.call('LINDEX', list, '-1'))
  end
end
local queue_paused = 0
for _, member in ipairs(redis.call('SMEMBERS', prefix .. 'cbopen')) do
  if member == '|*' then
    queue_paused = 1
  elseif string.byte(member) == 124 then  -- '|': a paused type
    count_held(string.sub(member, 2), 'pause')
  else
    count_held(member, 'breaker')
  end
end
for _, task_type in ipairs(redis.call('HKEYS', prefix .. 'running')) do
  count_held(task_type, 'concurrency')
end
queued = queued + throttled + held.concurrency + held.breaker + held.pause

local function live(status, ttl)
  local index = prefix .. status
  redis.call('ZREMRANGEBYSCORE', index, '-inf', string.format('(%d', now - tonumber(ttl)))
  return redis.call('ZCARD', index)
end

return {queued, redis.call('ZCARD', prefix .. 'scheduled'), redis.call('ZCARD', prefix .. 'active'),
  live('succeeded', ARGV[1]), live('failed', ARGV[2]), live('cancelled', ARGV[1]),
  oldest and math.max(0, now - oldest) or -1, throttled, held.concurrency, held.breaker,
  held.pause, live('expired', ARGV[1]), queue_paused}
