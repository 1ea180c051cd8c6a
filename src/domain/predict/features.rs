//! Feature vectors and labels. One pass over a follower's facts fills the vectors for several
//! cutoffs at once (training needs two, scoring one more), and a fact counts for a cutoff only
//! when `at <= cutoff`: that single comparison, made before anything else is read, is what keeps
//! the future out (the leakage proptest in `tests.rs` holds it to that). Facts may come in any
//! order: every figure is a count, a sum or a latest time.

use super::fact::{DAY, Fact, FactKind};
use super::spec::{BASE, Extractor, MAX_MENU_KEYS, MAX_TAGS};

/// How many cutoffs one pass can fill: training's two plus "now".
pub const MAX_CUTOFFS: usize = 4;
/// "Never" reads as this many days ago, so the log-scaled figure stays finite.
const NEVER_DAYS: f32 = 365.0;

/// Running totals for one cutoff; all counts are of facts at or before it.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    first_follow: Option<i64>,
    first_fact: Option<i64>,
    last_interaction: Option<i64>,
    last_order: Option<i64>,
    orders_30: u32,
    orders_90: u32,
    orders_all: u32,
    spend_90: u64,
    spend_all: u64,
    clicks: [u32; 3],
    views: [u32; 3],
    texts: [u32; 3],
    deliveries_30: u32,
    deliveries_90: u32,
    link_clicks_30: u32,
    link_clicks_90: u32,
    scans_90: u32,
    quiz_tags: u32,
    key_clicks: [[u32; 3]; MAX_MENU_KEYS],
    tag_bits: u32,
}

/// Which of the 7/30/90-day windows a fact `age` seconds old falls in.
fn windows(age: i64) -> [bool; 3] {
    [age < 7 * DAY, age < 30 * DAY, age < 90 * DAY]
}

fn bump(counts: &mut [u32; 3], age: i64) {
    for (c, inside) in counts.iter_mut().zip(windows(age)) {
        *c += u32::from(inside);
    }
}

fn earliest(slot: &mut Option<i64>, at: i64) {
    *slot = Some(slot.map_or(at, |s| s.min(at)));
}

fn latest(slot: &mut Option<i64>, at: i64) {
    *slot = Some(slot.map_or(at, |s| s.max(at)));
}

impl Acc {
    fn add(&mut self, ex: &Extractor, fact: Fact, cutoff: i64) {
        let age = cutoff - fact.at;
        let [_, in30, in90] = windows(age);
        earliest(&mut self.first_fact, fact.at);
        if fact.kind.is_interaction() {
            latest(&mut self.last_interaction, fact.at);
        }
        match fact.kind {
            FactKind::Follow { .. } => earliest(&mut self.first_follow, fact.at),
            FactKind::Scan { .. } => self.scans_90 += u32::from(in90),
            FactKind::MenuClick { key } => {
                bump(&mut self.clicks, age);
                if let Some(slot) = ex.keys.iter().position(|k| *k == Some(key)) {
                    bump(&mut self.key_clicks[slot], age);
                }
            }
            FactKind::ArticleView { .. } => bump(&mut self.views, age),
            FactKind::Text => bump(&mut self.texts, age),
            FactKind::Order { amount_fen } => {
                if amount_fen > 0 {
                    latest(&mut self.last_order, fact.at);
                    self.orders_all += 1;
                    self.orders_30 += u32::from(in30);
                    self.orders_90 += u32::from(in90);
                    self.spend_all += u64::from(amount_fen);
                    if in90 {
                        self.spend_90 += u64::from(amount_fen);
                    }
                }
            }
            FactKind::Delivery => {
                self.deliveries_30 += u32::from(in30);
                self.deliveries_90 += u32::from(in90);
            }
            FactKind::LinkClick => {
                self.link_clicks_30 += u32::from(in30);
                self.link_clicks_90 += u32::from(in90);
            }
            FactKind::QuizTag { tag } => {
                self.quiz_tags += 1;
                if let Some(slot) = ex.tags.iter().position(|t| *t == Some(tag)) {
                    self.tag_bits |= 1 << slot;
                }
            }
        }
    }

