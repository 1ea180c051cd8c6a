//! The propensity model: L2-regularised logistic regression on standardised features, fitted
//! by `linfa-logistic`, stored as plain numbers (feature means and spreads, weights, intercept)
//! so a trained model is a small JSON document and scoring needs no crate at all.
//!
//! Why logistic regression from `linfa-logistic`: it is the rust-ml group's crate (maintained
//! with the rest of linfa, releases in step with ndarray), pure Rust, about twenty small
//! dependencies (ndarray, argmin's L-BFGS), and it fits 100k+ rows by 50 features in seconds
//! on one core. Its coefficients are readable ("近7天点击菜单次数 raises the odds"), which the
//! console needs to explain a score, and a linear model over log-scaled counts is calibrated
//! by construction. `smartcore` carries a far larger surface for one model and a rand 0.10
//! stack; the Rust GBDT crates are either unmaintained (`gbdt`), pre-release (`perpetual` 3.0
//! rc) or pull rayon and threads into a library that runs inside a web server (`forust-ml`).
//!
//! Class imbalance: training keeps every buyer and a random share `r` of non-buyers. That
//! multiplies the odds the fit sees by `1/r` and leaves the slopes unbiased, so the stored
//! intercept is the fitted one plus `ln r`, which puts probabilities back on the account's
//! real scale (King and Zeng's prior correction).

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::spec::FeatureSpec;

/// Rows for training: a flat row-major matrix and its labels.
#[derive(Debug, Clone, Default)]
pub struct TrainingSet {
    pub n_features: usize,
    pub x: Vec<f32>,
    pub y: Vec<bool>,
    /// The share of non-buyers kept (1.0 when none were dropped).
    pub negative_rate: f64,
}

impl TrainingSet {
    pub fn new(n_features: usize, negative_rate: f64) -> Self {
        Self { n_features, x: Vec::new(), y: Vec::new(), negative_rate }
    }

