-- Cancel a running workflow: no later step starts; the current step's members that have
-- not started are cancelled at once (out of every index, 'cancelled' events), and those
-- running are asked to stop (as cancel.lua does). Members ending afterwards only record
-- how they ended. The workflow's state expires as an ended one's does. Members on other
-- queues that have not ended get a cancel entry in the workflow's outbox (it takes the
-- place of their create entry, if still there): the relay (store/relay.py) cancels them,
-- or writes them as cancelled if never created; they count as asked to stop here.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  events stream cap, ARGV[2] workflow id, ARGV[3] finished index cap,
-- ARGV[4]  default result TTL ms
-- Returns  {'cancelled', members cancelled, members asked to stop}, or {'missing'}, or
--          {'ended', status} for a workflow that had ended (succeeded, failed, cancelled)
local prefix, maxlen, wid = KEYS[1], ARGV[1], ARGV[2]
local wkey = prefix .. 'wf:' .. wid
local w = redis.call('HMGET', wkey, 'st', 'k', 'co', 'cn', 'ttl')
if not w[1] then
  return {'missing'}
elseif w[1] ~= 'r' then
  return {'ended', ({ok = 'succeeded', f = 'failed', x = 'cancelled'})[w[1]]}
end
redis.call('HSET', wkey, 'st', 'x')
local now, now_text = now_ms()
local ready = {}  -- priority -> {id -> type} of queued members, taken out of lists below
local ended, asked = {}, 0
local queues = {}  -- the members' queues, when some run on another queue
for queue in string.gmatch((redis.call('HGET', wkey, 'q' .. w[2]) or '') .. '\31',
                           '([^\31]*)\31') do
  queues[#queues + 1] = queue
end
local outbox = nil  -- cancel entries of members on other queues
for i = 0, tonumber(w[4]) - 1 do
  local id = wid .. '.' .. w[2] .. '.' .. i
  local key = prefix .. 't:' .. id
  local f = redis.call('HMGET', key, 's', 't', 'prio', 'att', 'rttl')
  local there = queues[i + 1] or ''
  local offset = string.format('%d', tonumber(w[3]) + i)
  local byte = there ~= '' and redis.call('GETRANGE', wkey .. ':o', offset, offset)
  if there ~= '' and (byte == '' or byte == '\0') then
    local entry = redis.call('HGET', wkey .. ':out', id)
    local task_type = entry and string.match(entry, '^m\31[^\31]*\31[^\31]*\31([^\31]*)')
    if entry then
      redis.call('HDEL', wkey .. ':out', id)
    end
    local wf = wid .. ':' .. offset .. '\31' .. string.match(prefix, '{(.*)}:$') .. '\31' .. '0'
    outbox = outbox or {}
    outbox[#outbox + 1] = 'c:' .. id
    outbox[#outbox + 1] = table.concat({'c', there, task_type or '', wf}, '\31')
    asked = asked + 1
  elseif f[1] == ACTIVE then
    redis.call('HSET', key, 'cxl', '1')
    emit(prefix, maxlen, id, 'cancel_requested', f[2], f[4] or 0)
    asked = asked + 1
  elseif f[1] == QUEUED or f[1] == SCHEDULED then
    if f[1] == SCHEDULED then
      redis.call('ZREM', prefix .. 'scheduled', id)
    else
      local prio = f[3] or '0'
      ready[prio] = ready[prio] or {}
      ready[prio][id] = f[2]
    end
    redis.call('HSET', key, 's', CANCELLED, 'ftime', now_text)
    redis.call('PEXPIRE', key, f[5] or ARGV[4])
    redis.call('SETRANGE', wkey .. ':o', tonumber(w[3]) + i, 'x')
    emit(prefix, maxlen, id, 'cancelled', f[2], f[4] or 0)
    ended[#ended + 1] = id
  end
end
-- Out of the ready lists: one LREM a member when few, else the list once, filtered.
for prio, ids in pairs(ready) do
  local list = prefix .. 'q:' .. prio
  local count = 0
  for _ in pairs(ids) do
    count = count + 1
    if count > 16 then
      break
    end
  end
  if count <= 16 then
    for id in pairs(ids) do
      if redis.call('LREM', list, 1, id) == 1 then
        ids[id] = nil
      end
    end
  else
    local kept = {}
    for _, id in ipairs(redis.call('LRANGE', list, 0, -1)) do
      if ids[id] then
        ids[id] = nil
      else
        kept[#kept + 1] = id
      end
    end
    redis.call('DEL', list)
    for first = 1, #kept, 256 do
      redis.call('RPUSH', list, unpack(kept, first, math.min(#kept, first + 255)))
    end
  end
  if redis.call('EXISTS', list) == 0 then
    redis.call('ZREM', prefix .. 'prios', prio)
  end
  for id, task_type in pairs(ids) do  -- not ready: throttled, or held by a limit or breaker
    if redis.call('ZREM', prefix .. 'throttled', id) == 0 then
      redis.call('LREM', prefix .. 'held:' .. task_type, 1, id)
    end
  end
end
if outbox then
  for first = 1, #outbox, 512 do
    redis.call('HSET', wkey .. ':out', unpack(outbox, first, math.min(#outbox, first + 511)))
  end
  redis.call('SADD', prefix .. 'wfout', wid)
end
if #ended > 0 then
  zadd_all(prefix .. 'cancelled', now_text, ended)
  trim_finished(prefix, 'cancelled', tonumber(ARGV[3]), false)
end
redis.call('PEXPIRE', wkey, w[5])
redis.call('PEXPIRE', wkey .. ':o', w[5])
redis.call('PEXPIRE', wkey .. ':r', w[5])
return {'cancelled', #ended, asked}
