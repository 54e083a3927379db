-- Lease up to COUNT ready tasks to a worker, after reclaiming lapsed leases and promoting
-- due scheduled tasks. A task moves from its ready list to the active set in this one
-- script, so there is no instant at which it is in neither.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  count (the worker's free slots)
-- ARGV[2]  lease length ms
-- ARGV[3]  worker id
-- ARGV[4]  events stream cap
-- ARGV[5]  default max retries (for tasks whose lease lapsed)
-- ARGV[6]  dead-letter cap, ARGV[7] dead-letter TTL ms
-- Returns  {ms until the next due task or lease deadline (-1: none), N,
--           then per task: id, token, type, payload, attempt, max_retries, timeout ms, trace}
local prefix = KEYS[1]
local count, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local worker, maxlen = ARGV[3], ARGV[4]
local default_retries = tonumber(ARGV[5])
local now = now_ms()

-- 1. Leases that lapsed: the worker is gone. Retry at the front, or dead-letter.
for _, id in ipairs(redis.call('ZRANGEBYSCORE', prefix .. 'active', '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', prefix .. 'active', id)
  local key = prefix .. 't:' .. id
  local f = redis.call('HMGET', key, 'type', 'att', 'maxr', 'prio', 'wkr')
  if f[1] then
    redis.call('HINCRBY', key, 'tok', 1)
    local err = cjson.encode({type = 'LeaseExpired', traceback = cjson.null,
      message = 'worker ' .. (f[5] or '?') .. ' stopped renewing its lease'})
    local att = tonumber(f[2] or 0)
    if att <= tonumber(f[3] or default_retries) then
      redis.call('HSET', key, 'state', 'queued', 'error', err)
      push_ready(prefix, id, f[4] or 0, true)
      emit(prefix, maxlen, id, 'lease_expired', 'queued', f[1], att, err)
    else
      redis.call('HSET', key, 'state', 'failed', 'error', err, 'ftime', now)
      redis.call('PEXPIRE', key, ARGV[7])
      index_finished(prefix, 'failed', id, now, tonumber(ARGV[6]), true)
      emit(prefix, maxlen, id, 'failed', 'failed', f[1], att, err)
    end
  end
end

-- 2. Scheduled tasks whose time has come become ready, oldest due first.
local due = redis.call('ZRANGEBYSCORE', prefix .. 'scheduled', '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(due) do
  redis.call('ZREM', prefix .. 'scheduled', id)
  local key = prefix .. 't:' .. id
  local f = redis.call('HMGET', key, 'type', 'prio', 'att')
  if f[1] then
    redis.call('HSET', key, 'state', 'queued')
    push_ready(prefix, id, f[2] or 0, false)
    emit(prefix, maxlen, id, 'queued', 'queued', f[1], f[3] or 0)
  end
end

-- 3. Take ready tasks, highest priority first, FIFO within a priority.
local taken = {}
while #taken < count do
  local top = redis.call('ZREVRANGE', prefix .. 'prios', 0, 0)[1]
  if not top then
    break
  end
  local want = count - #taken
  local ids = redis.call('RPOP', prefix .. 'q:' .. top, want)
  if ids then
    for _, id in ipairs(ids) do
      taken[#taken + 1] = id
    end
  end
  if (not ids) or #ids < want then
    redis.call('ZREM', prefix .. 'prios', top)
  end
end

-- 4. Lease them: a new fencing token per attempt.
local out = {-1, 0}
local deadline = now + lease
for _, id in ipairs(taken) do
  local key = prefix .. 't:' .. id
  local f = redis.call('HMGET', key, 'type', 'data', 'maxr', 'tmo', 'trace')
  if f[1] then
    local token = redis.call('HINCRBY', key, 'tok', 1)
    local att = redis.call('HINCRBY', key, 'att', 1)
    redis.call('HSET', key, 'state', 'active', 'stime', now, 'wkr', worker)
    redis.call('ZADD', prefix .. 'active', deadline, id)
    emit(prefix, maxlen, id, 'active', 'active', f[1], att)
    out[#out + 1] = id
    out[#out + 1] = token
    out[#out + 1] = f[1]
    out[#out + 1] = f[2]
    out[#out + 1] = att
    out[#out + 1] = f[3] or ''
    out[#out + 1] = f[4] or ''
    out[#out + 1] = f[5] or ''
    out[2] = out[2] + 1
  end
end

-- 5. More ready work than this worker took: wake another one.
if redis.call('EXISTS', prefix .. 'prios') == 1 then
  wake(prefix)
end
local next_due = redis.call('ZRANGE', prefix .. 'scheduled', 0, 0, 'WITHSCORES')[2]
local next_lapse = redis.call('ZRANGE', prefix .. 'active', 0, 0, 'WITHSCORES')[2]
local soonest = math.min(tonumber(next_due or math.huge), tonumber(next_lapse or math.huge))
if soonest ~= math.huge then
  out[1] = math.max(0, soonest - now)
end
return out
