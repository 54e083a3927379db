-- Helpers prepended to every arqd script (see scripts.py). Not a script of its own.
--
-- A queue's keys all start with the prefix passed as KEYS[1], "<app>:{<queue>}:", so they
-- share one hash tag and every script runs on Redis Cluster. Suffixes (see keys.py):
--   t:<id>      hash   one task's fields (see codec.py for the field names)
--   lg:<id>:<n> list   log lines of attempt n of a task, capped (progress.lua)
--   prios       zset   priority levels that have ready tasks (score = member = priority)
--   q:<prio>    list   ready task ids of one priority, LPUSH to enqueue, RPOP to take (FIFO)
--   scheduled   zset   delayed and backing-off task ids, score = due time (ms)
--   active      zset   leased task ids, score = lease deadline (ms)
--   succeeded / failed / cancelled / expired   zset   finished task ids, score = finish
--               time (ms); expired: tasks whose deadline (field 'exp') passed before they started
--   events      stream every transition, capped (MAXLEN ~)
--   wake        list   a token that wakes a worker blocked in BLPOP
--   idem:<key>  string idempotency key -> task id, with its own TTL
--   dd:<key>    string dedupe key -> the task it kept, with a TTL (see dedupe below)
--   throttled   zset   ready tasks waiting for their rate-limit slot, score = slot time (ms)
--   held:<type> list   ready tasks held by a concurrency limit or an open breaker
--   running     hash   task type -> attempts running now (types with a concurrency limit)
--   rl:<type>   string rate limit state (GCRA theoretical arrival time, ms)
--   cb:<type>   hash   the type's circuit breaker: state (0/1/2), fails, until, trial
--   cbs         set    types that have a breaker record
--   cbopen      set    what holds tasks back: types whose breaker is open or half-open, and
--                      pauses, '|*' the whole queue and '|<type>' a task type (whose tasks
--                      are held in held:<type>); one set, so a dequeue reads both in one
--                      SMEMBERS (a second read cost 8% of a one-task dequeue: scriptcost)
--   m:<hour>    hash   tasks finished per minute of one hour (see count_finished)
--   sc:<name>   hash   a schedule: def, ver, next, paused, reason, last, ltask, runs...
--   scnext      zset   the queue's schedules that are not paused, score = next fire (ms)
--   pauses      hash   what is paused ('*' or the type) -> JSON {reason, at (ms), by}
--   wf:<id>     hash   a workflow (see workflows below and store/workflows.py)
--   wf:<id>:o   string a workflow's member outcomes, one byte a member (see workflows)
--   wf:<id>:out hash   a workflow's members to start (or cancel) on other queues: its outbox
--   wf:<id>:r   hash   results of a workflow's members on other queues, their generations
--   wfout       set    ids of the queue's workflows whose outbox holds entries
--   wfn         hash   notices of the queue's members of other queues' workflows: member id
--                      -> how it ended (or that it was retried), for the relay (see workflows)

-- A task's status as its hash keeps it (field 's'): a letter or two, since every queued
-- task holds one (codec.py maps them to TaskStatus names). Index and event names stay words.
local QUEUED, SCHEDULED, ACTIVE = 'q', 'w', 'a'
local SUCCEEDED, FAILED, CANCELLED, EXPIRED = 'ok', 'f', 'x', 'e'

-- A status code's name. A function, not a table: every definition a script names runs on
-- each call of it, and a table built on every enqueue call costs it (bench.scriptcost).
local function status_name(code)
  return ({q = 'queued', w = 'scheduled', a = 'active', ok = 'succeeded', f = 'failed',
           x = 'cancelled', e = 'expired'})[code]
end

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

