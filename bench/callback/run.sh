#!/usr/bin/env bash
# Benchmark of the WeChat callback: wrk against the release build of `tagcast serve` over a fresh
# Postgres database, beside a bare actix-web server (examples/bare_actix.rs) as the ceiling.
# Results and how to read them: BENCHMARKS.md. Not a test: nothing here fails on a slow number.
#
#   bash bench/callback/run.sh
#
# Scenarios (each: 2 s warm-up, then `wrk -t1 -c32 -d10s --latency`):
#   bare-static  bare server, one fixed POST, no Lua per request          -> the machine's ceiling
#   bare-text / bare-click / bare-safe                                    -> the client's ceiling
#                bare server, the same Lua scripts as below (signing, varying sender and MsgId)
#   bare-safe-presigned  bare server, safe-mode pushes whose signatures the generator computed
#   text         tagcast, plaintext-mode text message
#   click        tagcast, plaintext-mode menu CLICK event (no rule matches its keys)
#   click-rule   the same CLICKs once eight rules `click MENU_<k> -> add 菜单/点击<k>` exist: every
#                push tags a new follower and queues a tag_outbox row (issue 4's target)
#   safe         tagcast, safe-mode (AES) text message, ciphertexts from examples/bench_pushes.rs,
#                signature and msg_signature computed per request in Lua
#   safe-presigned  the same with signatures precomputed by the generator, so wrk spends no CPU
#                on SHA-1 (on 2 cores the client's CPU is taken from the server)
#
# For each tagcast scenario the rows added to `events` are compared with what wrk saw answered
# 200: every 200 must be a stored row (rows >= 2xx); rows beyond that are requests still in
# flight when wrk stopped (rows <= requests sent). Peak RSS is tagcast's VmHWM after all runs.
#
# Environment (all optional):
#   BENCH_DURATION=10s BENCH_WARMUP=2s BENCH_CONNECTIONS=32
#   BENCH_SAFE_COUNT=300000  safe-mode pushes generated for the measured run
#   BENCH_PROFILE=0          1: afterwards, one extra CLICK run with `perf record -g` on tagcast
#                            for 5 s and a `top` snapshot (needs perf); not part of the table
#   BENCH_PROFILE_OUT=FILE   also copy that profile summary to FILE
#   BENCH_SKIP_BUILD=0       1: use the binaries already in target/release
#   BENCH_BIN_DIR=DIR        use tagcast, bare_actix and bench_pushes from DIR (e.g. the bin/ of a
#                            kept work directory) to repeat a run against exactly the same build
#   BENCH_KEEP=0             1: keep the work directory (logs, generated pushes, perf data)
#   BENCH_WAIT_FOR_QUIET=900 seconds to wait, in all, for other load (fuzzers, builds) to stop
#   BENCH_HTTP_WORKERS=N     tagcast's TAGCAST_HTTP_WORKERS (default: its own, half the cores)
#   BENCH_ROLE=web           tagcast's TAGCAST_ROLE (default `all`: the outbox worker runs too, and
#                            retries its batch calls against the closed WeChat port)
#   BENCH_SCENARIOS="..."    only these scenarios (space-separated names), in the order above
#   BENCH_ENV="K=V ..."      extra environment for tagcast (an A/B of one of its settings)
#   BENCH_SQL="..."          SQL run on the bench database once tagcast has migrated it (an A/B
#                            of a schema change, e.g. dropping an index), before any scenario
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
BENCH_DIR="$ROOT/bench/callback"

DURATION=${BENCH_DURATION:-10s}
WARMUP=${BENCH_WARMUP:-2s}
CONNS=${BENCH_CONNECTIONS:-32}
SAFE_COUNT=${BENCH_SAFE_COUNT:-300000}
PROFILE=${BENCH_PROFILE:-0}

