//! Segment expressions (CONTRACT.md §5): which followers a segment or a dynamic tag (`when = ".."`)
//! means, written as quoted tag paths joined by `AND`, `OR`, `NOT` and parentheses, plus event
//! predicates over a time window.
//!
//! ```text
//! expr      := or
//! or        := and ("OR" and)*
//! and       := not ("AND" not)*
//! not       := "NOT" not | atom
//! atom      := "(" expr ")" | TAGPATH | predicate
//! predicate := "clicked" "(" STRING "," WINDOW ")" [OP COUNT]
//!            | "orders" "(" WINDOW ")" OP COUNT
//!            | "spent" "(" WINDOW ")" OP AMOUNT
//!            | "score" "(" MODEL ")" OP PROBABILITY
//!            | "active" "(" WINDOW ")"
//! WINDOW    := <int>"d" | <int>"h" | "all"          (1 ≤ length ≤ 3650 days)
//! OP        := "=" | "!=" | "<" | "<=" | ">" | ">="
//! TAGPATH   := a double-quoted string (escapes `\"` and `\\`) that `TagPath::parse` accepts
//! MODEL     := one of [`SCORE_MODELS`] (`purchase_7d`)
//! PROBABILITY := 0 to 1 with at most three decimals (`0.6`, `0.125`)
//! ```
//!
//! Keywords, function names, `all` and window units are case-insensitive; `Display` prints the
//! canonical form (upper-case keywords, lower-case functions, the fewest parentheses that keep the
//! tree), and `parse(&e.to_string()) == Ok(e)`.
//!
//! Decisions:
//! - `clicked("KEY", W)` means "at least one click": it is the same tree as
//!   `clicked("KEY", W) >= 1`, which is printed in the short form. Any other comparison
//!   (`clicked("KEY", 30d) >= 3`) counts clicks.
//! - `spent` compares the sum of order amounts in yuan, with at most two decimals
//!   (`spent(90d) >= 499.5`); amounts are kept as whole cents (`i64`), so nothing is rounded.
//!   Order amounts may be negative (refunds) and sum accordingly; a follower with no orders spent 0.
//! - A window is inclusive at its far end and open towards the future: an event counts when
//!   `occurred_at >= now - window`, so an event exactly 7 days old is inside `7d`, and an event
//!   stamped a little after `now` (clock skew) still counts. `all` has no bound.
//! - `score(purchase_7d) >= 0.6` compares the follower's latest predicted probability (the
//!   purchase model's daily scoring, issue 21). Thresholds are kept as whole thousandths, so
//!   nothing is rounded and trees stay `Eq`. A follower with no score (never scored, or scored
//!   before they followed) matches no comparison; `NOT score(..) >= 0.6` includes them.
//! - `active(14d)` means the follower interacted at least once inside the window: any of
//!   [`INTERACTION_KINDS`] (a menu click or link view, a message, a QR scan, a follow). It takes no
//!   comparison: "recent engagement" is a yes/no question, and the audience index keeps only each
//!   follower's latest interaction for it, not every event.
//! - Columns in [`ExprError`] count characters, not bytes, from 1; the input is treated as one line.
//! - Hostile input is bounded: at most [`MAX_INPUT_BYTES`] bytes and [`MAX_DEPTH`] nested
//!   parentheses/`NOT`s; numbers are checked, never overflow.
//!
//! Pure: [`parse`] and [`Expr::eval`] (in memory, the reference semantics). The same semantics as
//! one SQL condition plus bind parameters is `store::segments::compile`; nothing here is SQL.

mod error;
mod eval;
mod lexer;
mod parser;
mod unknown_tags;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::tag::TagPath;

pub use error::{AmountError, CountError, ExprError, ExprErrorKind, KeyError, WindowError};
pub use eval::{Click, FollowerFacts, Order};
pub use lexer::Tok;
pub use parser::parse;
pub use unknown_tags::{UnknownTag, nearest, unknown_tags};

