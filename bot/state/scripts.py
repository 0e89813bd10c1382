"""Lua scripts run atomically in Redis. Each is idempotent: running it twice (a retry after a lost
reply) leaves Redis as running it once did.

Call-record states form a small table (h11 style): '' (unknown) -> live -> ended, and '' -> ended
for a call whose start record was lost. 'ended' is final. A write carries the call's revision
number; a revision at or below the stored one is a duplicate and changes nothing.
"""
from __future__ import annotations

STATES = ("live", "ended")
TRANSITIONS: dict[str, frozenset[str]] = {
    "": frozenset({"live", "ended"}),
    "live": frozenset({"live", "ended"}),
    "ended": frozenset(),
}


def next_state(current: str, wanted: str) -> str | None:
    """Pure mirror of TRANSITION_LUA's rule: the new state, or None when refused."""
    if wanted == "":
        return current if current != "ended" else None
    return wanted if wanted in TRANSITIONS.get(current, frozenset()) else None


# KEYS: call hash, live zset.  ARGV: call_id, rev, state ('' = keep), ttl s, live deadline ms,
# then field/value pairs.  Returns 'ok' | 'dup' | 'refused'.
TRANSITION_LUA = """
local rev = tonumber(ARGV[2])
local cur = tonumber(redis.call('HGET', KEYS[1], 'rev') or '0')
if rev <= cur then return 'dup' end
local state = redis.call('HGET', KEYS[1], 'state') or ''
local wanted = ARGV[3]
if state == 'ended' then return 'refused' end
if wanted ~= '' and wanted ~= 'live' and wanted ~= 'ended' then return 'refused' end
local pairs_ = {'rev', ARGV[2]}
if wanted ~= '' then pairs_[#pairs_ + 1] = 'state'; pairs_[#pairs_ + 1] = wanted end
for i = 6, #ARGV do pairs_[#pairs_ + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(pairs_))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
if wanted == 'live' then
  redis.call('ZADD', KEYS[2], tonumber(ARGV[5]), ARGV[1])
elseif wanted == 'ended' then
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
return 'ok'
"""

# KEYS: global stream, then per call in the batch: call stream, call hash, transcript stream.
# ARGV: events ttl, transcript ttl, global MINID, a JSON array of events, and optionally the
# global stream's approximate max length. Each event is
#   [call index (0-based), seq, [field, value, ...], [transcript field, value, ...]].
# (One JSON argument instead of thousands keeps the client's encoding cost low.)
# Writes each event whose seq is above the call's stored 'evseq'. Returns how many were written.
EVENTS_LUA = """
local ev_ttl = tonumber(ARGV[1])
local tr_ttl = tonumber(ARGV[2])
local minid = ARGV[3]
local events = cjson.decode(ARGV[4])
local written = 0
local touched = {}
for _, e in ipairs(events) do
  local k = 2 + 3 * e[1]
  local ekey, hkey, tkey = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  local seq = tonumber(e[2])
  local last = tonumber(redis.call('HGET', hkey, 'evseq') or '0')
  if seq > last then
    redis.call('XADD', ekey, '*', unpack(e[3]))
    redis.call('XADD', KEYS[1], 'MINID', '~', minid, '*', unpack(e[3]))
    if #e[4] > 0 then
      redis.call('XADD', tkey, '*', unpack(e[4]))
      touched[tkey] = tr_ttl
    end
    redis.call('HSET', hkey, 'evseq', seq)
    touched[ekey] = ev_ttl
    touched[hkey] = ev_ttl
    written = written + 1
  end
end
for key, ttl in pairs(touched) do redis.call('EXPIRE', key, ttl) end
if ARGV[5] then redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', tonumber(ARGV[5])) end
redis.call('EXPIRE', KEYS[1], ev_ttl)
return written
"""

# KEYS: call hash, live zset, call stream, global stream.  ARGV: call_id, now ms, ttl s, reason.
# Ends a live call whose heartbeat deadline has passed. Returns 1 when it did, 0 otherwise.
REAP_LUA = """
local deadline = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not deadline or tonumber(deadline) > tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'live' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'ended', 'end_reason', ARGV[4], 'ended', ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
local f = {'call_id', ARGV[1], 'seq', '', 'type', 'call_ended', 'ts', ARGV[2], 't', '', 'decision', 'reaped',
           'confidence', '', 'policy', '', 'data', cjson.encode({reason = ARGV[4]})}
redis.call('XADD', KEYS[3], '*', unpack(f))
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[3]))
redis.call('XADD', KEYS[4], '*', unpack(f))
return 1
"""

# KEYS: audit stream, the record's marker key.  ARGV: marker ttl s, stream ttl s, MINID, pairs.
# The marker (SET NX) makes a retried record a no-op. Returns 1 when written.
AUDIT_LUA = """
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
local f = {}
for i = 4, #ARGV do f[#f + 1] = ARGV[i] end
redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[3], '*', unpack(f))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# KEYS: live zset, then one call hash per live call of this worker.
# ARGV: deadline ms, ttl s, then per call: call_id, JSON array of the record's field/value pairs.
# Pushes each call's deadline forward. A call already ended (e.g. reaped) stays ended; a call whose
# record vanished (Redis restarted empty) is registered again. Returns the number kept alive.
BEAT_LUA = """
local deadline = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local n = 0
for i = 2, #KEYS do
  local cid = ARGV[2 * i - 1]
  local state = redis.call('HGET', KEYS[i], 'state')
  if state ~= 'ended' then
    if not state then
      redis.call('HSET', KEYS[i], 'state', 'live', unpack(cjson.decode(ARGV[2 * i])))
      redis.call('EXPIRE', KEYS[i], ttl)
    end
    redis.call('ZADD', KEYS[1], deadline, cid)
    n = n + 1
  end
end
redis.call('EXPIRE', KEYS[1], ttl)
return n
"""
