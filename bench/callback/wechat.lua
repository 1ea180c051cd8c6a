-- wrk script for bench/callback: every request is a distinct WeChat push, signed as WeChat signs.
--
--   wrk -t1 -c32 -d10s --latency -s bench/callback/wechat.lua http://127.0.0.1:18080/wechat -- MODE TAG [ARGS...]
--
-- MODE  text   plaintext-mode text message          (sender and MsgId vary per request)
--       click  plaintext-mode menu CLICK event      (sender varies per request, so the dedupe key
--                                                    `e:<sender>:<CreateTime>:CLICK` does too)
--       textkw plaintext-mode text message whose Content is exactly a keyword with an auto-reply
--              rule (`价格`, or the third argument)
--       subscribe  plaintext-mode subscribe event from a QR scene (EventKey `qrscene_bench`, or
--              `qrscene_` .. the third argument): a new follower on every request
--       quiz   plaintext-mode text, a quiz played through: POOL senders (third argument, default
--              20000) taken round robin; a sender's k-th push is step k mod STEPS (fourth
--              argument, default 4) of the quiz: the start keyword (`测验`, or the fifth argument)
--              at step 0, then the answer `A` to each question. One sender's pushes are POOL
--              requests apart, so no two are in flight at once.
--       safe   safe-mode text message read from FILE, written by `examples/bench_pushes.rs`
-- TAG   1..99999, distinct for every wrk run against the same database (senders and MsgIds are
--       derived from it, so no request is a retry of an earlier one).
--
-- `signature` = sha1(sort(token, timestamp, nonce)) covers no body, so it is computed here per
-- request with timestamp = os.time() and nonce = a counter. In safe mode `msg_signature` =
-- sha1(sort(token, timestamp, nonce, Encrypt)) is computed here too (SHA-1 over ~450 bytes), unless
-- the file carries precomputed signatures (`bench_pushes --presign`), which are then used as is.
--
-- Counts answers other than 200, and 200s that carry a reply rather than `success`, in
-- response() and prints one machine-readable `BENCH ...` line
-- in done() (run.sh parses it), after wrk's own report.

local TOKEN = os.getenv("BENCH_TOKEN") or "benchtoken"
local ACCOUNT = "gh_benchaccount"

---------------------------------------------------------------------------------------------------
-- SHA-1 (FIPS 180-4) on LuaJIT's `bit` library; checked against known vectors below.

local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local lshift, rshift, rol, tobit, tohex = bit.lshift, bit.rshift, bit.rol, bit.tobit, bit.tohex
local byte, char, rep, format = string.byte, string.char, string.rep, string.format

local W = {}
local K1, K2, K3, K4 = 0x5A827999, 0x6ED9EBA1, tobit(0x8F1BBCDC), tobit(0xCA62C1D6)

local function sha1(msg)
  local len = #msg
  -- Pad: 0x80, zeros, then the bit length as a 64-bit big-endian integer (high word is 0 here).
  local zeros = (55 - len) % 64
  local bits = len * 8
  msg = msg .. "\128" .. rep("\0", zeros) .. "\0\0\0\0"
    .. char(band(rshift(bits, 24), 255), band(rshift(bits, 16), 255), band(rshift(bits, 8), 255), band(bits, 255))

  local h0, h1, h2, h3, h4 = 0x67452301, tobit(0xEFCDAB89), tobit(0x98BADCFE), 0x10325476, tobit(0xC3D2E1F0)
  for i = 1, #msg, 64 do
    for j = 0, 15 do
      local p = i + j * 4
      local a, b, c, d = byte(msg, p, p + 3)
      W[j] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
    end
    for j = 16, 79 do
      W[j] = rol(bxor(W[j - 3], W[j - 8], W[j - 14], W[j - 16]), 1)
    end
    local a, b, c, d, e = h0, h1, h2, h3, h4
    for j = 0, 19 do
      local t = tobit(rol(a, 5) + bor(band(b, c), band(bnot(b), d)) + e + K1 + W[j])
      e, d, c, b, a = d, c, rol(b, 30), a, t
    end
    for j = 20, 39 do
      local t = tobit(rol(a, 5) + bxor(b, c, d) + e + K2 + W[j])
      e, d, c, b, a = d, c, rol(b, 30), a, t
    end
    for j = 40, 59 do
      local t = tobit(rol(a, 5) + bor(band(b, c), band(b, d), band(c, d)) + e + K3 + W[j])
      e, d, c, b, a = d, c, rol(b, 30), a, t
    end
    for j = 60, 79 do
      local t = tobit(rol(a, 5) + bxor(b, c, d) + e + K4 + W[j])
      e, d, c, b, a = d, c, rol(b, 30), a, t
    end
    h0, h1, h2, h3, h4 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d), tobit(h4 + e)
  end
  return tohex(h0) .. tohex(h1) .. tohex(h2) .. tohex(h3) .. tohex(h4)