    pub fn push(&mut self, row: &[f32], label: bool) {
        debug_assert_eq!(row.len(), self.n_features);
        self.x.extend_from_slice(row);
        self.y.push(label);
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// How to fit.
#[derive(Debug, Clone, Copy)]
pub struct TrainOptions {
    /// L2 penalty on standardised weights. The loss is summed over rows, so 1.0 barely moves a
    /// model fitted on thousands of rows and mostly tames features no buyer ever had.
    pub alpha: f64,
    pub max_iterations: u64,
    /// Stop when the mean gradient per row is this small.
    pub tolerance: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { alpha: 1.0, max_iterations: 100, tolerance: 1e-4 }
    }
}

/// Why a model could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("training needs buyers and non-buyers; this split has {positives} buyers among {rows} rows")]
    OneClass { rows: usize, positives: usize },
    #[error("the logistic regression solver failed")]
    Solver(#[source] linfa_logistic::error::Error),
}

/// A trained model; serialise it with serde to store it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// The features it was trained on, in vector order.
    pub spec: FeatureSpec,
    pub means: Vec<f32>,
    /// Standard deviations; a constant feature gets 1 so it simply drops out.
    pub stds: Vec<f32>,
    /// Weights on standardised features.
    pub weights: Vec<f64>,
    /// Already corrected for negative subsampling.
    pub intercept: f64,
    pub negative_rate: f64,
    pub rows: u64,
    pub positives: u64,
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl Model {
    /// Fits a model to `set`, whose rows follow `spec`'s layout.
    ///
    /// # Errors
    /// [`TrainError::OneClass`] without both buyers and non-buyers; [`TrainError::Solver`]
    /// when the optimiser fails.
    pub fn train(spec: &FeatureSpec, set: &TrainingSet, opts: TrainOptions) -> Result<Model, TrainError> {
        let d = set.n_features;
        let n = set.len();
        let positives = set.y.iter().filter(|y| **y).count();
        if positives == 0 || positives == n {
            return Err(TrainError::OneClass { rows: n, positives });
        }
        let (means, stds) = standardisation(set);
        let mut x = Array2::<f64>::zeros((n, d));
        for (i, row) in set.x.chunks_exact(d).enumerate() {
            for (j, v) in row.iter().enumerate() {
                x[[i, j]] = f64::from((v - means[j]) / stds[j]);
            }
        }
        let y = Array1::from_iter(set.y.iter().copied());
        let fitted = LogisticRegression::default()
            .alpha(opts.alpha)
            .max_iterations(opts.max_iterations)
            // The loss is summed over rows, so its gradient grows with them: stop at a mean
            // gradient of `tolerance` whatever the number of rows.
            .gradient_tolerance(opts.tolerance * n as f64)
            .fit(&Dataset::new(x, y))
            .map_err(TrainError::Solver)?;
        // linfa calls the larger class "positive"; with buyers the minority that is `false`,
        // so flip the sign to get the log-odds of buying.
        let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
        Ok(Model {
            spec: spec.clone(),
            means,
            stds,
            weights: fitted.params().iter().map(|w| sign * w).collect(),
            intercept: sign * fitted.intercept() + set.negative_rate.ln(),
            negative_rate: set.negative_rate,
            rows: n as u64,
            positives: positives as u64,
        })
    }

    /// The probability of buying in the next 7 days for one feature vector. No allocation.
    pub fn score(&self, x: &[f32]) -> f64 {
        debug_assert_eq!(x.len(), self.weights.len());
        let mut z = self.intercept;
        for (((v, m), s), w) in x.iter().zip(&self.means).zip(&self.stds).zip(&self.weights) {
            z += w * f64::from((v - m) / s);
        }
        sigmoid(z)
    }

    /// Each feature's weight with its names, strongest first: what the console shows to
    /// explain the model.
    pub fn explain(&self) -> Vec<(super::spec::FeatureName, f64)> {
        let mut out: Vec<_> = self.spec.names().into_iter().zip(self.weights.iter().copied()).collect();
        out.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
        out
    }
}

fn standardisation(set: &TrainingSet) -> (Vec<f32>, Vec<f32>) {
    let d = set.n_features;
    let n = set.len().max(1) as f64;
    let mut sum = vec![0f64; d];
    let mut sq = vec![0f64; d];
    for row in set.x.chunks_exact(d) {
        for (j, v) in row.iter().enumerate() {
            sum[j] += f64::from(*v);
            sq[j] += f64::from(*v) * f64::from(*v);
        }
    }
    let means: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let stds = sum
        .iter()
        .zip(&sq)
        .map(|(s, q)| {
            let var = (q / n - (s / n).powi(2)).max(0.0);
            if var < 1e-12 { 1.0 } else { var.sqrt() as f32 }
        })
        .collect();
    (means, stds)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows where feature 0 drives buying and feature 1 is noise.
    fn toy(n: usize, negative_rate: f64) -> TrainingSet {
        let mut set = TrainingSet::new(2, negative_rate);
        let mut state = 7u64;
        let mut unit = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..n {
            let a = unit() * 4.0;
            let b = unit();
            let p = sigmoid(-4.0 + 1.2 * a);
            let y = unit() < p;
            if y || unit() < negative_rate {
                set.push(&[a as f32, b as f32], y);
            }
        }
        set
    }

    #[test]
    fn the_fit_finds_the_driving_feature_and_survives_json() {
        let spec = FeatureSpec::default();
        let model = Model::train(&spec, &toy(20_000, 1.0), TrainOptions::default()).unwrap();
        assert!(model.weights[0] > 0.8, "{:?}", model.weights);
        assert!(model.weights[1].abs() < 0.15, "{:?}", model.weights);
        assert!(model.score(&[4.0, 0.5]) > model.score(&[0.0, 0.5]));
        let json = serde_json::to_string(&model).unwrap();
        let back: Model = serde_json::from_str(&json).unwrap();
        assert_eq!(back.score(&[2.0, 0.1]), model.score(&[2.0, 0.1]));
    }

    #[test]
    fn subsampling_negatives_keeps_probabilities_calibrated() {
        let spec = FeatureSpec::default();
        let full = Model::train(&spec, &toy(60_000, 1.0), TrainOptions::default()).unwrap();
        let sampled = Model::train(&spec, &toy(60_000, 0.2), TrainOptions::default()).unwrap();
        for a in [0.5f32, 2.0, 3.5] {
            let truth = sigmoid(-4.0 + 1.2 * f64::from(a));
            let (f, s) = (full.score(&[a, 0.5]), sampled.score(&[a, 0.5]));
            assert!((f - truth).abs() < 0.25 * truth, "full {f} vs {truth}");
            assert!((s - truth).abs() < 0.25 * truth, "sampled {s} vs {truth}");
        }
    }

    #[test]
    fn one_class_is_refused() {
        let mut set = TrainingSet::new(1, 1.0);
        set.push(&[1.0], false);
        assert!(matches!(
            Model::train(&FeatureSpec::default(), &set, TrainOptions::default()),
            Err(TrainError::OneClass { positives: 0, .. })
        ));
    }
}