/// Longest accepted expression, in bytes (about 1,300 Chinese characters).
pub const MAX_INPUT_BYTES: usize = 4096;
/// Deepest accepted nesting of `(` and `NOT`, so hostile input cannot exhaust the stack.
pub const MAX_DEPTH: usize = 64;
/// Longest window: ten years.
pub const MAX_WINDOW_DAYS: u32 = 3650;
/// Largest count a `clicked`/`orders` comparison accepts.
pub const MAX_COUNT: i64 = 1_000_000_000;
/// Largest amount a `spent` comparison accepts, in cents (one billion yuan).
pub const MAX_AMOUNT_CENTS: i64 = 100_000_000_000;
/// WeChat's limit on a menu button's `key` (EventKey), in bytes.
pub const MAX_KEY_BYTES: usize = 128;
/// The prediction models `score(..)` can name, with what each predicts in the operator's words.
pub const SCORE_MODELS: &[(&str, &str)] = &[("purchase_7d", "7 天内下单的概率")];

/// The `events.kind`s that count as an interaction for `active(W)`: the follower's own pushes
/// (the same kinds the purchase model reads), not `unsubscribe` or WeChat's delivery reports.
pub const INTERACTION_KINDS: &[&str] = &["click", "view", "text", "subscribe", "scan"];

/// A parsed segment expression.
///
/// `And` and `Or` are binary; the parser nests chains to the left (`a AND b AND c` is
/// `And(And(a, b), c)`), and `Display` adds parentheses only where another shape needs them.
/// The parser keeps numbers within [`MAX_COUNT`]/[`MAX_AMOUNT_CENTS`] (never negative) and keys
/// within WeChat's rules; a tree built by hand outside those bounds still evaluates and compiles,
/// but its text will not parse back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Expr {
    /// The follower carries this tag.
    Tag(TagPath),
    /// The number of menu clicks with this EventKey inside the window compares true to `count`.
    Clicked {
        /// The menu button's EventKey.
        key: String,
        window: Window,
        op: CmpOp,
        count: i64,
    },
    /// The number of orders inside the window compares true to `count`.
    Orders { window: Window, op: CmpOp, count: i64 },
    /// The sum of order amounts inside the window, in cents, compares true to `cents`.
    Spent { window: Window, op: CmpOp, cents: i64 },
    /// The follower's latest score from `model` (one of [`SCORE_MODELS`]) compares true to
    /// `milli` thousandths; no score never does.
    Score { model: String, op: CmpOp, milli: i64 },
    /// The follower interacted (any of [`INTERACTION_KINDS`]) at least once inside the window.
    Active { window: Window },
    /// `NOT e`.
    Not(Box<Expr>),
    /// `a AND b`.
    And(Box<Expr>, Box<Expr>),
    /// `a OR b`.
    Or(Box<Expr>, Box<Expr>),
}

/// How far back an event predicate looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Window {
    /// `7d`: the last N×24 hours.
    Days(u32),
    /// `24h`: the last N hours.
    Hours(u32),
    /// `all`: ever.
    All,
}

/// A comparison between a count (or a sum) and the number written after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// What an expression needs from time, for scheduling dynamic tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowSummary {
    /// The longest bounded window (`d`/`h`) used, if any. While it is `Some`, the value can change
    /// with no new event (an event ages out), so it must be re-evaluated as time passes; events
    /// older than this window cannot affect the bounded predicates.
    pub largest: Option<Window>,
    /// Some predicate uses `all`: every event ever matters, but ageing never changes the result.
    pub all_time: bool,
}

impl WindowSummary {
    /// True when the result may change just because time passes.
    pub fn time_dependent(&self) -> bool {
        self.largest.is_some()
    }

    /// True when events (clicks, orders) can change the result at all.
    pub fn event_dependent(&self) -> bool {
        self.largest.is_some() || self.all_time
    }
}

impl Expr {
    /// The tag paths the expression references, each once, in order of first appearance.
    pub fn tag_paths(&self) -> Vec<&TagPath> {
        let mut paths = Vec::new();
        self.visit(&mut |e| {
            if let Self::Tag(path) = e {
                if !paths.contains(&path) {
                    paths.push(path);
                }
            }
        });
        paths
    }