-- Tasks that succeeded and failed for good (dead-lettered; a retry is no failure) at
-- `now`, added to the queue's per-minute counts: one hash per hour (m:<hours since the
-- epoch>), fields <minute of the hour>:s and <minute>:f (history.py reads them). A
-- field's first count (HINCRBY answers the count itself) sets the hash's TTL, so a hash
-- lives 25 h after its last new minute: the last 24 hours are always whole.
local function count_finished(prefix, now, succeeded, failed)
  local minute = (now - now % 60000) / 60000
  local in_hour = minute % 60
  local key = string.format('%sm:%d', prefix, (minute - in_hour) / 60)
  local new = false
  if succeeded > 0 then  -- counts as text: Redis would format a number with %.17g
    new = redis.call('HINCRBY', key, string.format('%d:s', in_hour),
                     string.format('%d', succeeded)) == succeeded
  end
  if failed > 0 and redis.call('HINCRBY', key, string.format('%d:f', in_hour),
                               string.format('%d', failed)) == failed then
    new = true
  end
  if new then
    redis.call('PEXPIRE', key, '90000000')
  end
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

-- Make held tasks of a type ready again, at the front of their priority (at most n), and
-- wake a worker for them: a slot freed by a finish starts the next held task in the round
-- trip of that wake-up, not at an idle worker's next periodic look.
local function release_held(prefix, task_type, n)
  local held = prefix .. 'held:' .. task_type
  local released = 0
  for _ = 1, n do
    local id = redis.call('LPOP', held)
    if not id then
      break
    end
    push_ready(prefix, id, redis.call('HGET', prefix .. 't:' .. id, 'prio') or '0', true)
    released = released + 1
  end
  if released > 0 then
    wake(prefix)
  end
end

-- GCRA (resilience/ratelimit.py's gcra and reserve are the reference the tests hold this
-- to): take one token of the limit whose theoretical arrival time (TAT, ms) is at `key`.
-- Returns the ms to wait for the token (0: taken now), and how far the TAT is ahead of now
-- before the take and after it (offsets, not times: (now + interval) - now need not be
-- interval in floating point). A refused token leaves the TAT alone, unless `reserve`:
-- then the slot is taken anyway, so a task deferred to it runs at its time.
local function gcra_take(key, now, interval, burst, reserve)
  local ahead = math.max(tonumber(redis.call('GET', key) or now) - now, 0)
  local new_ahead = ahead + interval
  local wait = new_ahead - interval * burst
  if wait <= 0 or reserve then
    redis.call('SET', key, string.format('%.3f', now + new_ahead), 'PX',
               string.format('%d', math.ceil(new_ahead) + 1))
  end
  return math.max(0, wait), ahead, new_ahead
end

-- The circuit breaker's state machine, the one every breaker runs: named ones (breaker.lua)
-- and task types' (dequeue.lua, finish.lua, reset_breaker.lua). resilience/breaker.py is
-- its reference; tests/integration/test_lua_models.py holds the two together. One hash per
-- breaker: state (0 closed, 1 open, 2 half-open), fails (in a row), until (ms when the open
-- state ends), trial (1: the half-open trial is running), and the transitions so far,
-- to_closed / to_open / to_half_open (arq_circuit_breaker_transitions_total).
--
-- breaker_allow: may a call pass at `now`? Returns whether it may, the ms after which to
-- ask again (0 when it may), the state after, and the event of the transition it made.
local function breaker_allow(key, now)
  local f = redis.call('HMGET', key, 'state', 'until', 'trial')
  if f[1] == '1' then
    local wait = tonumber(f[2]) - now
    if wait > 0 then
      return false, wait, 1
    end
    redis.call('HSET', key, 'state', 2, 'trial', 1)
    redis.call('HINCRBY', key, 'to_half_open', 1)
    return true, 0, 2, 'breaker_half_open'
  elseif f[1] == '2' then
    if f[3] == '1' then
      return false, 1000, 2  -- breaker.py's TRIAL_WAIT_MS
    end
    redis.call('HSET', key, 'trial', 1)
    return true, 0, 2
  end
  return true, 0, 0
end

