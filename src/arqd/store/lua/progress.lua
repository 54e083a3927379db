-- Record what a running attempt reported since its last call: its progress and its new
-- log lines, each with an event, only while its lease token is the task's current one
-- and the task is active (a worker that lost its lease is refused, as its answer is).
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  events stream cap
-- ARGV[2]  task id
-- ARGV[3]  lease token
-- ARGV[4]  progress JSON, or '' (no new progress)
-- ARGV[5]  log lines kept per attempt (the list's cap)
-- ARGV[6]  TTL ms of the log lists
-- ARGV[7]  '' during the attempt: ARGV[6] is this attempt's list's TTL, refreshed on each
--          write; 'end' for the attempt's last write, before its answer: every attempt's
--          list gets ARGV[6], the TTL of the task once finished; 'result': the same, but
--          the task's own result TTL (field rttl) wins when it has one
-- ARGV[8..] log lines, oldest first (JSON text each)
-- Returns  1 written, 0 refused
-- Events: 'progress' (field data: the progress JSON) and 'log' (data: a JSON array of the
-- batch's last LOG_EVENT_LINES lines, more: how many earlier ones it leaves out).
local prefix, maxlen, id, token = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local LOG_EVENT_LINES = 100
local key = prefix .. 't:' .. id
local f = redis.call('HMGET', key, 'tok', 's', 't', 'att', 'rttl')
if f[1] ~= token or f[2] ~= ACTIVE then
  return 0
end
local task_type, att = f[3], f[4]
if ARGV[4] ~= '' then
  redis.call('HSET', key, 'pg', ARGV[4])
  redis.call('XADD', prefix .. 'events', 'MAXLEN', '~', maxlen, '*', 'task', id,
             'event', 'progress', 'type', task_type, 'attempt', att, 'data', ARGV[4])
end
local log = prefix .. 'lg:' .. id .. ':'
local count = #ARGV - 7
if count > 0 then
  for first = 8, #ARGV, 256 do
    redis.call('RPUSH', log .. att, unpack(ARGV, first, math.min(#ARGV, first + 255)))
  end
  redis.call('LTRIM', log .. att, '-' .. ARGV[5], '-1')
  local shown = math.max(8, #ARGV - LOG_EVENT_LINES + 1)
  local lines = '[' .. table.concat(ARGV, ',', shown, #ARGV) .. ']'
  redis.call('XADD', prefix .. 'events', 'MAXLEN', '~', maxlen, '*', 'task', id,
             'event', 'log', 'type', task_type, 'attempt', att, 'data', lines,
             'more', string.format('%d', shown - 8))
end
local ttl = ARGV[6]
if ARGV[7] == 'result' and f[5] then
  ttl = f[5]
end
if ARGV[7] == '' then
  if count > 0 then
    redis.call('PEXPIRE', log .. att, ttl)
  end
else
  for n = 1, tonumber(att) do
    redis.call('PEXPIRE', log .. string.format('%d', n), ttl)
  end
end
return 1