    /// Points every reference to the tag `from` at `to` (a tag was renamed); true when any did.
    pub fn rename_tag(&mut self, from: &str, to: &TagPath) -> bool {
        match self {
            Self::Tag(path) if path.as_str() == from => {
                *path = to.clone();
                true
            }
            Self::Not(inner) => inner.rename_tag(from, to),
            Self::And(lhs, rhs) | Self::Or(lhs, rhs) => {
                // Both sides, not `||`: the second must be renamed even when the first was.
                let left = lhs.rename_tag(from, to);
                rhs.rename_tag(from, to) | left
            }
            Self::Tag(_)
            | Self::Clicked { .. }
            | Self::Orders { .. }
            | Self::Spent { .. }
            | Self::Score { .. }
            | Self::Active { .. } => false,
        }
    }

    /// The windows the expression's event predicates use; see [`WindowSummary`].
    pub fn windows(&self) -> WindowSummary {
        let mut summary = WindowSummary::default();
        self.visit(&mut |e| {
            let window = match e {
                Self::Clicked { window, .. }
                | Self::Orders { window, .. }
                | Self::Spent { window, .. }
                | Self::Active { window } => *window,
                _ => return,
            };
            match window.seconds() {
                None => summary.all_time = true,
                Some(secs) => {
                    if summary.largest.and_then(Window::seconds).is_none_or(|largest| secs > largest) {
                        summary.largest = Some(window);
                    }
                }
            }
        });
        summary
    }

    /// Calls `f` on every node, parents before children, left before right.
    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Self)) {
        f(self);
        match self {
            Self::Not(inner) => inner.visit(f),
            Self::And(lhs, rhs) | Self::Or(lhs, rhs) => {
                lhs.visit(f);
                rhs.visit(f);
            }
            Self::Tag(_)
            | Self::Clicked { .. }
            | Self::Orders { .. }
            | Self::Spent { .. }
            | Self::Score { .. }
            | Self::Active { .. } => {}
        }
    }
}

impl Window {
    /// The window's length, or `None` for `all`.
    pub fn seconds(self) -> Option<i64> {
        match self {
            Self::Days(days) => Some(i64::from(days) * 86_400),
            Self::Hours(hours) => Some(i64::from(hours) * 3_600),
            Self::All => None,
        }
    }

    /// The oldest instant (unix seconds) still inside the window at `now`, or `None` for `all`.
    /// Inclusive: an event at exactly the cutoff counts.
    pub fn cutoff(self, now: i64) -> Option<i64> {
        self.seconds().map(|secs| now.saturating_sub(secs))
    }

    /// Whether an event at `occurred_at` is inside the window at `now` (events after `now` are).
    pub fn contains(self, occurred_at: i64, now: i64) -> bool {
        self.cutoff(now).is_none_or(|cutoff| occurred_at >= cutoff)
    }
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }

    /// `lhs op rhs`: counts and sums as wide integers (a sum of many large amounts cannot
    /// overflow), scores as `f64` (NaN holds nothing but `!=`; callers keep it out).
    pub fn holds<T: PartialOrd>(self, lhs: T, rhs: T) -> bool {
        match self {
            Self::Eq => lhs == rhs,
            Self::Ne => lhs != rhs,
            Self::Lt => lhs < rhs,
            Self::Le => lhs <= rhs,
            Self::Gt => lhs > rhs,
            Self::Ge => lhs >= rhs,
        }
    }

    /// The operator that holds exactly when this one does not (`NOT (x >= n)` is `x < n`).
    pub fn negated(self) -> Self {
        match self {
            Self::Eq => Self::Ne,
            Self::Ne => Self::Eq,
            Self::Lt => Self::Ge,
            Self::Le => Self::Gt,
            Self::Gt => Self::Le,
            Self::Ge => Self::Lt,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Days(days) => write!(f, "{days}d"),
            Self::Hours(hours) => write!(f, "{hours}h"),
            Self::All => f.write_str("all"),
        }
    }
}

