#!/usr/bin/env bash
# Issue 21's pure cores, in memory, release build: the purchase model on a generated account
# (BENCH_FOLLOWERS, default 1M, over BENCH_DAYS, default 180) whose purchases follow a known hidden
# probability — features, training, scoring, peak RSS added and AUC against the generator's optimum
# and the RFM baseline — and intent classification (training, calibration, cross-validation and
# messages per second on one core). Results: BENCHMARKS.md. Not a test: nothing fails on a number.
#
#   bash bench/predict/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
cargo build --release --example bench_predict --example bench_intent
./target/release/examples/bench_predict
./target/release/examples/bench_intent
