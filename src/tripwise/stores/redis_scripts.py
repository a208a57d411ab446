"""The Lua scripts behind :class:`~tripwise.stores.redis.RedisStore`.

Every change of a shared breaker is one script, so it is atomic: two processes that trip the
same burst cannot both count a trip, and half-open probe permits are handed out by one counter.
Scripts read time from Redis (``TIME``), so processes need no common clock.

Keys (all of one breaker share the ``{name}`` hash tag, so they live in one Redis Cluster slot):
``KEYS[1]`` the state hash, ``KEYS[2]`` the sorted set of probe permits (member: permit id,
score: lease expiry in ms). Common arguments: ``ARGV[1]`` channel, ``ARGV[2]`` breaker name,
``ARGV[3]`` key TTL in ms. Every script returns the state as
``{state, generation, trips, open_elapsed_ms, open_duration_ms, failed_recoveries, flag}``.
"""

from __future__ import annotations

_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function load()
  local v = redis.call('HMGET', KEYS[1], 'st', 'g', 't', 'oa', 'od', 'fr', 's')
  if not v[1] then
    return {st = 'c', g = 0, t = 0, oa = 0, od = 0, fr = 0, s = 0}
  end
  return {st = v[1], g = tonumber(v[2]), t = tonumber(v[3]), oa = tonumber(v[4]),
          od = tonumber(v[5]), fr = tonumber(v[6]), s = tonumber(v[7])}
end
local function save(x)
  redis.call('HSET', KEYS[1], 'st', x.st, 'g', x.g, 't', x.t, 'oa', x.oa, 'od', x.od,
             'fr', x.fr, 's', x.s)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local function reply(x, now, flag)
  local elapsed = 0
  if x.st == 'o' then elapsed = now - x.oa end
  return {x.st, x.g, x.t, elapsed, x.od, x.fr, flag}
end
local function announce(x, now)
  local r = reply(x, now, 0)
  redis.call('PUBLISH', ARGV[1], table.concat({r[1], r[2], r[3], r[4], r[5], r[6], ARGV[2]}, '|'))
end
local now = now_ms()
local x = load()
"""

READ = (
    _PRELUDE
    + """
-- Read (creating the breaker CLOSED if it is new) and keep the keys alive.
if redis.call('EXISTS', KEYS[1]) == 0 then save(x) else redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return reply(x, now, 0)
"""
)

TRIP = (
    _PRELUDE
    + """
-- ARGV[4] expected generation, ARGV[5] from state ('c' or 'h'), ARGV[6] open duration ms.
-- From CLOSED, whoever comes first trips; the rest of the burst finds it open already.
-- From HALF_OPEN, only a probe of the current half-open round may re-open it.
local from = ARGV[5]
if x.st ~= from or (from == 'h' and x.g ~= tonumber(ARGV[4])) then
  return reply(x, now, 0)
end
if from == 'h' then x.fr = x.fr + 1 end
x.st = 'o'; x.g = x.g + 1; x.t = x.t + 1; x.oa = now; x.od = tonumber(ARGV[6]); x.s = 0
save(x)
redis.call('DEL', KEYS[2])
announce(x, now)
return reply(x, now, 1)
"""
)

RESET = (
    _PRELUDE
    + """
-- reset(): CLOSED for the whole fleet.
x.st = 'c'; x.g = x.g + 1; x.s = 0; x.fr = 0
save(x)
redis.call('DEL', KEYS[2])
announce(x, now)
return reply(x, now, 1)
"""
)

PROBE = (
    _PRELUDE
    + """
-- ARGV[4] max probes, ARGV[5] permit id, ARGV[6] permit lease ms.
-- Moves OPEN -> HALF_OPEN once the cool-down is over, then hands out at most ARGV[4] permits.
if x.st == 'c' then return reply(x, now, 0) end
if x.st == 'o' then
  if now < x.oa + x.od then return reply(x, now, 0) end
  x.st = 'h'; x.g = x.g + 1; x.s = 0
  save(x)
  redis.call('DEL', KEYS[2])
  announce(x, now)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return reply(x, now, 1)
end
return reply(x, now, 0)
"""
)

PROBE_DONE = (
    _PRELUDE
    + """
-- ARGV[4] expected generation, ARGV[5] permit id, ARGV[6] 'ok' or 'release',
-- ARGV[7] recovery threshold. A success of the current round counts toward closing.
redis.call('ZREM', KEYS[2], ARGV[5])
if x.st ~= 'h' or x.g ~= tonumber(ARGV[4]) then return reply(x, now, 0) end
if ARGV[6] == 'ok' then
  x.s = x.s + 1
  if x.s >= tonumber(ARGV[7]) then
    x.st = 'c'; x.g = x.g + 1; x.s = 0; x.fr = 0
    redis.call('DEL', KEYS[2])
  end
  save(x)
end
announce(x, now)  -- also tells waiting processes that a permit is free again
return reply(x, now, 1)
"""
)

WINDOW = """
-- Shared windows: add this process's batched outcomes, then sum the fleet's window.
-- ARGV[1] number of buckets to add (their keys come first in KEYS), ARGV[2] bucket TTL ms,
-- then 5 values per added bucket: count, flagged, valued, total, sum of squares.
-- The remaining KEYS are the buckets of the window to sum. Floats return as strings.
local n = tonumber(ARGV[1])
for i = 1, n do
  local k, a = KEYS[i], 2 + (i - 1) * 5
  redis.call('HINCRBY', k, 'c', ARGV[a + 1])
  redis.call('HINCRBY', k, 'f', ARGV[a + 2])
  redis.call('HINCRBY', k, 'v', ARGV[a + 3])
  redis.call('HINCRBYFLOAT', k, 't', ARGV[a + 4])
  redis.call('HINCRBYFLOAT', k, 'q', ARGV[a + 5])
  redis.call('PEXPIRE', k, ARGV[2])
end
local c, f, v, t, q = 0, 0, 0, 0, 0
for i = n + 1, #KEYS do
  local b = redis.call('HMGET', KEYS[i], 'c', 'f', 'v', 't', 'q')
  if b[1] then
    c = c + tonumber(b[1]); f = f + tonumber(b[2]); v = v + tonumber(b[3])
    t = t + tonumber(b[4]); q = q + tonumber(b[5])
  end
end
return {c, f, v, tostring(t), tostring(q)}
"""