/// Writes `s` double-quoted, escaping `"` and `\` (the only escapes the lexer knows).
fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// Yuan with at most two decimals and no trailing zeros: 50000 → `500`, 50050 → `500.5`.
fn write_amount(f: &mut fmt::Formatter<'_>, cents: i64) -> fmt::Result {
    let (yuan, rest) = (cents / 100, cents % 100);
    match rest {
        0 => write!(f, "{yuan}"),
        r if r % 10 == 0 => write!(f, "{yuan}.{}", r / 10),
        r => write!(f, "{yuan}.{r:02}"),
    }
}

/// A `score(..)` threshold of `milli` thousandths as the float both evaluations compare with.
pub fn score_threshold(milli: i64) -> f64 {
    milli as f64 / 1000.0
}

/// Thousandths as a probability with no trailing zeros: 600 → `0.6`, 1000 → `1`, 125 → `0.125`.
fn write_probability(f: &mut fmt::Formatter<'_>, milli: i64) -> fmt::Result {
    let (whole, mut rest) = (milli / 1000, milli % 1000);
    if rest == 0 {
        return write!(f, "{whole}");
    }
    let mut digits = 3;
    while rest % 10 == 0 {
        rest /= 10;
        digits -= 1;
    }
    write!(f, "{whole}.{rest:0digits$}")
}

impl Expr {
    /// The prediction models the expression reads, each once.
    pub fn score_models(&self) -> Vec<&str> {
        let mut models = Vec::new();
        self.visit(&mut |e| {
            if let Self::Score { model, .. } = e {
                if !models.contains(&model.as_str()) {
                    models.push(model.as_str());
                }
            }
        });
        models
    }

    /// Writes `self`, parenthesised when `wrap`.
    fn write_operand(&self, f: &mut fmt::Formatter<'_>, wrap: bool) -> fmt::Result {
        if wrap { write!(f, "({self})") } else { write!(f, "{self}") }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tag(path) => write_quoted(f, path.as_str()),
            Self::Clicked { key, window, op, count } => {
                f.write_str("clicked(")?;
                write_quoted(f, key)?;
                write!(f, ", {window})")?;
                if (*op, *count) != (CmpOp::Ge, 1) {
                    write!(f, " {op} {count}")?;
                }
                Ok(())
            }
            Self::Orders { window, op, count } => write!(f, "orders({window}) {op} {count}"),
            Self::Spent { window, op, cents } => {
                write!(f, "spent({window}) {op} ")?;
                write_amount(f, *cents)
            }
            Self::Score { model, op, milli } => {
                write!(f, "score({model}) {op} ")?;
                write_probability(f, *milli)
            }
            Self::Active { window } => write!(f, "active({window})"),
            Self::Not(inner) => {
                f.write_str("NOT ")?;
                inner.write_operand(f, matches!(**inner, Self::And(..) | Self::Or(..)))
            }
            // Chains nest to the left, so a right operand of the same kind needs parentheses.
            Self::And(lhs, rhs) => {
                lhs.write_operand(f, matches!(**lhs, Self::Or(..)))?;
                f.write_str(" AND ")?;
                rhs.write_operand(f, matches!(**rhs, Self::And(..) | Self::Or(..)))
            }
            Self::Or(lhs, rhs) => {
                lhs.write_operand(f, false)?;
                f.write_str(" OR ")?;
                rhs.write_operand(f, matches!(**rhs, Self::Or(..)))
            }
        }
    }
}

impl FromStr for Expr {
    type Err = ExprError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

impl TryFrom<String> for Expr {
    type Error = ExprError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        parse(&value)
    }
}