end

-- WeChat's signature: sort the parts bytewise (LuaJIT compares strings with memcmp), concatenate.
local function sign(parts)
  table.sort(parts)
  return sha1(table.concat(parts))
end
-- For scripts that load this one (bench/faults/mixed.lua).
tagcast_sign = sign

-- Self-test, run whenever the script loads: FIPS vectors, every padding boundary (lengths from
-- Python's hashlib), and the WeChat docs' signature example (wechat-api.md §1).
do
  local function pattern(n)
    local t = {}
    for i = 0, n - 1 do t[#t + 1] = char(97 + (i * 7) % 26) end
    return table.concat(t)
  end
  local vectors = {
    { "abc", "a9993e364706816aba3e25717850c26c9cd0d89d" },
    { "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1" },
    { pattern(0), "da39a3ee5e6b4b0d3255bfef95601890afd80709" },
    { pattern(1), "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8" },
    { pattern(55), "8e3c5340fffe31264a9d27d62544909ec10d7737" },
    { pattern(56), "dd95883bff80770f68bda678786c64aa79fb86e4" },
    { pattern(63), "3c9d207daf0bdc4c4e4cb75b96eb74231a11969e" },
    { pattern(64), "95e0f141dcbf424ea4f274d5bb42b33f51f4da80" },
    { pattern(65), "85a9672f9788680b45148db588c1487d3d0c3dce" },
    { pattern(119), "462fbd2c395f6bf85645b9302babe74308946556" },
    { pattern(120), "e76f87f98667f9cfd0fce8df03ffb8bedc860d4d" },
    { pattern(448), "fa429d201ec6267806245f66ba0775eb7af2affc" },
  }
  for _, v in ipairs(vectors) do
    local got = sha1(v[1])
    if got ~= v[2] then
      error(format("SHA-1 self-test failed for a %d-byte input: %s, expected %s", #v[1], got, v[2]))
    end
  end
  local docs = sign({ "AAAAA", "1714037059", "486452656" })
  if docs ~= "899cf89e464efb63f54ddac96b0a0a235f53aa78" then
    error("signature self-test failed against the WeChat docs' example: " .. docs)
  end
end

---------------------------------------------------------------------------------------------------
-- Requests

-- Per-thread globals (wrk's done() reads them through thread:get).
sent, non200, reused, replied = 0, 0, 0, 0

local mode, tag, path = "text", 1, "/wechat"
local keyword, scene, pool, steps, quiz_start = "价格", "bench", 20000, 4, "测验"
local openids, encrypts, presigned = {}, {}, {}
local loaded = 0
local headers = { ["Content-Type"] = "text/xml" }

function setup(thread)
  threads = threads or {}
  threads[#threads + 1] = thread
end

function init(args)
  mode = args[1] or "text"
  tag = tonumber(args[2] or "1")
  if not tag or tag < 1 or tag > 99999 then error("TAG must be 1..99999") end
  path = wrk.path ~= "" and wrk.path or "/wechat"
  if mode == "safe" then
    local file = args[3] or error("safe mode needs the file written by bench_pushes")
    for line in io.lines(file) do
      loaded = loaded + 1
      local f = {}
      for field in line:gmatch("%S+") do f[#f + 1] = field end
      openids[loaded], encrypts[loaded] = f[1], f[2]
      if f[6] then -- precomputed by `bench_pushes --presign`: the whole query string, built once here
        presigned[loaded] = "?signature=" .. f[5] .. "&timestamp=" .. f[3] .. "&nonce=" .. f[4] .. "&openid=" .. f[1]
          .. "&encrypt_type=aes&msg_signature=" .. f[6]
      end
    end
    if loaded == 0 then error("no pushes in " .. file) end
  elseif mode == "textkw" then
    keyword = args[3] or keyword
  elseif mode == "subscribe" then
    scene = args[3] or scene
  elseif mode == "quiz" then
    pool = tonumber(args[3] or pool)
    steps = tonumber(args[4] or steps)
    quiz_start = args[5] or quiz_start
    if not pool or pool < 1 or not steps or steps < 1 then error("quiz needs POOL >= 1 and STEPS >= 1") end
  elseif mode ~= "text" and mode ~= "click" then
    error("MODE must be text, textkw, click, subscribe, quiz or safe")
  end
end

local function openid(n)
  return format("oBnch%05d%018d", tag, n) -- 28 characters, like a real openid
end

function request()
  local n = sent
  sent = n + 1
  local ts = tostring(os.time())
  -- With the TAG, so no two runs sign alike: a plaintext signature carries one push.
  local nonce = format("%d%09d", tag, n)
  if mode == "safe" then
    local i = n % loaded + 1
    if n >= loaded then reused = reused + 1 end -- a retry, not a first-time push: run.sh flags it
    local encrypt = encrypts[i]
    local query = presigned[i]
    if not query then
      query = "?signature=" .. sign({ TOKEN, ts, nonce }) .. "&timestamp=" .. ts .. "&nonce=" .. nonce
        .. "&openid=" .. openids[i] .. "&encrypt_type=aes&msg_signature=" .. sign({ TOKEN, ts, nonce, encrypt })
    end
    local body = "<xml><ToUserName><![CDATA[" .. ACCOUNT .. "]]></ToUserName><Encrypt><![CDATA["
      .. encrypt .. "]]></Encrypt></xml>"
    return wrk.format("POST", path .. query, headers, body)
  end

  local from = openid(n)
  local body
  if mode == "text" or mode == "textkw" or mode == "quiz" then
    local content
    if mode == "text" then
      content = "bench message " .. nonce
    elseif mode == "textkw" then
      content = keyword
    elseif n == 0 then
      -- wrk builds one request per thread that it never sends: keep it out of the pool's sequence,
      -- or sender 0 would miss its first quiz start and answer outside the quiz.
      from, content = openid(pool), quiz_start
    else
      local m = n - 1
      from = openid(m % pool)
      content = (math.floor(m / pool) % steps == 0) and quiz_start or "A"
    end
    body = "<xml><ToUserName><![CDATA[" .. ACCOUNT .. "]]></ToUserName><FromUserName><![CDATA[" .. from
      .. "]]></FromUserName><CreateTime>" .. ts .. "</CreateTime><MsgType><![CDATA[text]]></MsgType>"
      .. "<Content><![CDATA[" .. content .. "]]></Content><MsgId>" .. format("%d%012d", tag, n)
      .. "</MsgId></xml>"
  elseif mode == "subscribe" then
    body = "<xml><ToUserName><![CDATA[" .. ACCOUNT .. "]]></ToUserName><FromUserName><![CDATA[" .. from
      .. "]]></FromUserName><CreateTime>" .. ts .. "</CreateTime><MsgType><![CDATA[event]]></MsgType>"
      .. "<Event><![CDATA[subscribe]]></Event><EventKey><![CDATA[qrscene_" .. scene .. "]]></EventKey>"
      .. "<Ticket><![CDATA[benchticket]]></Ticket></xml>"
  else
    body = "<xml><ToUserName><![CDATA[" .. ACCOUNT .. "]]></ToUserName><FromUserName><![CDATA[" .. from
      .. "]]></FromUserName><CreateTime>" .. ts .. "</CreateTime><MsgType><![CDATA[event]]></MsgType>"
      .. "<Event><![CDATA[CLICK]]></Event><EventKey><![CDATA[MENU_" .. (n % 8) .. "]]></EventKey></xml>"
  end
  local query = "?signature=" .. sign({ TOKEN, ts, nonce }) .. "&timestamp=" .. ts .. "&nonce=" .. nonce
    .. "&openid=" .. from
  return wrk.format("POST", path .. query, headers, body)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if non200 <= 3 then io.stderr:write(format("non-200 answer %d: %s\n", status, body or "")) end
  elseif body and body ~= "" and body ~= "success" then
    replied = replied + 1 -- a passive reply (plain or encrypted XML), not the bare `success`
  end
end

function done(summary, latency, requests)
  local s, n2, r, rp = 0, 0, 0, 0
  for _, t in ipairs(threads or {}) do
    s = s + (t:get("sent") or 0)
    n2 = n2 + (t:get("non200") or 0)
    r = r + (t:get("reused") or 0)
    rp = rp + (t:get("replied") or 0)
  end
  local e = summary.errors
  io.write(format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non200=%d sent=%d "
      .. "reused=%d replied=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    n2, s, r, rp, e.connect, e.read, e.write, e.status, e.timeout))
end
