-- Close a task type's breaker by hand and release the tasks it held.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  task type, ARGV[2] events stream cap
-- Returns  the state it had (0, 1 or 2)
local prefix, task_type, maxlen = KEYS[1], ARGV[1], ARGV[2]
local cb = prefix .. 'cb:' .. task_type
local state = tonumber(redis.call('HGET', cb, 'state') or 0)
redis.call('HSET', cb, 'state', 0, 'fails', 0, 'trial', 0)
redis.call('SREM', prefix .. 'cbopen', task_type)
redis.call('SADD', prefix .. 'cbs', task_type)
release_held(prefix, task_type, redis.call('LLEN', prefix .. 'held:' .. task_type))
breaker_event(prefix, maxlen, task_type, 'breaker_reset', 'closed')
wake(prefix)
return state
