//! Tests across the module: no leakage from after a cutoff, and the whole evaluation on
//! generated accounts against the RFM baseline and the generator's own optimum.

use proptest::prelude::*;

use super::*;

/// Generates every follower, chooses the spec on the training split, collects, trains and
/// judges. Returns the evaluation and the oracle AUC on the same test rows.
pub(crate) fn run(account: &SyntheticAccount, negative_rate: f64) -> (Evaluation, Option<f64>) {
    run_with(account, negative_rate, evaluate::MIN_POSITIVES)
}

fn run_with(account: &SyntheticAccount, negative_rate: f64, min_positives: u64) -> (Evaluation, Option<f64>) {
    let now = account.now();
    let cutoffs = Cutoffs::latest(now);
    let followers: Vec<SyntheticFollower> = (0..account.followers).map(|i| account.follower(i)).collect();
    let mut builder = SpecBuilder::new(cutoffs.train);
    for f in &followers {
        builder.observe(&f.facts);
    }
    let spec = builder.build(account.vocabulary(), 6, 4);
    let mut collector = SplitCollector::new(spec.bind(account.vocabulary()), cutoffs, negative_rate, account.seed);
    let mut oracle = Vec::new();
    for f in &followers {
        collector.add(&f.facts);
        if let Some(p) = f.hidden_probability(cutoffs.test) {
            oracle.push(p);
        }
    }
    assert_eq!(oracle.len(), collector.test_labels().len(), "the oracle covers the test rows");
    let oracle_auc = metrics::auc(&oracle, collector.test_labels());
    (collector.finish_with(now, TrainOptions::default(), min_positives).expect("training succeeds"), oracle_auc)
}

fn auc_of(m: &Option<Metrics>) -> f64 {
    m.as_ref().and_then(|m| m.auc).expect("an AUC")
}

#[test]
fn on_behaviour_driven_purchases_the_model_beats_rfm_and_nears_the_oracle() {
    // Keeping a tenth of the non-buyers is what makes this fit in the debug test budget; it
    // also puts the intercept correction to the test (calibration below).
    let account = SyntheticAccount::new(50_000, 180, 11, Regime::Behaviour);
    let (eval, oracle) = run(&account, 0.1);
    let (model, baseline, oracle) = (auc_of(&eval.model_metrics), auc_of(&eval.baseline_metrics), oracle.unwrap());
    assert!(eval.verdict.is_trusted(), "{:?}: model {model:.3} baseline {baseline:.3}", eval.verdict);
    assert!(oracle - model <= 0.03, "model {model:.3} vs oracle {oracle:.3}");
    let rate = eval.test_positives as f64 / eval.test_rows as f64;
    assert!((0.01..0.04).contains(&rate), "about 2 % buy in a week, got {rate:.4}");
    assert!(eval.verdict.message_zh().contains("可以据此建立购买意向标签"));
    // Calibration: after the intercept correction the mean prediction matches the rate.
    let m = eval.model_metrics.as_ref().unwrap();
    let predicted = m.reliability.iter().map(|b| b.predicted * b.count as f64).sum::<f64>() / m.rows as f64;
    assert!((predicted - rate).abs() < 0.25 * rate, "mean prediction {predicted:.4} vs rate {rate:.4}");
}

#[test]
fn when_only_rfm_drives_purchases_the_model_is_not_offered() {
    let account = SyntheticAccount::new(20_000, 180, 5, Regime::RfmOnly);
    let (eval, _) = run(&account, 0.3);
    assert!(matches!(eval.verdict, Verdict::NotBetterThanBaseline { .. }), "{:?}", eval.verdict);
    assert!(eval.verdict.message_zh().contains("暂不提供预测标签"));
}

#[test]
fn when_purchases_are_random_the_model_is_not_offered() {
    let account = SyntheticAccount::new(20_000, 180, 6, Regime::Random);
    let (eval, _) = run(&account, 0.3);
    assert!(matches!(eval.verdict, Verdict::NotBetterThanBaseline { .. }), "{:?}", eval.verdict);
    assert!(eval.verdict.message_zh().contains("随机猜测"), "{}", eval.verdict.message_zh());
}

#[test]
fn twenty_days_of_history_is_too_little() {
    let account = SyntheticAccount::new(20_000, 20, 7, Regime::Behaviour);
    let (eval, _) = run(&account, 1.0);
    assert!(matches!(eval.verdict, Verdict::TooLittleHistory { .. }), "{:?}", eval.verdict);
    assert!(eval.model.is_none());
    assert!(eval.verdict.message_zh().contains("历史数据还不够"));
}

