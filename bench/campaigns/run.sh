#!/usr/bin/env bash
# Benchmark of a campaign to a million-follower segment: audience resolution (index and SQL) and
# delivery to the in-process mock WeChat with 20 ms latency under the mass-send pace.
# Results: BENCHMARKS.md. Not a test: nothing here fails on a slow number.
#
#   bash bench/campaigns/run.sh
#   BENCH_MASS_PACE=10 bash bench/campaigns/run.sh     (a quicker run: 10 calls a second)
#   BENCH_FOLLOWERS=50000 bash bench/campaigns/run.sh  (a smoke run)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --release --example bench_campaigns
db=tagcast_bench_campaigns
psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
RUST_LOG=error DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db ./target/release/examples/bench_campaigns
psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
