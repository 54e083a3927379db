-- Delete finished tasks of one status before their result TTL runs out (the dashboard's
-- "delete every succeeded task"). A task in another state by now, or gone, is left alone.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  the status deleted: succeeded, failed, cancelled or expired (its finished index)
-- ARGV[2]  events stream cap
-- ARGV[3..] task ids
-- Returns  how many were deleted
-- A deleted task's log lists (lg:<id>:<attempt>, see progress.lua) go with it.
local prefix, status, maxlen = KEYS[1], ARGV[1], ARGV[2]
local code = ({succeeded = SUCCEEDED, failed = FAILED, cancelled = CANCELLED,
               expired = EXPIRED})[status]
if not code then
  return redis.error_reply('ERR delete: not a finished status: ' .. status)
end
local deleted = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local key = prefix .. 't:' .. id
  local f = redis.call('HMGET', key, 's', 't', 'att')
  if f[1] == code then
    redis.call('DEL', key)
    for n = 1, tonumber(f[3] or '0') do
      redis.call('DEL', prefix .. 'lg:' .. id .. ':' .. string.format('%d', n))
    end
    deleted[#deleted + 1] = id
    emit(prefix, maxlen, id, 'deleted', f[2], f[3] or 0)
  end
end
zrem_all(prefix .. status, deleted)
return #deleted
