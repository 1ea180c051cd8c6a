-- wrk script for bench/callback's "bare" row: one fixed POST (a plaintext text push), no Lua per
-- request, so wrk runs at full speed. Used only against examples/bare_actix.rs, which checks
-- nothing: this row is the machine's ceiling (server and client on the same 2 cores).
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml"
wrk.body = "<xml><ToUserName><![CDATA[gh_benchaccount]]></ToUserName><FromUserName><![CDATA[oBnch000010000"
  .. "00000000000000]]></FromUserName><CreateTime>1714037059</CreateTime><MsgType><![CDATA[text]]></MsgType>"
  .. "<Content><![CDATA[bench message 0]]></Content><MsgId>1000000000000</MsgId></xml>"

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non200=%d sent=%d "
      .. "reused=0 err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, summary.requests, e.connect, e.read, e.write, e.status, e.timeout))
end
