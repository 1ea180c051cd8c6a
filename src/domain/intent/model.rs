//! The intent classifier: multinomial logistic regression over a message's distinct tokens.
//!
//! Why this and not a crate: the Rust ML crates we looked at (linfa's naive Bayes and logistic
//! regression, smartcore) take dense `ndarray` matrices, which for a few thousand messages over
//! a vocabulary of thousands of words is mostly zeros in memory; the model itself is ~100 lines.
//! Why logistic regression and not naive Bayes: the console thresholds its probabilities, and
//! naive Bayes multiplies correlated word likelihoods as if independent, which pushes nearly
//! every probability to 0 or 1; an L2-regularised log-loss model is far better calibrated. Its
//! weights also explain a prediction directly (a token's weight for an intent against the mean).
//!
//! Features are binary presence of a message's distinct tokens, scaled by 1/√(their number),
//! unseen words included. So a long message weighs no more than a short one, and a message
//! mostly of words never seen in training leans towards the biases: with few labels the model
//! knows particles like 了 or 吗 from one intent's examples, and `明天要下雨了` must not become a
//! confident 售后问题 on that one known word (scaling by known words only did exactly that). A
//! wrong tag costs more than a missed one. The biases are trained with one empty pseudo-example
//! labelled 其他 (an empty message has no intent), so a message of unknown words reads as 其他.
//! Training is full-batch Nesterov gradient descent with the step fixed by the loss's smoothness bound, so
//! it is deterministic and needs no learning-rate tuning.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::tokenize::{self, Options};
use super::{Example, OTHER, Source};

/// Knobs of training; [`Default`] is what [`Classifier::train`] uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainOptions {
    pub tokenizer: Options,
    /// L2 penalty on word weights, as a sum over examples: the penalty against the mean loss is
    /// this over the examples' total weight, so a few labels give cautious probabilities and many
    /// labels confident ones (scikit-learn's `C = 1 / l2` in the same sense). 0.3 gave the
    /// best-calibrated held-out probabilities of 0.3, 1 and 3 in `examples/bench_intent.rs`.
    pub l2: f64,
    /// Gradient steps at most (training stops sooner once the gradient is flat).
    pub max_iterations: usize,
    /// Weight of the empty 其他 pseudo-example, in operator labels.
    pub prior_weight: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self { tokenizer: Options::default(), l2: 0.3, max_iterations: 400, prior_weight: 2.0 }
    }
}

/// What the model thinks of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The most likely intent, `None` when 其他 is the most likely.
    pub best: Option<String>,
    /// Probability of `best` (of 其他 when `best` is `None`).
    pub confidence: f64,
    /// Every operator intent with its probability, most likely first (其他 not included).
    pub intents: Vec<(String, f64)>,
    /// Probability of 其他.
    pub other: f64,
    /// Distinct tokens of the message the model has seen in training; 0 means it is guessing.
    pub known_tokens: usize,
    /// Top probability minus the runner-up's (其他 included), 0..=1.
    pub margin: f64,
}

impl Prediction {
    /// The probability of `intent` (0 for a name the model does not know).
    #[must_use]
    pub fn probability(&self, intent: &str) -> f64 {
        if intent == OTHER {
            return self.other;
        }
        self.intents.iter().find(|(name, _)| name == intent).map_or(0.0, |(_, p)| *p)
    }
}

/// A trained model; cheap to share (`&self` everywhere), serialises to JSON for storage.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "Stored", into = "Stored")]
pub struct Classifier {
    options: Options,
    /// Class `i + 1`; class 0 is 其他.
    intents: Vec<String>,
    vocabulary: Vec<String>,
    index: HashMap<String, u32>,
    /// `vocabulary.len() × classes`, a token's weights side by side (one cache line per token).
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// A message as the model's input: known token ids and the common feature value.
struct Features {
    ids: Vec<u32>,
    value: f64,
}

impl Classifier {
    /// Learns the operators' intents from `examples` with [`TrainOptions::default`].
    #[must_use]
    pub fn train(examples: &[Example]) -> Self {
        Self::train_with(examples, &TrainOptions::default())
    }

