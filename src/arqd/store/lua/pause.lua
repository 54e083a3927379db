-- Pause a queue, or one task type of it: from this call on, no task of it starts (a
-- dequeue reads its mark in `cbopen` first; `pauses` keeps why, when and by whom); running ones finish. Pausing again replaces the reason.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  what: '*' for the whole queue, else a task type
-- ARGV[2]  reason, ARGV[3] who paused it ('' when not known), ARGV[4] events stream cap
-- Returns  1 if it was running until now, 0 if it was paused already
local prefix, what, reason, by, maxlen = KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now = now_ms()
local record = {reason = reason, at = now}
if by ~= '' then
  record.by = by
end
redis.call('HSET', prefix .. 'pauses', what, cjson.encode(record))
local new = redis.call('SADD', prefix .. 'cbopen', '|' .. what)
redis.call('XADD', prefix .. 'events', 'MAXLEN', '~', maxlen, '*', 'task', '', 'event',
           'queue_paused', 'type', what == '*' and '' or what, 'attempt', '0', 'reason', reason)
return new
