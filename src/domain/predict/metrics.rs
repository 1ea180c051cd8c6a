//! How good a set of probabilities is against what happened: ROC AUC (ties count half, as the
//! Mann–Whitney statistic does), precision and lift in the top 10 %, the Brier score and a
//! reliability chart. Pure functions over `(score, label)` pairs.

use serde::{Deserialize, Serialize};

/// One bar of the reliability chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Mean predicted probability of the followers in the bin.
    pub predicted: f64,
    /// Share of them who bought.
    pub observed: f64,
    pub count: u64,
}

/// The figures shown for one scorer (the model or the baseline) on one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// `None` when the split has no buyer or no non-buyer.
    pub auc: Option<f64>,
    /// Share of buyers among the top 10 % by score.
    pub precision_top10: f64,
    /// `precision_top10` over the base rate: how many times better than picking at random.
    pub lift_top10: f64,
    pub brier: f64,
    pub reliability: Vec<ReliabilityBin>,
    pub rows: u64,
    pub positives: u64,
}

impl Metrics {
    /// All figures at once. `scores` are probabilities in [0, 1].
    ///
    /// # Panics
    /// When `scores` and `labels` differ in length.
    pub fn compute(scores: &[f64], labels: &[bool]) -> Self {
        assert_eq!(scores.len(), labels.len());
        let order = descending(scores);
        let (precision_top10, lift_top10) = top_fraction(scores, labels, &order, 0.1);
        Metrics {
            auc: auc_sorted(scores, labels, &order),
            precision_top10,
            lift_top10,
            brier: brier(scores, labels),
            reliability: reliability_sorted(scores, labels, &order, 10),
            rows: scores.len() as u64,
            positives: labels.iter().filter(|l| **l).count() as u64,
        }
    }
}

/// Indices sorted by score, highest first.
fn descending(scores: &[f64]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    order.sort_unstable_by(|a, b| scores[*b as usize].total_cmp(&scores[*a as usize]));
    order
}

/// Runs of equal scores in `order`, as index ranges into `order`.
fn tie_groups<'a>(scores: &'a [f64], order: &'a [u32]) -> impl Iterator<Item = std::ops::Range<usize>> + 'a {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= order.len() {
            return None;
        }
        let s = scores[order[start] as usize];
        let mut end = start + 1;
        while end < order.len() && scores[order[end] as usize] == s {
            end += 1;
        }
        let group = start..end;
        start = end;
        Some(group)
    })
}

/// ROC AUC: the chance that a random buyer scores above a random non-buyer, ties counting half.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    auc_sorted(scores, labels, &descending(scores))
}

fn auc_sorted(scores: &[f64], labels: &[bool], order: &[u32]) -> Option<f64> {
    let pos = labels.iter().filter(|l| **l).count() as f64;
    let neg = labels.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return None;
    }
    // Walking from the top, every negative pairs with the positives already passed (they
    // outrank it) and half of the positives tied with it.
    let mut pos_above = 0.0;
    let mut wins = 0.0;
    for group in tie_groups(scores, order) {
        let p = order[group.clone()].iter().filter(|i| labels[**i as usize]).count() as f64;
        let n = group.len() as f64 - p;
        wins += n * (pos_above + p / 2.0);
        pos_above += p;
    }
    Some(wins / (pos * neg))
}

/// Mean squared difference between probability and outcome.
pub fn brier(scores: &[f64], labels: &[bool]) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    let sum: f64 = scores.iter().zip(labels).map(|(s, l)| (s - f64::from(u8::from(*l))).powi(2)).sum();
    sum / scores.len() as f64
}

/// Precision and lift among the top `fraction` by score. A group of tied scores straddling the
/// boundary contributes its buyers pro rata, which is the expectation under a random tie-break.
pub fn top_precision_lift(scores: &[f64], labels: &[bool], fraction: f64) -> (f64, f64) {
    top_fraction(scores, labels, &descending(scores), fraction)
}

fn top_fraction(scores: &[f64], labels: &[bool], order: &[u32], fraction: f64) -> (f64, f64) {
    let n = labels.len();
    let positives = labels.iter().filter(|l| **l).count();
    if n == 0 || positives == 0 {
        return (0.0, 0.0);
    }
    let k = ((n as f64 * fraction).ceil() as usize).clamp(1, n);
    let mut taken = 0usize;
    let mut hits = 0.0;
    for group in tie_groups(scores, order) {
        let p = order[group.clone()].iter().filter(|i| labels[**i as usize]).count() as f64;
        let room = k - taken;
        if group.len() <= room {
            hits += p;
            taken += group.len();
        } else {
            hits += p * room as f64 / group.len() as f64;
            taken = k;
        }
        if taken == k {
            break;
        }
    }
    let precision = hits / k as f64;
    (precision, precision / (positives as f64 / n as f64))
}