/// How many buyers a stable AUC needs: the spread of the model's AUC across seeds for several
/// account sizes. `cargo test --release --lib predict::tests::auc_spread -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check; takes minutes"]
fn auc_spread_by_number_of_buyers() {
    let sd = |xs: &[f64]| {
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        (mean, (xs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (xs.len() - 1) as f64).sqrt())
    };
    for followers in [1_000u32, 2_000, 4_000, 8_000, 16_000] {
        let (mut aucs, mut gaps, mut buyers) = (Vec::new(), Vec::new(), 0);
        for seed in 0..10 {
            let (eval, _) = run_with(&SyntheticAccount::new(followers, 180, 100 + seed, Regime::Behaviour), 0.3, 2);
            buyers += eval.test_positives;
            let (m, b) = (auc_of(&eval.model_metrics), auc_of(&eval.baseline_metrics));
            aucs.push(m);
            gaps.push(m - b);
        }
        let ((auc, auc_sd), (gap, gap_sd)) = (sd(&aucs), sd(&gaps));
        println!(
            "followers {followers}: ~{} buyers in the test week; AUC {auc:.3} ± {auc_sd:.3}; gain over RFM {gap:.3} ± {gap_sd:.3}",
            buyers / 10
        );
    }
}

fn arb_fact(lo: i64, hi: i64) -> impl Strategy<Value = Fact> {
    let kind = prop_oneof![
        prop::option::of(0u16..4).prop_map(|s| FactKind::Follow { scene: s.map(KeyId) }),
        (0u16..4).prop_map(|s| FactKind::Scan { scene: KeyId(s) }),
        (0u16..6).prop_map(|k| FactKind::MenuClick { key: KeyId(k) }),
        (0u16..6).prop_map(|k| FactKind::ArticleView { key: KeyId(k) }),
        Just(FactKind::Text),
        (0u32..100_000).prop_map(|amount_fen| FactKind::Order { amount_fen }),
        Just(FactKind::Delivery),
        Just(FactKind::LinkClick),
        (6u16..9).prop_map(|t| FactKind::QuizTag { tag: KeyId(t) }),
    ];
    (lo..=hi, kind).prop_map(|(at, kind)| Fact { at, kind })
}

fn leak_extractor() -> Extractor {
    let mut vocab = Vocabulary::new();
    for name in ["A", "B", "C", "D", "E", "F", "油性肌", "干性肌", "敏感肌"] {
        vocab.intern(name);
    }
    FeatureSpec { menu_keys: vec!["A".into(), "C".into()], tags: vec!["油性肌".into(), "敏感肌".into()] }.bind(&vocab)
}

const CUTOFF: i64 = 1_000 * DAY;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Appending, changing or removing facts after the cutoff never changes the features at it.
    #[test]
    fn facts_after_the_cutoff_never_change_features_at_it(
        past in prop::collection::vec(arb_fact(CUTOFF - 200 * DAY, CUTOFF), 0..40),
        future in prop::collection::vec(arb_fact(CUTOFF + 1, CUTOFF + 30 * DAY), 0..20),
        changed in prop::collection::vec(arb_fact(CUTOFF + 1, CUTOFF + 30 * DAY), 0..20),
        shuffle_seed in any::<u64>(),
    ) {
        let ex = leak_extractor();
        let at_cutoff = ex.features(&past, CUTOFF);
        let mut with_future: Vec<Fact> = past.iter().chain(&future).copied().collect();
        prop_assert_eq!(&ex.features(&with_future, CUTOFF), &at_cutoff);
        // The same history with a different future, in another order.
        let mut other: Vec<Fact> = past.iter().chain(&changed).copied().collect();
        let n = other.len().max(1);
        other.rotate_left((shuffle_seed as usize) % n);
        prop_assert_eq!(&ex.features(&other, CUTOFF), &at_cutoff);
        // And inside a multi-cutoff pass, next to a later cutoff that does see the future.
        with_future.reverse();
        let mut out = vec![0.0; 2 * ex.len()];
        ex.features_into(&with_future, &[CUTOFF + 30 * DAY, CUTOFF], &mut out);
        prop_assert_eq!(&out[ex.len()..], at_cutoff.as_slice());
    }
}
