-- Take one token from each of several GCRA rate limits (see resilience/ratelimit.py, the
-- reference), in order: a key named twice gives its second token after its first.
-- KEYS[i]          limit i's key (its theoretical arrival time, ms)
-- ARGV[2i-1], [2i] limit i's interval ms between tokens, and burst
-- Returns          per limit: 1 or 0, retry after ms, tokens remaining, ms until fully reset
local now = now_ms()
local out = {}
for i, key in ipairs(KEYS) do
  local interval, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  local base = math.max(tat, now)
  local new_tat = base + interval
  local allow_until = interval * burst
  local n = #out
  if new_tat - now > allow_until then
    out[n + 1], out[n + 2], out[n + 3] = 0, math.ceil(new_tat - now - allow_until), 0
    out[n + 4] = math.ceil(base - now)
  else
    redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1)
    out[n + 1], out[n + 2] = 1, 0
    out[n + 3] = math.floor((allow_until - (new_tat - now)) / interval)
    out[n + 4] = math.ceil(new_tat - now)
  end
end
return out
