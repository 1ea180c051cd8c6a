//! The reference semantics: evaluates an expression against one follower's facts held in memory.
//! Naive on purpose (it scans every click and order for every predicate); it is what the property
//! tests trust and what re-checks one follower's dynamic tags without a query. [`super::sql`] must
//! agree with it.

use std::collections::{HashMap, HashSet};

use super::{Expr, score_threshold};

/// One menu click (an `events` row with `kind = 'click'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    /// The button's EventKey.
    pub key: String,
    /// Unix seconds, rounded down (as SQL compares a `timestamptz` with whole-second cutoffs).
    pub occurred_at: i64,
}

/// One order (an `orders` row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// In cents (分), so sums are exact; negative for a refund.
    pub amount_cents: i64,
    /// Unix seconds, rounded down.
    pub occurred_at: i64,
}

/// What an expression can ask about one follower.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FollowerFacts {
    /// The paths of the tags the follower carries.
    pub tags: HashSet<String>,
    pub clicks: Vec<Click>,
    pub orders: Vec<Order>,
    /// The latest score per prediction model (a `follower_scores` row), when scored.
    pub scores: HashMap<String, f32>,
    /// When they interacted other than by a menu click (a message, view, scan or follow: the rest
    /// of `INTERACTION_KINDS`), unix seconds rounded down; clicks count as interactions too.
    pub interactions: Vec<i64>,
}

impl Expr {
    /// Whether the follower with `facts` matches at `now` (unix seconds).
    pub fn eval(&self, facts: &FollowerFacts, now: i64) -> bool {
        match self {
            Self::Tag(path) => facts.tags.contains(path.as_str()),
            Self::Clicked { key, window, op, count } => {
                let clicks = facts.clicks.iter().filter(|c| c.key == *key && window.contains(c.occurred_at, now));
                op.holds(as_wide(clicks.count()), i128::from(*count))
            }
            Self::Orders { window, op, count } => {
                let orders = facts.orders.iter().filter(|o| window.contains(o.occurred_at, now));
                op.holds(as_wide(orders.count()), i128::from(*count))
            }
            Self::Spent { window, op, cents } => {
                let spent: i128 = facts
                    .orders
                    .iter()
                    .filter(|o| window.contains(o.occurred_at, now))
                    .map(|o| i128::from(o.amount_cents))
                    .sum();
                op.holds(spent, i128::from(*cents))
            }
            Self::Score { model, op, milli } => {
                facts.scores.get(model).is_some_and(|score| op.holds(f64::from(*score), score_threshold(*milli)))
            }
            Self::Active { window } => {
                facts.clicks.iter().any(|c| window.contains(c.occurred_at, now))
                    || facts.interactions.iter().any(|&at| window.contains(at, now))
            }
            Self::Not(inner) => !inner.eval(facts, now),
            Self::And(lhs, rhs) => lhs.eval(facts, now) && rhs.eval(facts, now),
            Self::Or(lhs, rhs) => lhs.eval(facts, now) || rhs.eval(facts, now),
        }
    }
}

