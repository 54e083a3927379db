-- Enqueue one or more tasks atomically.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  events stream cap
-- ARGV[2]  number of tasks N, then per task:
--          id, type, payload JSON, priority, delay ms (0 = ready now),
--          idempotency key ('' = none), idempotency TTL ms, extra field count E,
--          then E field/value pairs stored as they are (max_retries, timeout, trace...)
-- Returns  1 if the caller must add the queue to the set of queue names (another slot:
--          the marker 'known' says it did so within the last minute), else 0; then, for
--          each task that was there already (an idempotency key returned an earlier task,
--          or this very enqueue was sent before), its position in this call (1-based)
--          and the id found. Every other task was created.
local prefix = KEYS[1]
local maxlen = ARGV[1]
local n = tonumber(ARGV[2])
local now, now_text = now_ms()
local out = {redis.call('SET', prefix .. 'known', '1', 'NX', 'PX', '60000') and 1 or 0}
local i = 3
local task_prefix = prefix .. 't:'
local woke = false
local ready = {}  -- priority (text) -> ids made ready, pushed in one LPUSH each at the end
for position = 1, n do
  local id, task_type, data = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local prio_text, delay = ARGV[i + 3], tonumber(ARGV[i + 4])
  local prio = tonumber(prio_text)
  local idem, idem_ttl = ARGV[i + 5], ARGV[i + 6]
  local first_extra = i + 8
  i = first_extra + 2 * tonumber(ARGV[i + 7])
  local key = task_prefix .. id
  local earlier = false
  if idem ~= '' then
    local idem_key = prefix .. 'idem:' .. idem
    earlier = redis.call('GET', idem_key)
    if earlier and redis.call('EXISTS', task_prefix .. earlier) == 0 then
      earlier = false
    end
    if not earlier then
      redis.call('SET', idem_key, id, 'PX', idem_ttl)
    end
  end
  if not earlier and redis.call('EXISTS', key) == 1 then
    -- The same enqueue sent again (a retry after a lost reply): the task is there already.
    earlier = id
  end
  if earlier then
    out[#out + 1] = position
    out[#out + 1] = earlier
  elseif first_extra == i and prio == 0 and delay <= 0 and idem == '' then
    -- The common task: no options, ready now. No field table to build.
    redis.call('HSET', key, 't', task_type, 'd', data, 'c', now_text, 's', QUEUED)
    local ids = ready['0']
    if not ids then
      ids = {}
      ready['0'] = ids
    end
    ids[#ids + 1] = id
    emit(prefix, maxlen, id, 'queued', task_type, '0')
  else
    local fields = {'t', task_type, 'd', data, 'c', now_text}
    for j = first_extra, i - 1 do
      fields[#fields + 1] = ARGV[j]
    end
    if idem ~= '' then
      fields[#fields + 1] = 'idem'
      fields[#fields + 1] = idem
    end
    if prio ~= 0 then
      fields[#fields + 1] = 'prio'
      fields[#fields + 1] = prio_text
    end
    if delay > 0 then
      local due = string.format('%d', now + delay)
      fields[#fields + 1] = 's'
      fields[#fields + 1] = SCHEDULED
      fields[#fields + 1] = 'due'
      fields[#fields + 1] = due
      redis.call('HSET', key, unpack(fields))
      redis.call('ZADD', prefix .. 'scheduled', due, id)
      emit(prefix, maxlen, id, 'scheduled', task_type, '0')
      woke = true  -- idle workers block until the soonest due time: tell them
    else
      fields[#fields + 1] = 's'
      fields[#fields + 1] = QUEUED
      redis.call('HSET', key, unpack(fields))
      local ids = ready[prio_text]
      if not ids then
        ids = {}
        ready[prio_text] = ids
      end
      ids[#ids + 1] = id
      emit(prefix, maxlen, id, 'queued', task_type, '0')
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
