#!/usr/bin/env bash
# Benchmark of audiences at the issue's scale: 1M followers, 50 tags, 5M clicks and orders
# (generated with COPY), then segment counts of 100 random 3-term and 10-term expressions
# (p50/p99), one order's dynamic re-evaluation (p50/p99) and the scheduled pass.
# Budgets (issue 5): 3 terms ≤ 100 ms, 10 terms ≤ 500 ms, re-evaluation ≤ 2 ms, pass ≤ 60 s.
#
#   bash bench/segments/run.sh
#   BENCH_FOLLOWERS=20000 BENCH_EVENTS=100000 bash bench/segments/run.sh   (a quick smoke run)
#   BENCH_REUSE=1 keeps the generated data between runs (the database is then not dropped).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --release --example bench_segments
db=tagcast_bench_segments
if [[ "${BENCH_REUSE:-0}" != 1 ]]; then
  psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
fi
RUST_LOG=error DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db ./target/release/examples/bench_segments
if [[ "${BENCH_REUSE:-0}" != 1 ]]; then
  psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
fi
