//! The in-memory copy of what segment expressions ask about, and their evaluation over it.
//! Pure data: `store::audience_feed` fills it from Postgres and `app::audience::index` keeps it
//! current; nothing here does I/O.
//!
//! Followers get dense numbers (`u32`) in the order they are first met, so a set of followers is
//! a [`RoaringBitmap`]: a tag is its members' bitmap, and `AND`/`OR`/`NOT` are bitmap operations
//! that take microseconds at a million followers. Clicks (per menu key) and orders are kept as
//! time-sorted arrays, so a window is a binary search plus a scan of the entries inside it; counts
//! and sums go into scratch arrays indexed by follower number.

use std::collections::HashMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use super::timeline::{Entry, Measure, Timeline};
use crate::domain::expr::{CmpOp, Expr, Window, score_threshold};

/// What one follower is now, as read from `followers` and `follower_tags`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerState {
    pub openid: String,
    /// `None`: no `followers` row (never seen, or erased).
    pub subscribed: Option<bool>,
    pub tag_ids: Vec<i64>,
}

/// The index's data at one moment.
#[derive(Debug)]
pub struct State {
    openids: Vec<Arc<str>>,
    numbers: HashMap<Arc<str>, u32>,
    subscribed: RoaringBitmap,
    members: HashMap<i64, RoaringBitmap>,
    tag_ids: HashMap<String, i64>,
    clicks: HashMap<String, Timeline>,
    orders: Timeline,
    /// Per prediction model, each follower's latest score by follower number; NaN when unscored.
    scores: HashMap<String, Vec<f32>>,
    /// Each follower's latest interaction (unix seconds) by follower number, [`NEVER`] when none:
    /// `active(W)` asks only whether it is inside W, so one number per follower suffices.
    last_active: Vec<i64>,
}

/// `last_active` of a follower who never interacted.
const NEVER: i64 = i64::MIN;

impl Default for State {
    fn default() -> Self {
        Self {
            openids: Vec::new(),
            numbers: HashMap::new(),
            subscribed: RoaringBitmap::new(),
            members: HashMap::new(),
            tag_ids: HashMap::new(),
            clicks: HashMap::new(),
            orders: Timeline::weighted(),
            scores: HashMap::new(),
            last_active: Vec::new(),
        }
    }
}

/// How big the index is, for logs and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub followers: usize,
    pub subscribed: u64,
    pub memberships: u64,
    pub clicks: usize,
    pub orders: usize,
}

impl State {
    /// The follower's number, given one if new.
    pub fn number(&mut self, openid: &str) -> u32 {
        if let Some(&n) = self.numbers.get(openid) {
            return n;
        }
        let n = u32::try_from(self.openids.len()).expect("fewer than 4 billion followers");
        let shared: Arc<str> = Arc::from(openid);
        self.openids.push(Arc::clone(&shared));
        self.numbers.insert(shared, n);
        n
    }

    /// Replaces the tag index (path → id); bitmaps of tags that no longer exist are dropped.
    pub fn set_tags(&mut self, tags: impl IntoIterator<Item = (String, i64)>) {
        self.tag_ids = tags.into_iter().collect();
        let live: std::collections::HashSet<i64> = self.tag_ids.values().copied().collect();
        self.members.retain(|id, _| live.contains(id));
    }

    pub fn add_member(&mut self, tag_id: i64, who: u32) {
        self.members.entry(tag_id).or_default().insert(who);
    }

    pub fn set_subscribed(&mut self, who: u32, subscribed: bool) {
        if subscribed {
            self.subscribed.insert(who);
        } else {
            self.subscribed.remove(who);
        }
    }

    /// Sets one follower's subscription and tags to what the database holds now. A follower
    /// without a row (erased) also loses their clicks and orders, so that a returning follower
    /// starts afresh as the database does.
    pub fn apply_follower(&mut self, state: &FollowerState) {
        let who = self.number(&state.openid);
        for members in self.members.values_mut() {
            members.remove(who);
        }
        for &tag_id in &state.tag_ids {
            self.add_member(tag_id, who);
        }
        self.set_subscribed(who, state.subscribed == Some(true));
        if state.subscribed.is_none() {
            for timeline in self.clicks.values_mut() {
                timeline.forget(who);
            }
            self.orders.forget(who);
            if let Some(last) = self.last_active.get_mut(who as usize) {
                *last = NEVER;
            }
            for column in self.scores.values_mut() {
                if let Some(score) = column.get_mut(who as usize) {
                    *score = f32::NAN;
                }
            }
        }
    }

