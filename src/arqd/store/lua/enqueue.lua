-- Enqueue one or more tasks atomically.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  events stream cap
-- ARGV[2]  number of tasks N, then per task:
--          id, type, payload JSON, priority, delay ms (0 = ready now),
--          idempotency key ('' = none), idempotency TTL ms, extra field count E,
--          then E field/value pairs stored as they are (max_retries, timeout, trace...)
-- Returns  1 if the caller must add the queue to the set of queue names (another slot:
--          the marker 'known' says it did so within the last minute), else 0; then
--          per task: id, 1 if created or 0 if it was there already (an idempotency key
--          returned an earlier task, or this very enqueue was sent before)
local prefix = KEYS[1]
local maxlen = ARGV[1]
local n = tonumber(ARGV[2])
local now, now_text = now_ms()
local out = {redis.call('SET', prefix .. 'known', '1', 'NX', 'PX', '60000') and 1 or 0}
local i = 3
local task_prefix = prefix .. 't:'
local woke = false
local ready = {}  -- priority -> ids made ready, pushed in one LPUSH each at the end
for _ = 1, n do
  local id, task_type, data = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local prio, delay = tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4])
  local idem, idem_ttl = ARGV[i + 5], ARGV[i + 6]
  local extra = tonumber(ARGV[i + 7])
  local fields = {'t', task_type, 'd', data, 'c', now_text}
  for j = i + 8, i + 7 + 2 * extra do
    fields[#fields + 1] = ARGV[j]
  end
  i = i + 8 + 2 * extra
  local earlier = false
  if idem ~= '' then
    local idem_key = prefix .. 'idem:' .. idem
    earlier = redis.call('GET', idem_key)
    if earlier and redis.call('EXISTS', prefix .. 't:' .. earlier) == 0 then
      earlier = false
    end
    if not earlier then
      redis.call('SET', idem_key, id, 'PX', idem_ttl)
      fields[#fields + 1] = 'idem'
      fields[#fields + 1] = idem
    end
  end
  if not earlier and redis.call('EXISTS', task_prefix .. id) == 1 then
    -- The same enqueue sent again (a retry after a lost reply): the task is there already.
    earlier = id
  end
  if earlier then
    out[#out + 1] = earlier
    out[#out + 1] = 0
  else
    if prio ~= 0 then
      fields[#fields + 1] = 'prio'
      fields[#fields + 1] = prio
    end
    local key = task_prefix .. id
    if delay > 0 then
      local due = now + delay
      fields[#fields + 1] = 's'
      fields[#fields + 1] = SCHEDULED
      fields[#fields + 1] = 'due'
      fields[#fields + 1] = due
      redis.call('HSET', key, unpack(fields))
      redis.call('ZADD', prefix .. 'scheduled', due, id)
      emit(prefix, maxlen, id, 'scheduled', 'scheduled', task_type, '0')
      woke = true  -- idle workers block until the soonest due time: tell them
    else
      fields[#fields + 1] = 's'
      fields[#fields + 1] = QUEUED
      redis.call('HSET', key, unpack(fields))
      local ids = ready[prio]
      if not ids then
        ids = {}
        ready[prio] = ids
      end
      ids[#ids + 1] = id
      emit(prefix, maxlen, id, 'queued', 'queued', task_type, '0')
    end
    out[#out + 1] = id
    out[#out + 1] = 1
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
