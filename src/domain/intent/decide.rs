//! Whether a prediction tags its sender: the operator sets a confidence per intent (a default
//! for the rest), and only the model's most likely intent can tag, only when it is an operator
//! intent (not 其他), the message had at least one word the model knows, and its probability
//! reaches that intent's threshold. A wrong tag costs more than a missed one (it can send a
//! follower the wrong 群发), so the default is strict.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::Prediction;

/// Confidence an intent needs before it tags, per intent, with a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawThresholds")]
pub struct Thresholds {
    default: f64,
    per_intent: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
struct RawThresholds {
    default: f64,
    #[serde(default)]
    per_intent: BTreeMap<String, f64>,
}

/// An operator's threshold that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("置信度阈值要在 0 到 1 之间（例如 0.8 表示把握达到八成才打标签），现在是 {value}，请改一下")]
    OutOfRange { value: f64 },
}

fn check(value: f64) -> Result<f64, ThresholdError> {
    if value > 0.0 && value <= 1.0 { Ok(value) } else { Err(ThresholdError::OutOfRange { value }) }
}

impl Thresholds {
    /// Without an operator's choice an intent tags at 80 % confidence.
    pub const DEFAULT: f64 = 0.8;

    /// Every intent at `default` (0 < `default` ≤ 1).
    ///
    /// # Errors
    /// `OutOfRange` outside (0, 1] or NaN.
    pub fn new(default: f64) -> Result<Self, ThresholdError> {
        Ok(Self { default: check(default)?, per_intent: BTreeMap::new() })
    }

    /// Sets `intent`'s own threshold.
    ///
    /// # Errors
    /// `OutOfRange` outside (0, 1] or NaN; the thresholds are unchanged then.
    pub fn set(&mut self, intent: &str, value: f64) -> Result<(), ThresholdError> {
        self.per_intent.insert(intent.to_owned(), check(value)?);
        Ok(())
    }

    /// The confidence `intent` needs.
    #[must_use]
    pub fn for_intent(&self, intent: &str) -> f64 {
        self.per_intent.get(intent).copied().unwrap_or(self.default)
    }
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { default: Self::DEFAULT, per_intent: BTreeMap::new() }
    }
}

impl TryFrom<RawThresholds> for Thresholds {
    type Error = ThresholdError;

    fn try_from(raw: RawThresholds) -> Result<Self, ThresholdError> {
        let mut thresholds = Self::new(raw.default)?;
        for (intent, value) in raw.per_intent {
            thresholds.set(&intent, value)?;
        }
        Ok(thresholds)
    }
}

/// The intent that tags the sender of the predicted message, if any.
#[must_use]
pub fn decide<'p>(prediction: &'p Prediction, thresholds: &Thresholds) -> Option<&'p str> {
    let best = prediction.best.as_deref()?;
    (prediction.known_tokens > 0 && prediction.confidence >= thresholds.for_intent(best)).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(best: Option<&str>, confidence: f64, known_tokens: usize) -> Prediction {
        Prediction {
            best: best.map(str::to_owned),
            confidence,
            intents: best.map(|b| vec![(b.to_owned(), confidence)]).unwrap_or_default(),
            other: 1.0 - confidence,
            known_tokens,
            margin: 0.5,
        }
    }

    #[test]
    fn an_intent_tags_at_its_own_threshold_and_not_below() {
        let mut t = Thresholds::new(0.9).unwrap();
        t.set("咨询价格", 0.6).unwrap();
        assert_eq!(decide(&prediction(Some("咨询价格"), 0.6, 2), &t), Some("咨询价格"));
        assert_eq!(decide(&prediction(Some("咨询价格"), 0.59, 2), &t), None);
        assert_eq!(decide(&prediction(Some("售后问题"), 0.8, 2), &t), None, "the default 0.9 applies");
        assert_eq!(decide(&prediction(Some("售后问题"), 0.95, 2), &t), Some("售后问题"));
    }

    #[test]
    fn other_and_messages_of_unknown_words_never_tag() {
        let t = Thresholds::new(0.1).unwrap();
        assert_eq!(decide(&prediction(None, 0.99, 3), &t), None);
        assert_eq!(decide(&prediction(Some("咨询价格"), 0.99, 0), &t), None);
    }

    #[test]
    fn thresholds_outside_zero_to_one_are_refused_in_chinese() {
        for bad in [0.0, -0.1, 1.01, f64::NAN] {
            let err = Thresholds::new(bad).unwrap_err();
            assert!(err.to_string().contains("0 到 1 之间"), "{err}");
        }
        let mut t = Thresholds::default();
        assert!(t.set("咨询价格", 2.0).is_err());
        assert_eq!(t.for_intent("咨询价格"), Thresholds::DEFAULT, "a refused value leaves the old one");
    }

    #[test]
    fn stored_thresholds_are_checked_on_load() {
        let ok: Thresholds = serde_json::from_str(r#"{"default":0.7,"per_intent":{"想要优惠":0.5}}"#).unwrap();
        assert_eq!(ok.for_intent("想要优惠"), 0.5);
        assert!(serde_json::from_str::<Thresholds>(r#"{"default":0.7,"per_intent":{"想要优惠":5}}"#).is_err());
    }
}
