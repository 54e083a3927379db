-- Create a workflow and enqueue its first step, in one call (a 10,000-member group too).
-- Sent again (a lost reply), it finds the workflow and changes nothing.
-- KEYS[1]  queue prefix "<app>:{<queue>}:"
-- ARGV[1]  events stream cap
-- ARGV[2]  workflow id
-- ARGV[3]  ms its state is kept once it ended (the members' result TTL)
-- ARGV[4]  the error callback's member record ('': none)
-- ARGV[5]  number of steps S, then per step: failure policy (fail | continue | ignore),
--          '1' for a group ('0': one task), member count, member records (see
--          workflow_member in common.lua: \31 between fields, \30 between records), and
--          each member's queue separated by \31 ('' for a member of this queue; '' in all
--          when every member runs here)
-- Members of the first step on other queues go to the workflow's outbox (common.lua,
-- workflows), which the caller relays (store/relay.py).
-- Returns  1 created, 0 it was there already
local prefix, maxlen, wid = KEYS[1], ARGV[1], ARGV[2]
local wkey = prefix .. 'wf:' .. wid
if redis.call('EXISTS', wkey) == 1 then
  return 0
end
local now, now_text = now_ms()
local steps = tonumber(ARGV[5])
local fields = {'st', 'r', 'ns', ARGV[5], 'ttl', ARGV[3], 'c', now_text}
if ARGV[4] ~= '' then
  fields[#fields + 1], fields[#fields + 2] = 'err', ARGV[4]
end
local offset = 0
for k = 0, steps - 1 do
  local at = 6 + 5 * k
  local kt = string.format('%d', k)
  local n = ARGV[at + 2]
  for _, pair in ipairs({{'p', ARGV[at]}, {'g', ARGV[at + 1]}, {'n', n}, {'s', ARGV[at + 3]},
                         {'o', string.format('%d', offset)}}) do
    fields[#fields + 1], fields[#fields + 2] = pair[1] .. kt, pair[2]
  end
  if ARGV[at + 4] ~= '' then
    fields[#fields + 1], fields[#fields + 2] = 'q' .. kt, ARGV[at + 4]
  end
  offset = offset + tonumber(n)
end
for first = 1, #fields, 512 do  -- unpack has a limit (8,000): a 1,000-step chain passes it
  redis.call('HSET', wkey, unpack(fields, first, math.min(#fields, first + 511)))
end
workflows().step(prefix, maxlen, wkey, wid, 0, 'null', now, now_text)
return 1
