-- Close a task type's breaker by hand and release the tasks it held.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  task type, ARGV[2] events stream cap
-- Returns  the state it had (0, 1 or 2)
local prefix, task_type, maxlen = KEYS[1], ARGV[1], ARGV[2]
local state = breaker_reset(prefix .. 'cb:' .. task_type)
redis.call('SREM', prefix .. 'cbopen', task_type)
redis.call('SADD', prefix .. 'cbs', task_type)
release_held(prefix, task_type, redis.call('LLEN', prefix .. 'held:' .. task_type))
emit(prefix, maxlen, '', 'breaker_reset', task_type, 0)
wake(prefix)
return state