    fn write(&self, ex: &Extractor, cutoff: i64, out: &mut [f32]) {
        let ln = |x: f64| (x.max(0.0)).ln_1p() as f32;
        let days = |at: Option<i64>| at.map_or(NEVER_DAYS, |t| ((cutoff - t) as f32 / DAY as f32).min(NEVER_DAYS));
        let yuan = |fen: u64| fen as f64 / 100.0;
        let since_follow = self.first_follow.or(self.first_fact);
        let rate = if self.deliveries_90 == 0 {
            0.0
        } else {
            (self.link_clicks_90 as f32 / self.deliveries_90 as f32).min(1.0)
        };
        let avg = if self.orders_all == 0 { 0.0 } else { yuan(self.spend_all) / f64::from(self.orders_all) };
        let base: [f32; BASE.len()] = [
            since_follow.map_or(0.0, |t| ln(f64::from(days(Some(t))))),
            ln(f64::from(days(self.last_interaction))),
            f32::from(u8::from(self.orders_all > 0)),
            ln(f64::from(days(self.last_order))),
            ln(f64::from(self.orders_30)),
            ln(f64::from(self.orders_90)),
            ln(f64::from(self.orders_all)),
            ln(yuan(self.spend_90)),
            ln(yuan(self.spend_all)),
            ln(avg),
            ln(f64::from(self.clicks[0])),
            ln(f64::from(self.clicks[1])),
            ln(f64::from(self.clicks[2])),
            ln(f64::from(self.views[0])),
            ln(f64::from(self.views[1])),
            ln(f64::from(self.views[2])),
            ln(f64::from(self.texts[0])),
            ln(f64::from(self.texts[1])),
            ln(f64::from(self.texts[2])),
            ln(f64::from(self.deliveries_30)),
            ln(f64::from(self.deliveries_90)),
            ln(f64::from(self.link_clicks_30)),
            ln(f64::from(self.link_clicks_90)),
            rate,
            ln(f64::from(self.scans_90)),
            ln(f64::from(self.quiz_tags)),
        ];
        out[..BASE.len()].copy_from_slice(&base);
        let mut at = BASE.len();
        for counts in &self.key_clicks[..ex.keys.len()] {
            for c in counts {
                out[at] = ln(f64::from(*c));
                at += 1;
            }
        }
        for slot in 0..ex.tags.len() {
            out[at] = f32::from(u8::from(self.tag_bits & (1 << slot) != 0));
            at += 1;
        }
        debug_assert_eq!(at, ex.len());
    }
}

impl Extractor {
    /// Fills `out` with one vector per cutoff, back to back (`out.len()` must be
    /// `cutoffs.len() * self.len()`). No allocation: the store layer calls this once per
    /// follower over millions of followers.
    ///
    /// # Panics
    /// When more than [`MAX_CUTOFFS`] cutoffs are given or `out` has the wrong length.
    pub fn features_into(&self, facts: &[Fact], cutoffs: &[i64], out: &mut [f32]) {
        assert!(cutoffs.len() <= MAX_CUTOFFS, "at most {MAX_CUTOFFS} cutoffs per pass");
        assert_eq!(out.len(), cutoffs.len() * self.len(), "one vector per cutoff");
        debug_assert!(self.tags.len() <= MAX_TAGS && self.keys.len() <= MAX_MENU_KEYS);
        let mut accs = [Acc::default(); MAX_CUTOFFS];
        for fact in facts {
            for (acc, &cutoff) in accs.iter_mut().zip(cutoffs) {
                if fact.at <= cutoff {
                    acc.add(self, *fact, cutoff);
                }
            }
        }
        for ((acc, &cutoff), row) in accs.iter().zip(cutoffs).zip(out.chunks_exact_mut(self.len())) {
            acc.write(self, cutoff, row);
        }
    }

