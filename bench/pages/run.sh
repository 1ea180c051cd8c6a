#!/usr/bin/env bash
# Benchmark of the admin pages at a million followers: the release `tagcast serve` over the
# audience benchmark's database (1M followers, 50 tags, 5M clicks and orders; made by
# bench/segments/run.sh with BENCH_REUSE=1, which keeps it), signed in as an admin with curl,
# each page fetched BENCH_ROUNDS times on loopback, once the board's figures (computed in the
# background at start) are ready. Reported per page: the first fetch (cold
# caches) and p50/p99/max of the rest, in ms. Issue 7's budget: 50 ms of server time a page.
# Results: BENCHMARKS.md. Not a test: nothing here fails on a slow number.
#
#   BENCH_REUSE=1 bash bench/segments/run.sh   # once, to make the database
#   bash bench/pages/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROUNDS=${BENCH_ROUNDS:-50}
DB=${BENCH_DB:-tagcast_bench_segments}
ADDR=127.0.0.1:18090
BASE="http://$ADDR"
PG="psql -h 127.0.0.1 -U postgres -X -q -At -d $DB"
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then cargo build --release --bin tagcast; fi
followers=$($PG -c "SELECT count(*) FROM followers") || { echo "no database $DB: run BENCH_REUSE=1 bash bench/segments/run.sh first" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# The bench database has no admin yet, and no WeChat: the API base points at a closed port, so
# nothing reaches out; the web role runs no workers.
DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB TAGCAST_BIND=$ADDR TAGCAST_ROLE=web \
  WECHAT_APPID=wxbench000000001 WECHAT_APPSECRET=benchsecret WECHAT_TOKEN=benchtoken \
  WECHAT_API_BASE=http://127.0.0.1:9 TAGCAST_API_TOKEN=bench-api-token-0123456789 \
  TAGCAST_ADMIN_PASSWORD=bench-admin-pw RUST_LOG=warn,tagcast::web::admin::board=info TAGCAST_LOG_FORMAT=json \
  ./target/release/tagcast serve >"$work/serve.log" 2>&1 &
for _ in $(seq 1 100); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.2; done

jar="$work/cookies"
csrf=$(curl -fs -c "$jar" -b "$jar" "$BASE/admin/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -1)
curl -fs -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf=$csrf" --data-urlencode username=admin \
  --data-urlencode password=bench-admin-pw "$BASE/admin/login"

# A large account's board is computed in the background at start: a view meanwhile gets the
# "being computed" page at once. Both times are reported apart from the table.
early=$(curl -s -o "$work/early.html" -b "$jar" -w '%{time_total}' "$BASE/admin")
early_page=$(grep -q 'id="board-pending"' "$work/early.html" && echo "the 'being computed' page" || echo "the board")
for _ in $(seq 1 300); do grep -q "board figures computed at start" "$work/serve.log" && break; sleep 0.1; done
warm_up=$(grep "board figures computed at start" "$work/serve.log" | sed -n 's/.*"duration_ms":\([0-9]*\).*/\1/p' | head -1)

openid=$($PG -c "SELECT openid FROM followers ORDER BY openid OFFSET 500000 LIMIT 1")
segment_expr=$(printf '%s' '"压测/标签00" AND NOT "压测/标签03" AND orders(30d) >= 1' | jq -sRr @uri)
bench_tag=$(printf '%s' '压测/标签00' | jq -sRr @uri)
bench_tag3=$(printf '%s' '压测/标签03' | jq -sRr @uri)
builder="g0r0_kind=tag&g0r0_tag=$bench_tag&g0r1_not=1&g0r1_kind=orders&g0r1_days=30&g1_not=1&g1_join=or&g1r0_kind=tag&g1r0_tag=$bench_tag3&g1r1_kind=spent&g1r1_yuan=500&build=1"
# A draft to everyone: its page counts the whole audience now (issue 20) before any send.
campaign=$(curl -fs -X POST -H "Authorization: Bearer bench-api-token-0123456789" -H 'Content-Type: application/json' \
  -d '{"name":"压测群发","audience":{"all":true},"message":{"type":"text","content":"压测"}}' \
  "$BASE/api/v1/campaigns" | jq -r .id)
# Twenty campaigns to a sensitive tag, sent: the approval queue shows each one's reach and
# sensitive tags (issue 20). Marked sensitive through the tags page, as an admin does.
# From a file: `| head -1` would close the pipe early and pipefail would end the script.
csrf_of() { curl -fs -b "$jar" -o "$work/form.html" "$BASE$1"; grep -o -m1 'name="csrf" value="[^"]*"' "$work/form.html" | cut -d'"' -f4; }
tags_csrf=$(csrf_of /admin/tags)
sensitive_id=$($PG -c "SELECT id FROM tags WHERE path = '压测/标签01'")
curl -fs -o /dev/null -b "$jar" --data-urlencode "csrf=$tags_csrf" --data-urlencode to=1 \
  "$BASE/admin/tags/$sensitive_id/sensitive"
for n in $(seq 1 20); do
  waiting=$(curl -fs -X POST -H "Authorization: Bearer bench-api-token-0123456789" -H 'Content-Type: application/json' \
    -d "{\"name\":\"待审批$n\",\"audience\":{\"tag\":\"压测/标签01\"},\"message\":{\"type\":\"text\",\"content\":\"压测\"}}" \
    "$BASE/api/v1/campaigns" | jq -r .id)
  curl -s -o /dev/null -X POST -H "Authorization: Bearer bench-api-token-0123456789" "$BASE/api/v1/campaigns/$waiting/send"
done
queued=$($PG -c "SELECT count(*) FROM campaigns WHERE status = 'pending_approval'")
# 计算人数 on the compose form: a POST that counts the audience without saving anything.
compose_csrf=$(csrf_of /admin/campaigns/new)
compose="csrf=$compose_csrf&action=count&name=%E5%8E%8B%E6%B5%8B&audience=tag&tag=$bench_tag&kind=text&content=%E5%8E%8B%E6%B5%8B"
pages=(
  "看板|/admin"
  "标签|/admin/tags"
  "规则|/admin/rules"
  "测验|/admin/quizzes"
  "人群|/admin/segments"
  "人群+表达式|/admin/segments?expr=$segment_expr"
  "人群计数|/admin/segments/count?expr=$segment_expr"
  "粉丝搜索|/admin/followers?q=o_bench_0050"
  "人群条件|/admin/segments?$builder"
  "粉丝详情|/admin/followers/$openid"
  "粉丝按标签|/admin/followers?tag=$bench_tag"
  "粉丝按标签第100页|/admin/followers?tag=$bench_tag&page=100"
  "审计|/admin/audit"
  "群发|/admin/campaigns"
  "新建群发|/admin/campaigns/new"
  "群发详情（草稿，受众人数）|/admin/campaigns/$campaign"
  "审批队列（$queued 个待审批）|/admin/campaigns/approvals"
  "新建群发·计算人数（POST）|POST /admin/campaigns|$compose"
)
echo "| page | path | status | first (ms) | p50 (ms) | p99 (ms) | max (ms) |"
echo "|---|---|---|---|---|---|---|"
for entry in "${pages[@]}"; do
  name=${entry%%|*}
  path=${entry#*|}
  # A POST entry carries its form after a second bar.
  form=()
  if [[ $path == POST\ * ]]; then
    form=(--data "${path#*|}")
    path=${path#POST }
    path=${path%%|*}
  fi
  samples="$work/samples"
  : >"$samples"
  status=""
  for i in $(seq 0 "$ROUNDS"); do
    out=$(curl -s -o /dev/null -b "$jar" "${form[@]}" -w '%{http_code} %{time_total}' "$BASE$path")
    status=${out%% *}
    echo "${out#* }" >>"$samples"
  done
  first=$(head -1 "$samples")
  tail -n +2 "$samples" | sort -g >"$samples.sorted"
  n=$(wc -l <"$samples.sorted")
  pick() { sed -n "$(awk -v n="$n" -v p="$1" 'BEGIN { i = int(n * p + 0.999); if (i < 1) i = 1; print i }')p" "$samples.sorted"; }
  printf '| %s | `%s` | %s | %.1f | %.1f | %.1f | %.1f |\n' "$name" "${path:0:40}" "$status" \
    "$(echo "$first * 1000" | bc -l)" "$(echo "$(pick 0.5) * 1000" | bc -l)" \
    "$(echo "$(pick 0.99) * 1000" | bc -l)" "$(echo "$(pick 1.0) * 1000" | bc -l)"
done
echo
echo "followers in the database: $followers; rounds per page: $ROUNDS (after one cold fetch)"
echo "board figures computed in the background at start in ${warm_up:-?} ms (before the first fetch above);"
echo "a board view during that computation got $early_page in $(echo "$early * 1000" | bc -l | xargs printf '%.1f') ms"
