#!/usr/bin/env bash
# Benchmark of the WeChat callback: wrk against the release build of `tagcast serve` over fresh
# Postgres databases, beside `durable_ceiling` (examples/durable_ceiling.rs: signature check, one
# row per push with group commit, answer after commit, nothing else) measured in the same sitting,
# so every tagcast figure is a ratio to it. Results and how to read them: BENCHMARKS.md. Not a
# test: nothing here fails on a slow number (a lost push is reported, not failed on).
#
#   bash bench/callback/run.sh
#
# Each run of a scenario: BENCH_WARMUP of warm-up, then `wrk -t1 -c32 -d10s --latency`.
# Default scenarios, in this order (the run order is always this one, whatever BENCH_SCENARIOS
# lists):
#   ceiling          durable_ceiling, plaintext menu CLICK               -> ceiling of plaintext rows
#   ceiling-safe     durable_ceiling, safe-mode (AES) text               -> ceiling of safe-mode rows
#   text             tagcast, plaintext text message (matches no rule)
#   text-reply       tagcast, plaintext text `价格`, which a keyword auto-reply rule answers
#                    (`{on: keyword, key: 价格, reply: 今日特价...}`, created through POST /rules)
#   click            tagcast, plaintext CLICK (no rule matches its keys)
#   click-rule       the same CLICKs once eight rules `click MENU_<k> -> add 菜单/点击<k>` exist:
#                    every push tags a new follower and queues a tag change for WeChat
#   quiz             tagcast, a 3-question quiz (POST /quizzes, started by the keyword `测验`)
#                    played through by BENCH_QUIZ_POOL senders round robin: every push is a quiz
#                    step (start, answer, answer, last answer -> tagged), see wechat.lua
#   text-intent      tagcast, plaintext text `请问这个精华多少钱` from a new sender each push, once
#                    an intent model (咨询价格 against 其他, 40 labelled messages, threshold 0.6) is
#                    trained: every push is segmented and classified in its decision and tags its
#                    sender 意图/咨询价格 (issue 21)
#   text-chatter     the same model, text `今天天气真不错呀`, which it reads as 其他: the cost of
#                    classifying alone, without the tag it gives (compare with text)
#   subscribe-scene  tagcast, a new follower subscribing from QR scene `bench`, with the rule
#                    `{on: subscribe, key: bench, add: [渠道/扫码]}`
#   safe             tagcast, safe-mode text (ciphertexts from examples/bench_pushes.rs), Lua signs
#   safe-reply       tagcast, safe-mode text `价格` (the keyword reply, encrypted)
# Also available, not run unless named in BENCH_SCENARIOS:
#   bare-static      bare actix server (examples/bare_actix.rs), one fixed POST -> the machine's ceiling
#   bare-text / bare-click / bare-safe   bare server, the Lua scripts above -> the client's ceiling
#   bare-safe-presigned  bare server, safe-mode pushes signed by the generator
#   safe-presigned   tagcast, safe-mode text signed by the generator (no SHA-1 in wrk)
#
# Rounds: BENCH_ROUNDS rounds, interleaved (round 1 runs every scenario, then round 2, ...). Each
# round starts on fresh databases (dropped and created; tagcast migrates its own): tagcast_bench,
# tagcast_bench_base (the base build's) and tagcast_bench_ceiling. All servers of a round run at
# once, but every one not being measured is stopped (SIGSTOP) while another is measured, so its
# background work takes no CPU from it.
#
# Per run: req/s, p50, p99 (wrk); WAL bytes per stored row (pg_current_wal_lsn before/after);
# CPU µs per 2xx answer of the server and of Postgres (this database's backends plus the WAL
# writer, checkpointer and background writer), counted from the start of the measured window
# until tagcast has caught up; peak RSS (VmHWM, reset through /proc/PID/clear_refs before the
# run); tagging lag p99 (from tagcast's /metrics histogram `tagcast_tagging_lag_seconds`, "-" if
# the build has none); and "lost": after the run, once tagcast has applied everything (its
# /metrics `tagcast_tagging_backlog` at 0, waited for at most 10 s; builds without it get 2 s),
# rows stored must be >= pushes answered 2xx (and <= pushes sent), and for click-rule and
# subscribe-scene the tag memberships added must equal the distinct followers who pushed. The
# notes say when a 2xx of text-reply, safe-reply or quiz carried no reply (the scenario would
# then not measure what it claims). The summary gives per scenario and build the
# median across rounds (req/s, p50, WAL, CPU), the worst round (p99, lag) and the peak RSS.
#
# Environment (all optional):
#   BENCH_ROUNDS=3           rounds; the summary reports medians across them
#   BENCH_SCENARIOS="..."    only these scenarios (space-separated names from the lists above)
#   BENCH_DURATION=10s BENCH_WARMUP=2s BENCH_CONNECTIONS=32
#   BENCH_SAFE_COUNT=300000  safe-mode pushes generated for each measured safe run
#   BENCH_QUIZ_POOL=20000    senders the quiz scenario cycles through
#   BENCH_BIN_DIR=DIR        take tagcast, durable_ceiling, bench_pushes (and bare_actix, for the
#                            bare-* scenarios) from DIR instead of building them
#   BENCH_BASE_BIN_DIR=DIR   a second tagcast build (DIR/tagcast): every tagcast scenario then runs
#                            for both builds in each round, interleaved (which goes first alternates
#                            by round), and the summary gets a `vs base` column (new/base req/s)
#   BENCH_SKIP_BUILD=0       1: use the binaries already in $CARGO_TARGET_DIR/release (or target/)
#   BENCH_ENV="K=V ..."      extra environment for tagcast (both builds); e.g. RUST_LOG=warn
#   BENCH_BASE_ENV="K=V ..." extra environment for the base build only (an A/B of a setting: the
#                            same directory as BENCH_BIN_DIR and BENCH_BASE_BIN_DIR, and this)
#   BENCH_SQL="..."          SQL run on each tagcast database once migrated, every round, before
#                            any scenario (an A/B of a schema change, e.g. dropping an index)
#   BENCH_HTTP_WORKERS=N     tagcast's TAGCAST_HTTP_WORKERS (default: its own)
#   BENCH_ROLE=web           tagcast's TAGCAST_ROLE (default `all`: the outbox worker runs too, and
#                            retries its batch calls against the closed WeChat port)
#   BENCH_KEEP=0             1: keep the work directory (logs, per-run results, generated pushes)
#   BENCH_WAIT_FOR_QUIET=900 seconds to wait, in all, for other load (fuzzers, builds) to stop
#   BENCH_PROFILE=0          1: after the last round, one extra CLICK run with `perf record -g` on
#                            tagcast for 5 s and a `top` snapshot (needs perf); not in the table
#   BENCH_PROFILE_OUT=FILE   also copy that profile summary to FILE
#
# tagcast runs as it ships (RUST_LOG=info, TCP DATABASE_URL, its default workers) with
# WECHAT_MESSAGE_MODE=plain, which accepts plaintext and safe-mode pushes alike.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BENCH_DIR="$ROOT/bench/callback"

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNS=${BENCH_CONNECTIONS:-32}
SAFE_COUNT=${BENCH_SAFE_COUNT:-300000}
QUIZ_POOL=${BENCH_QUIZ_POOL:-20000}
ROUNDS=${BENCH_ROUNDS:-3}
PROFILE=${BENCH_PROFILE:-0}
BASE_DIR=${BENCH_BASE_BIN_DIR:-}

