-- Helpers prepended to every arqd script (see scripts.py). Not a script of its own.
--
-- A queue's keys all start with the prefix passed as KEYS[1], "<app>:{<queue>}:", so they
-- share one hash tag and every script runs on Redis Cluster. Suffixes (see keys.py):
--   t:<id>      hash   one task's fields (see codec.py for the field names)
--   prios       zset   priority levels that have ready tasks (score = member = priority)
--   q:<prio>    list   ready task ids of one priority, LPUSH to enqueue, RPOP to take (FIFO)
--   scheduled   zset   delayed and backing-off task ids, score = due time (ms)
--   active      zset   leased task ids, score = lease deadline (ms)
--   succeeded / failed / cancelled   zset   finished task ids, score = finish time (ms)
--   events      stream every transition, capped (MAXLEN ~)
--   wake        list   a token that wakes a worker blocked in BLPOP
--   idem:<key>  string idempotency key -> task id, with its own TTL

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function emit(prefix, maxlen, id, event, status, task_type, attempt, extra)
  local entry = {'task', id, 'event', event, 'status', status, 'type', task_type,
                 'attempt', attempt}
  if extra then
    entry[#entry + 1] = 'error'
    entry[#entry + 1] = extra
  end
  redis.call('XADD', prefix .. 'events', 'MAXLEN', '~', maxlen, '*', unpack(entry))
end

local function wake(prefix)
  if redis.call('LLEN', prefix .. 'wake') == 0 then
    redis.call('LPUSH', prefix .. 'wake', '1')
  end
end

-- Make a task ready. A task handed back or reclaimed goes to the front of its priority.
local function push_ready(prefix, id, prio, front)
  local list = prefix .. 'q:' .. prio
  if front then
    redis.call('RPUSH', list, id)
  else
    redis.call('LPUSH', list, id)
  end
  redis.call('ZADD', prefix .. 'prios', prio, prio)
end

-- Record a finished task in its capped index; dead-lettered tasks over the cap are deleted.
local function index_finished(prefix, status, id, now, cap, drop_over_cap)
  local index = prefix .. status
  redis.call('ZADD', index, now, id)
  local over = redis.call('ZCARD', index) - cap
  if over > 0 then
    if drop_over_cap then
      for _, old in ipairs(redis.call('ZRANGE', index, 0, over - 1)) do
        redis.call('DEL', prefix .. 't:' .. old)
      end
    end
    redis.call('ZREMRANGEBYRANK', index, 0, over - 1)
  end
end
