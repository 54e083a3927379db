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
--   known       string set (1 min TTL) while the queue's name is known to be in the set of
--                      queue names (enqueue.lua)
--   idem:<key>  string idempotency key -> task id, with its own TTL
--   throttled   zset   ready tasks waiting for their rate-limit slot, score = slot time (ms)
--   held:<type> list   ready tasks held by a concurrency limit or an open breaker
--   running     hash   task type -> attempts running now (types with a concurrency limit)
--   rl:<type>   string rate limit state (GCRA theoretical arrival time, ms)
--   cb:<type>   hash   the type's circuit breaker: state (0/1/2), fails, until, trial
--   cbs         set    types that have a breaker record; cbopen: those open or half-open

-- A task's status as its hash keeps it (field 's'): a letter or two, since every queued
-- task holds one (codec.py maps them to TaskStatus names). Index and event names stay words.
local QUEUED, SCHEDULED, ACTIVE = 'q', 'w', 'a'
local SUCCEEDED, FAILED, CANCELLED = 'ok', 'f', 'x'
local STATUS_NAME = {q = 'queued', w = 'scheduled', a = 'active', ok = 'succeeded',
                     f = 'failed', x = 'cancelled'}

-- ZADD / ZREM of many members in a few calls (unpack has a limit; 256 a call is far below).
local function zadd_all(key, score, ids)
  for first = 1, #ids, 256 do
    local args = {}
    for j = first, math.min(#ids, first + 255) do
      args[#args + 1] = score
      args[#args + 1] = ids[j]
    end
    redis.call('ZADD', key, unpack(args))
  end
end

local function zrem_all(key, ids)
  for first = 1, #ids, 256 do
    redis.call('ZREM', key, unpack(ids, first, math.min(#ids, first + 255)))
  end
end

-- Redis's clock in ms: a number for arithmetic, and the same as text. Redis formats each
-- number a script passes to a command with a %.17g sprintf, the costliest part of
-- writing a time; the text is made once and written as often as needed.
local function now_ms()
  local t = redis.call('TIME')
  local ms = math.floor(tonumber(t[2]) / 1000)
  return tonumber(t[1]) * 1000 + ms, t[1] .. string.format('%03d', ms)
end

-- The score of a sorted set's first entry (a number), or nil when it is empty.
local function first_score(key)
  local first = redis.call('ZRANGE', key, '0', '0', 'WITHSCORES')[2]
  return first and tonumber(first)
end

-- One event on the queue's stream. The status it leaves the task in is not written: each
-- event name implies one (store/events.py, EVENT_STATUS), and every field costs memory in
-- every entry.
local function emit(prefix, maxlen, id, event, task_type, attempt, extra)
  if extra then
    redis.call('XADD', prefix .. 'events', 'MAXLEN', '~', maxlen, '*', 'task', id, 'event', event,
               'type', task_type, 'attempt', attempt, 'error', extra)
  else
    redis.call('XADD', prefix .. 'events', 'MAXLEN', '~', maxlen, '*', 'task', id, 'event', event,
               'type', task_type, 'attempt', attempt)
  end
end

local function wake(prefix)
  if redis.call('LLEN', prefix .. 'wake') == 0 then
    redis.call('LPUSH', prefix .. 'wake', '1')
  end
end

-- Make a task ready. A task handed back or reclaimed goes to the front of its priority.
-- A priority leaves 'prios' only once its list is empty, so a list that already held
-- tasks before this push has its priority there. Returns true if the list was empty.
-- prio is text, as a task's hash keeps it: a number passed to a command costs Redis a
-- %.17g sprintf, as does a number joined to a string in Lua.
local function push_ready(prefix, id, prio, front)
  local list = prefix .. 'q:' .. prio
  if redis.call(front and 'RPUSH' or 'LPUSH', list, id) == 1 then
    redis.call('ZADD', prefix .. 'prios', prio, prio)
    return true
  end
  return false
end

-- push_ready (to the back) of many ids of one priority, oldest first, in few calls.
local function push_ready_all(prefix, ids, prio)
  local list, was_empty = prefix .. 'q:' .. prio, false
  for first = 1, #ids, 256 do
    local last = math.min(#ids, first + 255)
    if redis.call('LPUSH', list, unpack(ids, first, last)) == last - first + 1 then
      was_empty = true
    end
  end
  if was_empty then
    redis.call('ZADD', prefix .. 'prios', prio, prio)
  end
  return was_empty
end

-- Trim a finished index to its cap; dead-lettered tasks over the cap are deleted.
-- Trimming waits for 1% of slack, so a full index is not trimmed on every task.
local function trim_finished(prefix, status, cap, drop_over_cap)
  local index = prefix .. status
  local size = redis.call('ZCARD', index)
  if size <= cap + math.floor(cap / 100) then
    return
  end
  local over = size - cap
  if over > 0 then
    if drop_over_cap then
      for _, old in ipairs(redis.call('ZRANGE', index, '0', string.format('%d', over - 1))) do
        redis.call('DEL', prefix .. 't:' .. old)
      end
    end
    redis.call('ZREMRANGEBYRANK', index, '0', string.format('%d', over - 1))
  end
end

local function index_finished(prefix, status, id, now, cap, drop_over_cap)
  redis.call('ZADD', prefix .. status, now, id)
  trim_finished(prefix, status, cap, drop_over_cap)
end

-- Make held tasks of a type ready again, at the front of their priority (at most n).
local function release_held(prefix, task_type, n)
  local held = prefix .. 'held:' .. task_type
  for _ = 1, n do
    local id = redis.call('LPOP', held)
    if not id then
      return
    end
    push_ready(prefix, id, redis.call('HGET', prefix .. 't:' .. id, 'prio') or '0', true)
  end
end

-- GCRA with reservation: take the next slot of the limit at `key`. Returns the ms to wait
-- for it (0: now). The slot is taken either way, so a deferred task runs at its time.
local function gcra_reserve(key, now, interval, burst)
  local tat = tonumber(redis.call('GET', key) or now)
  local new_tat = math.max(tat, now) + interval
  local ttl = math.ceil(new_tat - now) + 1
  redis.call('SET', key, string.format('%.3f', new_tat), 'PX', string.format('%d', ttl))
  return math.max(0, new_tat - interval * burst - now)
end

-- A breaker transition: an event, and a count kept for arq_circuit_breaker_transitions_total.
local function breaker_event(prefix, maxlen, task_type, event, state)
  redis.call('HINCRBY', prefix .. 'cb:' .. task_type, 'to_' .. state, 1)
  emit(prefix, maxlen, '', event, task_type, 0)
end

-- Breaker record of a task type that ended an attempt. outcome: ok | fail | neutral;
-- was_trial: the attempt was the half-open trial (its task hash field 'trial').
local function breaker_record(prefix, maxlen, task_type, outcome, now, threshold, open_ms,
                              was_trial)
  local cb = prefix .. 'cb:' .. task_type
  local f = redis.call('HMGET', cb, 'state', 'fails')
  local state, fails = tonumber(f[1] or 0), tonumber(f[2] or 0)
  if outcome == 'ok' then
    if state == 2 or (state == 0 and fails > 0) then
      redis.call('HSET', cb, 'state', 0, 'fails', 0, 'trial', 0)
      redis.call('SREM', prefix .. 'cbopen', task_type)
      if state == 2 then
        breaker_event(prefix, maxlen, task_type, 'breaker_closed', 'closed')
        release_held(prefix, task_type, redis.call('LLEN', prefix .. 'held:' .. task_type))
      end
    end
  elseif outcome == 'fail' then
    fails = fails + 1
    redis.call('SADD', prefix .. 'cbs', task_type)
    if state == 2 or (state == 0 and fails >= threshold) then
      redis.call('HSET', cb, 'state', 1, 'fails', fails, 'until', now + open_ms, 'trial', 0)
      redis.call('SADD', prefix .. 'cbopen', task_type)
      breaker_event(prefix, maxlen, task_type, 'breaker_opened', 'open')
    elseif state == 0 then
      redis.call('HSET', cb, 'state', 0, 'fails', fails)
    end
  elseif was_trial and state == 2 then
    redis.call('HSET', cb, 'trial', 0)
    release_held(prefix, task_type, 1)
  end
end

-- A leased task leaves the active set: free its concurrency slot (cc) and, if it was the
-- breaker's trial and ended neither way, the trial slot. cc and trial: its hash fields.
local function release_slot(prefix, maxlen, key, task_type, now, cc, trial)
  if cc then
    redis.call('HINCRBY', prefix .. 'running', task_type, -1)
    release_held(prefix, task_type, 1)
  end
  if cc or trial then
    redis.call('HDEL', key, 'cc', 'trial')
  end
  if trial then
    breaker_record(prefix, maxlen, task_type, 'neutral', now, 0, 0, true)
  end
end