    /// A menu click (unix seconds, rounded down).
    pub fn add_click(&mut self, openid: &str, key: &str, at: i64) {
        let who = self.number(openid);
        let timeline = match self.clicks.get_mut(key) {
            Some(timeline) => timeline,
            None => self.clicks.entry(key.to_owned()).or_default(),
        };
        timeline.push(Entry { at, who, value: 1 });
        self.note_activity(who, at);
    }

    /// An interaction other than a click (a message, view, scan or follow), for `active(W)`.
    pub fn add_activity(&mut self, openid: &str, at: i64) {
        let who = self.number(openid);
        self.note_activity(who, at);
    }

    fn note_activity(&mut self, who: u32, at: i64) {
        let who = who as usize;
        if self.last_active.len() <= who {
            self.last_active.resize(who + 1, NEVER);
        }
        self.last_active[who] = self.last_active[who].max(at);
    }

    /// An order (unix seconds, rounded down; cents, negative for a refund).
    pub fn add_order(&mut self, openid: &str, amount_cents: i64, at: i64) {
        let who = self.number(openid);
        self.orders.push(Entry { at, who, value: amount_cents });
    }

    /// Replaces every score of `model` (a scoring run finished): followers not listed have none.
    pub fn set_scores<'a>(&mut self, model: &str, scores: impl IntoIterator<Item = (&'a str, f32)>) {
        if let Some(column) = self.scores.get_mut(model) {
            column.clear();
        }
        for (openid, score) in scores {
            self.put_score(model, openid, score);
        }
    }

    /// One follower's score from `model`, as a build streams them.
    pub fn put_score(&mut self, model: &str, openid: &str, score: f32) {
        let who = self.number(openid) as usize;
        let column = match self.scores.get_mut(model) {
            Some(column) => column,
            None => self.scores.entry(model.to_owned()).or_default(),
        };
        if column.len() <= who {
            column.resize(who + 1, f32::NAN);
        }
        column[who] = score;
    }

    /// The sum of `model`'s scores over `followers`: the expected number of them who do what the
    /// model predicts (预计购买人数 for `purchase_7d`); `None` when nobody has been scored.
    pub fn expected(&self, model: &str, followers: &RoaringBitmap) -> Option<f64> {
        let column = self.scores.get(model).filter(|c| !c.is_empty())?;
        Some(
            followers
                .iter()
                .filter_map(|n| column.get(n as usize))
                .filter(|s| !s.is_nan())
                .map(|s| f64::from(*s))
                .sum(),
        )
    }

    /// Sorts what arrived out of order (after a bulk load).
    pub fn settle(&mut self) {
        for timeline in self.clicks.values_mut() {
            timeline.settle();
        }
        self.orders.settle();
    }

    pub fn size(&self) -> Size {
        Size {
            followers: self.openids.len(),
            subscribed: self.subscribed.len(),
            memberships: self.members.values().map(RoaringBitmap::len).sum(),
            clicks: self.clicks.values().map(Timeline::len).sum(),
            orders: self.orders.len(),
        }
    }

    /// About how many bytes of heap the state holds: the audience index's own accounting, so a
    /// deployment of many small accounts can be compared with one large one. An estimate from
    /// lengths (allocators round up), close enough to show what grows with what.
    pub fn approx_bytes(&self) -> usize {
        const ENTRY: usize = 8 + 4 + 8;
        let openids: usize = self.openids.iter().map(|o| o.len() + 16).sum();
        // Each follower: its slot in `openids` and an entry (key, number, control byte) in `numbers`.
        let numbering = self.openids.len() * (16 + 16 + 4 + 4 + 1);
        let members: usize = self.members.values().map(|m| m.serialized_size() + 48).sum();
        let tags: usize = self.tag_ids.keys().map(|p| p.len() + 40).sum();
        let clicks: usize = self.clicks.iter().map(|(k, t)| k.len() + 96 + t.len() * ENTRY).sum();
        let scores: usize = self.scores.values().map(|c| c.len() * 4 + 64).sum::<usize>() + self.last_active.len() * 8;
        std::mem::size_of::<Self>()
            + openids
            + numbering
            + self.subscribed.serialized_size()
            + members
            + tags
            + clicks
            + self.orders.len() * ENTRY
            + scores
    }

    /// The subscribed followers matching `expr` at `now` (unix seconds).
    pub fn matching(&self, expr: &Expr, now: i64) -> RoaringBitmap {
        TOTALS.with_borrow_mut(|totals| {
            if totals.len() < self.openids.len() {
                totals.resize(self.openids.len(), 0);
            }
            self.eval(expr, now, totals)
        })
    }

    /// How many subscribed followers match `expr` at `now`.
    pub fn count(&self, expr: &Expr, now: i64) -> u64 {
        self.matching(expr, now).len()
    }

    /// How many of `openids` are among `followers`: a few hundred lookups where walking a
    /// million members would hash every openid.
    pub fn count_among<'a>(&self, followers: &RoaringBitmap, openids: impl IntoIterator<Item = &'a str>) -> u64 {
        openids.into_iter().filter_map(|o| self.numbers.get(o)).filter(|n| followers.contains(**n)).count() as u64
    }

    /// The openids of `followers`, in follower-number order.
    pub fn openids<'a>(&'a self, followers: &'a RoaringBitmap) -> impl Iterator<Item = &'a str> + 'a {
        followers.iter().map(|n| &*self.openids[n as usize])
    }

    fn eval(&self, expr: &Expr, now: i64, totals: &mut [i64]) -> RoaringBitmap {
        match expr {
            Expr::Tag(path) => match self.tag_ids.get(path.as_str()).and_then(|id| self.members.get(id)) {
                Some(members) => members & &self.subscribed,
                None => RoaringBitmap::new(),
            },
            Expr::Not(inner) => &self.subscribed - self.eval(inner, now, totals),
            Expr::And(lhs, rhs) => {
                let left = self.eval(lhs, now, totals);
                if left.is_empty() {
                    return left;
                }
                left & self.eval(rhs, now, totals)
            }
            Expr::Or(lhs, rhs) => self.eval(lhs, now, totals) | self.eval(rhs, now, totals),
            Expr::Clicked { key, window, op, count } => match self.clicks.get(key) {
                Some(timeline) => self.compare(timeline, *window, now, Measure::Count, (*op, *count), totals),
                None => self.constant(CmpOp::holds(*op, 0, i128::from(*count))),
            },
            Expr::Orders { window, op, count } => {
                self.compare(&self.orders, *window, now, Measure::Count, (*op, *count), totals)
            }
            Expr::Spent { window, op, cents } => {
                self.compare(&self.orders, *window, now, Measure::Sum, (*op, *cents), totals)
            }
            Expr::Score { model, op, milli } => {
                let Some(column) = self.scores.get(model) else { return RoaringBitmap::new() };
                let threshold = score_threshold(*milli);
                let scored = self.subscribed.iter().filter(|&n| {
                    column.get(n as usize).is_some_and(|s| !s.is_nan() && op.holds(f64::from(*s), threshold))
                });
                RoaringBitmap::from_sorted_iter(scored).expect("a bitmap iterates in order")
            }
            Expr::Active { window } => {
                let cutoff = window.cutoff(now).unwrap_or(NEVER + 1);
                let active = self
                    .subscribed
                    .iter()
                    .filter(|&n| self.last_active.get(n as usize).is_some_and(|&last| last >= cutoff));
                RoaringBitmap::from_sorted_iter(active).expect("a bitmap iterates in order")
            }
        }
    }

    fn constant(&self, holds: bool) -> RoaringBitmap {
        if holds { self.subscribed.clone() } else { RoaringBitmap::new() }
    }

    /// The subscribed followers whose count (or sum) of `timeline` entries inside `window`
    /// compares true to `rhs`. Followers without entries have 0: when 0 satisfies the test, the
    /// answer is everyone except those whose total fails it. A total that comes to 0 (an order
    /// and its refund) is no different from no entries, so `totals` needs no "seen" marks.
    fn compare(
        &self,
        timeline: &Timeline,
        window: Window,
        now: i64,
        measure: Measure,
        (op, rhs): (CmpOp, i64),
        totals: &mut [i64],
    ) -> RoaringBitmap {
        let rhs = i128::from(rhs);
        let zero_holds = op.holds(0, rhs);
        let differing = timeline.differing(window.cutoff(now), measure, self.openids.len(), totals, |total| {
            op.holds(i128::from(total), rhs) != zero_holds
        });
        if zero_holds { &self.subscribed - differing } else { differing & &self.subscribed }
    }
}

