"""
The Lua scripts the cluster runs in Redis: each is atomic there, so what
it checks still holds when it writes.

Key names are built from the prefix inside some scripts (a deployment's
stream, a request's key): fine on one Redis server, which is what
C{[cluster] redis} names (not a Redis Cluster).
"""

#: Take the lease, or renew it.  KEYS: lease, term, epoch.  ARGV: hub id,
#: the term the hub holds (0: none), lease in ms, an epoch to set if the
#: cluster has none yet.  Returns {term, 1} when newly taken, {term, 0} when
#: renewed, {0, holder} when another hub holds it.  A hub finding the lease
#: under its own name but another term (it let that leadership go) takes it
#: anew: only it could have written under that term, and it knows it stopped.
ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if held and ARGV[2] ~= '0' and held == ARGV[1] .. ' ' .. ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {tonumber(ARGV[2]), 0}
end
if held and string.match(held, '^(%S+) ') ~= ARGV[1] then
  return {0, held}
end
redis.call('SET', KEYS[3], ARGV[4], 'NX')
local term = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. term, 'PX', ARGV[3])
return {term, 1}
"""

#: Give the lease up (a hub that stops): KEYS: lease.  ARGV: "HUB TERM".
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

#: The fenced write of a leader: every message it makes goes through here.
#: KEYS: lease, epoch, last, current, order.  ARGV: prefix, hub id, term,
#: epoch, max messages, keep (ms), feed channel, then per message: deployment
#: key, seq, body (JSON), time (seconds), flag ("" for a message, "e" for a
#: deployment's last one (it leaves the current ones)).
#:
#: Refused whole unless the lease is still the writer's ("HUB TERM") and the
#: epoch the one it numbered in: {"fenced", holder} or {"epoch", epoch}.
#: Each message's seq must follow the deployment's last (the picture of no
#: deployment may skip, as on one hub); else {"seq", key, last, written}.
#: A message already stored with the same body (a write retried after its
#: answer was lost) counts as written.  Then, atomically: the stream entry
#: SEQ-0, the last seq, the current message, the order entry, the
#: publication; and pruning (by age on Redis's clock, by count), a bounded
#: amount per call.  Returns {"ok", written}.
WRITE = """
if redis.call('GET', KEYS[1]) ~= ARGV[2] .. ' ' .. ARGV[3] then
  return {'fenced', redis.call('GET', KEYS[1]) or ''}
end
local epoch = redis.call('GET', KEYS[2])
if epoch ~= ARGV[4] then
  return {'epoch', epoch or ''}
end
local prefix = ARGV[1]
local written = 0
for i = 8, #ARGV, 5 do
  local key, seq, body, t, flag = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local stream = prefix .. ':history:' .. key
  local last = tonumber(redis.call('HGET', KEYS[3], key) or '0')
  if seq <= last then
    local kept = redis.call('XRANGE', stream, seq .. '-0', seq .. '-0')
    if #kept == 0 or kept[1][2][2] ~= body then
      return {'seq', key, last, written}
    end
  elseif key ~= '' and seq ~= last + 1 then
    return {'seq', key, last, written}
  else
    redis.call('XADD', stream, seq .. '-0', 'm', body, 't', t)
    redis.call('HSET', KEYS[3], key, seq)
    if flag == 'e' then
      redis.call('HDEL', KEYS[4], key)
    else
      redis.call('HSET', KEYS[4], key, body)
    end
    redis.call('XADD', KEYS[5], '*', 'k', key, 's', seq)
    redis.call('PUBLISH', ARGV[7], body)
  end
  written = written + 1
end
-- pruning: the oldest entries of the order stream name what goes
local now = redis.call('TIME')
local cutoff = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[6])
local budget = 100 + written
local victims = redis.call('XRANGE', KEYS[5], '-', cutoff > 0 and cutoff or 0, 'COUNT', budget)
local excess = redis.call('XLEN', KEYS[5]) - tonumber(ARGV[5])
if excess > #victims then
  victims = redis.call('XRANGE', KEYS[5], '-', '+', 'COUNT', math.min(excess, budget))
end
if #victims > 0 then
  local ids = {}
  for _, entry in ipairs(victims) do
    ids[#ids + 1] = entry[1]
    local fields = entry[2]
    redis.call('XTRIM', prefix .. ':history:' .. fields[2], 'MINID', (tonumber(fields[4]) + 1) .. '-0')
  end
  redis.call('XDEL', KEYS[5], unpack(ids))
end
return {'ok', written}
"""

#: One page of a deployment's history.  KEYS: last, the stream.  ARGV:
#: deployment key, since, limit, after (seconds; "" for none).  Returns
#: {last, first, seq, body, seq, body...}: up to limit with seq above since (and,
#: with after, stamped after it: found by halving, the times growing with
#: the seq), oldest first.
PAGE = """
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local first = 0
if #head > 0 then first = tonumber(string.match(head[1][1], '^(%d+)')) end
local from = tonumber(ARGV[2]) + 1
if ARGV[4] ~= '' and #head > 0 then
  local after = tonumber(ARGV[4])
  local lo, hi = math.max(from, first), last + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local entry = redis.call('XRANGE', KEYS[2], mid .. '-0', '+', 'COUNT', 1)
    if #entry == 0 then
      hi = mid
    else
      local seq = tonumber(string.match(entry[1][1], '^(%d+)'))
      if tonumber(entry[1][2][4]) > after then hi = mid else lo = seq + 1 end
    end
  end
  from = lo
end
local result = {last, first}
if from <= last then
  for _, entry in ipairs(redis.call('XRANGE', KEYS[2], from .. '-0', '+', 'COUNT', tonumber(ARGV[3]))) do
    result[#result + 1] = tonumber(string.match(entry[1], '^(%d+)'))
    result[#result + 1] = entry[2][2]
  end
end
return result
"""

#: Hand a change request to the leader.  KEYS: lease.  ARGV: prefix,
#: request id, the request (JSON), ms it waits to be taken.  Returns
#: {"noleader"}, {"unheard", leader} (the leader does not listen: nothing is
#: left behind) or {"sent", leader}.
SUBMIT = """
local held = redis.call('GET', KEYS[1])
if not held then
  return {'noleader'}
end
local leader = string.match(held, '^(%S+) ')
local key = ARGV[1] .. ':request:' .. ARGV[2]
redis.call('SET', key, ARGV[3], 'PX', ARGV[4])
if redis.call('PUBLISH', ARGV[1] .. ':requests:' .. leader, ARGV[2]) == 0 then
  redis.call('DEL', key)
  return {'unheard', leader}
end
return {'sent', leader}
"""

ALL = {
    "acquire": ACQUIRE,
    "release": RELEASE,
    "write": WRITE,
    "page": PAGE,
    "submit": SUBMIT,
}
