-- Enqueue one or more tasks atomically.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  events stream cap
-- ARGV[2]  number of tasks N, then per task:
--          id, type, payload JSON, the number of option pairs K, then K name/value pairs
--          (none for a task with no options, the common case: four arguments a task).
--          Options: prio (priority), delay (ms; the task is scheduled, not ready), at
--          (a due time, ms since the epoch by Redis's clock: scheduled if it is still to
--          come, else ready), idem (idempotency key) with ittl (its TTL ms), dd (dedupe:
--          "<mode>:<ms>:<key>", see dedupe in common.lua: sent to `enqueue_dedupe`, this
--          file with that helper; `enqueue`, without it, is the common call); every other
--          pair (max_retries, timeout, result TTL, trace...) is a field stored as it is,
--          as are prio and idem; expin (ms from now) is stored as exp, a deadline.
-- Returns  Redis's time (ms), which every task of the call was created at; 1 if the queue
--          had no event stream (a new queue, or a Redis that lost its data), else 0; then, for
--          each task that was there already (an idempotency or dedupe key returned an earlier
--          task, or this very enqueue was sent before), its position in this call (1-based)
--          and the id found. Every other task was created.
-- The caller adds the queue to the set of queue names (another slot) before its first
-- enqueue, so a feed over every queue knows a queue before the queue's first event, and
-- again when told the queue had no stream (its name may have been lost with it).
local prefix = KEYS[1]
local maxlen = ARGV[1]
local n = tonumber(ARGV[2])
local now, now_text = now_ms()
local out = {now, redis.call('EXISTS', prefix .. 'events') == 0 and 1 or 0}
local task_prefix = prefix .. 't:'
local woke = false
local ready = {}  -- priority (text) -> ids made ready, pushed in one LPUSH each at the end

-- Whether any task of the call is there already (the same enqueue sent again, after a
-- lost reply): one EXISTS of every key, not one call a task. Keys by position, for below.
local keys, starts = {}, {}
local i = 3
for position = 1, n do
  keys[position], starts[position] = task_prefix .. ARGV[i], i
  local k = ARGV[i + 3]
  i = i + 4 + (k == '0' and 0 or 2 * tonumber(k))
end
local some_exist = false
for first = 1, n, 256 do
  if redis.call('EXISTS', unpack(keys, first, math.min(n, first + 255))) > 0 then
    some_exist = true
    break
  end
end
local made = {}  -- ids this call created: the same id twice in a call is one task

local function make_ready(prio_text, id)
  local ids = ready[prio_text]
  if not ids then
    ids = {}
    ready[prio_text] = ids
  end
  ids[#ids + 1] = id
end

for position = 1, n do
  local at = starts[position]
  local id, task_type, data, k = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
  local key = keys[position]
  if k == '0' and not some_exist and not made[id] then
    -- The common task: no options, ready now, new. No field table to build.
    redis.call('HSET', key, 't', task_type, 'd', data, 'c', now_text, 's', QUEUED)
    make_ready('0', id)
    emit(prefix, maxlen, id, 'queued', task_type, '0')
    made[id] = true
  else
    local fields = {'t', task_type, 'd', data, 'c', now_text}
    local prio_text, delay, idem, idem_ttl = '0', 0, nil, nil
    local dd = nil
    for j = at + 4, at + 3 + 2 * tonumber(k), 2 do
      local name, value = ARGV[j], ARGV[j + 1]
      if name == 'delay' then
        delay = tonumber(value)
      elseif name == 'at' then
        delay = tonumber(value) - now
      elseif name == 'ittl' then
        idem_ttl = value
      elseif name == 'expin' then  -- expires this many ms from now: stored as a deadline
        fields[#fields + 1] = 'exp'
        fields[#fields + 1] = string.format('%d', now + tonumber(value))
      elseif name == 'dd' then
        dd = value
      else
        if name == 'prio' then
          prio_text = value
        elseif name == 'idem' then
          idem = value
        end
        fields[#fields + 1] = name
        fields[#fields + 1] = value
      end
    end
    local earlier = false
    if idem then
      local idem_key = prefix .. 'idem:' .. idem
      earlier = redis.call('GET', idem_key)
      if earlier and redis.call('EXISTS', task_prefix .. earlier) == 0 then
        earlier = false
      end
      if not earlier then
        redis.call('SET', idem_key, id, 'PX', idem_ttl)
      end
    end
    if not earlier and (made[id] or some_exist and redis.call('EXISTS', key) == 1) then
      earlier = id
    end
    if not earlier and dd then
      earlier, delay = dedupe(prefix, maxlen, dd, id, data, now, delay)
      if earlier and idem then  -- a repeat of this enqueue returns the task it got
        redis.call('SET', prefix .. 'idem:' .. idem, earlier, 'PX', idem_ttl)
      end
    end
    if earlier then
      out[#out + 1] = position
      out[#out + 1] = earlier
    elseif delay > 0 then
      local due = string.format('%d', now + delay)
      fields[#fields + 1] = 's'
      fields[#fields + 1] = SCHEDULED
      fields[#fields + 1] = 'due'
      fields[#fields + 1] = due
      redis.call('HSET', key, unpack(fields))
      redis.call('ZADD', prefix .. 'scheduled', due, id)
      emit(prefix, maxlen, id, 'scheduled', task_type, '0')
      woke = true  -- idle workers block until the soonest due time: tell them
      made[id] = true
    else
      fields[#fields + 1] = 's'
      fields[#fields + 1] = QUEUED
      redis.call('HSET', key, unpack(fields))
      make_ready(prio_text, id)
      emit(prefix, maxlen, id, 'queued', task_type, '0')
      made[id] = true
    end
  end
end
-- Onto a list that already held tasks, no wake-up is needed: whoever made it non-empty
-- woke a worker, and a dequeue that leaves work behind wakes another.
for prio, ids in pairs(ready) do
  if push_ready_all(prefix, ids, prio) then
    woke = true
  end
end
if woke then
  wake(prefix)
end
return out
