//! Benchmark of purchase propensity, pure and in memory (`cargo run --release --example
//! bench_predict`): a generated account of BENCH_FOLLOWERS (1M) followers over BENCH_DAYS
//! (180) days whose purchases follow a known hidden probability. Followers are generated and
//! dropped one at a time, as the store will stream them, so the memory figure is what features,
//! training rows and test rows cost. Prints the time to choose the spec and compute features
//! (two cutoffs in one pass), to train and evaluate, and to score every follower at "now"; the
//! peak RSS added; and the model's AUC against the baseline's and the generator's optimum.

use std::time::{Duration, Instant};

use tagcast::domain::predict::{Cutoffs, Regime, SpecBuilder, SplitCollector, SyntheticAccount, TrainOptions, metrics};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// (VmRSS, VmHWM) in KiB.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() {
    let followers: u32 = env_or("BENCH_FOLLOWERS", 1_000_000);
    let days: u32 = env_or("BENCH_DAYS", 180);
    let seed: u64 = env_or("BENCH_SEED", 42);
    let spec_sample: u32 = env_or("BENCH_SPEC_SAMPLE", 100_000);
    let negative_rate: f64 = env_or("BENCH_NEGATIVE_RATE", 0.1);
    let regime = match std::env::var("BENCH_REGIME").as_deref() {
        Ok("rfm") => Regime::RfmOnly,
        Ok("random") => Regime::Random,
        _ => Regime::Behaviour,
    };
    let account = SyntheticAccount::new(followers, days, seed, regime);
    let now = account.now();
    let cutoffs = Cutoffs::latest(now);
    let (rss_before, _) = memory_kib();
    println!(
        "bench_predict: {followers} followers, {days} days, seed {seed}, {regime:?}, negatives kept {negative_rate}"
    );

    let mut generating = Duration::ZERO;
    let started = Instant::now();
    let mut builder = SpecBuilder::new(cutoffs.train);
    for i in 0..spec_sample.min(followers) {
        builder.observe(&account.follower(i).facts);
    }
    let spec = builder.build(account.vocabulary(), 6, 4);
    println!(
        "spec from {} followers: {:.2?} (generation included), {} features",
        spec_sample.min(followers),
        started.elapsed(),
        spec.len()
    );

    let extractor = spec.bind(account.vocabulary());
    let mut collector = SplitCollector::new(extractor.clone(), cutoffs, negative_rate, seed);
    let mut oracle = Vec::new();
    let mut featuring = Duration::ZERO;
    let mut facts_total = 0u64;
    for i in 0..followers {
        let t = Instant::now();
        let follower = account.follower(i);
        let t2 = Instant::now();
        generating += t2 - t;
        collector.add(&follower.facts);
        featuring += t2.elapsed();
        facts_total += follower.facts.len() as u64;
        if let Some(p) = follower.hidden_probability(cutoffs.test) {
            oracle.push(p);
        }
    }
    println!(
        "features at two cutoffs for {followers} followers ({facts_total} facts, {:.1} per follower): {featuring:.2?} (generation {generating:.2?}, not counted)",
        facts_total as f64 / f64::from(followers)
    );
    let oracle_auc = metrics::auc(&oracle, collector.test_labels());
    drop(oracle);

    let t = Instant::now();
    let eval = collector.finish(now, TrainOptions::default()).expect("training succeeds");
    let training = t.elapsed();
    let model = eval.model.as_ref().expect("enough history for a model");
    println!(
        "train on {} rows ({} buyers) and evaluate on {} test rows: {training:.2?}",
        model.rows, model.positives, eval.test_rows
    );

    let mut scoring = Duration::ZERO;
    let mut row = vec![0.0f32; extractor.len()];
    let mut expected_buyers = 0.0;
    for i in 0..followers {
        let follower = account.follower(i);
        let t = Instant::now();
        extractor.features_into(&follower.facts, &[now], &mut row);
        expected_buyers += model.score(&row);
        scoring += t.elapsed();
    }
    println!(
        "score all {followers} followers at now (features included): {scoring:.2?}; expected buyers next week {expected_buyers:.0}"
    );

    let (_, hwm) = memory_kib();
    println!(
        "peak RSS added: {:.1} MiB (VmHWM {hwm} KiB − VmRSS at start {rss_before} KiB)",
        (hwm - rss_before) as f64 / 1024.0
    );
    let m = eval.model_metrics.as_ref().expect("model metrics");
    let b = eval.baseline_metrics.as_ref().expect("baseline metrics");
    println!(
        "test week: {} rows, {} buyers; AUC model {:.4}, RFM baseline {:.4}, oracle {:.4}",
        eval.test_rows,
        eval.test_positives,
        m.auc.unwrap_or(f64::NAN),
        b.auc.unwrap_or(f64::NAN),
        oracle_auc.unwrap_or(f64::NAN)
    );
    println!(
        "top 10 %: precision {:.4} lift {:.2} (baseline {:.4} / {:.2}); Brier {:.5} (baseline {:.5})",
        m.precision_top10, m.lift_top10, b.precision_top10, b.lift_top10, m.brier, b.brier
    );
    for bin in &m.reliability {
        println!("  reliability: predicted {:.4} observed {:.4} n {}", bin.predicted, bin.observed, bin.count);
    }
    println!("verdict: {}", eval.verdict.message_zh());
}