ALL_SCENARIOS="bare-static bare-text bare-click bare-safe bare-safe-presigned ceiling ceiling-safe text text-reply
  text-intent text-chatter click click-rule quiz subscribe-scene safe safe-presigned safe-reply"
DEFAULT_SCENARIOS="ceiling ceiling-safe text text-reply text-intent click click-rule quiz subscribe-scene safe safe-reply"
SCENARIOS=${BENCH_SCENARIOS:-$DEFAULT_SCENARIOS}

TOKEN=benchtoken
AES_KEY=kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR
APPID=wxbench000000001
API_TOKEN=bench-api-token-0123456789
KEYWORD=价格
KEYWORD_REPLY="今日特价：全场护肤品第二件半价，回复「测验」测测你的肤质"
QUIZ_KEYWORD=测验
INTENT_TEXT=请问这个精华多少钱
CHATTER_TEXT=今天天气真不错呀
QUIZ_STEPS=4 # the start keyword, then one answer per question (3)
PG="psql -h 127.0.0.1 -p 5432 -U postgres -X -q -At -v ON_ERROR_STOP=1"
HZ=$(getconf CLK_TCK)

declare -A ADDR=([new]=127.0.0.1:18080 [bare]=127.0.0.1:18081 [ceiling]=127.0.0.1:18082 [base]=127.0.0.1:18083)
declare -A DB=([new]=tagcast_bench [base]=tagcast_bench_base [ceiling]=tagcast_bench_ceiling)
declare -A PID=()

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tagcast-bench.XXXXXX")
AUX_PID=""
stop_server() { # BUILD: SIGTERM, up to 12 s to drain, then SIGKILL
  local pid=${PID[$1]:-}
  [[ -n $pid ]] || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "PID[$1]"
}
cleanup() {
  [[ -z $AUX_PID ]] || kill "$AUX_PID" 2>/dev/null || true
  local b
  for b in "${!PID[@]}"; do stop_server "$b"; done
  if [[ ${BENCH_KEEP:-0} == 1 ]]; then
    echo "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }
die() { log "run.sh: $*"; exit 1; }

for tool in wrk psql curl /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool is required"
done
for s in $SCENARIOS; do
  [[ " $(echo $ALL_SCENARIOS) " == *" $s "* ]] || die "unknown scenario $s (known: $(echo $ALL_SCENARIOS))"
done
wants() { [[ " $SCENARIOS " == *" $1 "* ]]; }
wants_any() { # PATTERN: whether any wanted scenario matches the glob
  local s
  for s in $SCENARIOS; do
    # shellcheck disable=SC2053
    [[ $s == $1 ]] && return 0
  done
  return 1
}
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"

# --- Machine ----------------------------------------------------------------------------------
log "== machine"
log "nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
log "PostgreSQL: $($PG -d postgres -c 'SHOW server_version')," \
  "synchronous_commit=$($PG -d postgres -c 'SHOW synchronous_commit')," \
  "fsync=$($PG -d postgres -c 'SHOW fsync')," \
  "wal_sync_method=$($PG -d postgres -c 'SHOW wal_sync_method')," \
  "autovacuum=$($PG -d postgres -c 'SHOW autovacuum')"
log "wrk: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"

# --- Binaries ---------------------------------------------------------------------------------
NEED_BARE=no
wants_any 'bare-*' && NEED_BARE=yes
BIN_SRC=${BENCH_BIN_DIR:-}
TARGET=${CARGO_TARGET_DIR:-target}
if [[ -z $BIN_SRC && ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  command -v cargo >/dev/null || die "cargo is required (or set BENCH_BIN_DIR)"
  extra=()
  [[ $NEED_BARE == no ]] || extra=(--example bare_actix)
  log "== cargo build --release --bin tagcast --example durable_ceiling --example bench_pushes ${extra[*]}"
  timeout 1800 cargo build --release --bin tagcast --example durable_ceiling --example bench_pushes "${extra[@]}" >&2
fi
# Run copies, so that someone rebuilding meanwhile cannot swap binaries mid-run.
mkdir -p "$WORK/bin" "$WORK/bin-base"
bins=(tagcast examples/durable_ceiling examples/bench_pushes)
[[ $NEED_BARE == no ]] || bins+=(examples/bare_actix)
for bin in "${bins[@]}"; do
  src=${BIN_SRC:+$BIN_SRC/${bin#examples/}}
  src=${src:-$TARGET/release/$bin}
  [[ -x $src ]] || die "$src is missing"
  cp -p "$src" "$WORK/bin/"
done
describe() { echo "built $(date -u -r "$1" '+%F %T UTC'), sha256 $(sha256sum "$1" | cut -c1-12)"; }
log "tagcast binary: $(describe "$WORK/bin/tagcast")"
BUILDS=(new)
if [[ -n $BASE_DIR ]]; then
  [[ -x $BASE_DIR/tagcast ]] || die "$BASE_DIR/tagcast is missing"
  cp -p "$BASE_DIR/tagcast" "$WORK/bin-base/tagcast"
  log "base tagcast binary: $(describe "$WORK/bin-base/tagcast")"
  BUILDS=(new base)
fi
GEN_BIN=$WORK/bin/bench_pushes

# --- Quiet machine ----------------------------------------------------------------------------
# On 2 cores any other load (a fuzzer, someone's cargo build) is taken straight from the server.
# Before each measurement: wait while a fuzzer runs (pgrep fuzz|afl) or the machine is more than
# 15 % busy over 3 s, polling every 30 s, for at most BENCH_WAIT_FOR_QUIET seconds in the whole
# run; then measure anyway and say so in the notes column.
QUIET_BUDGET=${BENCH_WAIT_FOR_QUIET:-900}
machine_ticks() { # busy and total ticks of all CPUs
  awk '/^cpu /{busy=$2+$3+$4+$7+$8+$9; print busy, busy+$5+$6}' /proc/stat
}
busy_pct() { # machine busy share over 3 s, in % of all CPUs
  local b0 t0 b1 t1
  read -r b0 t0 < <(machine_ticks)
  sleep 3
  read -r b1 t1 < <(machine_ticks)
  echo $((100 * (b1 - b0) / (t1 - t0 + 1)))
}
wait_quiet() { # prints nothing; returns 1 if the machine never got quiet
  local busy
  while :; do
    busy=$(busy_pct)
    if ! pgrep -f 'fuzz|afl' >/dev/null && ((busy <= 15)); then return 0; fi
    if ((QUIET_BUDGET <= 0)); then return 1; fi
    log "   machine busy (${busy}% over 3 s; fuzzer: $(pgrep -fa 'fuzz|afl' | cut -c1-80 | sed -n 1p)); waiting 30 s"
    sleep 30
    QUIET_BUDGET=$((QUIET_BUDGET - 33))
  done
}

# --- Servers ----------------------------------------------------------------------------------
wait_healthy() { # BUILD
  local b=$1
  for _ in $(seq 300); do
    kill -0 "${PID[$b]}" 2>/dev/null || { tail -50 "$WORK/$b.log" >&2; die "$b exited during start-up"; }
    curl -fsS --max-time 1 "http://${ADDR[$b]}/healthz" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  tail -50 "$WORK/$b.log" >&2
  die "$b did not become healthy within 60 s"
}
start_tagcast() { # BUILD BINARY EXTRA_ENV
  local b=$1
  # From the work directory, so that no .env of the checkout adds settings: only those below apply.
  # shellcheck disable=SC2086
  (cd "$WORK" && exec env -i PATH="$PATH" HOME="${HOME:-/root}" \
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/${DB[$b]}" \
    TAGCAST_BIND="${ADDR[$b]}" RUST_LOG=info TAGCAST_API_TOKEN=$API_TOKEN \
    WECHAT_APPID="$APPID" WECHAT_APPSECRET=benchsecret WECHAT_TOKEN="$TOKEN" \
    WECHAT_ENCODING_AES_KEY="$AES_KEY" WECHAT_MESSAGE_MODE=plain WECHAT_API_BASE=http://127.0.0.1:9 \
    ${BENCH_HTTP_WORKERS:+TAGCAST_HTTP_WORKERS=$BENCH_HTTP_WORKERS} ${BENCH_ROLE:+TAGCAST_ROLE=$BENCH_ROLE} \
    ${BENCH_ENV:-} $3 "$2" serve) >>"$WORK/$b.log" 2>&1 &
  PID[$b]=$!
}
start_servers() { # for one round, on fresh databases
  local b
  for b in "${BUILDS[@]}" ceiling; do
    [[ $b != ceiling ]] || wants_any 'ceiling*' || continue
    $PG -d postgres -c "DROP DATABASE IF EXISTS ${DB[$b]} WITH (FORCE)"
    $PG -d postgres -c "CREATE DATABASE ${DB[$b]}"
  done
  start_tagcast new "$WORK/bin/tagcast" ""
  [[ -z $BASE_DIR ]] || start_tagcast base "$WORK/bin-base/tagcast" "${BENCH_BASE_ENV:-}"
  if wants_any 'ceiling*'; then
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/${DB[ceiling]}" WECHAT_TOKEN=$TOKEN \
      WECHAT_ENCODING_AES_KEY=$AES_KEY WECHAT_APPID=$APPID \
      "$WORK/bin/durable_ceiling" "${ADDR[ceiling]}" >>"$WORK/ceiling.log" 2>&1 &
    PID[ceiling]=$!
  fi
  if [[ $NEED_BARE == yes ]]; then
    "$WORK/bin/bare_actix" "${ADDR[bare]}" >>"$WORK/bare.log" 2>&1 &
    PID[bare]=$!
  fi
  for b in "${!PID[@]}"; do wait_healthy "$b"; done
  if [[ -n ${BENCH_SQL:-} ]]; then
    for b in "${BUILDS[@]}"; do
      log "== BENCH_SQL on ${DB[$b]}: $BENCH_SQL"
      $PG -d "${DB[$b]}" -c "$BENCH_SQL"
    done
  fi
}
only_running() { # BUILD: every other server is stopped (SIGSTOP) so its background work waits
  local b
  for b in "${!PID[@]}"; do
    if [[ $b == "$1" ]]; then kill -CONT "${PID[$b]}"; else kill -STOP "${PID[$b]}"; fi
  done
}

# --- Scenario set-up through the API (once per database and round) ----------------------------
declare -A DONE=()
api() { # BUILD PATH JSON
  local code
  code=$(curl -sS -o "$WORK/api.out" -w '%{http_code}' -H "Authorization: Bearer $API_TOKEN" \
    -H 'Content-Type: application/json' -d "$3" "http://${ADDR[$1]}/api/v1$2") || code=000
  [[ $code == 2* ]] || die "POST $2 on $1 answered $code: $(cat "$WORK/api.out")"
}
once() { # BUILD NAME: true the first time in this round
  [[ -z ${DONE[$1:$2]:-} ]] || return 1
  DONE[$1:$2]=1
}
add_click_rules() { # BUILD
  once "$1" click || return 0
  local k
  for k in 0 1 2 3 4 5 6 7; do
    api "$1" /rules "{\"on\": \"click\", \"key\": \"MENU_$k\", \"add\": [\"菜单/点击$k\"]}"
  done
}
add_keyword_rule() { # BUILD
  once "$1" keyword || return 0
  api "$1" /rules "{\"on\": \"keyword\", \"key\": \"$KEYWORD\", \"reply\": \"$KEYWORD_REPLY\"}"
}
add_quiz() { # BUILD: 3 questions; the last answer tags the follower by score
  once "$1" quiz || return 0
  local q='{"text": "QUESTION", "options": [{"label": "A", "text": "是", "score": {"oily": 1}},
    {"label": "B", "text": "否", "score": {"dry": 1}}]}'
  api "$1" /quizzes "{\"id\": \"bench\", \"intro\": \"回答 3 个问题，了解你的肤质\", \"question\": [
    ${q/QUESTION/洗脸一小时后 T 区出油？}, ${q/QUESTION/毛孔明显？}, ${q/QUESTION/午后需要吸油纸？}],
    \"result\": [{\"tag\": \"肤质/油性\", \"score\": \"oily\", \"min\": 2},
    {\"tag\": \"肤质/干性\", \"score\": \"dry\", \"min\": 2}]}"
  api "$1" /rules "{\"on\": \"keyword\", \"key\": \"$QUIZ_KEYWORD\", \"start_quiz\": \"bench\"}"
}
add_intent_model() { # BUILD: 咨询价格 learned from 40 labelled messages, trained by the server's worker
  once "$1" intent || return 0
  api "$1" /tags '{"path": "意图/咨询价格", "wechat": false}'
  local price=(这个精华多少钱 面霜价格是多少 请问多少钱一瓶 精华液怎么卖 这款价格多少 多少钱啊 价格能告诉我吗
    眼霜多少钱 这个套装怎么卖的 水乳价格多少呀 防晒多少钱 洗面奶什么价格 这个多少钱包邮吗 套盒多少钱
    会员价多少 口红多少钱一支 面膜价格 精华多少钱一瓶 现在什么价 小样多少钱)
  local other=(今天天气不错 谢谢你们 早上好呀 你们几点下班 哈哈哈好的 收到啦谢谢 周末愉快 你好你好 在吗
    好的知道了 晚安 辛苦了 我看看再说 明天再来 不用了谢谢 可以的 嗯嗯 厉害 真不错 下次吧)
  local values="" t
  for t in "${price[@]}"; do values+="('$t', '咨询价格'),"; done
  for t in "${other[@]}"; do values+="('$t', NULL),"; done
  sql "${DB[$1]}" "INSERT INTO intents (account_id, name, tag_id, threshold, created_by)
      SELECT account_id, '咨询价格', id, 0.6, 'bench' FROM tags WHERE path = '意图/咨询价格';
    INSERT INTO intent_examples (account_id, text, normalized, intent, source, labelled_by)
      SELECT 1, t, t, i, 'operator', 'bench' FROM (VALUES ${values%,}) AS v(t, i);
    INSERT INTO jobs (account_id, kind, payload) VALUES (1, 'train_intents', '{\"requested_by\": \"bench\"}'::jsonb)" \
    >/dev/null
  local _
  for _ in $(seq 300); do
    [[ $(sql "${DB[$1]}" 'SELECT count(*) FROM intent_models WHERE model IS NOT NULL') == 1 ]] && return 0
    sleep 0.1
  done
  die "the intent model was not trained within 30 s on $1"
}
add_scene_rule() { # BUILD
  once "$1" scene || return 0
  api "$1" /rules '{"on": "subscribe", "key": "bench", "add": ["渠道/扫码"]}'
}

# --- Measurement helpers ----------------------------------------------------------------------
sql() { $PG -d "$1" -c "$2"; }
ticks() { # PID...: user+system clock ticks of these processes (all their threads)
  local sum=0 pid rest
  for pid in "$@"; do
    rest=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    rest=${rest##*) } # fields after the command name, which may contain spaces
    set -- $rest
    sum=$((sum + ${12} + ${13}))
  done
  echo "$sum"
}
# Postgres: the backends serving database $1 and the shared WAL writer, checkpointer and
# background writer (other databases' backends are other load).
pg_ticks() { ticks $(pgrep -u postgres -f "postgres: .*($1 |walwriter|checkpointer|background writer)"); }
ctx_switches() { # PID: voluntary + involuntary context switches of all its threads
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'
}
field() { # KEY FILE: value of KEY=... on the BENCH line
  sed -n "s/^BENCH .*\b$1=\([^ ]*\).*/\1/p" "$2" | tail -1
}
scrape() { # BUILD FILE: tagcast's /metrics (empty if it fails)
  curl -fsS --max-time 2 "http://${ADDR[$1]}/metrics" >"$2" 2>/dev/null || : >"$2"
}
backlog() { # FILE: tagcast_tagging_backlog summed over its series, or empty when absent
  awk '$1 ~ /^tagcast_tagging_backlog($|\{)/ { n += $NF; seen = 1 } END { if (seen) printf "%d", n }' "$1"
}
lag_p99() { # BEFORE AFTER: p99 of tagcast_tagging_lag_seconds observed in between, or "-"
  awk '
    $1 ~ /^tagcast_tagging_lag_seconds_bucket\{/ {
      if (!match($1, /le="[^"]*"/)) next
      le = substr($1, RSTART + 4, RLENGTH - 5)
      if (FILENAME == ARGV[1]) before[le] += $NF; else { after[le] += $NF; seen = 1 }
    }
    END {
      if (!seen) { print "-"; exit }
      n = 0
      for (le in after) { d[le] = after[le] - before[le]; bounds[++n] = le }
      # Sort the bounds numerically (+Inf last); buckets are cumulative.
      for (i = 2; i <= n; i++) for (j = i; j > 1 && val(bounds[j]) < val(bounds[j-1]); j--) {
        t = bounds[j]; bounds[j] = bounds[j-1]; bounds[j-1] = t }
      total = d[bounds[n]]
      if (total <= 0) { print "none"; exit }
      for (i = 1; i <= n; i++) if (d[bounds[i]] >= 0.99 * total) {
        if (bounds[i] == "+Inf") printf ">%ss\n", bounds[i-1]; else printf "<=%ss\n", bounds[i]
        exit
      }
    }
    function val(s) { return s == "+Inf" ? 1e300 : s + 0 }' "$1" "$2"
}
drain() { # BUILD: wait until tagcast has applied what it answered (backlog 0, at most 10 s)
  local b=$1 left
  case $b in
    bare) return 0 ;;
    ceiling) sleep 0.5; return 0 ;; # it answers after the commit: only requests cut off by wrk remain
  esac
  for _ in $(seq 50); do
    scrape "$b" "$WORK/drain.prom"
    left=$(backlog "$WORK/drain.prom")
    if [[ -z $left ]]; then sleep 2; return 0; fi # no such metric: give in-flight work 2 s
    ((left > 0)) || return 0
    sleep 0.2
  done
  log "   $b: tagging backlog still $left after 10 s"
}
rows() { # BUILD
  case $1 in
    ceiling) sql "${DB[ceiling]}" 'SELECT count(*) FROM ceiling_events' ;;
    *) sql "${DB[$1]}" 'SELECT count(*) FROM events' ;;
  esac
}
wal_lsn() { sql postgres 'SELECT pg_current_wal_lsn()'; }

RESULTS="$WORK/results.tsv" # one line per run
printf 'round\tscenario\tbuild\treq/s\tp50 ms\tp99 ms\t2xx\tnon-2xx\tsent\trows\tWAL B/push\tserver us/push\tpg us/push\tpeak RSS MiB\tlag p99\tlost\tnotes\n' \
  >"$RESULTS"

# scenario NAME: sets KIND (bare|ceiling|tagcast), FAMILY (plain|safe|-), SCRIPT, WARM/MAIN (wrk
# script arguments), PREPARE (a function given the build), CHECK (tags|reply|"").
scenario() {
  KIND=tagcast FAMILY=plain SCRIPT=$WECHAT_LUA PREPARE="" CHECK=""
  case $1 in
    bare-static) KIND=bare FAMILY=- SCRIPT=$STATIC_LUA WARM="" MAIN="" ;;
    bare-text) KIND=bare FAMILY=- WARM="text 1" MAIN="text 2" ;;
    bare-click) KIND=bare FAMILY=- WARM="click 3" MAIN="click 4" ;;
    bare-safe) KIND=bare FAMILY=- WARM="safe 5 $WORK/safe-warm.txt" MAIN="safe 6 $WORK/safe-main.txt" ;;
    bare-safe-presigned) KIND=bare FAMILY=- WARM="safe 7 $WORK/pre-warm.txt" MAIN="safe 8 $WORK/pre-main.txt"
      PREPARE=gen_presigned ;;
    ceiling) KIND=ceiling WARM="click 41" MAIN="click 42" ;;
    ceiling-safe) KIND=ceiling FAMILY=safe WARM="safe 91 $WORK/safe-warm.txt" MAIN="safe 92 $WORK/safe-main.txt" ;;
    text) WARM="text 11" MAIN="text 12" ;;
    text-reply) WARM="textkw 13 $KEYWORD" MAIN="textkw 14 $KEYWORD" PREPARE=add_keyword_rule CHECK=reply ;;
    text-intent) WARM="textkw 15 $INTENT_TEXT" MAIN="textkw 16 $INTENT_TEXT" PREPARE=add_intent_model CHECK=tags ;;
    text-chatter) WARM="textkw 17 $CHATTER_TEXT" MAIN="textkw 18 $CHATTER_TEXT" PREPARE=add_intent_model ;;
    click) WARM="click 21" MAIN="click 22" ;;
    click-rule) WARM="click 23" MAIN="click 24" PREPARE=add_click_rules CHECK=tags ;;
    quiz) WARM="quiz 25 $QUIZ_POOL $QUIZ_STEPS $QUIZ_KEYWORD" MAIN="quiz 26 $QUIZ_POOL $QUIZ_STEPS $QUIZ_KEYWORD"
      PREPARE=add_quiz CHECK=reply ;;
    subscribe-scene) WARM="subscribe 27 bench" MAIN="subscribe 28 bench" PREPARE=add_scene_rule CHECK=tags ;;
    safe) FAMILY=safe WARM="safe 91 $WORK/safe-warm.txt" MAIN="safe 92 $WORK/safe-main.txt" ;;
    safe-presigned) FAMILY=safe WARM="safe 93 $WORK/pre-warm.txt" MAIN="safe 94 $WORK/pre-main.txt"
      PREPARE=gen_presigned ;;
    safe-reply) FAMILY=safe WARM="safe 95 $WORK/reply-warm.txt" MAIN="safe 96 $WORK/reply-main.txt"
      PREPARE=add_keyword_rule CHECK=reply ;;
    *) die "no such scenario: $1" ;;
  esac
}