TOKEN=benchtoken
AES_KEY=kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR
APPID=wxbench000000001
DB=tagcast_bench
PG="psql -h 127.0.0.1 -p 5432 -U postgres -X -q -At -v ON_ERROR_STOP=1"
TAGCAST_ADDR=127.0.0.1:18080
BARE_ADDR=127.0.0.1:18081
TAGCAST_URL="http://$TAGCAST_ADDR/wechat"
BARE_URL="http://$BARE_ADDR/wechat"
HZ=$(getconf CLK_TCK)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tagcast-bench.XXXXXX")
TAGCAST_PID="" BARE_PID="" AUX_PID=""
cleanup() {
  local pid
  for pid in $AUX_PID $TAGCAST_PID $BARE_PID; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $AUX_PID $TAGCAST_PID $BARE_PID; do
    # Give each up to 12 s (tagcast drains its inbox), then insist.
    for _ in $(seq 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
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

for tool in wrk psql curl cargo /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

# --- Machine ----------------------------------------------------------------------------------
log "== machine"
log "nproc: $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
log "PostgreSQL: $($PG -d postgres -c 'SHOW server_version')," \
  "synchronous_commit=$($PG -d postgres -c 'SHOW synchronous_commit')," \
  "fsync=$($PG -d postgres -c 'SHOW fsync')," \
  "wal_sync_method=$($PG -d postgres -c 'SHOW wal_sync_method')"
log "wrk: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"

# --- Build ------------------------------------------------------------------------------------
BIN_SRC=${BENCH_BIN_DIR:-}
if [[ -z $BIN_SRC && ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  log "== cargo build --release --examples --bin tagcast"
  timeout 1800 cargo build --release --examples --bin tagcast >&2
fi
# Run copies, so that someone rebuilding target/release meanwhile cannot swap binaries mid-run.
mkdir -p "$WORK/bin"
for bin in tagcast examples/bare_actix examples/bench_pushes; do
  src=${BIN_SRC:+$BIN_SRC/${bin#examples/}}
  src=${src:-target/release/$bin}
  [[ -x $src ]] || die "$src is missing"
  cp -p "$src" "$WORK/bin/"
done
TAGCAST_BIN=$WORK/bin/tagcast
BARE_BIN=$WORK/bin/bare_actix
GEN_BIN=$WORK/bin/bench_pushes
log "tagcast binary: built $(date -u -r "$TAGCAST_BIN" '+%F %T UTC'), sha256 $(sha256sum "$TAGCAST_BIN" | cut -c1-12)"

# --- Quiet machine ----------------------------------------------------------------------------
# On 2 cores any other load (a fuzzer, someone's cargo build) is taken straight from the server.
# Before each measurement: wait while a fuzzer runs (pgrep fuzz|afl) or the machine is more than
# 15 % busy over 3 s, polling every 30 s, for at most BENCH_WAIT_FOR_QUIET seconds in the whole
# run; then measure anyway and say so in the notes column. Other load also shows as "CPU other".
QUIET_BUDGET=${BENCH_WAIT_FOR_QUIET:-900}
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

# --- Database and servers ---------------------------------------------------------------------
log "== fresh database $DB"
$PG -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
$PG -d postgres -c "CREATE DATABASE $DB"

wait_healthy() { # NAME PID URL
  for _ in $(seq 300); do
    kill -0 "$2" 2>/dev/null || { cat "$WORK/$1.log" >&2; die "$1 exited during start-up"; }
    curl -fsS --max-time 1 "$3" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  cat "$WORK/$1.log" >&2
  die "$1 did not become healthy within 60 s"
}

log "== starting tagcast serve on $TAGCAST_ADDR and bare_actix on $BARE_ADDR"
cd "$WORK" # so that no .env of the checkout adds settings: only those below apply
env -i PATH="$PATH" HOME="${HOME:-/root}" \
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB" \
  TAGCAST_BIND="$TAGCAST_ADDR" RUST_LOG=warn TAGCAST_API_TOKEN=bench-api-token-0123456789 \
  WECHAT_APPID="$APPID" WECHAT_APPSECRET=benchsecret WECHAT_TOKEN="$TOKEN" \
  WECHAT_ENCODING_AES_KEY="$AES_KEY" WECHAT_MESSAGE_MODE=plain WECHAT_API_BASE=http://127.0.0.1:9 \
  ${BENCH_HTTP_WORKERS:+TAGCAST_HTTP_WORKERS=$BENCH_HTTP_WORKERS} ${BENCH_ROLE:+TAGCAST_ROLE=$BENCH_ROLE} \
  ${BENCH_ENV:-} "$TAGCAST_BIN" serve >"$WORK/tagcast.log" 2>&1 &
TAGCAST_PID=$!
cd "$ROOT"
"$BARE_BIN" "$BARE_ADDR" >"$WORK/bare.log" 2>&1 &
BARE_PID=$!
wait_healthy tagcast "$TAGCAST_PID" "http://$TAGCAST_ADDR/healthz"
wait_healthy bare "$BARE_PID" "http://$BARE_ADDR/healthz"
if [[ -n ${BENCH_SQL:-} ]]; then
  log "== BENCH_SQL: $BENCH_SQL"
  $PG -d "$DB" -c "$BENCH_SQL"
fi

# --- Measurement helpers ----------------------------------------------------------------------
events() { $PG -d "$DB" -c 'SELECT count(*) FROM events'; }
max_event_id() { $PG -d "$DB" -c 'SELECT coalesce(max(id), 0) FROM events'; }
# Transactions that stored events since id $1: rows of one batch share received_at (= now(), the
# start of their transaction), so distinct values count the group commits exactly.
batches_since() { $PG -d "$DB" -c "SELECT count(DISTINCT received_at) FROM events WHERE id > $1"; }

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
# Postgres: the backends serving the bench database and the shared WAL writer, checkpointer and
# background writer (other databases' backends are other people's load, counted as "other").
pg_ticks() { ticks $(pgrep -u postgres -f "postgres: .*($DB |walwriter|checkpointer|background writer)"); }
machine_ticks() { # busy and total ticks of all CPUs
  awk '/^cpu /{busy=$2+$3+$4+$7+$8+$9; print busy, busy+$5+$6}' /proc/stat
}
ctx_switches() { # PID: voluntary + involuntary context switches of all its threads
  cat /proc/"$1"/task/*/status 2>/dev/null | awk '/ctxt_switches/ { n += $2 } END { print n + 0 }'
}
field() { # KEY FILE: value of KEY=... on the BENCH line
  sed -n "s/^BENCH .*\b$1=\([^ ]*\).*/\1/p" "$2" | tail -1
}
pct() { # TICKS SECONDS -> percent of one core
  awk -v t="$1" -v s="$2" -v hz="$HZ" 'BEGIN { printf "%.0f", 100 * t / hz / s }'
}

SUMMARY="$WORK/summary.tsv"
printf 'scenario\treq/s\tp50\tp99\tnon-2xx\t2xx\trows stored\tdurable\tcommits/s\trows/commit\tCPU server\tCPU postgres\tCPU wrk\tCPU other\tCPU idle\tnotes\n' >"$SUMMARY"

# run_scenario NAME TARGET(bare|tagcast) SCRIPT WARM_ARGS MAIN_ARGS [PREPARE]
# PREPARE, a command, runs once the machine is quiet, just before the warm-up.
run_scenario() {
  if [[ -n ${BENCH_SCENARIOS:-} && " $BENCH_SCENARIOS " != *" $1 "* ]]; then return 0; fi
  local name=$1 target=$2 script=$3 warm_args=$4 main_args=$5 prepare=${6:-}
  local url pid quiet=yes
  if [[ $target == tagcast ]]; then url=$TAGCAST_URL pid=$TAGCAST_PID; else url=$BARE_URL pid=$BARE_PID; fi
  wait_quiet || quiet=no
  [[ -z $prepare ]] || $prepare
  log "== $name: warm-up $WARMUP"
  # shellcheck disable=SC2086
  timeout 120 wrk -t1 -c"$CONNS" -d"$WARMUP" -s "$script" "$url" -- $warm_args >"$WORK/$name.warm.log" 2>&1 ||
    { cat "$WORK/$name.warm.log" >&2; die "$name: warm-up failed"; }
  sleep 1
  local rows0=0 rows1=0 id0=0 batches commits="-" per_commit="-"
  [[ $target == tagcast ]] && rows0=$(events) && id0=$(max_event_id)

  log "== $name: wrk -t1 -c$CONNS -d$DURATION --latency"
  local s0 p0 m0 w0 s1 p1 m1 bg wrk_pid
  # CPU is counted from wrk's "Running" line, printed once its Lua init (loading the safe-mode
  # file) is done and the measured window starts, until wrk exits. wrk's own share is its total
  # (from /usr/bin/time) minus what it had used by then.
  # shellcheck disable=SC2086
  timeout 120 /usr/bin/time -f 'WRKCPU %U %S' -o "$WORK/$name.time" \
    stdbuf -oL wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$script" "$url" -- $main_args >"$WORK/$name.log" 2>&1 &
  bg=$!
  for _ in $(seq 1200); do
    grep -q '^Running' "$WORK/$name.log" && break
    kill -0 "$bg" 2>/dev/null || break
    sleep 0.05
  done
  wrk_pid=$(pgrep -x wrk -P "$(pgrep -P "$bg" | head -1)" || true)
  w0=$(ticks $wrk_pid); s0=$(ticks "$pid"); p0=$(pg_ticks); m0=$(machine_ticks)
  wait "$bg" || { cat "$WORK/$name.log" >&2; die "$name: wrk failed"; }
  s1=$(ticks "$pid"); p1=$(pg_ticks); m1=$(machine_ticks)
  local notes="-"
  [[ $quiet == yes ]] || notes="WARNING: the machine was busy before this run"
  pgrep -f 'fuzz|afl' >/dev/null && notes="WARNING: a fuzzer (or its build) ran during this run"
  sed -n '/Running/,$p' "$WORK/$name.log" >&2

  local secs requests non200 sent reused ok durable stored="-"
  secs=$(awk -v us="$(field duration_us "$WORK/$name.log")" 'BEGIN { print us / 1e6 }')
  requests=$(field requests "$WORK/$name.log")
  non200=$(field non200 "$WORK/$name.log")
  sent=$(field sent "$WORK/$name.log")
  reused=$(field reused "$WORK/$name.log")
  ok=$((requests - non200))
  durable="-"
  if [[ $target == tagcast ]]; then
    sleep 2 # requests still in flight when wrk stopped finish storing
    rows1=$(events)
    stored=$((rows1 - rows0))
    batches=$(batches_since "$id0")
    commits=$(awk -v c="$batches" -v s="$secs" 'BEGIN { printf "%.0f", c / s }')
    per_commit=$(awk -v c="$batches" -v r="$stored" 'BEGIN { printf "%.1f", c ? r / c : 0 }')
    if ((stored >= ok && stored <= sent)); then
      durable="yes (+$((stored - ok)) in flight at stop)"
      ((stored == ok)) && durable="yes (exact)"
    else
      durable="NO: $stored rows for $ok answers 200, $sent sent"
    fi
    ((reused == 0)) || durable="$durable; WARNING $reused pushes reused (retries): raise BENCH_SAFE_COUNT"
    log "$name: $ok answered 200, $non200 other, $sent sent; events grew by $stored -> durable: $durable"
  fi
  local wrk_ticks
  wrk_ticks=$(awk -v w0="$w0" '/^WRKCPU/ { printf "%d", ($2 + $3) * '"$HZ"' - w0 }' "$WORK/$name.time")
  read -r mb0 mt0 <<<"$m0"
  read -r mb1 mt1 <<<"$m1"
  local all server_pct pg_pct wrk_pct other
  all=$(awk -v b=$((mb1 - mb0)) -v t=$((mt1 - mt0)) -v n="$(nproc)" 'BEGIN { printf "%.0f", 100 * n * b / t }')
  server_pct=$(pct $((s1 - s0)) "$secs") pg_pct=$(pct $((p1 - p0)) "$secs") wrk_pct=$(pct "$wrk_ticks" "$secs")
  other=$((all - server_pct - pg_pct - wrk_pct))
  if ((other > 25)) && [[ $notes == - ]]; then notes="other load during the run (see CPU other)"; fi
  printf '%s\t%.0f\t%.2f ms\t%.2f ms\t%s\t%s\t%s\t%s\t%s\t%s\t%s%%\t%s%%\t%s%%\t%s%%\t%s%%\t%s\n' \
    "$name" "$(field rps "$WORK/$name.log")" \
    "$(awk -v u="$(field p50_us "$WORK/$name.log")" 'BEGIN { print u / 1000 }')" \
    "$(awk -v u="$(field p99_us "$WORK/$name.log")" 'BEGIN { print u / 1000 }')" \
    "$non200" "$ok" "$stored" "$durable" "$commits" "$per_commit" \
    "$server_pct" "$pg_pct" "$wrk_pct" "$other" "$(($(nproc) * 100 - all))" "$notes" >>"$SUMMARY"
}

WECHAT_LUA="$BENCH_DIR/wechat.lua"
STATIC_LUA="$BENCH_DIR/static.lua"

# Safe-mode pushes: a warm-up file and a measured one per variant, each with its own tag. The
# presigned ones carry timestamp = generation time, so they are made again just before each use
# (tagcast refuses timestamps more than 600 s old).
gen_safe() { # FILE COUNT TAG [--presign TOKEN]
  WECHAT_ENCODING_AES_KEY=$AES_KEY WECHAT_APPID=$APPID \
    timeout 300 "$GEN_BIN" --out "$1" --count "$2" --tag "$3" "${@:4}"
}
if [[ -z ${BENCH_SCENARIOS:-} || $BENCH_SCENARIOS == *safe* ]]; then
  log "== generating $SAFE_COUNT safe-mode pushes"
  gen_safe "$WORK/safe-warm.txt" 100000 91
  gen_safe "$WORK/safe-main.txt" "$SAFE_COUNT" 92
fi

# --- Scenarios --------------------------------------------------------------------------------
run_scenario bare-static bare "$STATIC_LUA" "" ""
run_scenario bare-text bare "$WECHAT_LUA" "text 1" "text 2"
run_scenario bare-click bare "$WECHAT_LUA" "click 3" "click 4"
run_scenario bare-safe bare "$WECHAT_LUA" "safe 5 $WORK/safe-warm.txt" "safe 6 $WORK/safe-main.txt"
gen_presigned() {
  log "== generating $SAFE_COUNT presigned safe-mode pushes"
  gen_safe "$WORK/pre-warm.txt" 100000 93 --presign "$TOKEN"
  gen_safe "$WORK/pre-main.txt" "$SAFE_COUNT" 94 --presign "$TOKEN"
}
run_scenario bare-safe-presigned bare "$WECHAT_LUA" "safe 7 $WORK/pre-warm.txt" "safe 8 $WORK/pre-main.txt" \
  gen_presigned
run_scenario text tagcast "$WECHAT_LUA" "text 11" "text 12"
run_scenario click tagcast "$WECHAT_LUA" "click 21" "click 22"
add_click_rules() {
  local k
  for k in 0 1 2 3 4 5 6 7; do
    curl -fsS -o /dev/null -H 'Authorization: Bearer bench-api-token-0123456789' -H 'Content-Type: application/json' \
      -d "{\"on\": \"click\", \"key\": \"MENU_$k\", \"add\": [\"菜单/点击$k\"]}" \
      "http://$TAGCAST_ADDR/api/v1/rules" || die "cannot create the click rules"
  done
}
run_scenario click-rule tagcast "$WECHAT_LUA" "click 23" "click 24" add_click_rules
run_scenario safe tagcast "$WECHAT_LUA" "safe 91 $WORK/safe-warm.txt" "safe 92 $WORK/safe-main.txt"
run_scenario safe-presigned tagcast "$WECHAT_LUA" "safe 93 $WORK/pre-warm.txt" "safe 94 $WORK/pre-main.txt" \
  gen_presigned

PEAK_RSS=$(awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$TAGCAST_PID/status")
BARE_RSS=$(awk '/VmHWM/ { printf "%.1f MiB", $2 / 1024 }' "/proc/$BARE_PID/status")

# --- Optional profile -------------------------------------------------------------------------
if [[ $PROFILE == 1 ]]; then
  command -v perf >/dev/null || die "BENCH_PROFILE=1 needs perf"
  log "== profile: CLICK load for 12 s, perf record -g on tagcast for 5 s from t=3 s"
  timeout 120 wrk -t1 -c"$CONNS" -d12s --latency -s "$WECHAT_LUA" "$TAGCAST_URL" -- click 31 \
    >"$WORK/profile.wrk.log" 2>&1 &
  AUX_PID=$!
  cs0=$(ctx_switches "$TAGCAST_PID")
  sleep 3
  perf record -e cpu-clock -F 999 -g -p "$TAGCAST_PID" -o "$WORK/perf.data" -- sleep 5 \
    >"$WORK/perf.record.log" 2>&1 || log "perf record failed: $(cat "$WORK/perf.record.log")"
  top -b -n2 -d2 -w 200 | awk '/^top -/ { frame++ } frame == 2 && n++ < 25' >"$WORK/top.txt"
  wait "$AUX_PID" || true
  AUX_PID=""
  cs1=$(ctx_switches "$TAGCAST_PID")
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
fi

# --- Summary ----------------------------------------------------------------------------------
echo
echo "== summary (wrk -t1 -c$CONNS -d$DURATION --latency; CPU = % of one core over the measured run," \
  "out of $(($(nproc) * 100))%)"
column -t -s $'\t' "$SUMMARY"
echo "tagcast peak RSS (VmHWM): $PEAK_RSS; bare_actix: $BARE_RSS"
