#!/usr/bin/env bash
# Issue 21's training run through PostgreSQL: a fresh database `tagcast_bench_predict`, migrated,
# loaded with a generated account (BENCH_FOLLOWERS, default 1M, over BENCH_DAYS, default 180: the
# same generator as run.sh) by COPY, analysed; then one `run_purchase_model` end to end, timed per
# step, with peak RSS and the verdict. The database is dropped afterwards. Results: BENCHMARKS.md.
# Not a test: nothing fails on a number.
#
#   bash bench/predict/db.sh
#   BENCH_FOLLOWERS=50000 bash bench/predict/db.sh     (a smoke run)
#   BENCH_KEEP_DB=1 bash bench/predict/db.sh           (keeps the database; the next run reuses
#                                                       it, to compare builds or EXPLAIN queries)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --release --example bench_predict_db
target="${CARGO_TARGET_DIR:-target}"
db=tagcast_bench_predict
drop() { psql -h 127.0.0.1 -U postgres -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"; }
if [ "${BENCH_KEEP_DB:-}" != 1 ]; then
  drop
  trap drop EXIT
fi
RUST_LOG=error DATABASE_URL=postgres://postgres@127.0.0.1:5432/$db "$target/release/examples/bench_predict_db"