-- breaker_settle: an open breaker whose open period has passed turns half-open at `now`,
-- its trial slot free, whether or not a call asks (resilience/breaker.py's settle), so it
-- reports half-open without waiting for a call. Returns the state after, the event of the
-- transition it made (nil: none), when the open period ends (ms; while it stays open),
-- and whether the half-open trial is running.
local function breaker_settle(key, now)
  local f = redis.call('HMGET', key, 'state', 'until', 'trial')
  if f[1] == '1' then
    local open_until = tonumber(f[2])
    if open_until > now then
      return 1, nil, open_until, false
    end
    redis.call('HSET', key, 'state', 2, 'trial', 0)
    redis.call('HINCRBY', key, 'to_half_open', 1)
    return 2, 'breaker_half_open', nil, false
  end
  return tonumber(f[1] or 0), nil, nil, f[3] == '1'
end

-- A call that passed ended with `outcome` (ok | fail | neutral). Returns the state after,
-- the event of the transition it made (nil: none), and whether it wrote the hash.
local function breaker_record(key, outcome, now, threshold, open_ms)
  local f = redis.call('HMGET', key, 'state', 'fails')
  local state, fails = tonumber(f[1] or 0), tonumber(f[2] or 0)
  if state == 1 then  -- late answers of calls let through before it opened change nothing
    return 1
  elseif outcome == 'ok' then
    if state == 2 or fails > 0 then
      redis.call('HSET', key, 'state', 0, 'fails', 0, 'until', 0, 'trial', 0)
      if state == 2 then
        redis.call('HINCRBY', key, 'to_closed', 1)
        return 0, 'breaker_closed', true
      end
      return 0, nil, true
    end
  elseif outcome == 'fail' then
    if state == 2 or fails + 1 >= threshold then
      redis.call('HSET', key, 'state', 1, 'fails', fails + 1, 'until', now + open_ms, 'trial', 0)
      redis.call('HINCRBY', key, 'to_open', 1)
      return 1, 'breaker_opened', true
    end
    redis.call('HSET', key, 'state', 0, 'fails', fails + 1)
    return 0, nil, true
  elseif outcome == 'neutral' and state == 2 then  -- the trial slot is free for another
    redis.call('HSET', key, 'trial', 0)
    return 2, nil, true
  end
  return state
end

-- Close a breaker by hand (its event is breaker_reset). Returns the state it had.
local function breaker_reset(key)
  local state = tonumber(redis.call('HGET', key, 'state') or 0)
  redis.call('HSET', key, 'state', 0, 'fails', 0, 'until', 0, 'trial', 0)
  redis.call('HINCRBY', key, 'to_closed', 1)
  return state
end

-- A task type's breaker (cb:<type>) records how an attempt ended. Around the machine: the
-- set of types with a breaker record (cbs) and of those open or half-open (cbopen), events
-- on the queue's stream, and the type's held tasks, all released when it closes and one
-- when a trial ends neither way. 'neutral' is recorded only for the trial (release_slot),
-- whose task's field 'trial' says in which half-open period it passed: 'h' and to_half_open
-- then ('1': passed before trials were marked so). The late end of an earlier period's
-- trial must not free the slot of this period's, or two trials would run at once.
local function type_breaker_record(prefix, maxlen, task_type, outcome, now, threshold, open_ms,
                                   trial)
  local cb = prefix .. 'cb:' .. task_type
  if outcome == 'neutral' and trial ~= '1' and
      trial ~= 'h' .. (redis.call('HGET', cb, 'to_half_open') or '') then
    return
  end
  local _, event, wrote = breaker_record(cb, outcome, now, threshold, open_ms)
  if outcome == 'fail' then
    redis.call('SADD', prefix .. 'cbs', task_type)
  end
  if event == 'breaker_opened' then
    redis.call('SADD', prefix .. 'cbopen', task_type)
    wake(prefix)  -- an idle worker learns when the open period ends, and wakes then
  elseif event == 'breaker_closed' then
    redis.call('SREM', prefix .. 'cbopen', task_type)
    release_held(prefix, task_type, redis.call('LLEN', prefix .. 'held:' .. task_type))
  elseif wrote and outcome == 'neutral' then
    release_held(prefix, task_type, 1)
  end
  if event then
    emit(prefix, maxlen, '', event, task_type, 0)
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
    type_breaker_record(prefix, maxlen, task_type, 'neutral', now, 0, 0, trial)
  end
end

-- Deduplication, enqueue.lua's 'dd' option: spec "<mode>:<ms>:<key>" (store/dedupe.py).
-- dd:<key> names the task it kept; whether that task still blocks a new enqueue is read
-- from its hash each time (arqd.core.dedupe.blocks holds the rule), so nothing cleans
-- keys up: a kept task that finished, expired or was deleted blocks nothing. A throttle
-- or debounce key lives its window; an until_* key at least ms past the latest enqueue
-- that used it (and that enqueue's delay), which only bounds its memory.
-- Returns the kept task's id when it blocks: a 'deduplicated' event names it (with its
-- status, the mode and the refused id), and a debounced one takes `data` and is due a
-- window from now. Else false, with the key set to `id`. Then the new task's delay.
local function dedupe(prefix, maxlen, spec, id, data, now, delay)
  local mode, ms, name = string.match(spec, '^([%l_]+):(%d+):(.*)$')
  local key = prefix .. 'dd:' .. name
  local kept = redis.call('GET', key)
  if kept then
    local task_key = prefix .. 't:' .. kept
    local f = redis.call('HMGET', task_key, 's', 't', 'att', 'stime')
    local s = f[1]
    local waiting = (s == QUEUED or s == SCHEDULED) and not f[4]
    if mode == 'throttle' and s or mode == 'until_started' and waiting
        or mode == 'debounce' and waiting and s == SCHEDULED
        or mode == 'until_finished' and (s == QUEUED or s == SCHEDULED or s == ACTIVE) then
      if mode == 'debounce' then
        local due = string.format('%d', now + tonumber(ms))
        redis.call('HSET', task_key, 'd', data, 'due', due)
        redis.call('ZADD', prefix .. 'scheduled', due, kept)
        redis.call('PEXPIRE', key, ms)
      elseif mode ~= 'throttle' then  -- kept ms past this enqueue too (never less than it had)
        local keep = tonumber(ms) + math.max(delay, 0)
        if redis.call('PTTL', key) < keep then
          redis.call('PEXPIRE', key, string.format('%d', keep))
        end
      end
      redis.call('XADD', prefix .. 'events', 'MAXLEN', '~', maxlen, '*', 'task', kept,
                 'event', 'deduplicated', 'type', f[2], 'attempt', f[3] or '0',
                 'status', status_name(s), 'mode', mode, 'refused', id)
      return kept, delay
    end
  end
  if mode == 'debounce' or mode == 'throttle' then
    redis.call('SET', key, id, 'PX', ms)
    return false, mode == 'debounce' and tonumber(ms) or delay
  end
  redis.call('SET', key, id, 'PX', string.format('%d', tonumber(ms) + math.max(delay, 0)))
  return false, delay
end

-- Workflows (store/workflows.py; members on other queues: store/relay.py). A workflow is
-- steps run one after the other; a step is one task or a group. Hash wf:<id>: st (status:
-- r running, ok, f failed, x cancelled), ns (steps), ttl (ms the state is kept once it
-- ended), fails (error callbacks enqueued), err (the error callback's record), per step k:
-- n<k> members, o<k> the offset of its first member's byte in wf:<id>:o, p<k> its failure
-- policy (fail | continue | ignore), g<k> '1' for a group, s<k> its member records until
-- it starts, q<k> (only when some member runs on another queue) each member's queue ('':
-- this one), separated by \31, in<k> the input of a step whose members on other queues
-- take the previous result; the current step: k, and its co (offset), cn (members), cp,
-- cg, and done (its members that ended).
-- wf:<id>:o holds a byte per member (offset order): '\0' (or past the end) not ended,
-- else how it ended: s succeeded, f failed, x cancelled, e expired. A member is counted
-- when its byte first turns from not ended to ended, so an end recorded twice counts once.
-- A member task's hash field wf is "<workflow id>:<offset>"; its id is <wf id>.<k>.<i>.
--
-- A member on another queue (another slot on a Redis Cluster: no script touches both)
-- travels through outboxes that a relay (store/relay.py) carries over, each step safe to
-- redo. Its start is an entry in its workflow's wf:<id>:out (field: its id; value
-- m \31 queue \31 k \31 its record \31 wf: last, it holds \31 too), and the workflow's id in wfout; the relay
-- creates it on its queue (workflow_deliver.lua: an id there already is left alone), then
-- drops the entry (workflow_sent.lua). Its wf is "<workflow id>:<offset>\31<home queue>
-- \31<generation>" (the generation counts retries by hand). Its end, or its retry, writes
-- a notice into its own queue's hash wfn (field: its id; value home \31 workflow id \31
-- offset \31 generation \31 code (s f x e, or r: re-opened) \31 result or error JSON);
-- the relay applies it on the home queue (workflow_notices.lua: its result kept in
-- wf:<id>:r, field <offset>; a notice of an older generation than g<offset> there is
-- stale), then drops it if unchanged (workflow_noticed.lua). A cancel of the workflow
-- writes c:<id> entries (c \31 queue \31 type \31 wf): the relay cancels the member, or
-- writes it as cancelled when it was never created, so a late create finds it there.