# run_one ROUND NAME BUILD
run_one() {
  local round=$1 name=$2 b=$3 quiet=yes notes="-"
  scenario "$name"
  local pid=${PID[$b]} url="http://${ADDR[$b]}/wechat" tag="$name.$b.r$round"
  only_running "$b"
  wait_quiet || quiet=no
  [[ -z $PREPARE ]] || $PREPARE "$b"
  echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || log "   cannot reset $b's peak RSS (clear_refs)"
  log "== round $round: $name on $b: warm-up $WARMUP"
  # shellcheck disable=SC2086
  timeout 120 wrk -t1 -c"$CONNS" -d"$WARMUP" -s "$SCRIPT" "$url" -- $WARM >"$WORK/$tag.warm.log" 2>&1 ||
    { cat "$WORK/$tag.warm.log" >&2; die "$name on $b: warm-up failed"; }
  drain "$b"
  sleep 0.5
  local rows0=0 id0=0 tags0=0 wal0 m_before="$WORK/$tag.metrics0" m_after="$WORK/$tag.metrics1"
  if [[ $KIND != bare ]]; then rows0=$(rows "$b"); fi
  if [[ $KIND == tagcast ]]; then
    id0=$(sql "${DB[$b]}" 'SELECT coalesce(max(id), 0) FROM events')
    tags0=$(sql "${DB[$b]}" 'SELECT count(*) FROM follower_tags')
    scrape "$b" "$m_before"
  fi
  wal0=$(wal_lsn)

  log "== round $round: $name on $b: wrk -t1 -c$CONNS -d$DURATION --latency"
  local s0 p0 s1 p1 bg
  # CPU is counted from wrk's "Running" line, printed once its Lua init (loading the safe-mode
  # file) is done and the measured window starts, until the server has caught up (drain).
  # shellcheck disable=SC2086
  timeout 120 stdbuf -oL wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$SCRIPT" "$url" -- $MAIN \
    >"$WORK/$tag.log" 2>&1 &
  bg=$!
  for _ in $(seq 1200); do
    grep -qs '^Running' "$WORK/$tag.log" && break
    kill -0 "$bg" 2>/dev/null || break
    sleep 0.05
  done
  s0=$(ticks "$pid")
  p0=$(pg_ticks "${DB[$b]:-no database}")
  wait "$bg" || { cat "$WORK/$tag.log" >&2; die "$name on $b: wrk failed"; }
  drain "$b"
  s1=$(ticks "$pid")
  p1=$(pg_ticks "${DB[$b]:-no database}")
  [[ $quiet == yes ]] || notes="machine busy before the run"
  pgrep -f 'fuzz|afl' >/dev/null && notes="a fuzzer (or its build) ran during the run"
  sed -n '/Latency Distribution/,/Requests\/sec/p' "$WORK/$tag.log" | sed -n '1,5p;$p' >&2

  local requests non200 sent reused replied ok rows="-" wal="-" lost="-" lag="-" distinct added
  requests=$(field requests "$WORK/$tag.log")
  non200=$(field non200 "$WORK/$tag.log")
  sent=$(field sent "$WORK/$tag.log")
  reused=$(field reused "$WORK/$tag.log")
  replied=$(field replied "$WORK/$tag.log")
  ok=$((requests - non200))
  if [[ $KIND != bare ]]; then
    rows=$(($(rows "$b") - rows0))
    wal=$(sql postgres "SELECT round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0') / greatest($rows, 1))")
    if ((rows >= ok && rows <= sent)); then lost=0; else lost="NO: $rows rows for $ok answered 2xx, $sent sent"; fi
  fi
  if [[ $KIND == tagcast ]]; then
    scrape "$b" "$m_after"
    lag=$(lag_p99 "$m_before" "$m_after")
    if [[ $CHECK == tags ]]; then
      distinct=$(sql "${DB[$b]}" "SELECT count(DISTINCT openid) FROM events WHERE id > $id0")
      added=$(($(sql "${DB[$b]}" 'SELECT count(*) FROM follower_tags') - tags0))
      ((added == distinct)) || lost="NO: $added memberships added for $distinct followers; $lost"
    fi
  fi
  ((reused == 0)) || notes="$reused pushes reused (retries): raise BENCH_SAFE_COUNT"
  if [[ $CHECK == reply ]] && ((replied < ok)); then
    notes="WARNING: $((ok - replied)) of $ok answers carried no reply$([[ $notes == - ]] || echo "; $notes")"
  fi
  local us_server us_pg rss
  us_server=$(awk -v t=$((s1 - s0)) -v n="$ok" -v hz="$HZ" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
  us_pg=$(awk -v t=$((p1 - p0)) -v n="$ok" -v hz="$HZ" 'BEGIN { printf "%.1f", n ? t * 1e6 / hz / n : 0 }')
  rss=$(awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status")
  printf '%s\t%s\t%s\t%.0f\t%.2f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
    "$round" "$name" "$b" "$(field rps "$WORK/$tag.log")" \
    "$(awk -v u="$(field p50_us "$WORK/$tag.log")" 'BEGIN { print u / 1000 }')" \
    "$(awk -v u="$(field p99_us "$WORK/$tag.log")" 'BEGIN { print u / 1000 }')" \
    "$ok" "$non200" "$sent" "$rows" "$wal" "$us_server" "$us_pg" "$rss" "$lag" "$lost" "$notes" >>"$RESULTS"
  log "   $(tail -1 "$RESULTS" | tr '\t' ' ')"
}

WECHAT_LUA="$BENCH_DIR/wechat.lua"
STATIC_LUA="$BENCH_DIR/static.lua"

# Safe-mode pushes, made once (their CreateTime is not checked against the clock; the request's
# timestamp, signed by wrk, is). The presigned ones carry timestamp = generation time, so they are
# made again just before each use (tagcast refuses timestamps more than 600 s old).
gen_safe() { # FILE COUNT TAG [bench_pushes args]
  WECHAT_ENCODING_AES_KEY=$AES_KEY WECHAT_APPID=$APPID \
    timeout 300 "$GEN_BIN" --out "$1" --count "$2" --tag "$3" "${@:4}"
}
gen_presigned() {
  log "== generating $SAFE_COUNT presigned safe-mode pushes"
  gen_safe "$WORK/pre-warm.txt" 100000 93 --presign "$TOKEN"
  gen_safe "$WORK/pre-main.txt" "$SAFE_COUNT" 94 --presign "$TOKEN"
}
if wants_any '*safe*'; then
  log "== generating $SAFE_COUNT safe-mode pushes"
  gen_safe "$WORK/safe-warm.txt" 100000 91
  gen_safe "$WORK/safe-main.txt" "$SAFE_COUNT" 92
fi
if wants safe-reply; then
  log "== generating $SAFE_COUNT safe-mode pushes carrying the keyword"
  gen_safe "$WORK/reply-warm.txt" 100000 95 --content "$KEYWORD"
  gen_safe "$WORK/reply-main.txt" "$SAFE_COUNT" 96 --content "$KEYWORD"
fi

# --- Optional profile -------------------------------------------------------------------------
profile() {
  command -v perf >/dev/null || die "BENCH_PROFILE=1 needs perf"
  local pid=${PID[new]} cs0 cs1
  only_running new
  log "== profile: CLICK load for 12 s, perf record -g on tagcast for 5 s from t=3 s"
  timeout 120 wrk -t1 -c"$CONNS" -d12s --latency -s "$WECHAT_LUA" "http://${ADDR[new]}/wechat" -- click 31 \
    >"$WORK/profile.wrk.log" 2>&1 &
  AUX_PID=$!
  cs0=$(ctx_switches "$pid")
  sleep 3
  perf record -e cpu-clock -F 999 -g -p "$pid" -o "$WORK/perf.data" -- sleep 5 \
    >"$WORK/perf.record.log" 2>&1 || log "perf record failed: $(cat "$WORK/perf.record.log")"
  top -b -n2 -d2 -w 200 | awk '/^top -/ { frame++ } frame == 2 && n++ < 25' >"$WORK/top.txt"
  wait "$AUX_PID" || true
  AUX_PID=""
  cs1=$(ctx_switches "$pid")
  {
    echo "== perf: top symbols of tagcast (self time, cpu-clock)"
    perf report -i "$WORK/perf.data" --stdio --no-children --sort symbol -g none --percent-limit 0.5 2>/dev/null |
      grep -v -e '^#' -e '^$' | sed -e 's/[[:space:]-]*$//' -n -e 1,15p || true
    echo "== perf: by shared object"
    perf report -i "$WORK/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null |
      grep -v -e '^#' -e '^$' | sed -e 's/[[:space:]-]*$//' -n -e 1,8p || true
    echo "== perf: by thread"
    perf report -i "$WORK/perf.data" --stdio --no-children --sort comm -g none 2>/dev/null |
      grep -v -e '^#' -e '^$' | sed -e 's/[[:space:]-]*$//' -n -e 1,6p || true
    echo "== perf: tagcast's own code only (top 15)"
    perf report -i "$WORK/perf.data" --stdio --no-children --dso tagcast --sort symbol -g none 2>/dev/null |
      grep -v -e '^#' -e '^$' | sed -e 's/[[:space:]-]*$//' -n -e 1,15p || true
    echo "== context switches of tagcast's threads during the profile run: $((cs1 - cs0))" \
      "for $(field requests "$WORK/profile.wrk.log") requests"
    echo "== top (second frame, during the CLICK load)"
    cat "$WORK/top.txt"
    echo "== wrk during the profile"
    sed -n '/Requests\/sec/p;/BENCH/p' "$WORK/profile.wrk.log"
  } | tee "$WORK/profile.txt" >&2
  [[ -z ${BENCH_PROFILE_OUT:-} ]] || cp "$WORK/profile.txt" "$BENCH_PROFILE_OUT"
}

# --- Rounds -----------------------------------------------------------------------------------
for round in $(seq "$ROUNDS"); do
  log "== round $round of $ROUNDS: fresh databases, servers starting"
  DONE=()
  start_servers
  # Which build goes first alternates by round, so neither always runs on a warmer machine.
  order=("${BUILDS[@]}")
  ((round % 2 == 1 || ${#BUILDS[@]} == 1)) || order=(base new)
  for name in $ALL_SCENARIOS; do
    wants "$name" || continue
    scenario "$name"
    case $KIND in
      bare | ceiling) run_one "$round" "$name" "$KIND" ;;
      tagcast) for b in "${order[@]}"; do run_one "$round" "$name" "$b"; done ;;
    esac
  done
  ((round < ROUNDS)) || [[ $PROFILE != 1 ]] || profile
  for b in "${!PID[@]}"; do stop_server "$b"; done
done

# --- Summary ----------------------------------------------------------------------------------
echo
echo "== every run"
column -t -s $'\t' "$RESULTS"
echo
echo "== summary: wrk -t1 -c$CONNS -d$DURATION --latency, $ROUNDS round(s); req/s, p50, WAL and CPU are" \
  "medians across rounds, p99 and tagging lag the worst round, RSS the highest"
# vs ceiling: the scenario's median over the ceiling's (ceiling-safe for safe-mode scenarios).
families=""
for name in $ALL_SCENARIOS; do
  wants "$name" || continue
  scenario "$name"
  families="$families $name=$FAMILY"
done
awk -F'\t' -v families="$families" -v has_base=${#BUILDS[@]} '
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j] + 0 < a[j-1] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    if (n == 0) return ""
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function lagval(s) { gsub(/[<=>s]/, "", s); return s + 0 }
  BEGIN {
    n = split(families, f, " ")
    for (i = 1; i <= n; i++) { split(f[i], kv, "="); family[kv[1]] = kv[2] }
  }
  NR == 1 { next }
  {
    k = $2 SUBSEP $3
    if (!(k in seen)) { seen[k] = 1; order[++count] = k }
    rps[k] = rps[k] " " $4; p50[k] = p50[k] " " $5
    if ($6 + 0 > p99[k] + 0) p99[k] = $6
    wal[k] = wal[k] " " $11; us[k] = us[k] " " $12; pg[k] = pg[k] " " $13
    if ($14 + 0 > rss[k] + 0) rss[k] = $14
    if ($15 != "-" && $15 != "none") { if (!(k in lag) || lagval($15) > lagval(lag[k]) || $15 ~ />/) lag[k] = $15 }
    else if (!(k in lag)) lag[k] = $15
    if ($16 != "0" && $16 != "-") bad[k] = bad[k] (bad[k] ? "; " : "") "round " $1 ": " $16
    else if (!(k in bad) && $16 == "0") bad[k] = ""
    if ($17 != "-") note[k] = note[k] (note[k] ? "; " : "") "round " $1 ": " $17
  }
  END {
    printf "scenario\tbuild\treq/s\tvs ceiling\tvs base\tp50\tp99 (worst)\tWAL B/push\tserver us/push\tpg us/push\tpeak RSS\ttagging lag p99\tlost\tnotes\n"
    for (i = 1; i <= count; i++) {
      k = order[i]; split(k, sb, SUBSEP); s = sb[1]; b = sb[2]
      m = median(rps[k])
      ceil = family[s] == "safe" ? "ceiling-safe" SUBSEP "ceiling" : "ceiling" SUBSEP "ceiling"
      vc = "-"
      if (family[s] != "-" && (ceil in rps) && s !~ /^ceiling/) vc = sprintf("%.2f", m / median(rps[ceil]))
      vb = "-"
      if (b == "new" && ((s SUBSEP "base") in rps)) vb = sprintf("%.2f", m / median(rps[s SUBSEP "base"]))
      w = median(wal[k])
      lost = (k in bad) ? (bad[k] == "" ? "none" : bad[k]) : "-"
      printf "%s\t%s\t%.0f\t%s\t%s\t%.2f ms\t%.2f ms\t%s\t%.1f\t%.1f\t%.1f MiB\t%s\t%s\t%s\n", s, b, m, vc, vb,
        median(p50[k]), p99[k], (w == "" || wal[k] ~ /-/) ? "-" : sprintf("%.0f", w), median(us[k]), median(pg[k]),
        rss[k], lag[k], lost, note[k] == "" ? "-" : note[k]
    }
  }' "$RESULTS" >"$WORK/summary.tsv"
column -t -s $'\t' "$WORK/summary.tsv"