/// Reliability chart with `bins` equal-count bins by predicted probability (deciles for 10).
/// Equal-width bins would put nearly everyone in the first one when buyers are 2 % of followers.
pub fn reliability(scores: &[f64], labels: &[bool], bins: usize) -> Vec<ReliabilityBin> {
    reliability_sorted(scores, labels, &descending(scores), bins)
}

fn reliability_sorted(scores: &[f64], labels: &[bool], order: &[u32], bins: usize) -> Vec<ReliabilityBin> {
    let n = order.len();
    if n == 0 || bins == 0 {
        return Vec::new();
    }
    // Lowest predictions first, so the chart reads left to right.
    (0..bins)
        .filter_map(|b| {
            let lo = n - (b + 1) * n / bins;
            let hi = n - b * n / bins;
            (hi > lo).then(|| {
                let ids = &order[lo..hi];
                let count = ids.len() as f64;
                ReliabilityBin {
                    predicted: ids.iter().map(|i| scores[*i as usize]).sum::<f64>() / count,
                    observed: ids.iter().filter(|i| labels[**i as usize]).count() as f64 / count,
                    count: ids.len() as u64,
                }
            })
        })
        .collect()
}

/// Hanley and McNeil's standard error of an AUC from the numbers of buyers and non-buyers.
pub fn auc_standard_error(auc: f64, positives: u64, negatives: u64) -> f64 {
    let (p, n) = (positives as f64, negatives as f64);
    if p == 0.0 || n == 0.0 {
        return f64::INFINITY;
    }
    let q1 = auc / (2.0 - auc);
    let q2 = 2.0 * auc * auc / (1.0 + auc);
    ((auc * (1.0 - auc) + (p - 1.0) * (q1 - auc * auc) + (n - 1.0) * (q2 - auc * auc)) / (p * n)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ties_as_half_a_win() {
        // Pairs (pos, neg): (0.9 vs 0.5) win, (0.9 vs 0.1) win, (0.5 vs 0.5) tie, (0.5 vs 0.1) win.
        let scores = [0.9, 0.5, 0.5, 0.1];
        let labels = [true, true, false, false];
        assert_eq!(auc(&scores, &labels), Some(3.5 / 4.0));
        assert_eq!(auc(&[0.3, 0.3, 0.3], &[true, false, false]), Some(0.5));
        assert_eq!(auc(&[0.1, 0.9], &[true, false]), Some(0.0));
        assert_eq!(auc(&[0.1, 0.9], &[false, false]), None);
    }

    #[test]
    fn brier_is_the_mean_squared_error() {
        let b = brier(&[0.8, 0.3, 0.0], &[true, false, false]);
        assert!((b - (0.04 + 0.09 + 0.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn lift_in_the_top_tenth_shares_a_straddling_tie() {
        // 20 followers, 4 buyers (base rate 0.2); the top 10 % is 2 followers.
        let mut scores = vec![0.0; 20];
        let mut labels = vec![false; 20];
        scores[0] = 0.9;
        labels[0] = true;
        // Two tied at 0.5, one a buyer: the second slot is half a buyer in expectation.
        scores[1] = 0.5;
        labels[1] = true;
        scores[2] = 0.5;
        labels[3] = true;
        labels[4] = true;
        let (precision, lift) = top_precision_lift(&scores, &labels, 0.1);
        assert!((precision - 0.75).abs() < 1e-12);
        assert!((lift - 3.75).abs() < 1e-12);
    }

    #[test]
    fn reliability_bins_hold_equal_counts_lowest_first() {
        let scores: Vec<f64> = (0..10).map(|i| f64::from(i) / 10.0).collect();
        let labels: Vec<bool> = (0..10).map(|i| i >= 8).collect();
        let bins = reliability(&scores, &labels, 5);
        assert_eq!(bins.len(), 5);
        assert!(bins.iter().all(|b| b.count == 2));
        assert!((bins[0].predicted - 0.05).abs() < 1e-12);
        assert_eq!(bins[4].observed, 1.0);
        assert_eq!(bins[3].observed, 0.0);
    }

    #[test]
    fn the_standard_error_shrinks_with_more_buyers() {
        let few = auc_standard_error(0.75, 20, 1000);
        let many = auc_standard_error(0.75, 500, 25_000);
        assert!(few > 0.04 && few < 0.08, "{few}");
        assert!(many < 0.015, "{many}");
    }
}
