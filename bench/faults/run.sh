#!/usr/bin/env bash
# The fault and load suite at length (issue 8). Loopback only; every part is bounded in time and
# stops by itself. Results and how to read them: BENCHMARKS.md ("Faults and load").
#
#   bash bench/faults/run.sh            # both parts, ~10 minutes after the release build
#   FAULTS_PARTS=wrk bash bench/faults/run.sh
#
# Part `scenarios`: the five scenarios of tests/it/faults at length (TAGCAST_FAULTS_SCALE=long):
#   load 60 s of mixed pushes (text, clicks that tag, quiz answers, resends of earlier pushes)
#   against two `tagcast serve` processes on one database; the same with one of them killed
#   (SIGKILL) every 5 s and restarted; PostgreSQL (a private cluster made with initdb, never the
#   shared one) stopped for 10 s mid-load; WeChat (the mock) unreachable for 30 s, then 200 calls
#   answered 45009; a mass send to 100,000 followers whose sending process is killed mid-send.
#   Each prints `FAULTS ...` lines with its figures and fails if anything was lost or doubled.
# Part `wrk`: 60 s of wrk (bench/faults/mixed.lua, one wrk process per instance, like two
#   balancer upstreams) against two release `tagcast serve` processes and a `tagcast mock-wechat`
#   process; afterwards the events table is compared with what wrk sent, and the mock's call log
#   with the tag changes stored.
#
# Environment (all optional):
#   FAULTS_PARTS="scenarios wrk"   which parts
#   FAULTS_WRK_DURATION=60s FAULTS_WRK_CONNECTIONS=32 (per wrk process)
#   TAGCAST_FAULTS_*               see tests/it/faults/harness.rs (Scale::from_env)
#   FAULTS_PROFILE=release         `debug`: the dev build (no release build needed; slower server)
#   BENCH_SKIP_BUILD=0             1: use what is already built
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
PARTS=${FAULTS_PARTS:-scenarios wrk}
DURATION=${FAULTS_WRK_DURATION:-60s}
CONNS=${FAULTS_WRK_CONNECTIONS:-32}
PROFILE=${FAULTS_PROFILE:-release}
if [[ $PROFILE == release ]]; then CARGO_PROFILE=--release; else CARGO_PROFILE=; fi

