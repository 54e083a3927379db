-- Record how attempts ended, in one batch. An answer whose token is not the task's
-- current one (the lease lapsed and another attempt replaced it), or for an attempt
-- already recorded (a finish sent again after a lost reply), is refused.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  events stream cap
-- ARGV[2]  finished index cap (succeeded, cancelled)
-- ARGV[3]  dead-letter cap
-- ARGV[4]  default result TTL ms
-- ARGV[5]  dead-letter TTL ms
-- ARGV[6]  the answers, packed in one argument: records separated by \30 (RS), fields
--          by \31 (US); neither byte occurs in JSON text, ids, names or numbers, so
--          nothing is escaped (codec.pack_answers). The fields of each:
--          id, token, outcome, value, delay ms, breaker signal, breaker threshold,
--          breaker open ms
--          outcome: succeeded (value = result JSON), failed (value = error JSON),
--                   retry (value = error JSON, after delay ms), cancelled,
--                   returned (handed back unfinished at shutdown; the attempt is not counted)
--          breaker signal: '' (the type has no breaker), ok, fail or neutral
-- ARGV[7]  the ids among them that may be workflow members (a member's id has a dot, a
--          generated id none: codec.maybe_members), separated by \31; '' (the common
--          case) when none: the other tasks pay nothing for workflows (bench.scriptcost).
--          Two scripts are made from this file (scripts.py): `finish_members` with the
--          workflow helpers, called when ARGV[7] names any, and `finish` without them.
-- Returns  per answer: 1 accepted, 0 refused; accepted and left for the relay (the caller
--          relays it at once: store/relay.py): 2 a notice written (a member of a workflow on
--          another queue), 3 its workflow's next step has members on other queues
-- A workflow member's end (its field 'wf') is counted in its workflow, whose next step (or
-- error callback) is enqueued in this same script (common.lua, workflows).
-- The tasks that succeeded and failed (for good) are counted per minute (count_finished).
-- A finished index scores an entry by its finish time; a task finished with a result TTL
-- of its own, by its expiry less the default TTL instead. So every entry's score is its
-- task's expiry less the default TTL, and stats.lua drops the entries of expired tasks
-- with one range by score.
local prefix, maxlen = KEYS[1], ARGV[1]
local index_cap, failed_cap = tonumber(ARGV[2]), tonumber(ARGV[3])
local result_ttl, failed_ttl = ARGV[4], ARGV[5]
local now, now_text = now_ms()
local out = {}

-- A finished task with a result TTL of its own is indexed by itself (see above).
local function index_by_expiry(status, id, ttl)
  local score = now + tonumber(ttl) - tonumber(result_ttl)
  redis.call('ZADD', prefix .. status, string.format('%d', score), id)
  trim_finished(prefix, status, index_cap, false)
end

local members = nil  -- ids that may be workflow members (ARGV[7]); nil: none
if ARGV[7] ~= '' then
  members = {}
  for member in string.gmatch(ARGV[7], '[^\31]+') do
    members[member] = true
  end
