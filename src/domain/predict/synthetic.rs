//! A generated account whose purchases follow a known hidden probability, for tests and the
//! benchmark. Latent traits (how active a follower is, hot spells of interest, skin type,
//! favourite menu key) drive behaviour; the purchase draw for each 7-day window depends only on
//! what is observable at the window's start, through [`Regime::probability`]. So the best
//! possible ranking of a week's buyers is known: the hidden probabilities themselves.
//!
//! Followers are generated independently from `(seed, index)`, so a caller can stream them one
//! at a time, regenerate one, or hold them all.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::fact::{DAY, Fact, FactKind, KeyId, Vocabulary};

/// Menu keys, most popular first.
const KEYS: [&str; 8] = ["PRODUCT", "SALE", "SKIN_TEST", "NEW", "ABOUT", "FAQ", "LIVE", "CONTACT"];
const KEY_WEIGHTS: [f64; 8] = [8.0, 6.0, 4.0, 3.0, 2.0, 2.0, 1.0, 1.0];
/// Quiz results.
const TAGS: [&str; 4] = ["油性肌", "干性肌", "混合肌", "敏感肌"];
const SCENES: [&str; 3] = ["store_poster", "live_event", "parcel_card"];
/// Activity by weekday, Monday first: weekends are busier.
const RHYTHM: [f64; 7] = [0.8, 0.9, 0.9, 1.0, 1.1, 1.4, 1.3];

/// What drives purchases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regime {
    /// Recent clicks, messages, campaign link clicks and quiz results matter, besides orders.
    Behaviour,
    /// Only order recency, frequency and value matter: RFM is all there is to learn.
    RfmOnly,
    /// Everyone buys with the same probability.
    Random,
}

/// What the hidden probability reads at a window's start.
#[derive(Debug, Clone, Copy, Default)]
pub struct Observed {
    pub product_clicks_7d: u32,
    pub clicks_30d: u32,
    pub texts_30d: u32,
    pub link_clicks_30d: u32,
    pub oily_or_sensitive: bool,
    pub orders_90d: u32,
    pub orders_all: u32,
    pub days_since_last_order: Option<f64>,
    pub days_since_interaction: Option<f64>,
}

impl Regime {
    /// The hidden weekly purchase probability: the generator's ground truth.
    pub fn probability(self, o: &Observed) -> f64 {
        let ln = |c: u32| f64::from(c).ln_1p();
        let logit = match self {
            Regime::Random => return 0.02,
            Regime::Behaviour => {
                -5.0 + 0.8 * ln(o.product_clicks_7d)
                    + 0.35 * ln(o.clicks_30d)
                    + 0.5 * ln(o.texts_30d)
                    + 0.6 * ln(o.link_clicks_30d)
                    + 0.4 * f64::from(u8::from(o.oily_or_sensitive))
                    + 0.5 * ln(o.orders_90d)
                    - 0.2 * o.days_since_interaction.unwrap_or(365.0).min(365.0).ln_1p()
            }
            Regime::RfmOnly => {
                let recent = o.days_since_last_order.is_some_and(|d| d <= 30.0);
                -4.3 + 1.1 * ln(o.orders_all) + 0.9 * f64::from(u8::from(recent))
            }
        };
        1.0 / (1.0 + (-logit).exp())
    }
}

/// One generated follower: their facts (sorted by time) and the hidden probability of each
/// 7-day window they lived through.
#[derive(Debug, Clone)]
pub struct SyntheticFollower {
    pub facts: Vec<Fact>,
    windows: Vec<(i64, f32)>,
}

impl SyntheticFollower {
    /// The hidden probability of buying in `(cutoff, cutoff + 7d]`; `None` when `cutoff` is not
    /// a window start or the follower had not followed yet.
    pub fn hidden_probability(&self, cutoff: i64) -> Option<f64> {
        self.windows.iter().find(|(start, _)| *start == cutoff).map(|(_, p)| f64::from(*p))
    }
}

/// A generated account: `followers` followers over `days` days ending at [`Self::now`].
#[derive(Debug, Clone)]
pub struct SyntheticAccount {
    pub followers: u32,
    pub days: u32,
    pub seed: u64,
    pub regime: Regime,
    vocab: Vocabulary,
    keys: [KeyId; 8],
    tags: [KeyId; 4],
    scenes: [KeyId; 3],
}

