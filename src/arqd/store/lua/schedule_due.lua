-- The schedules whose next fire time has come, in the queues given: what a worker's
-- scheduler polls (one call for every queue on one Redis; idle, it costs one read of each
-- queue's first entry). It also says which queues have workflow notices or outboxes for
-- the relay to sweep (store/relay.py): two EXISTS a queue, so an idle worker finds them
-- without a poll of its own.
-- KEYS     queue prefixes "<app>:{<queue>}:", all on this node (and slot)
-- ARGV[1]  at most this many due schedules per queue
-- Returns  {Redis's time (ms), the soonest next fire time not yet come (-1: none), the
--          positions in KEYS (1-based) of queues with workflow notices or outboxes, then
--          per due schedule: the position of its queue in KEYS (1-based), name,
--          definition JSON, version, next fire time (ms, text as stored)}
local now, now_text = now_ms()
local relay = {}
local out = {now, -1, relay}
local soonest = math.huge
for position, prefix in ipairs(KEYS) do
  if redis.call('EXISTS', prefix .. 'wfn', prefix .. 'wfout') > 0 then
    relay[#relay + 1] = position
  end
  local times = prefix .. 'scnext'
  local first = first_score(times)
  if first and first <= now then
    for _, name in ipairs(redis.call('ZRANGEBYSCORE', times, '-inf', now_text, 'LIMIT', '0',
                                     ARGV[1])) do
      local f = redis.call('HMGET', prefix .. 'sc:' .. name, 'def', 'ver', 'next', 'paused')
      if f[1] and not f[4] then
        local n = #out
        out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] =
          position, name, f[1], f[2], f[3]
      else  -- deleted or paused behind its time's back: it has no next time
        redis.call('ZREM', times, name)
      end
    end
    first = redis.call('ZRANGEBYSCORE', times, '(' .. now_text, '+inf', 'WITHSCORES',
                       'LIMIT', '0', '1')[2]
    first = first and tonumber(first)
  end
  if first then
    soonest = math.min(soonest, first)
  end
end
if soonest ~= math.huge then
  out[2] = soonest
end
return out
