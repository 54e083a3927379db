-- A named circuit breaker (one a handler wraps around a dependency call). The state
-- machine is the one of resilience/breaker.py, which the tests hold this script to.
-- KEYS[1]  the breaker's hash: state (0 closed, 1 open, 2 half-open), fails, until, trial
-- KEYS[2]  the set of named breakers, KEYS[3] the breakers' event stream
-- ARGV[1]  op: allow | ok | fail | neutral | reset
-- ARGV[2]  failure threshold, ARGV[3] open time ms, ARGV[4] events stream cap,
-- ARGV[5]  the breaker's name (for events)
-- Returns  allow: {1 or 0, retry after ms, state}; otherwise: {1, 0, state}
local key, op = KEYS[1], ARGV[1]
local threshold, open_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local f = redis.call('HMGET', key, 'state', 'fails', 'until', 'trial')
local state, fails = tonumber(f[1] or 0), tonumber(f[2] or 0)
local open_until, trial = tonumber(f[3] or 0), f[4] == '1'

local function save(new_state, new_fails, new_until, new_trial, event)
  redis.call('HSET', key, 'state', new_state, 'fails', new_fails, 'until', new_until,
             'trial', new_trial and 1 or 0)
  redis.call('SADD', KEYS[2], ARGV[5])
  if event then
    redis.call('HINCRBY', key, 'to_' .. ({'closed', 'open', 'half_open'})[new_state + 1], 1)
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'breaker', ARGV[5],
               'event', event, 'state', new_state)
  end
  return new_state
end

if op == 'allow' then
  if state == 0 then
    return {1, 0, 0}
  elseif state == 1 then
    if now < open_until then
      return {0, open_until - now, 1}
    end
    return {1, 0, save(2, fails, open_until, true, 'breaker_half_open')}
  elseif trial then
    return {0, 1000, 2}
  end
  return {1, 0, save(2, fails, open_until, true)}
elseif op == 'ok' then
  if state ~= 1 and (state == 2 or fails > 0) then
    return {1, 0, save(0, 0, 0, false, state == 2 and 'breaker_closed' or nil)}
  end
elseif op == 'fail' then
  if state == 2 or (state == 0 and fails + 1 >= threshold) then
    return {1, 0, save(1, fails + 1, now + open_ms, false, 'breaker_opened')}
  elseif state == 0 then
    return {1, 0, save(0, fails + 1, 0, false)}
  end
elseif op == 'neutral' then
  if state == 2 then
    return {1, 0, save(2, fails, open_until, false)}
  end
elseif op == 'reset' then
  return {1, 0, save(0, 0, 0, false, 'breaker_reset')}
end
return {1, 0, state}
