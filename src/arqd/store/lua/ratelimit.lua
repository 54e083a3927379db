-- Take one token of a GCRA rate limit (see resilience/ratelimit.py, the reference).
-- KEYS[1]  the limit's key (its theoretical arrival time, ms)
-- ARGV[1]  interval ms between tokens, ARGV[2] burst
-- Returns  {1 or 0, retry after ms, tokens remaining, ms until the limit is fully reset}
local key = KEYS[1]
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
local tat = tonumber(redis.call('GET', key) or now)
local base = math.max(tat, now)
local new_tat = base + interval
local allow_until = interval * burst
if new_tat - now > allow_until then
  return {0, math.ceil(new_tat - now - allow_until), 0, math.ceil(base - now)}
end
redis.call('SET', key, string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1)
return {1, 0, math.floor((allow_until - (new_tat - now)) / interval), math.ceil(new_tat - now)}
