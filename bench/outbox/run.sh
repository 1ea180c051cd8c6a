#!/usr/bin/env bash
# Benchmark of the tag outbox: pending tag changes delivered to the in-process mock WeChat with
# 20 ms of latency under a configured pace for batchtagging. Results: BENCHMARKS.md.
#
#   bash bench/outbox/run.sh     (BENCH_CHANGES=20000 BENCH_LATENCY_MS=20 BENCH_PACE=100)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --release --example bench_outbox
psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS tagcast_bench_outbox WITH (FORCE)"
RUST_LOG=error DATABASE_URL=postgres://postgres@127.0.0.1:5432/tagcast_bench_outbox ./target/release/examples/bench_outbox
psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS tagcast_bench_outbox WITH (FORCE)"
