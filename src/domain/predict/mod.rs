//! Purchase propensity, the pure core (issue 21, points 1–2): facts about a follower, feature
//! vectors at cutoffs, a logistic model, its honest evaluation against an RFM baseline on a
//! time split, and a generated account with a known hidden propensity to test all of it.
//!
//! No SQL, no HTTP, no async: the store layer streams each follower's history as [`Fact`]s
//! into [`Extractor::features_into`] or a [`SplitCollector`], and keeps what comes out.
//!
//! - `fact`: [`Fact`], [`FactKind`], [`Vocabulary`] (16-byte facts, interned strings)
//! - `spec`: [`FeatureSpec`] (chosen from training data, serialisable), feature names in
//!   Chinese, [`Extractor`]
//! - `features`: vectors at several cutoffs in one pass, [`label`]
//! - `model`: [`Model`] (why `linfa-logistic`, how negative subsampling is corrected)
//! - `baseline`: [`RfmBaseline`]
//! - `metrics`: AUC, top-10 % precision and lift, Brier, reliability
//! - `evaluate`: [`Cutoffs`], [`SplitCollector`], [`Evaluation`], [`Verdict`] (what "enough
//!   history" means)
//! - `synthetic`: [`SyntheticAccount`]
//! - `high_potential`: 高潜力客户, the definition behind the built-in dynamic tag

pub mod baseline;
pub mod evaluate;
pub mod fact;
pub mod features;
pub mod high_potential;
pub mod metrics;
pub mod model;
pub mod spec;
pub mod synthetic;
#[cfg(test)]
mod tests;

pub use baseline::{Rfm, RfmBaseline};
pub use evaluate::{Cutoffs, Evaluation, SplitCollector, Verdict};
pub use fact::{DAY, Fact, FactKind, KeyId, Vocabulary};
pub use features::label;
pub use metrics::Metrics;
pub use model::{Model, TrainError, TrainOptions, TrainingSet};
pub use spec::{Extractor, FeatureName, FeatureSpec, SpecBuilder};
pub use synthetic::{Regime, SyntheticAccount, SyntheticFollower};
