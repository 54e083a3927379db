-- Take one token from each of several GCRA rate limits (common.lua's gcra_take; its
-- reference is resilience/ratelimit.py), in order: a key named twice gives its second
-- token after its first.
-- KEYS[i]          limit i's key (its theoretical arrival time, ms)
-- ARGV[2i-1], [2i] limit i's interval ms between tokens, and burst
-- Returns          per limit: 1 or 0, retry after ms, tokens remaining, ms until fully reset
local now = now_ms()
local out = {}
for i, key in ipairs(KEYS) do
  local interval, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local wait, ahead, new_ahead = gcra_take(key, now, interval, burst, false)
  local n = #out
  if wait > 0 then
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = 0, math.ceil(wait), 0, math.ceil(ahead)
  else
    out[n + 1], out[n + 2] = 1, 0
    out[n + 3] = math.floor((interval * burst - new_ahead) / interval)
    out[n + 4] = math.ceil(new_ahead)
  end
end
return out