/// 2025-06-02 00:00 UTC, a Monday: a fixed origin keeps generated accounts reproducible.
const START: i64 = 1_748_822_400;

impl SyntheticAccount {
    pub fn new(followers: u32, days: u32, seed: u64, regime: Regime) -> Self {
        let mut vocab = Vocabulary::new();
        let keys = KEYS.map(|k| vocab.intern(k));
        let tags = TAGS.map(|t| vocab.intern(t));
        let scenes = SCENES.map(|s| vocab.intern(s));
        SyntheticAccount { followers, days, seed, regime, vocab, keys, tags, scenes }
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocab
    }

    /// The first moment of recorded history.
    pub fn start(&self) -> i64 {
        START
    }

    /// The end of history: training and scoring happen "now".
    pub fn now(&self) -> i64 {
        START + i64::from(self.days) * DAY
    }

    /// Purchase windows start every 7 days counted back from now, so the latest split's cutoffs
    /// (now − 7d, now − 14d) are window starts.
    fn window_starts(&self) -> impl Iterator<Item = i64> + '_ {
        let weeks = i64::from(self.days) / 7;
        (1..=weeks).rev().map(move |k| self.now() - 7 * k * DAY)
    }

    /// Campaigns: every Thursday at 20:00, each reaching a random 35 % of followers.
    fn campaigns(&self) -> impl Iterator<Item = i64> + '_ {
        (0..i64::from(self.days) / 7).map(|w| START + (7 * w + 3) * DAY + 20 * 3600)
    }

    /// Generates follower `index`; the same index always gives the same follower.
    pub fn follower(&self, index: u32) -> SyntheticFollower {
        let mut rng = StdRng::seed_from_u64(self.seed ^ u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut facts = Vec::new();
        let span = i64::from(self.days) * DAY;
        // 60 % followed before history starts, the rest join evenly over the period.
        let followed = if rng.gen_bool(0.6) {
            START - rng.gen_range(DAY..365 * DAY)
        } else {
            START + rng.gen_range(0..span.max(1))
        };
        let scene = rng.gen_bool(0.3).then(|| self.scenes[rng.gen_range(0..3)]);
        facts.push(Fact { at: followed, kind: FactKind::Follow { scene } });
        // Most followers are nearly silent, a few are very active.
        let class = rng.r#gen::<f64>();
        let (rate, spell_chance, spell_boost) = if class < 0.6 {
            (rng.gen_range(0.0..0.01), 0.004, 25.0)
        } else if class < 0.92 {
            (rng.gen_range(0.02..0.15), 0.015, 5.0)
        } else {
            (rng.gen_range(0.3..1.5), 0.02, 3.0)
        };
        let favourite = pick_weighted(&mut rng, &KEY_WEIGHTS);
        let skin = self.tags[rng.gen_range(0..4)];
        let mut quizzed = false;
        let first_day = ((followed.max(START) - START) / DAY) as u32;
        let mut spell_left = 0u32;
        for day in first_day..self.days {
            if spell_left > 0 {
                spell_left -= 1;
            } else if rng.gen_bool(spell_chance) {
                spell_left = rng.gen_range(5..15);
            }
            let boost = if spell_left > 0 { spell_boost } else { 1.0 };
            let lambda = rate * boost * RHYTHM[(day % 7) as usize];
            for _ in 0..poisson(&mut rng, lambda) {
                let at = START + i64::from(day) * DAY + rng.gen_range(8 * 3600..23 * 3600);
                let kind = match rng.r#gen::<f64>() {
                    x if x < 0.5 => {
                        let key = if rng.gen_bool(0.5) { favourite } else { pick_weighted(&mut rng, &KEY_WEIGHTS) };
                        FactKind::MenuClick { key: self.keys[key] }
                    }
                    x if x < 0.78 => FactKind::ArticleView { key: self.keys[pick_weighted(&mut rng, &KEY_WEIGHTS)] },
                    x if x < 0.92 => FactKind::Text,
                    x if x < 0.95 => FactKind::Scan { scene: self.scenes[rng.gen_range(0..3)] },
                    _ if !quizzed => {
                        quizzed = true;
                        FactKind::QuizTag { tag: skin }
                    }
                    _ => FactKind::MenuClick { key: self.keys[2] },
                };
                facts.push(Fact { at, kind });
            }
        }
        let engagement = (rate * 4.0).min(0.6);
        for at in self.campaigns().filter(|at| *at > followed) {
            if rng.gen_bool(0.35) {
                facts.push(Fact { at, kind: FactKind::Delivery });
                if rng.gen_bool(0.01 + engagement * 0.5) {
                    facts.push(Fact { at: at + rng.gen_range(60..6 * 3600), kind: FactKind::LinkClick });
                }
            }
        }
        facts.sort_by_key(|f| f.at);
        let windows = self.purchases(&mut rng, &mut facts, followed);
        SyntheticFollower { facts, windows }
    }

    /// Draws each window's purchase from what is observable at its start, appending orders.
    fn purchases(&self, rng: &mut StdRng, facts: &mut Vec<Fact>, followed: i64) -> Vec<(i64, f32)> {
        let basket = rng.gen_range(3_000u32..40_000);
        let starts: Vec<i64> = self.window_starts().filter(|s| *s >= followed && *s >= START).collect();
        let mut windows = Vec::with_capacity(starts.len());
        for start in starts {
            let p = self.regime.probability(&self.observe(facts, start));
            windows.push((start, p as f32));
            if rng.gen_bool(p) {
                let orders = if rng.gen_bool(0.1) { 2 } else { 1 };
                for _ in 0..orders {
                    let at = start + rng.gen_range(1..7 * DAY);
                    let amount_fen = (f64::from(basket) * rng.gen_range(0.5..1.8)) as u32;
                    facts.push(Fact { at, kind: FactKind::Order { amount_fen } });
                }
            } else if rng.gen_bool(0.002) {
                // A free sample: an order that is no purchase.
                facts.push(Fact { at: start + rng.gen_range(1..7 * DAY), kind: FactKind::Order { amount_fen: 0 } });
            }
        }
        facts.sort_by_key(|f| f.at);
        windows
    }

    fn observe(&self, facts: &[Fact], at: i64) -> Observed {
        let mut o = Observed::default();
        let days = |t: i64| (at - t) as f64 / DAY as f64;
        for f in facts.iter().filter(|f| f.at <= at) {
            let age = days(f.at);
            // Orders drawn so far sit at the end of `facts`, so take the smallest age, not the last.
            let newest = |slot: Option<f64>| Some(slot.map_or(age, |s: f64| s.min(age)));
            if f.kind.is_interaction() {
                o.days_since_interaction = newest(o.days_since_interaction);
            }
            match f.kind {
                FactKind::MenuClick { key } => {
                    o.clicks_30d += u32::from(age < 30.0);
                    o.product_clicks_7d += u32::from(age < 7.0 && (key == self.keys[0] || key == self.keys[1]));
                }
                FactKind::Text => o.texts_30d += u32::from(age < 30.0),
                FactKind::LinkClick => o.link_clicks_30d += u32::from(age < 30.0),
                FactKind::QuizTag { tag } => o.oily_or_sensitive |= tag == self.tags[0] || tag == self.tags[3],
                FactKind::Order { amount_fen } if amount_fen > 0 => {
                    o.orders_all += 1;
                    o.orders_90d += u32::from(age < 90.0);
                    o.days_since_last_order = newest(o.days_since_last_order);
                }
                _ => {}
            }
        }
        o
    }
}

fn pick_weighted(rng: &mut StdRng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.gen_range(0.0..total);
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// Knuth's method; the rates here are small (at most a few a day).
fn poisson(rng: &mut StdRng, lambda: f64) -> u32 {
    if lambda <= 0.0 {
        return 0;
    }
    let limit = (-lambda).exp();
    let mut k = 0;
    let mut p = rng.r#gen::<f64>();
    while p > limit {
        k += 1;
        p *= rng.r#gen::<f64>();
    }
    k
}
