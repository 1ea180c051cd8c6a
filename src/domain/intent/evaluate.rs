//! Honest figures for the console: stratified k-fold cross-validation of the operator's labels,
//! scored the way tagging decides (most likely intent above its threshold, else 其他), so the
//! precision shown is the precision the operator's followers will see.
//!
//! Only operator-labelled examples are held out and scored; keyword-seeded ones
//! ([`super::Source::Keyword`]) stay in every fold's training set, since scoring a model against
//! guesses would measure how well it learned the keywords.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::decide::{Thresholds, decide};
use super::model::{Classifier, TrainOptions};
use super::{Example, Source};

/// Fewer labelled messages of an intent than this, and its figures swing with every label.
pub const RELIABLE_SUPPORT: usize = 20;

/// Cross-validated figures of one intent.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentScore {
    pub intent: String,
    /// Held-out messages the operator labelled with this intent.
    pub support: usize,
    /// Held-out messages the model would have tagged with it.
    pub predicted: usize,
    /// Of those, how many the operator had labelled with it.
    pub correct: usize,
}

impl IntentScore {
    /// correct / predicted; `None` when nothing was tagged with it.
    #[must_use]
    pub fn precision(&self) -> Option<f64> {
        (self.predicted > 0).then(|| self.correct as f64 / self.predicted as f64)
    }

    /// correct / support; `None` without labelled messages of it.
    #[must_use]
    pub fn recall(&self) -> Option<f64> {
        (self.support > 0).then(|| self.correct as f64 / self.support as f64)
    }

    /// One line for the console, saying what the figures mean and what to do about them.
    #[must_use]
    pub fn summary_zh(&self) -> String {
        let precision = match self.precision() {
            Some(p) => format!("精确率 {}（判为此意图的 {} 条中 {} 条判对）", percent(p), self.predicted, self.correct),
            None => "精确率 —（没有一条消息达到打标阈值，可调低阈值或多标注）".to_owned(),
        };
        let recall = match self.recall() {
            Some(r) => format!("召回率 {}（已标注的 {} 条中找出 {} 条）", percent(r), self.support, self.correct),
            None => "召回率 —（还没有标注过这个意图的消息）".to_owned(),
        };
        let mut line = format!("{}：{precision}，{recall}", self.intent);
        if self.support < RELIABLE_SUPPORT {
            line.push_str(&format!("；样本太少，数字还不可靠，请再标注至少 {} 条", RELIABLE_SUPPORT - self.support));
        }
        line
    }
}

fn percent(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// The result of a cross-validation.
#[derive(Debug, Clone, PartialEq)]
pub struct CvReport {
    pub folds: usize,
    /// Operator-labelled messages held out and scored (each exactly once).
    pub scored: usize,
    /// One row per operator intent, by name.
    pub intents: Vec<IntentScore>,
}

/// Why a cross-validation cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CvError {
    #[error("交叉验证至少要分成 2 份，请把份数设为 2 或更多")]
    TooFewFolds,
    #[error("已标注的消息只有 {labelled} 条，分 {folds} 份交叉验证至少要 {folds} 条，请先在待标注里多标注几条")]
    TooFewExamples { labelled: usize, folds: usize },
}

/// Stratified `k`-fold cross-validation with default training, shuffled by `seed` (the same
/// seed gives the same folds and figures).
///
/// # Errors
/// `k` < 2, or fewer operator-labelled examples than `k`.
pub fn cross_validate(examples: &[Example], k: usize, seed: u64, thresholds: &Thresholds) -> Result<CvReport, CvError> {
    cross_validate_with(examples, k, seed, thresholds, &TrainOptions::default())
}

/// [`cross_validate`] with other training options (to compare them).
///
/// # Errors
/// As [`cross_validate`].
pub fn cross_validate_with(
    examples: &[Example],
    k: usize,
    seed: u64,
    thresholds: &Thresholds,
    options: &TrainOptions,
) -> Result<CvReport, CvError> {
    if k < 2 {
        return Err(CvError::TooFewFolds);
    }
    let fold_of = assign_folds(examples, k, seed);
    let labelled = fold_of.iter().flatten().count();
    if labelled < k {
        return Err(CvError::TooFewExamples { labelled, folds: k });
    }
    let mut outcomes: Vec<(Option<&str>, Option<String>)> = Vec::with_capacity(labelled);
    for fold in 0..k {
        let training: Vec<Example> =
            examples.iter().zip(&fold_of).filter(|(_, f)| **f != Some(fold)).map(|(e, _)| e.clone()).collect();
        let model = Classifier::train_with(&training, options);
        for (example, _) in examples.iter().zip(&fold_of).filter(|(_, f)| **f == Some(fold)) {
            let prediction = model.predict(&example.text);
            outcomes.push((example.intent.as_deref(), decide(&prediction, thresholds).map(str::to_owned)));
        }
    }
    let pairs: Vec<(Option<&str>, Option<&str>)> = outcomes.iter().map(|(t, p)| (*t, p.as_deref())).collect();
    Ok(CvReport { folds: k, scored: labelled, intents: score(&pairs) })
}