end
local ended, ended_ids = {}, {}  -- answers accepted: they leave the active set at the end
local finished = {succeeded = {}, failed = {}, cancelled = {}}  -- index entries, added last
local clean = {}  -- task types whose breaker this batch has recorded an 'ok' for, last
local succeeded, failed = 0, 0  -- answers accepted of each outcome, counted per minute last
local F = '([^\30\31]*)'  -- one field of an answer
local ANSWER = F .. string.rep('\31' .. F, 7) .. '\30?'  -- one C call parses an answer
for id, token, outcome, value, delay, signal, threshold, open_ms in
    string.gmatch(ARGV[6], ANSWER) do
  delay, threshold, open_ms = tonumber(delay), tonumber(threshold), tonumber(open_ms)
  local key = prefix .. 't:' .. id
  local f = redis.call('HMGET', key, 'tok', 't', 'att', 'prio', 'rttl', 'cc', 'trial', 's')
  -- A task is in the active set exactly while its state is ACTIVE (dequeue, reclaim
  -- and finish change both together), so the state stands in for a ZREM per answer.
  if f[1] ~= token or f[8] ~= ACTIVE or ended[id] then
    out[#out + 1] = 0
  else
    ended[id] = true
    ended_ids[#ended_ids + 1] = id
    local task_type, att = f[2], f[3]
    local trial = f[7]
    if signal ~= '' and signal ~= 'neutral' then
      -- After an 'ok' the breaker is closed with no failures (or open, and 'ok' leaves an
      -- open breaker alone): another 'ok' before any 'fail' would change nothing.
      if signal ~= 'ok' or not clean[task_type] then
        type_breaker_record(prefix, maxlen, task_type, signal, now, threshold, open_ms)
      end
      clean[task_type] = signal == 'ok'
      trial = false
    end
    if f[6] or trial then
      release_slot(prefix, maxlen, key, task_type, now, f[6], trial)
    end
    local member_end = nil  -- how it ended for good: s, f or x (see below)
    if outcome == 'succeeded' then
      succeeded = succeeded + 1
      redis.call('HSET', key, 's', SUCCEEDED, 'ftime', now_text, 'result', value)
      if att ~= '1' then  -- an earlier attempt may have left an error
        redis.call('HDEL', key, 'error')
      end
      redis.call('PEXPIRE', key, f[5] or result_ttl)
      if f[5] then
        index_by_expiry('succeeded', id, f[5])
      else
        finished.succeeded[#finished.succeeded + 1] = id
      end
      emit(prefix, maxlen, id, 'succeeded', task_type, att)
      member_end = 's'
    elseif outcome == 'failed' then
      failed = failed + 1
      redis.call('HSET', key, 's', FAILED, 'ftime', now_text, 'error', value)
      redis.call('PEXPIRE', key, failed_ttl)
      finished.failed[#finished.failed + 1] = id
      emit(prefix, maxlen, id, 'failed', task_type, att, value)
      member_end = 'f'
    elseif outcome == 'retry' then
      local due = now + delay
      redis.call('HSET', key, 's', SCHEDULED, 'due', due, 'error', value)
      redis.call('ZADD', prefix .. 'scheduled', due, id)
      emit(prefix, maxlen, id, 'retrying', task_type, att, value)
      wake(prefix)
    elseif outcome == 'cancelled' then
      redis.call('HSET', key, 's', CANCELLED, 'ftime', now_text)
      redis.call('PEXPIRE', key, f[5] or result_ttl)
      if f[5] then
        index_by_expiry('cancelled', id, f[5])
      else
        finished.cancelled[#finished.cancelled + 1] = id
      end
      emit(prefix, maxlen, id, 'cancelled', task_type, att)
      member_end = 'x'
    else
      redis.call('HINCRBY', key, 'att', '-1')
      redis.call('HSET', key, 's', QUEUED)
      push_ready(prefix, id, f[4] or '0', true)
      emit(prefix, maxlen, id, 'returned', task_type, att - 1)
      wake(prefix)
    end
    -- A workflow's member (field 'wf') counts its end in its workflow, whose next step
    -- (or error callback) this script enqueues (common.lua, workflows).
    -- What it left for the relay makes its answer 2 or 3 (see above).
    if member_end and members and members[id] then
      local wf = redis.call('HGET', key, 'wf')
      local relay = wf and workflows().member_done(prefix, maxlen, wf, member_end, now, now_text,
                                                   key)
      if relay then
        out[#out + 1] = relay == 'n' and 2 or 3
      else
        out[#out + 1] = 1
      end
    else
      out[#out + 1] = 1
    end
  end
end
zrem_all(prefix .. 'active', ended_ids)
if succeeded + failed > 0 then
  count_finished(prefix, now, succeeded, failed)
end
for status, ids in pairs(finished) do
  if #ids > 0 then
    zadd_all(prefix .. status, now_text, ids)
    trim_finished(prefix, status, status == 'failed' and failed_cap or index_cap,
                  status == 'failed')
  end
end
return out