    /// The vector at one cutoff, from facts with `at <= cutoff` only.
    pub fn features(&self, facts: &[Fact], cutoff: i64) -> Vec<f32> {
        let mut out = vec![0.0; self.len()];
        self.features_into(facts, &[cutoff], &mut out);
        out
    }
}

/// Whether the follower bought in `(cutoff, cutoff + horizon_days]`: at least one order with a
/// positive amount (a free sample is not a purchase).
pub fn label(facts: &[Fact], cutoff: i64, horizon_days: u32) -> bool {
    let end = cutoff + i64::from(horizon_days) * DAY;
    facts
        .iter()
        .any(|f| f.at > cutoff && f.at <= end && matches!(f.kind, FactKind::Order { amount_fen } if amount_fen > 0))
}

#[cfg(test)]
mod tests {
    use super::super::fact::Vocabulary;
    use super::super::spec::FeatureSpec;
    use super::*;

    fn fixture() -> (Extractor, Vec<Fact>) {
        let mut vocab = Vocabulary::new();
        let sale = vocab.intern("SALE");
        let oily = vocab.intern("油性肌");
        let spec = FeatureSpec { menu_keys: vec!["SALE".into()], tags: vec!["油性肌".into(), "干性肌".into()] };
        let facts = vec![
            Fact { at: 0, kind: FactKind::Follow { scene: None } },
            Fact { at: 10 * DAY, kind: FactKind::Order { amount_fen: 9_900 } },
            Fact { at: 95 * DAY, kind: FactKind::MenuClick { key: sale } },
            Fact { at: 98 * DAY, kind: FactKind::QuizTag { tag: oily } },
            Fact { at: 99 * DAY, kind: FactKind::Order { amount_fen: 0 } },
            Fact { at: 101 * DAY, kind: FactKind::Order { amount_fen: 100 } },
        ];
        (spec.bind(&vocab), facts)
    }

    #[test]
    fn features_count_windows_and_ignore_free_orders() {
        let (ex, facts) = fixture();
        let names = ex.spec().names();
        let x = ex.features(&facts, 100 * DAY);
        let get = |id: &str| x[names.iter().position(|n| n.id == id).unwrap()];
        assert_eq!(get("days_since_follow"), 101f32.ln());
        assert_eq!(get("days_since_last_order"), 91f32.ln());
        assert_eq!(get("orders_all"), 2f32.ln());
        assert_eq!(get("orders_90d"), 0.0);
        assert_eq!(get("avg_order_value"), 100f32.ln());
        assert_eq!(get("clicks_7d"), 2f32.ln());
        assert_eq!(get("clicks_30d:SALE"), 2f32.ln());
        assert_eq!(get("tag:油性肌"), 1.0);
        assert_eq!(get("tag:干性肌"), 0.0);
        assert_eq!(get("days_since_last_interaction"), 2f32.ln());
    }

    #[test]
    fn one_pass_gives_the_same_vectors_as_one_cutoff_at_a_time() {
        let (ex, facts) = fixture();
        let cutoffs = [50 * DAY, 100 * DAY, 200 * DAY];
        let mut out = vec![0.0; 3 * ex.len()];
        ex.features_into(&facts, &cutoffs, &mut out);
        for (i, c) in cutoffs.iter().enumerate() {
            assert_eq!(&out[i * ex.len()..(i + 1) * ex.len()], ex.features(&facts, *c).as_slice());
        }
    }

    #[test]
    fn the_label_needs_a_paid_order_inside_the_horizon() {
        let (_, facts) = fixture();
        assert!(!label(&facts, 92 * DAY, 7), "the 99th day's order is free");
        assert!(label(&facts, 94 * DAY, 7), "day 101 is inside (94, 101]");
        assert!(!label(&facts, 101 * DAY, 7), "the cutoff itself is excluded");
        assert!(label(&facts, 3 * DAY, 7));
    }
}
