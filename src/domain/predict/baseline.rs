//! The plain RFM baseline every model must beat: recency, frequency and monetary value from the
//! order history, each scored 1–5 by quintile among followers who have ordered (0 for those who
//! never did), and each (R, F, M) cell turned into a probability by the purchase rate that cell
//! showed on the training split. It is what a careful operator could do in a spreadsheet.

use serde::{Deserialize, Serialize};

use super::spec::idx;

/// Pseudo-followers at the overall rate added to every cell, so a cell of three followers with
/// one buyer does not claim a 33 % purchase probability.
const PRIOR_WEIGHT: f64 = 20.0;
const CELLS: usize = 6 * 6 * 6;

/// The order history figures RFM needs, read from a feature vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rfm {
    pub has_ordered: bool,
    /// Any monotone transform of days since the last order works: only ranks matter.
    pub recency: f32,
    pub frequency: f32,
    pub monetary: f32,
}

impl Rfm {
    /// Reads the order figures out of a feature vector laid out by `spec.rs`.
    pub fn from_features(x: &[f32]) -> Self {
        Rfm {
            has_ordered: x[idx::HAS_ORDERED] > 0.5,
            recency: x[idx::DAYS_SINCE_LAST_ORDER],
            frequency: x[idx::ORDERS_ALL],
            monetary: x[idx::SPEND_ALL],
        }
    }
}

/// A fitted baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RfmBaseline {
    recency_cuts: [f32; 4],
    frequency_cuts: [f32; 4],
    monetary_cuts: [f32; 4],
    rates: Vec<f64>,
}

fn quintile_cuts(mut values: Vec<f32>) -> [f32; 4] {
    if values.is_empty() {
        return [0.0; 4];
    }
    values.sort_by(f32::total_cmp);
    std::array::from_fn(|i| values[(values.len() * (i + 1) / 5).min(values.len() - 1)])
}

/// 1 to 5: one more for every cut the value is above.
fn quintile(value: f32, cuts: &[f32; 4]) -> usize {
    1 + cuts.iter().filter(|c| value > **c).count()
}

impl RfmBaseline {
    /// Fits quintiles and cell rates on the training split's followers and their labels.
    pub fn fit(rows: &[(Rfm, bool)]) -> Self {
        let buyers = rows.iter().filter(|(r, _)| r.has_ordered);
        let mut baseline = RfmBaseline {
            recency_cuts: quintile_cuts(buyers.clone().map(|(r, _)| r.recency).collect()),
            frequency_cuts: quintile_cuts(buyers.clone().map(|(r, _)| r.frequency).collect()),
            monetary_cuts: quintile_cuts(buyers.map(|(r, _)| r.monetary).collect()),
            rates: Vec::new(),
        };
        let mut counts = vec![(0u64, 0u64); CELLS];
        for (rfm, label) in rows {
            let cell = &mut counts[baseline.cell(rfm)];
            cell.0 += 1;
            cell.1 += u64::from(*label);
        }
        let total: u64 = counts.iter().map(|c| c.0).sum();
        let buyers: u64 = counts.iter().map(|c| c.1).sum();
        let base = if total == 0 { 0.0 } else { buyers as f64 / total as f64 };
        baseline.rates =
            counts.iter().map(|(n, p)| (*p as f64 + PRIOR_WEIGHT * base) / (*n as f64 + PRIOR_WEIGHT)).collect();
        baseline
    }

    fn cell(&self, rfm: &Rfm) -> usize {
        if !rfm.has_ordered {
            return 0;
        }
        // A smaller "days since" is better, so recency's quintile is reversed.
        let r = 6 - quintile(rfm.recency, &self.recency_cuts);
        let f = quintile(rfm.frequency, &self.frequency_cuts);
        let m = quintile(rfm.monetary, &self.monetary_cuts);
        (r * 6 + f) * 6 + m
    }

    /// The training split's purchase rate in this follower's cell.
    pub fn score(&self, rfm: &Rfm) -> f64 {
        self.rates[self.cell(rfm)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buyer(recency: f32, frequency: f32) -> Rfm {
        Rfm { has_ordered: true, recency, frequency, monetary: frequency }
    }

    #[test]
    fn recent_frequent_buyers_get_their_cells_observed_rate() {
        let never = Rfm { has_ordered: false, recency: 6.0, frequency: 0.0, monetary: 0.0 };
        let mut rows = Vec::new();
        for i in 0..1000 {
            rows.push((never, i % 100 == 0));
        }
        for i in 0..100 {
            let hot = i < 50;
            let rfm = if hot { buyer(1.0, 3.0) } else { buyer(4.0, 0.7) };
            rows.push((rfm, hot && i % 2 == 0));
        }
        let baseline = RfmBaseline::fit(&rows);
        let base = 35.0 / 1100.0;
        assert!((baseline.score(&never) - (10.0 + 20.0 * base) / 1020.0).abs() < 1e-12);
        assert!(baseline.score(&buyer(1.0, 3.0)) > 0.3);
        assert!(baseline.score(&buyer(4.0, 0.7)) < baseline.score(&never));
    }
}