fn as_wide(n: usize) -> i128 {
    i128::try_from(n).unwrap_or(i128::MAX)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::tests::{KEYS, PATHS, arb_expr};
    use super::super::{CmpOp, Window, parse};
    use super::*;
    use crate::domain::tag::TagPath;

    const NOW: i64 = 1_750_000_000;
    const DAY: i64 = 86_400;
    const HOUR: i64 = 3_600;

    fn click(key: &str, occurred_at: i64) -> Click {
        Click { key: key.to_owned(), occurred_at }
    }

    fn order(amount_cents: i64, occurred_at: i64) -> Order {
        Order { amount_cents, occurred_at }
    }

    fn eval(expr: &str, facts: &FollowerFacts) -> bool {
        parse(expr).unwrap().eval(facts, NOW)
    }

    #[test]
    fn tags_combine_with_and_or_not() {
        let facts = FollowerFacts { tags: ["肤质/油性".to_owned()].into(), ..Default::default() };
        assert!(eval(r#""肤质/油性""#, &facts));
        assert!(!eval(r#""状态/已购""#, &facts));
        assert!(eval(r#""肤质/油性" AND NOT "状态/已购""#, &facts));
        assert!(!eval(r#""肤质/油性" AND "状态/已购""#, &facts));
        assert!(eval(r#""状态/已购" OR "肤质/油性""#, &facts));
        assert!(eval(r#""状态/已购" OR "肤质/油性" AND NOT "状态/已购""#, &facts));
    }

    #[test]
    fn windows_include_their_far_boundary_and_the_future() {
        let at = |t: i64| FollowerFacts { clicks: vec![click("K", t)], ..Default::default() };
        assert!(eval(r#"clicked("K", 7d)"#, &at(NOW - 7 * DAY)), "exactly 7 days old is inside 7d");
        assert!(!eval(r#"clicked("K", 7d)"#, &at(NOW - 7 * DAY - 1)), "one second older is outside");
        assert!(eval(r#"clicked("K", 24h)"#, &at(NOW - 24 * HOUR)));
        assert!(!eval(r#"clicked("K", 24h)"#, &at(NOW - 24 * HOUR - 1)));
        assert!(eval(r#"clicked("K", 1h)"#, &at(NOW)));
        assert!(eval(r#"clicked("K", 1h)"#, &at(NOW + 30)), "a little clock skew still counts");
        assert!(eval(r#"clicked("K", all)"#, &at(0)));
        assert!(eval(r#"clicked("K", 3650d)"#, &at(NOW - 3650 * DAY)));
        assert!(!eval(r#"clicked("K", 3650d)"#, &at(NOW - 3650 * DAY - 1)));
        assert!(!eval(r#"clicked("OTHER", all)"#, &at(NOW)));
    }

    #[test]
    fn click_counts_compare_when_asked() {
        let facts = FollowerFacts {
            clicks: vec![click("K", NOW - DAY), click("K", NOW - 2 * DAY), click("K", NOW - 40 * DAY), click("J", NOW)],
            ..Default::default()
        };
        assert!(eval(r#"clicked("K", 30d) >= 2"#, &facts));
        assert!(!eval(r#"clicked("K", 30d) >= 3"#, &facts));
        assert!(eval(r#"clicked("K", all) = 3"#, &facts));
        assert!(eval(r#"clicked("J", 1d) = 1"#, &facts));
        assert!(eval(r#"clicked("X", 1d) = 0"#, &facts));
        assert!(!eval(r#"clicked("X", 1d)"#, &facts));
    }

    #[test]
    fn orders_and_spending_are_counted_and_summed_in_cents() {
        let facts = FollowerFacts {
            orders: vec![order(29_900, NOW - DAY), order(20_050, NOW - 10 * DAY), order(-5_000, NOW - 11 * DAY)],
            ..Default::default()
        };
        assert!(eval("orders(30d) = 3", &facts));
        assert!(eval("orders(7d) = 1", &facts));
        assert!(eval("orders(1h) = 0", &facts));
        assert!(eval("spent(7d) = 299", &facts));
        assert!(eval("spent(10d) = 499.5", &facts));
        assert!(eval("spent(30d) = 449.5", &facts), "refunds subtract");
        assert!(eval("spent(30d) < 449.51", &facts));
        assert!(eval("spent(1h) = 0 AND spent(1h) <= 0", &facts), "no orders means spent 0");
        assert!(eval(r#"orders(all) >= 3 AND NOT "VIP""#, &facts));
    }

    #[test]
    fn active_means_any_interaction_or_click_inside_the_window() {
        let message = |at: i64| FollowerFacts { interactions: vec![at], ..Default::default() };
        assert!(eval("active(14d)", &message(NOW - 14 * DAY)), "exactly 14 days old is inside");
        assert!(!eval("active(14d)", &message(NOW - 14 * DAY - 1)));
        assert!(eval("active(all)", &message(0)));
        let clicked = FollowerFacts { clicks: vec![click("K", NOW - HOUR)], ..Default::default() };
        assert!(eval("active(2h)", &clicked), "a click is an interaction");
        assert!(!eval("active(1h) OR active(30d) AND NOT active(all)", &FollowerFacts::default()));
    }

    #[test]
    fn huge_sums_do_not_overflow() {
        let facts = FollowerFacts { orders: vec![order(i64::MAX, NOW); 4], ..Default::default() };
        assert!(eval("spent(all) > 1000000000", &facts));
        let expr = Expr::Orders { window: Window::Days(1), op: CmpOp::Ge, count: 1 };
        // The cutoff saturates instead of overflowing; orders after `now` count, orders long ago don't.
        assert!(expr.eval(&facts, i64::MIN));
        assert!(!expr.eval(&facts, i64::MAX));
    }

    // ---- the second interpretation ----

    /// Negation normal form: `NOT` only on tags, comparisons negated, And/Or swapped (De Morgan).
    enum Nnf {
        Tag(String, bool),
        /// A score comparison, or its negation: an unscored follower fails the comparison, so
        /// `NOT score >= t` is not `score < t` and keeps its `NOT`.
        Score {
            model: String,
            op: CmpOp,
            milli: i64,
            positive: bool,
        },
        /// `active(W)`, or its negation.
        Active(Window, bool),
        Atom(Expr),
        And(Vec<Nnf>),
        Or(Vec<Nnf>),
    }

    fn nnf(expr: &Expr, negate: bool) -> Nnf {
        match expr {
            Expr::Tag(path) => Nnf::Tag(path.as_str().to_owned(), !negate),
            Expr::Clicked { key, window, op, count } => Nnf::Atom(Expr::Clicked {
                key: key.clone(),
                window: *window,
                op: if negate { op.negated() } else { *op },
                count: *count,
            }),
            Expr::Orders { window, op, count } => {
                Nnf::Atom(Expr::Orders { window: *window, op: if negate { op.negated() } else { *op }, count: *count })
            }
            Expr::Spent { window, op, cents } => {
                Nnf::Atom(Expr::Spent { window: *window, op: if negate { op.negated() } else { *op }, cents: *cents })
            }
            Expr::Score { model, op, milli } => {
                Nnf::Score { model: model.clone(), op: *op, milli: *milli, positive: !negate }
            }
            Expr::Active { window } => Nnf::Active(*window, !negate),
            Expr::Not(inner) => nnf(inner, !negate),
            Expr::And(a, b) if !negate => Nnf::And(vec![nnf(a, false), nnf(b, false)]),
            Expr::And(a, b) => Nnf::Or(vec![nnf(a, true), nnf(b, true)]),
            Expr::Or(a, b) if !negate => Nnf::Or(vec![nnf(a, false), nnf(b, false)]),
            Expr::Or(a, b) => Nnf::And(vec![nnf(a, true), nnf(b, true)]),
        }
    }

    /// Evaluates with loops and explicit arithmetic instead of `Window::contains` and `CmpOp::holds`.
    fn eval_nnf(node: &Nnf, facts: &FollowerFacts, now: i64) -> bool {
        fn inside(window: Window, t: i64, now: i64) -> bool {
            match window {
                Window::All => true,
                Window::Days(d) => now - t <= i64::from(d) * 24 * 3600,
                Window::Hours(h) => now - t <= i64::from(h) * 3600,
            }
        }
        fn compare(lhs: i128, op: CmpOp, rhs: i128) -> bool {
            match lhs.cmp(&rhs) {
                std::cmp::Ordering::Less => matches!(op, CmpOp::Lt | CmpOp::Le | CmpOp::Ne),
                std::cmp::Ordering::Equal => matches!(op, CmpOp::Eq | CmpOp::Le | CmpOp::Ge),
                std::cmp::Ordering::Greater => matches!(op, CmpOp::Gt | CmpOp::Ge | CmpOp::Ne),
            }
        }
        match node {
            Nnf::Tag(path, positive) => facts.tags.contains(path) == *positive,
            Nnf::Score { model, op, milli, positive } => {
                let holds = match facts.scores.get(model) {
                    // Thousandths of the threshold against the score scaled alike: the same
                    // comparison as `score >= milli / 1000` written another way.
                    Some(score) => match f64::from(*score).partial_cmp(&(*milli as f64 / 1000.0)) {
                        Some(std::cmp::Ordering::Less) => matches!(op, CmpOp::Lt | CmpOp::Le | CmpOp::Ne),
                        Some(std::cmp::Ordering::Equal) => matches!(op, CmpOp::Eq | CmpOp::Le | CmpOp::Ge),
                        Some(std::cmp::Ordering::Greater) => matches!(op, CmpOp::Gt | CmpOp::Ge | CmpOp::Ne),
                        None => false,
                    },
                    None => false,
                };
                holds == *positive
            }
            Nnf::Active(window, positive) => {
                let mut n = 0;
                for at in facts.clicks.iter().map(|c| c.occurred_at).chain(facts.interactions.iter().copied()) {
                    if inside(*window, at, now) {
                        n += 1;
                    }
                }
                (n > 0) == *positive
            }
            Nnf::And(items) => items.iter().all(|n| eval_nnf(n, facts, now)),
            Nnf::Or(items) => items.iter().any(|n| eval_nnf(n, facts, now)),
            Nnf::Atom(Expr::Clicked { key, window, op, count }) => {
                let mut n = 0;
                for c in &facts.clicks {
                    if &c.key == key && inside(*window, c.occurred_at, now) {
                        n += 1;
                    }
                }
                compare(n, *op, i128::from(*count))
            }
            Nnf::Atom(Expr::Orders { window, op, count }) => {
                let mut n = 0;
                for o in &facts.orders {
                    if inside(*window, o.occurred_at, now) {
                        n += 1;
                    }
                }
                compare(n, *op, i128::from(*count))
            }
            Nnf::Atom(Expr::Spent { window, op, cents }) => {
                let mut sum = 0;
                for o in &facts.orders {
                    if inside(*window, o.occurred_at, now) {
                        sum += i128::from(o.amount_cents);
                    }
                }
                compare(sum, *op, i128::from(*cents))
            }
            Nnf::Atom(other) => unreachable!("nnf never wraps {other:?}"),
        }
    }

    /// Windows and event times chosen to land on, just inside and just outside each other's edges.
    fn arb_window() -> impl Strategy<Value = Window> + Clone {
        prop_oneof![
            Just(Window::Hours(1)),
            Just(Window::Hours(24)),
            Just(Window::Days(1)),
            Just(Window::Days(7)),
            Just(Window::All)
        ]
    }

    fn arb_time() -> impl Strategy<Value = i64> {
        prop_oneof![
            prop::sample::select(vec![0, HOUR, DAY, 7 * DAY, 30 * DAY]).prop_flat_map(|age| age - 1..=age + 1),
            0..8 * DAY,
        ]
        .prop_map(|age| NOW - age)
    }

    fn arb_facts() -> impl Strategy<Value = FollowerFacts> {
        (
            prop::sample::subsequence(PATHS, 0..=PATHS.len()),
            prop::collection::vec((prop::sample::select(KEYS), arb_time()), 0..6),
            prop::collection::vec((-1_000..20_000i64, arb_time()), 0..6),
            prop::option::of(prop_oneof![(0u16..=1000).prop_map(|m| f32::from(m) / 1000.0), 0.0f32..1.0]),
            prop::collection::vec(arb_time(), 0..3),
        )
            .prop_map(|(tags, clicks, orders, score, interactions)| FollowerFacts {
                // Facts hold paths as `TagPath` prints them.
                tags: tags.into_iter().map(|p| TagPath::parse(p).unwrap().as_str().to_owned()).collect(),
                clicks: clicks.into_iter().map(|(k, t)| click(k, t)).collect(),
                orders: orders.into_iter().map(|(a, t)| order(a, t)).collect(),
                scores: score.map(|s| ("purchase_7d".to_owned(), s)).into_iter().collect(),
                interactions,
            })
    }

    fn small_expr() -> impl Strategy<Value = Expr> {
        arb_expr(arb_window(), 0..4i64, prop_oneof![Just(0i64), 0..40_000i64])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn eval_agrees_with_the_negation_normal_form(expr in small_expr(), facts in arb_facts()) {
            prop_assert_eq!(expr.eval(&facts, NOW), eval_nnf(&nnf(&expr, false), &facts, NOW), "{}", expr);
            let negated = Expr::Not(Box::new(expr.clone()));
            prop_assert_eq!(negated.eval(&facts, NOW), eval_nnf(&nnf(&expr, true), &facts, NOW), "{}", negated);
        }

        #[test]
        fn de_morgan_holds(a in small_expr(), b in small_expr(), facts in arb_facts()) {
            let not = |e: &Expr| Expr::Not(Box::new(e.clone()));
            let and = Expr::And(Box::new(a.clone()), Box::new(b.clone()));
            let or = Expr::Or(Box::new(a.clone()), Box::new(b.clone()));
            let not_a_or_not_b = Expr::Or(Box::new(not(&a)), Box::new(not(&b)));
            let not_a_and_not_b = Expr::And(Box::new(not(&a)), Box::new(not(&b)));
            prop_assert_eq!(not(&and).eval(&facts, NOW), not_a_or_not_b.eval(&facts, NOW));
            prop_assert_eq!(not(&or).eval(&facts, NOW), not_a_and_not_b.eval(&facts, NOW));
        }

        #[test]
        fn the_canonical_text_means_the_same(expr in small_expr(), facts in arb_facts()) {
            let reparsed = parse(&expr.to_string()).unwrap();
            prop_assert_eq!(reparsed.eval(&facts, NOW), expr.eval(&facts, NOW));
        }
    }
}
