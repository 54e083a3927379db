-- Apply notices of members on other queues to their workflows on this queue (the relay's
-- first step: store/relay.py). Each counts once: a notice applied again finds its member's
-- byte set, and one of an older generation than the member's is stale (common.lua,
-- workflows().apply). A step's last end starts the next step, here, as a member of this
-- queue's end would: members on other queues go to the workflow's outbox.
-- KEYS[1]  queue prefix "<app>:{<queue>}:" (the workflows' queue)
-- ARGV[1]  events stream cap
-- ARGV[2..] per notice: workflow id, offset, generation, code (s f x e, or r: re-opened),
--          result or error JSON
-- Returns  the ids of those workflows whose outbox now holds entries (to relay next)
local prefix, maxlen = KEYS[1], ARGV[1]
local now, now_text = now_ms()
local w = workflows()
local seen, out = {}, {}
for i = 2, #ARGV, 5 do
  w.apply(prefix, maxlen, ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], now,
          now_text)
  seen[ARGV[i]] = true
end
for wid in pairs(seen) do
  if redis.call('EXISTS', prefix .. 'wf:' .. wid .. ':out') == 1 then
    out[#out + 1] = wid
  end
end
return out
