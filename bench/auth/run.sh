#!/usr/bin/env bash
# Password checks under attack (issue 15 point 1): the release `tagcast serve` on a fresh
# database, loopback only. Records idle RSS, sends BENCH_ATTEMPTS (2,000) wrong passwords with
# random usernames from BENCH_CONNECTIONS (64) connections — half HTTP Basic on /api/v1, half the
# login form with its CSRF token — while one correct sign-in is timed, then reports peak
# (VmHWM) and settled RSS (VmRSS ~10 s after the flood). Targets: settled within 20 MiB of idle,
# peak <= 256 MiB. Results: BENCHMARKS.md, "Password checks under attack (issue 15)".
# Not a test: nothing here fails on a slow number. Bounded: the server is killed after 120 s.
#
#   bash bench/auth/run.sh          # BENCH_SKIP_BUILD=1 to reuse the release build
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ATTEMPTS=${BENCH_ATTEMPTS:-2000}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
ADDR=127.0.0.1:18091
BASE="http://$ADDR"
DB=tagcast_bench_auth_$$
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then cargo build --release --bin tagcast --example bench_auth; fi
work=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB TAGCAST_BIND=$ADDR TAGCAST_ROLE=web \
  WECHAT_APPID=wxbench000000001 WECHAT_APPSECRET=benchsecret WECHAT_TOKEN=benchtoken \
  WECHAT_API_BASE=http://127.0.0.1:9 TAGCAST_ADMIN_PASSWORD=bench-admin-pw RUST_LOG=error \
  TAGCAST_API_TOKEN=bench-api-token-0123456789 \
  ./target/release/tagcast serve >"$work/serve.log" 2>&1 &
pid=$!
(sleep 120; kill "$pid" 2>/dev/null) &
for _ in $(seq 1 150); do curl -fs "$BASE/healthz" >/dev/null && break; sleep 0.2; done
kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$pid/status"; }
mib() { echo "scale=1; $1 / 1024" | bc; }

# A second admin with the same password, to sign in during the flood (the first one signs in
# before it, so its password is in the verified-password memory for a minute).
curl -fs -o /dev/null -H 'Authorization: Bearer bench-api-token-0123456789' -H 'Content-Type: application/json' \
  -d '{"username": "owner", "password": "bench-admin-pw", "role": "admin"}' "$BASE/api/v1/admins"
sleep 2
idle=$(kib VmRSS)
echo "threads: TAGCAST_PASSWORD_CHECKS default (cores=$(nproc), so $(( $(nproc) < 4 ? $(nproc) : 4 )) at once)"
./target/release/examples/bench_auth "$BASE" admin owner bench-admin-pw "$ATTEMPTS" "$CONNECTIONS" | tee "$work/load"
peak=$(kib VmHWM)
sleep 10
settled=$(kib VmRSS)
curl -fs "$BASE/metrics" | grep -E '^tagcast_password_checks' || true
echo "idle_rss_mib=$(mib "$idle")"
echo "peak_rss_mib=$(mib "$peak")  (VmHWM right after the flood)"
echo "settled_rss_mib=$(mib "$settled")  (VmRSS 10 s later; $(mib $((settled - idle))) MiB over idle)"