-- The workflow helpers, made only by a script call that needs them (workflows() returns
-- them): a script runs every top-level definition it names on each call, and the scripts
-- that end tasks name these (bench.scriptcost: finishing or leasing one task a call cost
-- 3-5% more while they were top-level definitions).
local function workflows()
  -- A member record: type, payload JSON ('': the previous step's result), prio, maxr,
  -- tmo, rttl, expin (ms; '' when not given), and its queue ('': the workflow's; absent
  -- from records written before members ran on other queues), separated by \31; records
  -- by \30.
  -- Write one member task (ready now) from its record's fields; returns its priority.
  local function workflow_member(prefix, maxlen, id, wf, fields, prev, now, now_text)
    local t, d, prio, maxr, tmo, rttl, expin = unpack(fields)
    local hash = {'t', t, 'd', d ~= '' and d or prev, 'c', now_text, 's', QUEUED}
    if wf then  -- none for the error callback: it is no member
      hash[#hash + 1], hash[#hash + 2] = 'wf', wf
    end
    for name, value in pairs({prio = prio, maxr = maxr, tmo = tmo, rttl = rttl}) do
      if value ~= '' then
        hash[#hash + 1], hash[#hash + 2] = name, value
      end
    end
    if expin ~= '' then
      hash[#hash + 1], hash[#hash + 2] = 'exp', string.format('%d', now + tonumber(expin))
    end
    redis.call('HSET', prefix .. 't:' .. id, unpack(hash))
    emit(prefix, maxlen, id, 'queued', t, '0')
    return prio ~= '' and prio or '0'
  end

  -- Members on other queues go to the outbox (see above): `entries` is field, value, ...
  local function workflow_outbox(prefix, wkey, wid, k, entries, takes_prev, prev)
    for first = 1, #entries, 512 do
      redis.call('HSET', wkey .. ':out', unpack(entries, first, math.min(#entries, first + 511)))
    end
    if takes_prev then
      redis.call('HSET', wkey, 'in' .. k, prev)
    end
    redis.call('SADD', prefix .. 'wfout', wid)
  end

  -- Enqueue step k of workflow `wid` (hash at wkey): its members, given `prev` (the
  -- previous step's result, JSON) when their record has no payload; it becomes the current
  -- step. The error callback is enqueued the same way (k = 'err.<n>', see workflow_end).
  -- Members on other queues are written to the outbox instead: then it returns true.
  local function workflow_enqueue(prefix, maxlen, wkey, wid, k, records, offset, prev, now,
                                  now_text)
    local i, here, out, takes_prev = 0, 0, nil, false
    local field = '([^\30\31]*)'
    local record = field .. string.rep('\31' .. field, 6) .. '\31?' .. field .. '\30?'
    for a, b, c, d, e, f, g, q in string.gmatch(records, record) do
      local id = wid .. '.' .. k .. '.' .. i
      local wf = offset and wid .. ':' .. string.format('%d', offset + i)
      if q ~= '' then
        out = out or {}
        wf = wf and wf .. '\31' .. string.match(prefix, '{(.*)}:$') .. '\31' .. '0' or ''
        out[#out + 1] = id
        out[#out + 1] = table.concat({'m', q, k, a, b, c, d, e, f, g, wf}, '\31')
        takes_prev = takes_prev or b == ''
      else
        local prio = workflow_member(prefix, maxlen, id, wf, {a, b, c, d, e, f, g}, prev, now,
                                     now_text)
        -- One push a member (not push_ready_all's few): a helper named here would be made
        -- on every call of the scripts that end tasks (bench.scriptcost).
        push_ready(prefix, id, prio, false)
        here = here + 1
      end
      i = i + 1
    end
    if here > 0 then
      wake(prefix)
    end
    if out then
      workflow_outbox(prefix, wkey, wid, k, out, takes_prev, prev)
    end
    return out ~= nil
  end

  -- Start step k: its members are enqueued and its counters set. True: some went to the
  -- outbox.
  local function workflow_step(prefix, maxlen, wkey, wid, k, prev, now, now_text)
    local f = redis.call('HMGET', wkey, 's' .. k, 'o' .. k, 'n' .. k, 'p' .. k, 'g' .. k)
    local out = workflow_enqueue(prefix, maxlen, wkey, wid, k, f[1], tonumber(f[2]), prev, now,
                                 now_text)
    redis.call('HDEL', wkey, 's' .. k)
    redis.call('HSET', wkey, 'k', k, 'co', f[2], 'cn', f[3], 'cp', f[4], 'cg', f[5] or '0',
               'done', '0')
    return out
  end

  -- What a step that ended passes on: a task's result, or a group's results in order (a
  -- member that did not succeed: null when ignored; {"failed": status, "error": ...} when
  -- the policy is continue), read from the members' hashes; and the positions of those that
  -- did not succeed. A member's hash was kept while its step ran (workflow_member_done): it
  -- expires from now on, after its own result TTL or the workflow's (`ttl`). A member on
  -- another queue has no hash here: its notice left its result or error in wf:<id>:r.
  local function workflow_results(prefix, wid, k, co, cn, policy, group, ttl)
    local outcomes = redis.call('GETRANGE', prefix .. 'wf:' .. wid .. ':o', co, co + cn - 1)
    local parts, failed = {}, {}
    for i = 0, cn - 1 do
      local key = prefix .. 't:' .. wid .. '.' .. k .. '.' .. i
      local code = string.sub(outcomes, i + 1, i + 1)
      local f = redis.call('HMGET', key, 'result', 'error', 'rttl')
      redis.call('PEXPIRE', key, f[3] or ttl)
      if not f[1] and not f[2] then
        local kept = redis.call('HGET', prefix .. 'wf:' .. wid .. ':r',
                                string.format('%d', co + i))
        f[code == 's' and 1 or 2] = kept
      end
      if code == 's' then
        parts[#parts + 1] = f[1] or 'null'
      else
        failed[#failed + 1] = string.format('%d', i)
        if policy == 'continue' then
          local name = ({f = 'failed', x = 'cancelled', e = 'expired'})[code] or 'failed'
          parts[#parts + 1] = '{"failed":"' .. name .. '","error":' .. (f[2] or 'null') .. '}'
        else
          parts[#parts + 1] = 'null'
        end
      end
    end
    return group and '[' .. table.concat(parts, ',') .. ']' or parts[1], failed
  end

  -- The current step's last member ended. Under policy fail with a member that did not
  -- succeed, the workflow fails: the error callback (if any) is enqueued with the failed
  -- positions, under an id of its own per failure (a workflow re-opened by a retry may fail
  -- again). Else the next step starts with this one's results, or the workflow succeeded.
  -- True: what it enqueued went (partly) to the outbox.
  local function workflow_end(prefix, maxlen, wkey, wid, w, now, now_text)
    local k, co, cn = tonumber(w[1]), tonumber(w[3]), tonumber(w[4])
    local ttl = redis.call('HGET', wkey, 'ttl')
    local result, failed = workflow_results(prefix, wid, k, co, cn, w[5], w[6] == '1', ttl)
    local out = false
    if #failed > 0 and w[5] == 'fail' then
      local n = redis.call('HINCRBY', wkey, 'fails', '1')
      redis.call('HSET', wkey, 'st', 'f')
      local err = redis.call('HGET', wkey, 'err')
      if err then
        local info = '{"workflow":"' .. wid .. '","step":' .. w[1] .. ',"failed":[' ..
                     table.concat(failed, ',') .. ']}'
        out = workflow_enqueue(prefix, maxlen, wkey, wid, 'err.' .. n, err, nil, info, now,
                               now_text)
      end
    elseif k + 1 < tonumber(w[7]) then
      return workflow_step(prefix, maxlen, wkey, wid, k + 1, result, now, now_text)
    else
      redis.call('HSET', wkey, 'st', 'ok')
    end
    redis.call('PEXPIRE', wkey, ttl)
    redis.call('PEXPIRE', wkey .. ':o', ttl)
    redis.call('PEXPIRE', wkey .. ':r', ttl)  -- (results of members on other queues, if any)
    return out
  end

  -- Count the end of the member at `offset` (code: s, f, x or e) once; the step's last
  -- member's end moves the workflow on. `data`: the result or error of a member on another
  -- queue (nil for one of this queue, whose hash holds them). True: the workflow moved on
  -- and its outbox got entries.
  local function workflow_count(prefix, maxlen, wid, offset, code, data, now, now_text)
    local wkey = prefix .. 'wf:' .. wid
    local w = redis.call('HMGET', wkey, 'k', 'st', 'co', 'cn', 'cp', 'cg', 'ns')
    local old = w[2] and redis.call('GETRANGE', wkey .. ':o', offset, offset)
    if not w[2] or old ~= '' and old ~= '\0' then
      return  -- its workflow expired, or this end was counted already
    end
    if data then
      redis.call('HSET', wkey .. ':r', offset, data)
    end
    redis.call('SETRANGE', wkey .. ':o', offset, code)
    local position = tonumber(offset) - tonumber(w[3])
    if w[2] ~= 'r' or position < 0 or position >= tonumber(w[4]) then
      return  -- an earlier step's member (retried by hand), or the workflow was cancelled
    end
    if not data then
      -- Its result is read when the step ends, however long the step runs: kept till then.
      redis.call('PERSIST', prefix .. 't:' .. wid .. '.' .. w[1] .. '.' .. position)
    end
    if redis.call('HINCRBY', wkey, 'done', '1') == tonumber(w[4]) then
      return workflow_end(prefix, maxlen, wkey, wid, w, now, now_text)
    end
  end

  -- A member on another queue ended (code s, f, x, e) or was retried (r): a notice in its
  -- queue's wfn, for the relay to apply on its workflow's queue (see above). Returns 'n'.
  local function workflow_notice(prefix, wf, code, key)
    local wid, offset, home, gen = string.match(wf, '^(.*):(%d+)\31([^\31]*)\31(%d+)$')
    local data = ''
    if code ~= 'r' then
      local f = redis.call('HMGET', key, 'result', 'error')
      data = (code == 's' and f[1] or f[2]) or 'null'
    end
    redis.call('HSET', prefix .. 'wfn', string.sub(key, #prefix + 3),
               table.concat({home, wid, offset, gen, code, data}, '\31'))
    return 'n'
  end

  -- A member ended (wf: its hash field; code: s, f, x or e; key: its hash). Counted once;
  -- the step's last member's end moves the workflow on, in the same script as the member's
  -- end. What is left for the relay: 'n' a member on another queue than its workflow's
  -- wrote a notice instead; 'o' the workflow moved on and its outbox got entries; or false.
  local function workflow_member_done(prefix, maxlen, wf, code, now, now_text, key)
    if string.find(wf, '\31', 1, true) then
      return workflow_notice(prefix, wf, code, key)
    end
    local wid, offset = string.match(wf, '^(.*):(%d+)$')
    return workflow_count(prefix, maxlen, wid, offset, code, nil, now, now_text) and 'o'
  end

  -- A member that failed or was cancelled is queued again by hand (retry.lua): it has not
  -- ended any more. In the current step it is uncounted, and a workflow that failed (or
  -- succeeded: policy continue or ignore on its last step) there runs again; it moves on
  -- when the member ends, once, as before. A member of an earlier step changes only its byte.
  local function workflow_reopen(prefix, wid, offset)
    local wkey = prefix .. 'wf:' .. wid
    local w = redis.call('HMGET', wkey, 'st', 'co', 'cn')
    local old = w[1] and redis.call('GETRANGE', wkey .. ':o', offset, offset)
    if not w[1] or old == '' or old == '\0' then
      return
    end
    redis.call('SETRANGE', wkey .. ':o', offset, '\0')
    local position = tonumber(offset) - tonumber(w[2])
    if w[1] == 'x' or position < 0 or position >= tonumber(w[3]) then
      return
    end
    redis.call('HINCRBY', wkey, 'done', '-1')
    if w[1] ~= 'r' then
      redis.call('HSET', wkey, 'st', 'r')
      redis.call('PERSIST', wkey)
      redis.call('PERSIST', wkey .. ':o')
      redis.call('PERSIST', wkey .. ':r')
    end
  end

  -- retry.lua's call for a member (key: its hash). A member on another queue starts a
  -- new generation and writes a notice instead: 'n'.
  local function workflow_member_reopened(prefix, wf, key)
    if string.find(wf, '\31', 1, true) then
      local head, gen = string.match(wf, '^(.*\31)(%d+)$')
      wf = head .. string.format('%d', tonumber(gen) + 1)
      redis.call('HSET', key, 'wf', wf)
      return workflow_notice(prefix, wf, 'r', key)
    end
    local wid, offset = string.match(wf, '^(.*):(%d+)$')
    workflow_reopen(prefix, wid, offset)
  end

  -- A notice of a member on another queue, on its workflow's queue (workflow_notices.lua).
  -- A newer generation re-opens the member first; an older one is stale. wf:<id>:r lives
  -- as long as the workflow's hash.
  local function workflow_apply(prefix, maxlen, wid, offset, gen, code, data, now, now_text)
    local wkey = prefix .. 'wf:' .. wid
    if redis.call('EXISTS', wkey) == 0 then
      return  -- the workflow expired
    end
    local rkey = wkey .. ':r'
    local seen = tonumber(redis.call('HGET', rkey, 'g' .. offset) or '0')
    if tonumber(gen) < seen then
      return
    elseif tonumber(gen) > seen then
      redis.call('HSET', rkey, 'g' .. offset, gen)
      workflow_reopen(prefix, wid, offset)
    end
    if code ~= 'r' then
      workflow_count(prefix, maxlen, wid, offset, code, data, now, now_text)
    end
    local ttl = redis.call('PTTL', wkey)
    if ttl > 0 then
      redis.call('PEXPIRE', rkey, ttl)
    else
      redis.call('PERSIST', rkey)
    end
  end

  return {member_done = workflow_member_done, reopened = workflow_member_reopened,
          step = workflow_step, member = workflow_member, apply = workflow_apply}
end
