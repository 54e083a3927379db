-- Drop notices the relay applied (store/relay.py), each only if it is still the one it
-- read: a member retried and ended again meanwhile left a newer notice, which stays.
-- KEYS[1]  queue prefix "<app>:{<queue>}:" (the members' queue)
-- ARGV     per notice: member id, the notice as read
-- Returns  how many were dropped
local key = KEYS[1] .. 'wfn'
local dropped = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', key, ARGV[i]) == ARGV[i + 1] then
    dropped = dropped + redis.call('HDEL', key, ARGV[i])
  end
end
return dropped
