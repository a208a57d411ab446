"""The Lua scripts behind :class:`~tripwise.stores.redis.RedisStore`.

Every change of a shared breaker is one script, so it is atomic: two processes that trip the
same burst cannot both count a trip, and half-open probe permits are handed out by one counter.
Scripts read time from Redis (``TIME``), so processes need no common clock.

Keys (all of one breaker share the ``{name}`` hash tag, so they live in one Redis Cluster slot):
``KEYS[1]`` the state hash, ``KEYS[2]`` the sorted set of probe permits (member: permit token,
score: lease expiry in ms).

Common arguments (``COMMON`` of them): ``ARGV[1]`` channel, ``ARGV[2]`` breaker name, ``ARGV[3]``
key TTL in ms, ``ARGV[4]`` a fresh incarnation id, then the caller's *seed* (its local view:
``ARGV[5]`` state, ``[6]`` generation, ``[7]`` trips, ``[8]`` remaining cool-down ms, ``[9]``
open duration ms, ``[10]`` failed recoveries, ``[11]`` mode). When the state hash is missing
(a new breaker, or the state was lost: FLUSHALL, DEL, eviction, a restart without persistence)
the script re-creates it from the seed under the fresh incarnation id, announces it, and says so
in its reply. Processes order states by (incarnation, generation): a generation is only
compared within one incarnation, so a re-created state is never ignored as "older".

Every script returns ``{state, generation, trips, open_elapsed_ms, open_duration_ms,
failed_recoveries, flag, incarnation, mode, reseeded}``; announcements on the channel are
``state|gen|trips|elapsed|duration|failed|incarnation|mode|name``. Script-specific arguments
start at ``ARGV[12]``.
"""

from __future__ import annotations

COMMON = 11

_PRELUDE = """
local A = 12
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local now = now_ms()
local reseeded = 0
local function save(x)
  redis.call('HSET', KEYS[1], 'st', x.st, 'g', x.g, 't', x.t, 'oa', x.oa, 'od', x.od,
             'fr', x.fr, 's', x.s, 'i', x.i, 'm', x.m)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
local function reply(x, flag)
  local elapsed = 0
  if x.st == 'o' then elapsed = now - x.oa end
  return {x.st, x.g, x.t, elapsed, x.od, x.fr, flag, x.i, x.m, reseeded}
end
local function announce(x)
  local r = reply(x, 0)
  redis.call('PUBLISH', ARGV[1],
    table.concat({r[1], r[2], r[3], r[4], r[5], r[6], r[8], r[9], ARGV[2]}, '|'))
end
local function load()
  local v = redis.call('HMGET', KEYS[1], 'st', 'g', 't', 'oa', 'od', 'fr', 's', 'i', 'm')
  if v[1] and v[8] then
    return {st = v[1], g = tonumber(v[2]), t = tonumber(v[3]), oa = tonumber(v[4]),
            od = tonumber(v[5]), fr = tonumber(v[6]), s = tonumber(v[7]), i = v[8], m = v[9]}
  end
  -- Missing (or written by an older version): re-create it from the caller's local state.
  local od = tonumber(ARGV[9])
  local x = {st = ARGV[5], g = tonumber(ARGV[6]), t = tonumber(ARGV[7]),
             oa = now - (od - tonumber(ARGV[8])), od = od, fr = tonumber(ARGV[10]), s = 0,
             i = ARGV[4], m = ARGV[11]}
  redis.call('DEL', KEYS[2])
  save(x)
  reseeded = 1
  announce(x)
  return x
end
local x = load()
"""

READ = (
    _PRELUDE
    + """
-- Read (re-creating the state from the seed if it is missing) and keep the keys alive.
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return reply(x, 0)
"""
)

TRIP = (
    _PRELUDE
    + """
-- ARGV[A] expected generation, ARGV[A+1] from state ('c' or 'h'), ARGV[A+2] open duration ms.
-- From CLOSED, whoever comes first trips; the rest of the burst finds it open already.
-- From HALF_OPEN, only a probe of the current half-open round may re-open it.
-- A manually controlled breaker (forced open, disabled) never trips.
local from = ARGV[A + 1]
if x.m ~= 'n' or x.st ~= from or (from == 'h' and x.g ~= tonumber(ARGV[A])) then
  return reply(x, 0)
end
if from == 'h' then x.fr = x.fr + 1 end
x.st = 'o'; x.g = x.g + 1; x.t = x.t + 1; x.oa = now; x.od = tonumber(ARGV[A + 2]); x.s = 0
save(x)
redis.call('DEL', KEYS[2])
announce(x)
return reply(x, 1)
"""
)

