-- Renew the leases a worker holds and tell it which it lost or should cancel.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  lease length ms, then pairs: id, token
-- Returns  {lost ids, ids whose cancellation was requested}
local prefix = KEYS[1]
local deadline = string.format('%d', now_ms() + tonumber(ARGV[1]))
local lost, cancel = {}, {}
for i = 2, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local f = redis.call('HMGET', prefix .. 't:' .. id, 'tok', 'cxl')
  if f[1] == token and redis.call('ZSCORE', prefix .. 'active', id) then
    redis.call('ZADD', prefix .. 'active', 'XX', deadline, id)
    if f[2] then
      cancel[#cancel + 1] = id
    end
  else
    lost[#lost + 1] = id
  end
end
return {lost, cancel}
