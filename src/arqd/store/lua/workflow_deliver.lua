-- Deliver outbox entries of workflows on other queues to this queue (the relay's step
-- between reading an outbox and dropping what it delivered: store/relay.py). Safe to
-- send again: a member whose id is here already is not created again.
-- Create (m): the member task, ready now ('queued' event, one wake-up).
-- Cancel (c): a member never created is written as cancelled ('cancelled' event, its end
-- a notice for its workflow), so a late create finds it; the ids of those that exist are
-- answered, for the caller to cancel (cancel.lua).
-- KEYS[1]  queue prefix "<app>:{<queue>}:" (the members' queue)
-- ARGV[1]  events stream cap, ARGV[2] default result TTL ms, ARGV[3] finished index cap
-- ARGV[4..] per entry: kind (m | c), member id, its wf field ('': none, the error
--          callback), then for m its record (common.lua, workflow_member: 7 fields by \31)
--          and the input of its step (JSON, for a record without payload); for c its task
--          type ('': unknown) and ''
-- Returns  {ids of cancels whose member exists, ids written as cancelled}
local prefix, maxlen = KEYS[1], ARGV[1]
local now, now_text = now_ms()
local w = workflows()
local existing, written, created = {}, {}, false
for i = 4, #ARGV, 5 do
  local id, wf = ARGV[i + 1], ARGV[i + 2]
  local key = prefix .. 't:' .. id
  if redis.call('EXISTS', key) == 1 then
    if ARGV[i] == 'c' then
      existing[#existing + 1] = id
    end
  elseif ARGV[i] == 'm' then
    local fields = {}
    for value in string.gmatch(ARGV[i + 3] .. '\31', '([^\31]*)\31') do
      fields[#fields + 1] = value
    end
    local prio = w.member(prefix, maxlen, id, wf ~= '' and wf or nil, fields, ARGV[i + 4], now,
                          now_text)
    push_ready(prefix, id, prio, false)
    created = true
  elseif ARGV[i + 3] ~= '' then
    local task_type = ARGV[i + 3]
    redis.call('HSET', key, 't', task_type, 'd', 'null', 'c', now_text, 's', CANCELLED,
               'ftime', now_text, 'wf', wf)
    redis.call('PEXPIRE', key, ARGV[2])
    index_finished(prefix, 'cancelled', id, now, tonumber(ARGV[3]), false)
    emit(prefix, maxlen, id, 'cancelled', task_type, '0')
    w.member_done(prefix, maxlen, wf, 'x', now, now_text, key)
    written[#written + 1] = id
  end
end
if created then
  wake(prefix)
end
return {existing, written}