PROBE = (
    _PRELUDE
    + """
-- ARGV[A] max probes, ARGV[A+1] permit token, ARGV[A+2] permit lease ms.
-- Moves OPEN -> HALF_OPEN once the cool-down is over, then hands out at most ARGV[A] permits.
-- Idempotent: asking again with a token already holding a permit grants it again (and renews
-- its lease), so a request that timed out but ran later can be re-claimed or released.
if x.m ~= 'n' or x.st == 'c' then return reply(x, 0) end
if x.st == 'o' then
  if now < x.oa + x.od then return reply(x, 0) end
  x.st = 'h'; x.g = x.g + 1; x.s = 0
  save(x)
  redis.call('DEL', KEYS[2])
  announce(x)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local token = ARGV[A + 1]
if redis.call('ZSCORE', KEYS[2], token)
    or redis.call('ZCARD', KEYS[2]) < tonumber(ARGV[A]) then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[A + 2]), token)
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return reply(x, 1)
end
return reply(x, 0)
"""
)

PROBE_DONE = (
    _PRELUDE
    + """
-- ARGV[A] expected generation, ARGV[A+1] permit token, ARGV[A+2] 'ok' or 'release',
-- ARGV[A+3] recovery threshold. Only a success that holds a permit of the current round
-- counts toward closing: a probe admitted without a permit (while Redis was away) never
-- decides for the fleet, and reporting twice counts once.
local held = redis.call('ZREM', KEYS[2], ARGV[A + 1])
if held == 0 or x.st ~= 'h' or x.g ~= tonumber(ARGV[A]) then return reply(x, 0) end
if ARGV[A + 2] == 'ok' then
  x.s = x.s + 1
  if x.s >= tonumber(ARGV[A + 3]) then
    x.st = 'c'; x.g = x.g + 1; x.s = 0; x.fr = 0
    redis.call('DEL', KEYS[2])
  end
  save(x)
end
announce(x)  -- also tells waiting processes that a permit is free again
return reply(x, 1)
"""
)

RELEASE = (
    _PRELUDE
    + """
-- ARGV[A..]: permit tokens this process may have lost track of (a report or a request that
-- timed out). Frees those still held and tells waiting processes.
local freed = 0
for i = A, #ARGV do freed = freed + redis.call('ZREM', KEYS[2], ARGV[i]) end
if freed > 0 then announce(x) end
return reply(x, freed > 0 and 1 or 0)
"""
)

RENEW = (
    _PRELUDE
    + """
-- ARGV[A] lease ms, ARGV[A+1..] tokens of probes still running: extend their leases.
for i = A + 1, #ARGV do
  redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[A]), ARGV[i])
end
return reply(x, 0)
"""
)

CONTROL = (
    _PRELUDE
    + """
-- Manual control for the whole fleet. ARGV[A] action ('force_open', 'disable', 'reset',
-- 'half_open'), ARGV[A+1] who, ARGV[A+2] why, ARGV[A+3] process id.
local action = ARGV[A]
if action == 'force_open' then
  x.m = 'f'; x.st = 'o'; x.oa = now; x.s = 0
elseif action == 'disable' then
  x.m = 'd'; x.st = 'c'; x.s = 0
elseif action == 'reset' then
  x.m = 'n'; x.st = 'c'; x.s = 0; x.fr = 0
elseif action == 'half_open' then
  if x.m ~= 'n' or x.st ~= 'o' then return reply(x, 0) end
  x.st = 'h'; x.s = 0
else
  return redis.error_reply('unknown control action ' .. action)
end
x.g = x.g + 1
save(x)
redis.call('HSET', KEYS[1], 'ca', action, 'cb', ARGV[A + 1], 'cr', ARGV[A + 2],
           'cp', ARGV[A + 3], 'cat', now)
redis.call('DEL', KEYS[2])
announce(x)
return reply(x, 1)
"""
)

STATE_SCRIPTS = (READ, TRIP, PROBE, PROBE_DONE, RELEASE, RENEW, CONTROL)

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
