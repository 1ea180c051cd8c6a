#!/usr/bin/env bash
# Benchmark of the WeChat API client against the in-process mock: token overhead per call and
# calls per second with 0 ms and 50 ms of added latency. Results: BENCHMARKS.md.
#
#   bash bench/api/run.sh            (BENCH_CONCURRENCY=64 BENCH_SECONDS=5 by default)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --release --example bench_api
psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS tagcast_bench_api WITH (FORCE)"
RUST_LOG=error DATABASE_URL=postgres://postgres@127.0.0.1:5432/tagcast_bench_api ./target/release/examples/bench_api
psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS tagcast_bench_api WITH (FORCE)"