TOKEN=benchtoken
APPID=wxbench000000001
SECRET=benchsecret
API_TOKEN=faults-bench-api-token-0123
DB=tagcast_faults_bench
PG="psql -h 127.0.0.1 -p 5432 -U postgres -X -q -At -v ON_ERROR_STOP=1"
PORT_A=18180 PORT_B=18181 PORT_MOCK=18182

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tagcast-faults.XXXXXX")
PIDS=""
cleanup() {
  local pid
  for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
  for pid in $PIDS; do
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  cargo build $CARGO_PROFILE --bins
  if [[ $PARTS == *scenarios* ]]; then cargo test $CARGO_PROFILE --test it --no-run; fi
fi

if [[ $PARTS == *scenarios* ]]; then
  echo "== scenarios (long) =="
  TAGCAST_FAULTS_SCALE=long cargo test $CARGO_PROFILE --test it faults:: -- --nocapture --test-threads=1 \
    2>&1 | tee "$WORK/scenarios.log" | grep -E '^(FAULTS|test |test result)' || true
  grep -q 'test result: ok' "$WORK/scenarios.log" || { echo "a scenario failed:"; tail -40 "$WORK/scenarios.log"; exit 1; }
fi

[[ $PARTS == *wrk* ]] || exit 0
echo "== wrk: $DURATION of mixed pushes against two instances =="
BIN=target/$PROFILE/tagcast
$PG -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
PLAYBOOK=$WORK/faults.toml
cp playbooks/skin-quiz.toml "$PLAYBOOK"
printf '\n[[tag]]\npath = "负载/点击"\n\n[[rule]]\non = "click"\nkey = "LOAD_TAG"\nadd = ["负载/点击"]\n' >> "$PLAYBOOK"

$BIN mock-wechat --bind 127.0.0.1:$PORT_MOCK --appid $APPID --secret $SECRET --seed 200000 >"$WORK/mock.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT_MOCK/mock/state" >/dev/null && break; sleep 0.1; done

serve() { # name port
  env -i PATH="$PATH" DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?application_name=$1" \
    TAGCAST_BIND=127.0.0.1:$2 WECHAT_APPID=$APPID WECHAT_APPSECRET=$SECRET WECHAT_TOKEN=$TOKEN \
    WECHAT_API_BASE=http://127.0.0.1:$PORT_MOCK TAGCAST_API_TOKEN=$API_TOKEN TAGCAST_PLAYBOOK="$PLAYBOOK" \
    RUST_LOG=warn "$ROOT/$BIN" serve >"$WORK/$1.log" 2>&1 &
  PIDS="$PIDS $!"
  for _ in $(seq 300); do curl -fs "http://127.0.0.1:$2/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "$1 did not start:"; tail "$WORK/$1.log"; exit 1
}
serve tagcast-a $PORT_A
serve tagcast-b $PORT_B
env -i PATH="$PATH" DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" WECHAT_APPID=$APPID \
  WECHAT_APPSECRET=$SECRET WECHAT_TOKEN=$TOKEN WECHAT_API_BASE=http://127.0.0.1:$PORT_MOCK RUST_LOG=warn $BIN sync 2>/dev/null
$PG -d $DB -c "SELECT openid FROM followers ORDER BY openid" >"$WORK/openids"
echo "$(wc -l <"$WORK/openids") followers imported"

wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s bench/faults/mixed.lua "http://127.0.0.1:$PORT_A/wechat" \
  -- 1 "$WORK/openids" >"$WORK/wrk-a.log" 2>&1 &
WRK_A=$!
wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s bench/faults/mixed.lua "http://127.0.0.1:$PORT_B/wechat" \
  -- 2 "$WORK/openids" >"$WORK/wrk-b.log" 2>&1
wait $WRK_A
grep FAULTSWRK "$WORK/wrk-a.log" "$WORK/wrk-b.log"

# Tag changes reach WeChat in the background: wait (bounded) for the outbox to empty.
START=$(date +%s)
while (( $($PG -d $DB -c "SELECT count(*) FROM tag_outbox WHERE state = 'pending'") > 0 )); do
  (( $(date +%s) - START < 120 )) || { echo "the outbox did not drain in 120 s"; exit 1; }
  sleep 0.5
done
echo "outbox drained $(( $(date +%s) - START )) s after the load"

$PG -d $DB -c "SELECT dedupe_key FROM events" >"$WORK/events"
$PG -d $DB -c "SELECT t.wechat_tag_id || ' ' || ft.openid FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id
               WHERE t.mirrored" >"$WORK/tagged"
curl -fs "http://127.0.0.1:$PORT_MOCK/mock/calls" >"$WORK/calls.json"
# What each kind of row costs on disk (table, TOAST and indexes), for docs/deploy.md's sizing.
$PG -d $DB -c "VACUUM ANALYZE"
for t in events followers follower_tags; do
  $PG -d $DB -c "SELECT '$t: ' || count(*) || ' rows, ' || pg_size_pretty(pg_total_relation_size('$t')) || ', '
                 || (pg_total_relation_size('$t') / greatest(count(*), 1)) || ' bytes a row' FROM $t"
done
echo "database: $($PG -d $DB -c "SELECT pg_size_pretty(pg_database_size('$DB'))"); pg_dump -Fc: $(pg_dump -h 127.0.0.1 -U postgres -Fc $DB | wc -c) bytes"
python3 - "$WORK" "$CONNS" <<'EOF'
import collections, json, re, sys
work, conns = sys.argv[1], int(sys.argv[2])
stats = {}
for name in ("wrk-a", "wrk-b"):
    line = next(l for l in open(f"{work}/{name}.log") if l.startswith("FAULTSWRK"))
    for k, v in re.findall(r"(\w+)=([\d.]+)", line):
        stats[k] = stats.get(k, 0) + float(v)
events = sum(1 for _ in open(f"{work}/events"))
expected = {tuple(l.split()) for l in open(f"{work}/tagged") if l.strip()}
calls = json.load(open(f"{work}/calls.json"))
calls = calls.get("calls", calls) if isinstance(calls, dict) else calls
delivered = collections.Counter()
for c in calls:
    if c["path"] == "/cgi-bin/tags/members/batchtagging" and c["errcode"] == 0:
        for o in c["body"]["openid_list"]:
            delivered[(str(c["body"]["tagid"]), o)] += 1
once = sum(1 for k in expected if delivered[k] == 1)
repeated = sum(1 for k in expected if delivered[k] > 1)
missing = sum(1 for k in expected if delivered[k] == 0)
unexpected = sum(1 for k in delivered if k not in expected)
errors = int(stats["err_connect"] + stats["err_read"] + stats["err_write"] + stats["err_timeout"])
print(f"wrk: {int(stats['requests'])} answers ({stats['rps']:.0f}/s over both), {int(stats['distinct'])} distinct pushes "
      f"generated, {int(stats['resent'])} resends, non-200 {int(stats['non200'])}, socket errors {errors}")
print(f"events stored {events}; distinct pushes generated {int(stats['distinct'])} "
      f"(the difference is what was still in flight when wrk stopped: at most {2 * conns})")
print(f"tag changes: {len(expected)} stored, {once} reached the mock once, {repeated} more than once, "
      f"{missing} never, {unexpected} the mock got that were not stored")
ok = stats["non200"] == 0 and errors == 0 and missing == 0 and repeated == 0 and unexpected == 0 \
    and 0 <= stats["distinct"] - events <= 2 * conns
sys.exit(0 if ok else 1)
EOF