thread_local! {
    /// Per-follower totals for [`State::compare`], kept zeroed between uses and reused by every
    /// evaluation on this thread: allocating and zeroing 8 MB per count would cost more than
    /// the count.
    static TOTALS: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::timeline::UNSORTED_LIMIT;
    use super::*;
    use crate::domain::expr::parse;
    use crate::domain::expr::{Click, FollowerFacts, Order};
    use crate::domain::tag::TagPath;

    const NOW: i64 = 1_750_000_000;
    const DAY: i64 = 86_400;

    fn follower(openid: &str, subscribed: Option<bool>, tag_ids: &[i64]) -> FollowerState {
        FollowerState { openid: openid.to_owned(), subscribed, tag_ids: tag_ids.to_vec() }
    }

    fn sample() -> State {
        let mut state = State::default();
        state.set_tags([("肤质/油性".to_owned(), 1), ("消费/VIP".to_owned(), 2)]);
        state.apply_follower(&follower("a", Some(true), &[1]));
        state.apply_follower(&follower("b", Some(true), &[1, 2]));
        state.apply_follower(&follower("c", Some(false), &[1]));
        state.apply_follower(&follower("d", Some(true), &[]));
        state.add_click("a", "SKIN", NOW - DAY);
        state.add_order("b", 30_000, NOW - 10 * DAY);
        state.add_click("a", "SKIN", NOW - 2 * DAY);
        state.add_click("d", "SKIN", NOW - 40 * DAY);
        state.add_order("b", -5_000, NOW - 5 * DAY);
        state.add_order("e", 9_900, NOW);
        state
    }

    fn count(state: &State, expr: &str) -> u64 {
        state.count(&parse(expr).unwrap(), NOW)
    }

    #[test]
    fn count_among_counts_only_matching_followers() {
        let state = sample();
        let oily = state.matching(&parse("\"肤质/油性\"").expect("parses"), NOW);
        // a and b match; c carries the tag but unsubscribed; nobody is unknown.
        assert_eq!(state.count_among(&oily, ["a", "c", "nobody"]), 1);
        assert_eq!(state.count_among(&oily, ["a", "b"]), 2);
    }

    #[test]
    fn only_subscribed_followers_count_and_not_is_relative_to_them() {
        let state = sample();
        assert_eq!(count(&state, r#""肤质/油性""#), 2, "c has the tag but left");
        assert_eq!(count(&state, r#"NOT "肤质/油性""#), 1);
        assert_eq!(count(&state, r#""不存在/的标签""#), 0);
        assert_eq!(count(&state, r#"NOT "不存在/的标签""#), 3);
        assert_eq!(count(&state, r#"clicked("SKIN", 7d) >= 2"#), 1);
        assert_eq!(count(&state, r#"clicked("SKIN", 7d) = 0"#), 2);
        assert_eq!(count(&state, r#"clicked("NEVER", all) = 0"#), 3);
        assert_eq!(count(&state, "orders(all) = 0"), 2, "e ordered but is not a follower");
        assert_eq!(count(&state, "spent(30d) >= 250"), 1, "refunds count negative");
        assert_eq!(count(&state, "spent(6d) < 0"), 1);
    }

    #[test]
    fn re_reading_a_follower_replaces_their_tags_and_erasure_forgets_their_events() {
        let mut state = sample();
        state.apply_follower(&follower("a", Some(true), &[2]));
        assert_eq!(count(&state, r#""消费/VIP""#), 2);
        assert_eq!(count(&state, r#""肤质/油性""#), 1);
        state.apply_follower(&follower("a", None, &[]));
        state.apply_follower(&follower("a", Some(true), &[]));
        assert_eq!(count(&state, r#"clicked("SKIN", all) >= 1"#), 1, "only d's click is left");
        assert_eq!(count(&state, "active(all)"), 1, "a's clicks no longer make them active");
        assert_eq!(count(&state, "orders(all) = 2"), 1);
        state.apply_follower(&follower("b", None, &[]));
        state.apply_follower(&follower("b", Some(true), &[]));
        assert_eq!(count(&state, "orders(all) >= 1"), 0, "b's orders went with the erasure");
        assert_eq!(count(&state, "spent(all) = 0"), 3);
        assert_eq!(count(&state, "orders(30d) >= 1"), 0, "nor are they inside any window");
        assert_eq!(count(&state, r#"clicked("SKIN", 60d) >= 1"#), 1);
    }

    #[test]
    fn out_of_order_entries_are_found_before_and_after_settling() {
        let mut state = sample();
        for n in 0..(UNSORTED_LIMIT + 10) {
            state.add_order("d", 1, NOW - 100 * DAY - n as i64);
        }
        assert_eq!(count(&state, "orders(all) > 4000"), 1);
        assert_eq!(count(&state, "orders(200d) > 4000"), 1);
        assert_eq!(count(&state, "orders(30d) >= 1"), 1, "only b's recent orders");
    }

    #[test]
    fn deleted_tags_drop_their_members() {
        let mut state = sample();
        state.set_tags([("消费/VIP".to_owned(), 2)]);
        assert_eq!(count(&state, r#""肤质/油性""#), 0);
        assert_eq!(state.size().memberships, 1);
    }

    use crate::domain::expr::tests::{KEYS, PATHS};

    #[derive(Debug, Clone)]
    struct Person {
        subscribed: bool,
        tags: Vec<bool>,
        clicks: Vec<(usize, i64)>,
        orders: Vec<(i64, i64)>,
        score: Option<f32>,
        interactions: Vec<i64>,
    }

    fn arb_person() -> impl Strategy<Value = Person> {
        (
            any::<bool>(),
            proptest::collection::vec(any::<bool>(), PATHS.len()),
            proptest::collection::vec((0..KEYS.len(), 0..(100 * DAY)), 0..4),
            proptest::collection::vec((-5_000i64..50_000, 0..(100 * DAY)), 0..4),
            // Scores on a grid of thousandths, so some sit exactly on a threshold.
            proptest::option::of(prop_oneof![(0u16..=1000).prop_map(|m| f32::from(m) / 1000.0), 0.0f32..1.0]),
            proptest::collection::vec(0..(100 * DAY), 0..3),
        )
            .prop_map(|(subscribed, tags, clicks, orders, score, interactions)| Person {
                subscribed,
                tags,
                clicks,
                orders,
                score,
                interactions,
            })
    }

    proptest! {
        /// The index agrees with the reference semantics ([`Expr::eval`]) on random followers and
        /// expressions.
        #[test]
        fn agrees_with_eval(
            people in proptest::collection::vec(arb_person(), 0..12),
            expr in crate::domain::expr::tests::arb_expr(
                prop_oneof![Just(Window::All), (1u32..120).prop_map(Window::Days), (1u32..72).prop_map(Window::Hours)],
                0..4i64,
                prop_oneof![Just(0i64), -5_000..60_000i64],
            ),
        ) {
            let path = |i: usize| TagPath::parse(PATHS[i]).unwrap().as_str().to_owned();
            let mut state = State::default();
            state.set_tags((0..PATHS.len()).map(|i| (path(i), i as i64 + 1)));
            let mut expected = 0;
            for (n, person) in people.iter().enumerate() {
                let openid = format!("o{n}");
                let tag_ids: Vec<i64> =
                    person.tags.iter().enumerate().filter(|(_, has)| **has).map(|(i, _)| i as i64 + 1).collect();
                state.apply_follower(&follower(&openid, Some(person.subscribed), &tag_ids));
                let mut facts = FollowerFacts::default();
                for (i, has) in person.tags.iter().enumerate() {
                    if *has {
                        facts.tags.insert(path(i));
                    }
                }
                for &(key, age) in &person.clicks {
                    state.add_click(&openid, KEYS[key], NOW - age);
                    facts.clicks.push(Click { key: KEYS[key].to_owned(), occurred_at: NOW - age });
                }
                for &(cents, age) in &person.orders {
                    state.add_order(&openid, cents, NOW - age);
                    facts.orders.push(Order { amount_cents: cents, occurred_at: NOW - age });
                }
                for &age in &person.interactions {
                    state.add_activity(&openid, NOW - age);
                    facts.interactions.push(NOW - age);
                }
                if let Some(score) = person.score {
                    state.put_score("purchase_7d", &openid, score);
                    facts.scores.insert("purchase_7d".to_owned(), score);
                }
                if person.subscribed && expr.eval(&facts, NOW) {
                    expected += 1;
                }
            }
            prop_assert_eq!(state.count(&expr, NOW), expected);
        }
    }
}