impl From<Expr> for String {
    fn from(expr: Expr) -> Self {
        expr.to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;

    fn path(s: &str) -> Expr {
        Expr::Tag(TagPath::parse(s).unwrap())
    }

    fn not(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }

    fn and(a: Expr, b: Expr) -> Expr {
        Expr::And(Box::new(a), Box::new(b))
    }

    fn or(a: Expr, b: Expr) -> Expr {
        Expr::Or(Box::new(a), Box::new(b))
    }

    #[test]
    fn renaming_a_tag_rewrites_every_reference_and_nothing_else() {
        let mut e = parse(r#""兴趣/美妆" AND NOT ("兴趣/美妆" OR "兴趣/美妆2") AND orders(30d) >= 1"#).unwrap();
        let to = TagPath::parse("兴趣/彩妆").unwrap();
        assert!(e.rename_tag("兴趣/美妆", &to));
        assert_eq!(e.to_string(), r#""兴趣/彩妆" AND NOT ("兴趣/彩妆" OR "兴趣/美妆2") AND orders(30d) >= 1"#);
        assert!(!e.rename_tag("兴趣/美妆", &to), "nothing left to rename");
        assert_eq!(parse(&e.to_string()), Ok(e));
    }

    #[test]
    fn not_binds_tighter_than_and_which_binds_tighter_than_or() {
        let (a, b, c) = (path("A"), path("B"), path("C"));
        let expected = or(a.clone(), and(b.clone(), not(c.clone())));
        assert_eq!(parse(r#""A" OR "B" AND NOT "C""#).unwrap(), expected);
        assert_eq!(parse(r#""A" OR ("B" AND (NOT "C"))"#).unwrap(), expected);
        assert_eq!(parse(r#"("A" OR "B") AND NOT "C""#).unwrap(), and(or(a.clone(), b.clone()), not(c.clone())));
        assert_eq!(parse(r#"NOT NOT "A""#).unwrap(), not(not(a.clone())));
        assert_eq!(parse(r#"NOT ("A" OR "B")"#).unwrap(), not(or(a.clone(), b.clone())));
    }

    #[test]
    fn chains_nest_to_the_left_and_parentheses_are_kept() {
        let (a, b, c) = (path("A"), path("B"), path("C"));
        assert_eq!(parse(r#""A" AND "B" AND "C""#).unwrap(), and(and(a.clone(), b.clone()), c.clone()));
        assert_eq!(parse(r#""A" AND ("B" AND "C")"#).unwrap(), and(a.clone(), and(b.clone(), c.clone())));
        assert_eq!(parse(r#""A" or "B" Or "C""#).unwrap(), or(or(a.clone(), b.clone()), c.clone()));
        assert_eq!(parse(r#"((("A")))"#).unwrap(), a);
    }

    #[test]
    fn keywords_functions_and_units_are_case_insensitive() {
        let lower = parse(r#""A" and not "B" or Clicked("K", 7D) OR ORDERS(ALL) >= 1 or spent(24H) > 0"#).unwrap();
        let canonical = r#""A" AND NOT "B" OR clicked("K", 7d) OR orders(all) >= 1 OR spent(24h) > 0"#;
        assert_eq!(lower.to_string(), canonical);
        assert_eq!(parse(canonical).unwrap(), lower);
    }

    #[test]
    fn the_contract_example_parses_and_prints_canonically() {
        let input = r#""肤质/油性"   and NOT "状态/已购" AND orders(30d)=0"#;
        let expr = parse(input).unwrap();
        assert_eq!(expr.to_string(), r#""肤质/油性" AND NOT "状态/已购" AND orders(30d) = 0"#);
        assert_eq!(
            expr,
            and(
                and(path("肤质/油性"), not(path("状态/已购"))),
                Expr::Orders { window: Window::Days(30), op: CmpOp::Eq, count: 0 }
            )
        );
    }

    #[test]
    fn display_adds_only_the_parentheses_the_tree_needs() {
        let cases = [
            (r#"("A" OR "B") AND "C""#, r#"("A" OR "B") AND "C""#),
            (r#""A" AND ("B" OR "C")"#, r#""A" AND ("B" OR "C")"#),
            (r#"("A" AND "B") OR "C""#, r#""A" AND "B" OR "C""#),
            (r#""A" OR ("B" OR "C")"#, r#""A" OR ("B" OR "C")"#),
            (r#"("A" OR "B") OR "C""#, r#""A" OR "B" OR "C""#),
            (r#"NOT ("A")"#, r#"NOT "A""#),
            (r#"NOT (NOT "A" AND "B")"#, r#"NOT (NOT "A" AND "B")"#),
            (r#"NOT orders(7d) > 2"#, r#"NOT orders(7d) > 2"#),
            (r#" " 肤质 / 油性 " "#, r#""肤质/油性""#),
            (r#""a\"b\\c""#, r#""a\"b\\c""#),
            (r#"clicked( "K" , 7d ) >= 1"#, r#"clicked("K", 7d)"#),
            (r#"clicked("K", 7d) >= 2"#, r#"clicked("K", 7d) >= 2"#),
            (r#"clicked("K", 7d) > 0"#, r#"clicked("K", 7d) > 0"#),
            (r#"spent(90d) >= 500.00"#, r#"spent(90d) >= 500"#),
            (r#"spent(90d) >= 500.5"#, r#"spent(90d) >= 500.5"#),
            (r#"spent(90d) >= 0.05"#, r#"spent(90d) >= 0.05"#),
            (r#"spent(all)<=12.34"#, r#"spent(all) <= 12.34"#),
        ];
        for (input, canonical) in cases {
            let expr = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(expr.to_string(), canonical, "{input}");
            assert_eq!(parse(canonical).unwrap(), expr, "{canonical}");
        }
    }

    #[test]
    fn tag_paths_are_listed_once_in_order_of_appearance() {
        let expr = parse(r#""B" AND (NOT "A" OR "B") AND orders(7d) >= 1 OR " A ""#).unwrap();
        let paths: Vec<&str> = expr.tag_paths().into_iter().map(TagPath::as_str).collect();
        assert_eq!(paths, ["B", "A"]);
        assert!(parse("orders(all) >= 3").unwrap().tag_paths().is_empty());
    }

    #[test]
    fn windows_report_the_longest_bounded_window_and_any_all() {
        let summary = parse(r#""A""#).unwrap().windows();
        assert_eq!(summary, WindowSummary { largest: None, all_time: false });
        assert!(!summary.time_dependent() && !summary.event_dependent());

        let summary = parse("orders(all) >= 3").unwrap().windows();
        assert_eq!(summary, WindowSummary { largest: None, all_time: true });
        assert!(!summary.time_dependent() && summary.event_dependent());

        let summary = parse(r#"clicked("K", 48h) AND NOT (spent(7d) > 1 OR orders(all) = 0) OR orders(169h) > 1"#)
            .unwrap()
            .windows();
        assert_eq!(summary, WindowSummary { largest: Some(Window::Hours(169)), all_time: true });
        assert!(summary.time_dependent());

        // Equal lengths keep the first one seen.
        let summary = parse(r#"orders(7d) > 1 OR orders(168h) > 1"#).unwrap().windows();
        assert_eq!(summary.largest, Some(Window::Days(7)));
    }

    #[test]
    fn expressions_serialize_as_their_canonical_text() {
        let expr = parse(r#""A"  and orders(7d)>1"#).unwrap();
        let json = serde_json::to_string(&expr).unwrap();
        assert_eq!(json, r#""\"A\" AND orders(7d) > 1""#);
        assert_eq!(serde_json::from_str::<Expr>(&json).unwrap(), expr);
        assert!(serde_json::from_str::<Expr>(r#""\"A\" AND""#).is_err());
    }

    /// The longest input a flat OR chain can have: 4 KiB nesting ~580 deep.
    pub(crate) fn longest_flat_chain() -> String {
        let mut input = String::from(r#""A""#);
        while input.len() + 7 <= MAX_INPUT_BYTES {
            input.push_str(r#" OR "B""#);
        }
        input
    }

    /// Runs `check` on a thread with a 1 MiB stack, a worker thread's budget to spare.
    pub(crate) fn on_a_small_stack(check: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new().stack_size(1 << 20).spawn(check).unwrap().join().unwrap();
    }

    #[test]
    fn the_longest_flat_chain_is_handled_on_a_small_stack() {
        // Displaying, evaluating and dropping it must fit well within a worker thread's stack
        // (compiling it to SQL is checked in `store::segments::compile`).
        let input = longest_flat_chain();
        on_a_small_stack(move || {
            let expr = parse(&input).unwrap();
            assert_eq!(expr.to_string(), input);
            let facts = FollowerFacts::default();
            assert!(!expr.eval(&facts, 0));
        });
    }

    // ---- generators shared with eval's and sql's property tests ----

    /// Paths that exercise escaping, Chinese text and SQL-looking content.
    pub(crate) const PATHS: &[&str] = &["肤质/油性", "状态/已购", "VIP", r#"a"b\c"#, "x'); DROP TABLE tags; --"];
    /// Menu keys, likewise.
    pub(crate) const KEYS: &[&str] = &["SKIN_TEST", "菜单/优惠", r#"k"\"#, "' OR 1=1 --"];

    pub(crate) fn arb_op() -> impl Strategy<Value = CmpOp> {
        prop_oneof![
            Just(CmpOp::Eq),
            Just(CmpOp::Ne),
            Just(CmpOp::Lt),
            Just(CmpOp::Le),
            Just(CmpOp::Gt),
            Just(CmpOp::Ge)
        ]
    }

    fn arb_any_window() -> impl Strategy<Value = Window> + Clone {
        prop_oneof![
            (1..=MAX_WINDOW_DAYS).prop_map(Window::Days),
            (1..=MAX_WINDOW_DAYS * 24).prop_map(Window::Hours),
            Just(Window::All),
        ]
    }

    /// Trees from leaves, nesting a few levels: far below [`MAX_DEPTH`] and [`MAX_INPUT_BYTES`].
    pub(crate) fn arb_expr(
        window: impl Strategy<Value = Window> + Clone + 'static,
        count: impl Strategy<Value = i64> + Clone + 'static,
        cents: impl Strategy<Value = i64> + Clone + 'static,
    ) -> impl Strategy<Value = Expr> {
        let leaf = prop_oneof![
            prop::sample::select(PATHS).prop_map(|p| Expr::Tag(TagPath::parse(p).unwrap())),
            (prop::sample::select(KEYS), window.clone(), arb_op(), count.clone())
                .prop_map(|(key, window, op, count)| Expr::Clicked { key: key.to_owned(), window, op, count }),
            (window.clone(), arb_op(), count).prop_map(|(window, op, count)| Expr::Orders { window, op, count }),
            (window.clone(), arb_op(), cents).prop_map(|(window, op, cents)| Expr::Spent { window, op, cents }),
            // `=` and `!=` are refused for scores.
            (
                prop::sample::select(vec![CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge]),
                prop_oneof![Just(0i64), Just(500), Just(1000), 0..=1000i64]
            )
                .prop_map(|(op, milli)| Expr::Score { model: "purchase_7d".to_owned(), op, milli }),
            window.prop_map(|window| Expr::Active { window }),
        ];
        leaf.prop_recursive(5, 24, 2, |inner| {
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner).prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
            ]
        })
    }

    /// Valid tokens in random order: mostly errors, deep in the grammar.
    fn token_soup() -> impl Strategy<Value = String> {
        let tokens = vec![
            "(",
            ")",
            "AND",
            "or",
            "NOT",
            "\"肤质/油性\"",
            "clicked",
            "orders",
            "spent",
            "active",
            "(30d)",
            ",",
            "7d",
            "\"K\"",
            ">=",
            "=",
            "1",
            "2.5",
            "all",
        ];
        prop::collection::vec(prop::sample::select(tokens), 0..20).prop_map(|v| v.join(" "))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn display_then_parse_gives_back_the_same_tree(
            expr in arb_expr(arb_any_window(), 0..=MAX_COUNT, 0..=MAX_AMOUNT_CENTS)
        ) {
            let text = expr.to_string();
            prop_assert_eq!(parse(&text), Ok(expr), "{}", text);
        }

        #[test]
        fn arbitrary_input_never_panics(
            input in prop_oneof![
                "[\"()a-zA-Z0-9 ,.=<>!\\\\肤质/_-]{0,60}",
                any::<String>(),
                token_soup(),
            ]
        ) {
            match parse(&input) {
                Ok(expr) => prop_assert_eq!(parse(&expr.to_string()), Ok(expr)),
                Err(e) => prop_assert!((1..=input.chars().count() + 1).contains(&e.position), "{}: {}", input, e),
            }
        }
    }
}
