#!/usr/bin/env bash
# Several accounts against one (issue 17): the mixed callback load of bench/faults (text, clicks
# that a rule turns into tags, quiz steps, WeChat's resends) on
#   one:  one account with BENCH_ONE_FOLLOWERS followers (default 1,000,000), and
#   many: BENCH_ACCOUNTS accounts (default 100) of BENCH_MANY_FOLLOWERS followers each (default 10,000),
# each case on a fresh database, alternating, BENCH_ROUNDS rounds (default 2). Reports throughput,
# p50/p99 and the server's peak RSS per case (the audience index is built for every account).
#
#   bash bench/accounts/callback.sh
#   BENCH_SKIP_BUILD=1 BENCH_DURATION=20s BENCH_ONE_FOLLOWERS=100000 BENCH_MANY_FOLLOWERS=1000 bash bench/accounts/callback.sh
#
# The server runs with TAGCAST_ROLE=web: this measures the callback and the in-memory index, not
# delivery to WeChat (the accounts' WeChat would be 100 mocks); tag changes wait in the outbox in
# both cases alike. Followers are written by SQL (as an import would leave them) with openids
# distinct across accounts; the pushes then come from them.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
ACCOUNTS=${BENCH_ACCOUNTS:-100}
MANY=${BENCH_MANY_FOLLOWERS:-10000}
ONE=${BENCH_ONE_FOLLOWERS:-1000000}
ROUNDS=${BENCH_ROUNDS:-2}
DURATION=${BENCH_DURATION:-30s}
CONNS=${BENCH_CONNECTIONS:-32}
PORT=18190
DB=tagcast_accounts_bench
API_TOKEN=accounts-bench-api-token-0123
SECRET_KEY=$(printf '%064d' 7)
PG="psql -h 127.0.0.1 -p 5432 -U postgres -X -q -At -v ON_ERROR_STOP=1"
BIN=${BENCH_BIN_DIR:-target/release}/tagcast

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tagcast-accounts.XXXXXX")
SERVER=""
stop_server() {
  [[ -n $SERVER ]] || return 0
  kill "$SERVER" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER" 2>/dev/null || true
  SERVER=""
}
trap 'stop_server; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then cargo build --release --bins; fi

PLAYBOOK=$WORK/bench.toml
cp playbooks/skin-quiz.toml "$PLAYBOOK"
printf '\n[[tag]]\npath = "负载/点击"\n\n[[rule]]\non = "click"\nkey = "LOAD_TAG"\nadd = ["负载/点击"]\n' >> "$PLAYBOOK"

env_of() {
  echo PATH="$PATH" DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" TAGCAST_BIND=127.0.0.1:$PORT \
    WECHAT_APPID=wxbench000000001 WECHAT_APPSECRET=benchsecret WECHAT_TOKEN=benchtoken \
    WECHAT_API_BASE=http://127.0.0.1:9 TAGCAST_API_TOKEN=$API_TOKEN TAGCAST_SECRET_KEY=$SECRET_KEY \
    TAGCAST_ROLE=web RUST_LOG=warn
}

start_server() {
  env -i $(env_of) "$ROOT/$BIN" serve >"$WORK/server.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 600); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && return 0; sleep 0.1; done
  echo "the server did not start:"; tail "$WORK/server.log"; exit 1
}

seed() { # account_id prefix count
  $PG -d $DB -c "INSERT INTO followers (account_id, openid, subscribed, subscribed_at, first_seen_at, last_seen_at)
                 SELECT $1, '$2' || n, true, now() - interval '30 days', now() - interval '30 days', now() - interval '1 day'
                 FROM generate_series(1, $3) AS n"
}

prepare_one() {
  env -i $(env_of) "$ROOT/$BIN" playbook apply "$PLAYBOOK" >/dev/null
  seed 1 o1_ "$ONE"
  $PG -d $DB -c "ANALYZE"
  seq 1 "$ONE" | sed 's/^/o1_/' >"$WORK/openids"
}

prepare_many() {
  start_server
  : >"$WORK/openids"
  for k in $(seq 1 "$ACCOUNTS"); do
    local name=acc$k
    curl -fsS -o /dev/null -X POST "http://127.0.0.1:$PORT/api/v1/accounts" \
      -H "Authorization: Bearer $API_TOKEN" -H 'Content-Type: application/json' \
      -d "{\"name\":\"$name\",\"display_name\":\"压测号 $k\",\"kind\":\"service\",\"appid\":\"wxbenchacc$(printf '%08d' "$k")\",\"app_secret\":\"s$k\",\"token\":\"benchtoken-$name\",\"message_mode\":\"plain\"}"
  done
  stop_server
  env -i $(env_of) "$ROOT/$BIN" playbook apply --all-accounts "$PLAYBOOK" >/dev/null
  for k in $(seq 1 "$ACCOUNTS"); do
    local id
    id=$($PG -d $DB -c "SELECT id FROM accounts WHERE name = 'acc$k'")
    seed "$id" "o${k}_" "$MANY"
    seq 1 "$MANY" | sed "s/^/acc$k o${k}_/" >>"$WORK/openids"
  done
  $PG -d $DB -c "ANALYZE"
}

run_case() { # case round
  $PG -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
  env -i $(env_of) "$ROOT/$BIN" migrate
  "prepare_$1"
  # Shuffled, so every account gets pushes from the first second (mixed.lua walks the list).
  shuf --random-source=<(yes) "$WORK/openids" -o "$WORK/openids"
  start_server
  # The index builds in the background; the load starts once it answers.
  sleep "${BENCH_WARMUP_SECS:-5}"
  wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s bench/faults/mixed.lua "http://127.0.0.1:$PORT/wechat" \
    -- "$2" "$WORK/openids" >"$WORK/wrk.log" 2>&1 || true
  local rss
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER/status")
  stop_server
  local line
  line=$(grep FAULTSWRK "$WORK/wrk.log" || { tail "$WORK/wrk.log"; exit 1; })
  echo "ACCOUNTS case=$1 round=$2 peak_rss_kib=$rss $line"
}

for round in $(seq 1 "$ROUNDS"); do
  run_case one "$round"
  run_case many "$round"
done
