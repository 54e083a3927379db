-- Record how attempts ended, in one batch. An answer whose token is not the task's
-- current one (the lease lapsed and another attempt replaced it) is refused.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  events stream cap
-- ARGV[2]  finished index cap (succeeded, cancelled)
-- ARGV[3]  dead-letter cap
-- ARGV[4]  default result TTL ms
-- ARGV[5]  dead-letter TTL ms
-- ARGV[6]  the answers, packed (see split in common.lua); the fields of each:
--          id, token, outcome, value, delay ms, breaker signal, breaker threshold,
--          breaker open ms
--          outcome: succeeded (value = result JSON), failed (value = error JSON),
--                   retry (value = error JSON, after delay ms), cancelled,
--                   returned (handed back unfinished at shutdown; the attempt is not counted)
--          breaker signal: '' (the type has no breaker), ok, fail or neutral
-- Returns  per answer: 1 accepted, 0 refused
local prefix, maxlen = KEYS[1], ARGV[1]
local index_cap, failed_cap = tonumber(ARGV[2]), tonumber(ARGV[3])
local result_ttl, failed_ttl = ARGV[4], ARGV[5]
local now = now_ms()
local out = {}
local grown = {}  -- finished indexes this batch added to: trimmed once, at the end
local clean = {}  -- task types whose breaker this batch has recorded an 'ok' for, last
for _, record in ipairs(split(ARGV[6], '\30')) do
  local a = split(record, '\31')
  local id, token, outcome, value, signal = a[1], a[2], a[3], a[4], a[6]
  local delay, threshold, open_ms = tonumber(a[5]), tonumber(a[7]), tonumber(a[8])
  local key = prefix .. 't:' .. id
  local f = redis.call('HMGET', key, 'tok', 't', 'att', 'prio', 'rttl', 'cc', 'trial')
  if f[1] ~= token or redis.call('ZREM', prefix .. 'active', id) == 0 then
    out[#out + 1] = 0
  else
    local task_type, att = f[2], f[3]
    local trial = f[7]
    if signal ~= '' and signal ~= 'neutral' then
      -- After an 'ok' the breaker is closed with no failures (or open, and 'ok' leaves an
      -- open breaker alone): another 'ok' before any 'fail' would change nothing.
      if signal ~= 'ok' or not clean[task_type] then
        breaker_record(prefix, maxlen, task_type, signal, now, threshold, open_ms, trial)
      end
      clean[task_type] = signal == 'ok'
      trial = false
    end
    release_slot(prefix, maxlen, key, task_type, now, f[6], trial)
    if outcome == 'succeeded' then
      redis.call('HSET', key, 's', 'succeeded', 'ftime', now, 'result', value)
      if tonumber(att) > 1 then
        redis.call('HDEL', key, 'error')
      end
      redis.call('PEXPIRE', key, f[5] or result_ttl)
      redis.call('ZADD', prefix .. 'succeeded', now, id)
      grown.succeeded = true
      emit(prefix, maxlen, id, 'succeeded', 'succeeded', task_type, att)
    elseif outcome == 'failed' then
      redis.call('HSET', key, 's', 'failed', 'ftime', now, 'error', value)
      redis.call('PEXPIRE', key, failed_ttl)
      redis.call('ZADD', prefix .. 'failed', now, id)
      grown.failed = true
      emit(prefix, maxlen, id, 'failed', 'failed', task_type, att, value)
    elseif outcome == 'retry' then
      local due = now + delay
      redis.call('HSET', key, 's', 'scheduled', 'due', due, 'error', value)
      redis.call('ZADD', prefix .. 'scheduled', due, id)
      emit(prefix, maxlen, id, 'retrying', 'scheduled', task_type, att, value)
      wake(prefix)
    elseif outcome == 'cancelled' then
      redis.call('HSET', key, 's', 'cancelled', 'ftime', now)
      redis.call('PEXPIRE', key, f[5] or result_ttl)
      redis.call('ZADD', prefix .. 'cancelled', now, id)
      grown.cancelled = true
      emit(prefix, maxlen, id, 'cancelled', 'cancelled', task_type, att)
    else
      redis.call('HINCRBY', key, 'att', -1)
      redis.call('HSET', key, 's', 'queued')
      push_ready(prefix, id, f[4] or 0, true)
      emit(prefix, maxlen, id, 'returned', 'queued', task_type, att - 1)
      wake(prefix)
    end
    out[#out + 1] = 1
  end
end
for status in pairs(grown) do
  trim_finished(prefix, status, status == 'failed' and failed_cap or index_cap, status == 'failed')
end
return out
