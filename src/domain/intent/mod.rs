//! Intent tags from what followers write (issue 21, point 4): the pure core.
//!
//! A follower's text message is normalised and segmented ([`tokenize`]), a classifier learned
//! from the operator's labelled examples scores it against the operator's intents plus an
//! implicit 其他 ([`model`]), and a per-intent confidence threshold decides whether the sender
//! is tagged ([`decide`]). [`evaluate`] cross-validates a labelled set for the console's
//! precision/recall table; [`seed`] turns keyword rules into weak starting examples.
//!
//! Nothing here touches the database, HTTP or WeChat, and nothing blocks: once the segmentation
//! dictionary is loaded ([`tokenize::warm_up`], a one-off ~0.2 s the server should pay at start),
//! classifying a message is a few microseconds of CPU with no lock and no I/O, so the callback
//! path may call [`Classifier::predict`] inline. Storage of examples and models, the 待标注 queue
//! and tagging through the outbox live in the layers above.

pub mod decide;
pub mod evaluate;
pub mod model;
mod model_fit;
pub mod seed;
pub mod tokenize;

#[cfg(test)]
mod tests;

pub use decide::{ThresholdError, Thresholds, decide};
pub use evaluate::{CvError, CvReport, IntentScore, cross_validate};
pub use model::{Classifier, Prediction};
pub use seed::seed_examples;

use serde::{Deserialize, Serialize};

/// The name the console shows for "none of the operator's intents".
pub const OTHER: &str = "其他";

/// Where a labelled example came from. An operator's own label always outranks a weak one:
/// training drops a keyword-seeded example whose text an operator has labelled, and weighs the
/// rest at [`seed::WEAK_WEIGHT`], so a few of the operator's labels outvote many guesses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Labelled by a person (in the 待标注 queue or by hand).
    Operator,
    /// Guessed from a keyword rule ([`seed_examples`]).
    Keyword,
}

/// One labelled message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The message as the follower wrote it.
    pub text: String,
    /// The operator's intent, or `None` for 其他 (the operator said it is none of them).
    pub intent: Option<String>,
    pub source: Source,
}

impl Example {
    /// An operator's label (`None` means 其他).
    pub fn labelled(text: impl Into<String>, intent: Option<&str>) -> Self {
        Self { text: text.into(), intent: intent.map(str::to_owned), source: Source::Operator }
    }

    /// How much this example counts in training.
    #[must_use]
    pub fn weight(&self) -> f64 {
        match self.source {
            Source::Operator => 1.0,
            Source::Keyword => seed::WEAK_WEIGHT,
        }
    }
}
