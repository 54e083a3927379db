-- Resume a paused queue, or a paused task type of it, and wake a worker for its backlog
-- (a dequeue that leaves work behind wakes another). A type's held tasks are released
-- to the front of their priority; a limit or breaker that still holds them holds them again.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  what: '*' for the whole queue, else a task type
-- ARGV[2]  reason ('' when none given), ARGV[3] events stream cap
-- Returns  1 if it was paused until now, 0 if it was not paused
local prefix, what, reason, maxlen = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
redis.call('HDEL', prefix .. 'pauses', what)
if redis.call('SREM', prefix .. 'cbopen', '|' .. what) == 0 then
  return 0
end
if what ~= '*' then
  release_held(prefix, what, redis.call('LLEN', prefix .. 'held:' .. what))
end
wake(prefix)
redis.call('XADD', prefix .. 'events', 'MAXLEN', '~', maxlen, '*', 'task', '', 'event',
           'queue_resumed', 'type', what == '*' and '' or what, 'attempt', '0', 'reason', reason)
return 1
