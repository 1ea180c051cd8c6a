-- wrk script for bench/faults: a mix of WeChat pushes, signed as WeChat signs, with retries.
--
--   wrk -t1 -c32 -d60s --latency -s bench/faults/mixed.lua http://127.0.0.1:18180/wechat -- TAG OPENIDS
--
-- TAG      1..99999, distinct for every wrk process against the same database (MsgIds derive from it)
-- OPENIDS  a file of follower openids known to the mock WeChat, one a line (tag changes for anyone
--          else are refused by WeChat); each wrk process takes its own slice by TAG
--
-- Per 20 requests: 10 text messages, 4 menu clicks that a rule turns into a tag (each from a new
-- follower: one tag change each), 3 quiz steps (a click that starts the skin quiz, then answers),
-- 3 resends of an earlier text (same MsgId: WeChat's retry; stored once, answered alike).
-- Reuses the SHA-1 and signing of bench/callback/wechat.lua.
--
-- Several accounts (bench/accounts): a line of OPENIDS may read `ACCOUNT OPENID`; that follower's
-- pushes then go to `/wechat/ACCOUNT`, signed with the token `benchtoken-ACCOUNT`.

dofile("bench/callback/wechat.lua")

local format = string.format
local tag, ids, accounts = 1, {}, {}
local headers = { ["Content-Type"] = "text/xml" }
sent, non200, distinct, resent = 0, 0, 0, 0

function init(args)
  tag = tonumber(args[1] or "1")
  if not tag or tag < 1 or tag > 99999 then error("TAG must be 1..99999") end
  local all = {}
  for line in io.lines(args[2] or error("OPENIDS file needed")) do all[#all + 1] = line end
  -- Every fourth follower goes to this process (TAG 1..4), so two processes never share one.
  for i = tag, #all, 4 do
    local account, openid = all[i]:match("^(%S+)%s+(%S+)$")
    ids[#ids + 1] = openid or all[i]
    accounts[openid or all[i]] = account
  end
  if #ids == 0 then error("no openids for TAG " .. tag) end
end

local function text(from, content, msg_id, ts)
  return "<xml><ToUserName><![CDATA[gh_benchaccount]]></ToUserName><FromUserName><![CDATA[" .. from
    .. "]]></FromUserName><CreateTime>" .. ts .. "</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    .. "<Content><![CDATA[" .. content .. "]]></Content><MsgId>" .. msg_id .. "</MsgId></xml>"
end

local function click(from, key, ts)
  return "<xml><ToUserName><![CDATA[gh_benchaccount]]></ToUserName><FromUserName><![CDATA[" .. from
    .. "]]></FromUserName><CreateTime>" .. ts .. "</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    .. "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[" .. key .. "]]></EventKey></xml>"
end

local next_follower = 0
local function new_follower()
  next_follower = next_follower + 1
  return ids[(next_follower - 1) % #ids + 1]
end

local function msg_id(n)
  return format("%d%012d", tag, n)
end

local quizzer, quiz_step = nil, 0

function request()
  local n = sent
  sent = n + 1
  local ts = tostring(os.time())
  local slot = n % 20
  local body
  if slot < 10 then
    distinct = distinct + 1
    body = text(ids[n % #ids + 1], "你好", msg_id(n), ts)
  elseif slot < 14 then
    distinct = distinct + 1
    body = click(new_follower(), "LOAD_TAG", ts)
  elseif slot < 17 then
    distinct = distinct + 1
    if quizzer == nil or quiz_step >= 6 then
      quizzer, quiz_step = new_follower(), 0
    end
    if quiz_step == 0 then
      body = click(quizzer, "SKIN_TEST", ts)
    else
      body = text(quizzer, "A", msg_id(n), ts)
    end
    quiz_step = quiz_step + 1
  else
    -- WeChat delivering a text of the previous block of 20 again (same MsgId, same sender).
    resent = resent + 1
    local earlier = n - slot + (slot - 17)
    if earlier >= 20 then earlier = earlier - 20 end
    body = text(ids[earlier % #ids + 1], "你好", msg_id(earlier), ts)
  end
  -- The process's TAG keeps two wrk processes' nonces apart: a plaintext signature carries one push.
  local nonce = format("%d%09d", tag, n)
  local from = body:match("<FromUserName><!%[CDATA%[(.-)%]%]>")
  local account = accounts[from]
  local token, path = os.getenv("BENCH_TOKEN") or "benchtoken", wrk.path
  if account then
    token, path = "benchtoken-" .. account, "/wechat/" .. account
  end
  local query = "?signature=" .. tagcast_sign({ token, ts, nonce }) .. "&timestamp=" .. ts .. "&nonce=" .. nonce
  return wrk.format("POST", path .. query, headers, body)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if non200 <= 3 then io.stderr:write(format("non-200 answer %d: %s\n", status, body or "")) end
  end
end

function done(summary, latency, requests)
  local s, n2, d, r = 0, 0, 0, 0
  for _, t in ipairs(threads or {}) do
    s = s + (t:get("sent") or 0)
    n2 = n2 + (t:get("non200") or 0)
    d = d + (t:get("distinct") or 0)
    r = r + (t:get("resent") or 0)
  end
  local e = summary.errors
  io.write(format(
    "FAULTSWRK requests=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d non200=%d sent=%d distinct=%d resent=%d "
      .. "err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, summary.requests / (summary.duration / 1e6), latency:percentile(50),
    latency:percentile(99), latency.max, n2, s, d, r, e.connect, e.read, e.write, e.timeout))
end
