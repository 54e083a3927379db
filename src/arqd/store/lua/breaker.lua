-- A named circuit breaker (one a handler wraps around a dependency call): common.lua's
-- breaker state machine, which tests/integration/test_lua_models.py holds to
-- resilience/breaker.py (reset: back to a new breaker's state), with its events.
-- KEYS[1]  the breaker's hash: state (0 closed, 1 open, 2 half-open), fails, until, trial
-- KEYS[2]  the set of named breakers, KEYS[3] the breakers' event stream
-- ARGV[1]  op: allow | ok | fail | neutral | reset
-- ARGV[2]  failure threshold, ARGV[3] open time ms, ARGV[4] events stream cap,
-- ARGV[5]  the breaker's name (for events)
-- Returns  allow: {1 or 0, retry after ms, state}; otherwise: {1, 0, state}
local key, op, name = KEYS[1], ARGV[1], ARGV[5]
local allowed, wait, state, event, wrote = true, 0, 0, nil, false
if op == 'allow' then
  allowed, wait, state, event = breaker_allow(key, now_ms())
elseif op == 'reset' then
  breaker_reset(key)
  event, wrote = 'breaker_reset', true
else
  state, event, wrote = breaker_record(key, op, now_ms(), tonumber(ARGV[2]), tonumber(ARGV[3]))
end
if wrote then  -- a breaker's hash comes to be on a write: its name joins the set then
  redis.call('SADD', KEYS[2], name)
end
if event then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'breaker', name, 'event', event,
             'state', state)
end
return {allowed and 1 or 0, wait, state}