/// Each operator-labelled example's fold (`None` for keyword-seeded ones): each label's examples
/// shuffled, then dealt round the folds, continuing where the previous label stopped so the
/// folds stay within one example of each other in size.
fn assign_folds(examples: &[Example], k: usize, seed: u64) -> Vec<Option<usize>> {
    let mut by_label: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (i, example) in examples.iter().enumerate().filter(|(_, e)| e.source == Source::Operator) {
        by_label.entry(example.intent.as_deref()).or_default().push(i);
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut fold_of = vec![None; examples.len()];
    let mut next = 0;
    for indices in by_label.values_mut() {
        indices.shuffle(&mut rng);
        for &i in indices.iter() {
            fold_of[i] = Some(next % k);
            next += 1;
        }
    }
    fold_of
}

/// Per-intent counts from (operator's label, model's decision) pairs; `None` is 其他. Rows are
/// the intents named on either side, by name.
#[must_use]
pub fn score(pairs: &[(Option<&str>, Option<&str>)]) -> Vec<IntentScore> {
    let mut rows: BTreeMap<&str, IntentScore> = BTreeMap::new();
    let row = |name: &str| IntentScore { intent: name.to_owned(), support: 0, predicted: 0, correct: 0 };
    for (truth, predicted) in pairs {
        if let Some(t) = truth {
            rows.entry(t).or_insert_with(|| row(t)).support += 1;
        }
        if let Some(p) = predicted {
            let entry = rows.entry(p).or_insert_with(|| row(p));
            entry.predicted += 1;
            if truth == predicted {
                entry.correct += 1;
            }
        }
    }
    rows.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_counts_made_by_hand() {
        // 价格: labelled 3 times; tagged 价格 4 times, 2 of them rightly → P 2/4, R 2/3.
        // 售后: labelled 2 times; tagged once, rightly → P 1/1, R 1/2.
        let pairs = [
            (Some("价格"), Some("价格")),
            (Some("价格"), Some("价格")),
            (Some("价格"), None),
            (Some("售后"), Some("价格")),
            (Some("售后"), Some("售后")),
            (None, Some("价格")),
            (None, None),
        ];
        let rows = score(&pairs);
        assert_eq!(rows.len(), 2);
        let price = rows.iter().find(|r| r.intent == "价格").unwrap();
        assert_eq!((price.support, price.predicted, price.correct), (3, 4, 2));
        assert_eq!(price.precision(), Some(0.5));
        assert!((price.recall().unwrap() - 2.0 / 3.0).abs() < 1e-12);
        let after_sale = rows.iter().find(|r| r.intent == "售后").unwrap();
        assert_eq!((after_sale.precision(), after_sale.recall()), (Some(1.0), Some(0.5)));
    }

    #[test]
    fn the_summary_line_reads_in_chinese_and_asks_for_more_labels_when_few() {
        let row = IntentScore { intent: "咨询价格".into(), support: 8, predicted: 5, correct: 4 };
        let line = row.summary_zh();
        assert!(line.starts_with("咨询价格：精确率 80%（判为此意图的 5 条中 4 条判对）"), "{line}");
        assert!(line.contains("召回率 50%（已标注的 8 条中找出 4 条）"), "{line}");
        assert!(line.contains("请再标注至少 12 条"), "{line}");
        let silent = IntentScore { intent: "想要优惠".into(), support: 30, predicted: 0, correct: 0 };
        assert!(silent.summary_zh().contains("可调低阈值或多标注"), "{}", silent.summary_zh());
        assert!(!silent.summary_zh().contains("样本太少"));
    }

    #[test]
    fn folds_are_stratified_balanced_and_fixed_by_the_seed() {
        let mut examples: Vec<Example> = (0..10).map(|i| Example::labelled(format!("a{i}"), Some("A"))).collect();
        examples.extend((0..5).map(|i| Example::labelled(format!("b{i}"), Some("B"))));
        examples.push(Example { text: "weak".into(), intent: Some("A".into()), source: Source::Keyword });
        let folds = assign_folds(&examples, 5, 7);
        assert_eq!(folds[15], None, "seeded examples are never held out");
        for f in 0..5 {
            let a = (0..10).filter(|&i| folds[i] == Some(f)).count();
            let b = (10..15).filter(|&i| folds[i] == Some(f)).count();
            assert_eq!((a, b), (2, 1), "fold {f}");
        }
        assert_eq!(folds, assign_folds(&examples, 5, 7));
        assert_ne!(folds, assign_folds(&examples, 5, 8), "another seed deals other folds");
    }

    #[test]
    fn too_few_folds_or_labels_are_refused_with_what_to_do() {
        let examples = vec![Example::labelled("价格多少", Some("咨询价格"))];
        let t = Thresholds::default();
        assert_eq!(cross_validate(&examples, 1, 0, &t), Err(CvError::TooFewFolds));
        let err = cross_validate(&examples, 5, 0, &t).unwrap_err();
        assert!(err.to_string().contains("请先在待标注里多标注几条"), "{err}");
    }
}
