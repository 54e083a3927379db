-- Lease up to COUNT ready tasks to a worker, after reclaiming lapsed leases and promoting
-- due scheduled tasks. A task moves from its ready list to the active set in this one
-- script, so there is no instant at which it is in neither. Tasks over their type's
-- concurrency limit, or whose type's breaker is open, are held (released when a slot
-- frees or the breaker lets a trial through); tasks over their rate limit wait in
-- `throttled` for the slot reserved for them. Other types keep flowing. A paused queue
-- ('|*' in `cbopen`) leases nothing, though lapsed leases are reclaimed and due tasks
-- become ready; tasks of a paused type are held. A task past its deadline ('exp') is never
-- started: it ends expired when it falls due or when it is taken.
-- Two scripts are made from this file (scripts.py): `dequeue_members` with the workflow
-- helpers, and `dequeue` without them (`workflows` is false), for the common call that
-- ends no workflow member. When `dequeue` would end one (its deadline passed, or its lease
-- lapsed), it leaves that task as it was and says so: the caller then calls
-- `dequeue_members` (scripts hold only the code their call needs: every loaded script's
-- code is walked by Redis's Lua collector, bench.scriptcost).
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  count (the worker's free slots)
-- ARGV[2]  lease length ms
-- ARGV[3]  worker id
-- ARGV[4]  events stream cap
-- ARGV[5]  default max retries (for tasks whose lease lapsed)
-- ARGV[6]  dead-letter cap, ARGV[7] dead-letter TTL ms
-- ARGV[8]  result TTL ms and ARGV[9] finished index cap, of expired tasks
-- ARGV[10] number of limited types L, then per type:
--          type, rate interval ms (0: no rate limit), burst, concurrency limit (0: none)
-- Returns  {ms until the next timed event (-1: none), N, tasks put off by a rate limit,
--           tasks held by a concurrency limit, tasks held by an open breaker,
--           tasks held by a pause of their type, tasks expired, 1 if a workflow member
--           was left for dequeue_members (else 0),
--           then per task: id, token, type, payload, attempt, max_retries, timeout ms, trace,
--           ms it waited ready}
local prefix = KEYS[1]
local count, lease = tonumber(ARGV[1]), tonumber(ARGV[2])
local worker, maxlen = ARGV[3], ARGV[4]
local default_retries = tonumber(ARGV[5])
local now, now_text = now_ms()
local limits = {}
for i = 11, 10 + 4 * tonumber(ARGV[10]), 4 do
  limits[ARGV[i]] = {interval = tonumber(ARGV[i + 1]), burst = tonumber(ARGV[i + 2]),
                     conc = tonumber(ARGV[i + 3])}
end
local out = {-1, 0, 0, 0, 0, 0, 0, 0}
local THROTTLED, HELD_CC, HELD_CB, HELD_PAUSE, EXPIRED_N, LEFT = 3, 4, 5, 6, 7, 8

-- Tasks whose deadline passed before they started: {id, key, type, attempt, where it was
-- (the ready priority, or false: scheduled)}, ended expired at the end (a list, not a
-- helper function: every function a script defines is made anew on each call).
local lapsed = nil

-- The members of the sorted set at `key` whose time has come (at most `limit`, earliest
-- first), taken out of it (nil: none), and the earliest score left (nil: none), which the
-- next timed event is worked out from at the end. In the common case nothing is due, and
-- this is one read of the first entry, not a range read: every command a script calls
-- costs thousands of instructions. The callers loop over the ids inline: a function per
-- loop would be made anew on each call (bench.scriptcost).
local function take_due(key, limit)
  local first = first_score(key)
  if not first or first > now then
    return nil, first
  end
  local ids = redis.call('ZRANGEBYSCORE', key, '-inf', now_text, 'LIMIT', '0', limit)
  for _, id in ipairs(ids) do
    redis.call('ZREM', key, id)
  end
  return ids, first_score(key)
end

-- 1. Leases that lapsed: the worker is gone. Retry at the front, or dead-letter.
local active_key = prefix .. 'active'
local due, first_active = take_due(active_key, '100')
if due then
  for _, id in ipairs(due) do
    local key = prefix .. 't:' .. id
    local f = redis.call('HMGET', key, 't', 'att', 'maxr', 'prio', 'wkr', 'cc', 'trial', 'wf')
    local att = tonumber(f[2] or 0)
    local dead = att > tonumber(f[3] or default_retries)  -- its retries are spent
    if f[8] and dead and not workflows then  -- a member's end: left for dequeue_members
      redis.call('ZADD', active_key, now_text, id)
      out[LEFT] = 1
    elseif f[1] then
      redis.call('HINCRBY', key, 'tok', '1')
      release_slot(prefix, maxlen, key, f[1], now, f[6], f[7])
      local err = cjson.encode({type = 'LeaseExpired', traceback = cjson.null,
        message = 'worker ' .. (f[5] or '?') .. ' stopped renewing its lease'})
      if not dead then
        redis.call('HSET', key, 's', QUEUED, 'error', err)
        push_ready(prefix, id, f[4] or '0', true)
        emit(prefix, maxlen, id, 'lease_expired', f[1], att, err)
      else
        redis.call('HSET', key, 's', FAILED, 'error', err, 'ftime', now_text)
        redis.call('PEXPIRE', key, ARGV[7])
        index_finished(prefix, 'failed', id, now, tonumber(ARGV[6]), true)
        emit(prefix, maxlen, id, 'failed', f[1], att, err)
        count_finished(prefix, now, 0, 1)  -- a failure for good, as finish.lua counts one
        if f[8] then
          workflows().member_done(prefix, maxlen, f[8], 'f', now, now_text, key)
        end
      end
    end
  end
end

-- 2. Scheduled tasks whose time has come become ready, oldest due first; throttled
--    tasks whose rate-limit slot has come return to the front.
local due, first_scheduled = take_due(prefix .. 'scheduled', '1000')
if due then
  for _, id in ipairs(due) do
    local key = prefix .. 't:' .. id
    local f = redis.call('HMGET', key, 't', 'prio', 'att', 'exp')
    if f[4] and tonumber(f[4]) <= now then
      lapsed = lapsed or {}
      lapsed[#lapsed + 1] = {id, key, f[1], f[3], false}
    elseif f[1] then
      redis.call('HSET', key, 's', QUEUED)
      push_ready(prefix, id, f[2] or '0', false)
      emit(prefix, maxlen, id, 'queued', f[1], f[3] or 0)
    end
  end
end
local throttled_key = prefix .. 'throttled'
local due, first_throttled = take_due(throttled_key, '1000')
if due then
  for _, id in ipairs(due) do
    push_ready(prefix, id, redis.call('HGET', prefix .. 't:' .. id, 'prio') or '0', true)
  end
end

-- 3. What holds tasks back, in one read (every command a script calls costs thousands of
--    instructions, and both sets are almost always missing): types whose breaker is open
--    or half-open, and pauses ('|*' the whole queue, '|<type>' a type), one set: cbopen.
local breaking, paused, queue_paused = {}, nil, false
for _, member in ipairs(redis.call('SMEMBERS', prefix .. 'cbopen')) do
  if string.byte(member) == 124 then  -- '|': no task type's name starts so
    paused = paused or {}
    paused[string.sub(member, 2)] = true
  else
    breaking[member] = true
  end
end
queue_paused = paused and paused['*'] or false

--    Held tasks whose obstacle is gone: concurrency slots free (a safety net: finishing
--    releases them too). Breakers whose open period has passed turn half-open now, held
--    task or not (common.lua, breaker_settle), and a half-open one with its trial slot
--    free releases one held task to be the trial. The end of an open period is a timed
--    event: an idle worker wakes for it. Nothing is released while paused.
local next_release = math.huge
for task_type, lim in pairs(limits) do
  if lim.conc > 0 and not queue_paused and not (paused and paused[task_type]) then
    local free = lim.conc - tonumber(redis.call('HGET', prefix .. 'running', task_type) or 0)
    if free > 0 then
      release_held(prefix, task_type, free)
    end
  end
end
for task_type in pairs(breaking) do  -- only these are checked: closed ones let all through
  local state, event, open_until, trial = breaker_settle(prefix .. 'cb:' .. task_type, now)
  if event then
    emit(prefix, maxlen, '', event, task_type, 0)
  end
  if state == 1 then
    next_release = math.min(next_release, open_until)
  elseif state == 2 and not trial and not queue_paused and not (paused and paused[task_type]) then
    release_held(prefix, task_type, 1)
  end
end

-- Whether a popped task may run now: nil if it may; if not, it is held or throttled, and
-- the answer is the place of its count in the reply (THROTTLED, HELD_*).
local function admit(id, key, task_type)
  if paused and paused[task_type] then
    redis.call('RPUSH', prefix .. 'held:' .. task_type, id)
    return HELD_PAUSE
  end
  local lim = limits[task_type]
  if lim and lim.conc > 0 and
      tonumber(redis.call('HGET', prefix .. 'running', task_type) or 0) >= lim.conc then
    redis.call('RPUSH', prefix .. 'held:' .. task_type, id)
    return HELD_CC
  end
  local cb = prefix .. 'cb:' .. task_type
  local trial = false
  if breaking[task_type] then  -- a closed breaker lets every task through
    local allowed, _, state, event = breaker_allow(cb, now)
    if not allowed then
      redis.call('RPUSH', prefix .. 'held:' .. task_type, id)
      return HELD_CB
    end
    if event then
      emit(prefix, maxlen, '', event, task_type, 0)
    end
    trial = state == 2
  end
  if lim and lim.interval > 0 then
    if redis.call('HDEL', key, 'rsv') == 0 then
      local wait = gcra_take(prefix .. 'rl:' .. task_type, now, lim.interval, lim.burst, true)
      if wait > 0 then
        if trial then  -- it comes back for its slot; until then another may be the trial
          breaker_record(cb, 'neutral', now, 0, 0)
        end
        redis.call('HSET', key, 'rsv', 1)
        redis.call('ZADD', throttled_key, string.format('%d', math.ceil(now + wait)), id)
        return THROTTLED
      end
    end
  end
  if trial then  -- marked with its half-open period (common.lua, type_breaker_record)
    redis.call('HSET', key, 'trial', 'h' .. redis.call('HGET', cb, 'to_half_open'))
  end
  if lim and lim.conc > 0 then
    redis.call('HINCRBY', prefix .. 'running', task_type, 1)
    redis.call('HSET', key, 'cc', 1)
  end
  return nil
end

-- 4. Take ready tasks, highest priority first, FIFO within a priority, and lease them
--    with a new fencing token per attempt; none while the queue is paused.
local deadline = now + lease
local leased = {}  -- into the active set in one ZADD, below
local budget = count * 4 + 100
local task_prefix = prefix .. 't:'
local unlimited = next(limits) == nil and next(breaking) == nil and not paused
local drained = false  -- no priority has ready tasks left
while not queue_paused and out[2] < count and budget > 0 do
  local top = redis.call('ZREVRANGE', prefix .. 'prios', '0', '0')[1]
  if not top then
    drained = true
    break
  end
  local want = math.min(count - out[2], budget)
  local ids = redis.call('RPOP', prefix .. 'q:' .. top, string.format('%d', want)) or {}
  if #ids < want then
    redis.call('ZREM', prefix .. 'prios', top)
  end
  budget = budget - #ids
  for _, id in ipairs(ids) do
    local key = task_prefix .. id
    local f = redis.call('HMGET', key, 't', 'd', 'maxr', 'tmo', 'trace', 'due', 'c',
                         'tok', 'att', 'exp')
    local gone = f[10] and tonumber(f[10]) <= now
    if gone then
      lapsed = lapsed or {}
      lapsed[#lapsed + 1] = {id, key, f[1], f[9], top}
    end
    local refused = not gone and f[1] and not unlimited and admit(id, key, f[1])
    if refused then
      out[refused] = out[refused] + 1
    elseif f[1] and not gone then
      local token, att = tonumber(f[8] or 0) + 1, tonumber(f[9] or 0) + 1
      local att_text = string.format('%d', att)  -- %d: cheaper than Redis's %.17g
      redis.call('HSET', key, 's', ACTIVE, 'stime', now_text, 'wkr', worker,
                 'tok', string.format('%d', token), 'att', att_text)
      leased[#leased + 1] = id
      emit(prefix, maxlen, id, 'active', f[1], att_text)
      local n = #out
      out[n + 1], out[n + 2], out[n + 3], out[n + 4] = id, token, f[1], f[2]
      out[n + 5], out[n + 6], out[n + 7], out[n + 8] = att, f[3] or '', f[4] or '', f[5] or ''
      out[n + 9] = now - tonumber(f[6] or f[7] or now)
      out[2] = out[2] + 1
    end
  end
end

zadd_all(active_key, string.format('%d', deadline), leased)

-- A task past its deadline ends expired: its hash is kept for the result TTL, its id in
-- the capped `expired` index. A workflow member is left where it was for dequeue_members.
if lapsed then
  for _, e in ipairs(lapsed) do
    local id, key = e[1], e[2]
    local wf = redis.call('HGET', key, 'wf')  -- read here: expiring is rare
    if wf and not workflows then
      if e[5] then
        push_ready(prefix, id, e[5], true)
      else
        redis.call('ZADD', prefix .. 'scheduled', now_text, id)
      end
      out[LEFT] = 1
    else
      redis.call('HSET', key, 's', EXPIRED, 'ftime', now_text)
      redis.call('PEXPIRE', key, ARGV[8])
      index_finished(prefix, 'expired', id, now, tonumber(ARGV[9]), false)
      emit(prefix, maxlen, id, 'expired', e[3], e[4] or '0')
      out[EXPIRED_N] = out[EXPIRED_N] + 1
      if wf then
        workflows().member_done(prefix, maxlen, wf, 'e', now, now_text, key)
      end
    end
  end
end

-- 5. More ready work than this worker took: wake another one. Tell this one when the
--    next timed event (a due task, a lapsing lease, a throttled slot, a breaker) is. A
--    task throttled to a slot sooner than any before it wakes another worker too: this
--    one may be busy at that time, and idle ones learn the slot only from a dequeue.
local woken = false
if not drained and not queue_paused and redis.call('EXISTS', prefix .. 'prios') == 1 then
  wake(prefix)
  woken = true
end
if out[THROTTLED] > 0 then  -- a limit throttled some just now
  local before = first_throttled
  first_throttled = first_score(throttled_key)
  if not woken and (not before or first_throttled < before) then
    wake(prefix)
  end
end
local soonest = math.min(next_release, first_active or math.huge,
                         first_scheduled or math.huge, first_throttled or math.huge)
if #leased > 0 then
  soonest = math.min(soonest, deadline)
end
if soonest ~= math.huge then
  out[1] = math.max(0, soonest - now)
end
return out
