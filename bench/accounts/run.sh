#!/usr/bin/env bash
# Audiences across accounts (issue 17): 100 accounts of 10,000 followers against one account of
# 1,000,000, in one database: index build time and memory (the index's own accounting and each
# side's peak resident memory, each side in its own process), and segment counts by index and by
# SQL (p50/p99). The issue asks for memory proportional to followers, not accounts.
#
# Measured on a 2-core VM (release, 4 events a follower): one account of 1M: index 148 MiB (155 bytes
# a follower), built in 6 s, counts p50 5.8 ms / p99 13.6 ms (SQL p50 1.0 s); 100 accounts of
# 10,000: index 151 MiB (158 bytes a follower), all built in 26 s, counts p50 0.5 ms / p99 0.9 ms
# (SQL p50 0.2 s).
#
#   bash bench/accounts/run.sh
#   BENCH_PER_ACCOUNT=1000 bash bench/accounts/run.sh   (1/10 scale: 100 × 1,000 against 1 × 100,000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --release --example bench_accounts
db=tagcast_bench_accounts
url=postgres://postgres@127.0.0.1:5432/$db
psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
RUST_LOG=error DATABASE_URL=$url BENCH_SIDE=large ./target/release/examples/bench_accounts
RUST_LOG=error DATABASE_URL=$url BENCH_SIDE=small BENCH_REUSE=1 ./target/release/examples/bench_accounts
psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