    /// Learns from `examples`. A keyword-seeded example whose normalised text an operator has
    /// labelled is dropped, so the operator's label wins; the intents are the distinct names (a
    /// blank name, or 其他 itself, is 其他).
    #[must_use]
    pub fn train_with(examples: &[Example], options: &TrainOptions) -> Self {
        let labelled: HashSet<String> =
            examples.iter().filter(|e| e.source == Source::Operator).map(|e| tokenize::normalize(&e.text)).collect();
        let kept: Vec<&Example> = examples
            .iter()
            .filter(|e| e.source == Source::Operator || !labelled.contains(&tokenize::normalize(&e.text)))
            .collect();
        let intents: Vec<String> = kept
            .iter()
            .filter_map(|e| e.intent.clone())
            .filter(|name| name != OTHER && !name.trim().is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut model = Self {
            options: options.tokenizer,
            intents,
            vocabulary: Vec::new(),
            index: HashMap::new(),
            weights: Vec::new(),
            bias: Vec::new(),
        };
        let mut rows = Vec::with_capacity(kept.len() + 1);
        for example in &kept {
            let (ids, value) = model.featurise_growing(&example.text);
            rows.push(super::model_fit::Row {
                ids,
                value,
                class: model.class_of(example.intent.as_deref()),
                weight: example.weight(),
            });
        }
        rows.push(super::model_fit::Row { ids: Vec::new(), value: 0.0, class: 0, weight: options.prior_weight });
        let penalty = super::model_fit::Penalty { l2: options.l2, max_iterations: options.max_iterations };
        let fitted = super::model_fit::fit(&rows, model.vocabulary.len(), model.classes(), penalty);
        model.weights = fitted.weights.iter().map(|&w| w as f32).collect();
        model.bias = fitted.bias.iter().map(|&b| b as f32).collect();
        model
    }

    /// The operator intents this model knows, in class order.
    #[must_use]
    pub fn intents(&self) -> &[String] {
        &self.intents
    }

    /// Distinct tokens seen in training.
    #[must_use]
    pub fn vocabulary_len(&self) -> usize {
        self.vocabulary.len()
    }

    /// Scores `text` against every intent and 其他.
    #[must_use]
    pub fn predict(&self, text: &str) -> Prediction {
        let features = self.featurise(text);
        let probabilities = self.probabilities(&features);
        let mut intents: Vec<(String, f64)> =
            self.intents.iter().cloned().zip(probabilities[1..].iter().copied()).collect();
        intents.sort_by(|a, b| b.1.total_cmp(&a.1));
        let other = probabilities[0];
        let (best, confidence) = match intents.first() {
            Some((name, p)) if *p > other => (Some(name.clone()), *p),
            _ => (None, other),
        };
        let mut sorted = probabilities.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let margin = sorted.first().copied().unwrap_or(1.0) - sorted.get(1).copied().unwrap_or(0.0);
        Prediction { best, confidence, intents, other, known_tokens: features.ids.len(), margin }
    }

    /// How unsure the model is about `text`, 0 (sure) ..= 1 (a coin toss between its top two):
    /// the 待标注 queue shows the highest first.
    #[must_use]
    pub fn uncertainty(&self, text: &str) -> f64 {
        1.0 - self.predict(text).margin
    }

    /// The known tokens of `text` with how much each pushes `intent` (or [`OTHER`]) above the
    /// average intent, in log-odds, strongest first; words against it come last with negative
    /// weights. Empty when the model does not know `intent`.
    #[must_use]
    pub fn explain(&self, text: &str, intent: &str) -> Vec<(String, f64)> {
        let Some(class) = self.class_index(intent) else {
            return Vec::new();
        };
        let features = self.featurise(text);
        let classes = self.classes();
        let mut out: Vec<(String, f64)> = features
            .ids
            .iter()
            .map(|&id| {
                let row = self.row(id);
                let mean = row.iter().map(|&w| f64::from(w)).sum::<f64>() / classes as f64;
                (self.vocabulary[id as usize].clone(), features.value * (f64::from(row[class]) - mean))
            })
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    fn classes(&self) -> usize {
        self.intents.len() + 1
    }

    fn class_index(&self, intent: &str) -> Option<usize> {
        if intent == OTHER {
            return Some(0);
        }
        self.intents.iter().position(|name| name == intent).map(|i| i + 1)
    }

    fn class_of(&self, intent: Option<&str>) -> usize {
        intent.and_then(|name| self.class_index(name)).unwrap_or(0)
    }

    fn row(&self, id: u32) -> &[f32] {
        let classes = self.classes();
        &self.weights[id as usize * classes..(id as usize + 1) * classes]
    }

    fn distinct_tokens(&self, text: &str) -> Vec<String> {
        let mut tokens = tokenize::tokens(text, self.options);
        tokens.sort_unstable();
        tokens.dedup();
        tokens
    }

    fn featurise(&self, text: &str) -> Features {
        let tokens = self.distinct_tokens(text);
        let value = scale(tokens.len());
        let ids = tokens.iter().filter_map(|t| self.index.get(t).copied()).collect();
        Features { ids, value }
    }

    /// Like `featurise`, adding unseen tokens to the vocabulary (training only).
    fn featurise_growing(&mut self, text: &str) -> (Vec<u32>, f64) {
        let tokens = self.distinct_tokens(text);
        let value = scale(tokens.len());
        let ids = tokens
            .into_iter()
            .map(|token| {
                let next = u32::try_from(self.vocabulary.len()).expect("a vocabulary under 4 billion tokens");
                *self.index.entry(token).or_insert_with_key(|token| {
                    self.vocabulary.push(token.clone());
                    next
                })
            })
            .collect();
        (ids, value)
    }

    fn probabilities(&self, features: &Features) -> Vec<f64> {
        let mut logits: Vec<f64> = self.bias.iter().map(|&b| f64::from(b)).collect();
        for &id in &features.ids {
            for (logit, &w) in logits.iter_mut().zip(self.row(id)) {
                *logit += features.value * f64::from(w);
            }
        }
        super::model_fit::softmax_in_place(&mut logits);
        logits
    }
}

fn scale(distinct_tokens: usize) -> f64 {
    if distinct_tokens == 0 { 0.0 } else { 1.0 / (distinct_tokens as f64).sqrt() }
}

/// The stored form: everything but the lookup index, which is rebuilt (and the shapes checked)
/// on load, so a damaged row in the database fails to load instead of panicking in a callback.
#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    options: Options,
    intents: Vec<String>,
    vocabulary: Vec<String>,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

const FORMAT_VERSION: u32 = 1;

/// Why a stored model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("意图模型的格式版本 {0} 不认识，请重新训练模型")]
    Version(u32),
    #[error("意图模型数据不完整或已损坏（{0}），请重新训练模型")]
    Damaged(&'static str),
}

impl TryFrom<Stored> for Classifier {
    type Error = LoadError;

    fn try_from(stored: Stored) -> Result<Self, LoadError> {
        if stored.version != FORMAT_VERSION {
            return Err(LoadError::Version(stored.version));
        }
        let classes = stored.intents.len() + 1;
        if stored.bias.len() != classes {
            return Err(LoadError::Damaged("bias"));
        }
        if stored.weights.len() != stored.vocabulary.len().saturating_mul(classes) {
            return Err(LoadError::Damaged("weights"));
        }
        if !stored.weights.iter().chain(&stored.bias).all(|w| w.is_finite()) {
            return Err(LoadError::Damaged("non-finite weight"));
        }
        if u32::try_from(stored.vocabulary.len()).is_err() {
            return Err(LoadError::Damaged("vocabulary"));
        }
        let index: HashMap<String, u32> =
            stored.vocabulary.iter().enumerate().map(|(i, t)| (t.clone(), i as u32)).collect();
        if index.len() != stored.vocabulary.len() {
            return Err(LoadError::Damaged("duplicate token"));
        }
        let distinct: HashSet<&String> = stored.intents.iter().collect();
        if distinct.len() != stored.intents.len() || distinct.contains(&OTHER.to_owned()) {
            return Err(LoadError::Damaged("intents"));
        }
        Ok(Self {
            options: stored.options,
            intents: stored.intents,
            vocabulary: stored.vocabulary,
            index,
            weights: stored.weights,
            bias: stored.bias,
        })
    }
}

impl From<Classifier> for Stored {
    fn from(model: Classifier) -> Self {
        Self {
            version: FORMAT_VERSION,
            options: model.options,
            intents: model.intents,
            vocabulary: model.vocabulary,
            weights: model.weights,
            bias: model.bias,
        }
    }
}
