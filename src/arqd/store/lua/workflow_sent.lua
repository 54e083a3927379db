-- Drop outbox entries the relay delivered (store/relay.py); a workflow whose outbox is
-- empty leaves the queue's set wfout (of workflow ids with entries).
-- KEYS[1]  queue prefix "<app>:{<queue>}:" (the workflow's queue)
-- ARGV[1]  workflow id, ARGV[2..] the entries' fields
-- Returns  entries left in the outbox
local prefix, wid = KEYS[1], ARGV[1]
local key = prefix .. 'wf:' .. wid .. ':out'
for first = 2, #ARGV, 256 do
  redis.call('HDEL', key, unpack(ARGV, first, math.min(#ARGV, first + 255)))
end
local left = redis.call('HLEN', key)
if left == 0 then
  redis.call('SREM', prefix .. 'wfout', wid)
end
return left
