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
//! WINDOW    := <int>"d" | <int>"h" | "all"          (1 ≤ length ≤ 3650 days)
//! OP        := "=" | "!=" | "<" | "<=" | ">" | ">="
//! TAGPATH   := a double-quoted string (escapes `\"` and `\\`) that `TagPath::parse` accepts
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
//! - Columns in [`ExprError`] count characters, not bytes, from 1; the input is treated as one line.
//! - Hostile input is bounded: at most [`MAX_INPUT_BYTES`] bytes and [`MAX_DEPTH`] nested
//!   parentheses/`NOT`s; numbers are checked, never overflow.
//!
//! Pure: [`parse`] and [`Expr::eval`] (in memory, the reference semantics). The same semantics as
//! one SQL condition plus bind parameters is `store::segments::compile`; nothing here is SQL.

mod eval;
mod lexer;
mod parser;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::order::YuanError;
use super::tag::{TagPath, TagPathError};

pub use eval::{Click, FollowerFacts, Order};
pub use lexer::Tok;
pub use parser::parse;

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

/// Why an expression was refused: where (a 1-based column in characters) and what to fix.
/// The API answers it as `400 invalid_expression` with the position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {position}: {kind}")]
pub struct ExprError {
    /// 1-based column in characters (not bytes); one past the last character for "unexpected end".
    pub position: usize,
    /// What is wrong and, where it helps, what to write instead.
    #[source]
    pub kind: ExprErrorKind,
}

impl ExprError {
    pub(crate) fn at(position: usize, kind: impl Into<ExprErrorKind>) -> Self {
        Self { position, kind: kind.into() }
    }
}

/// What is wrong at an [`ExprError`]'s position. Variants that name a token carry it as `found`
/// (shown as the expression has it, a long string shortened); the message (`Display`) says what
/// to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExprErrorKind {
    /// More than [`MAX_INPUT_BYTES`]; `bytes` is the input's length.
    TooLong { bytes: usize },
    /// Nothing but spaces.
    Empty,
    /// A token after a whole expression; `suggestion` is the keyword a word was probably meant to be.
    Trailing { found: Tok, suggestion: Option<&'static str> },
    /// More than [`MAX_DEPTH`] `(` and `NOT` around this one.
    TooDeep,
    /// The input ends inside the `(` at column `open`.
    Unclosed { open: usize },
    /// Something else where the `)` of the `(` at column `open` should be.
    ExpectedClose { open: usize, found: Tok },
    /// The input ends where an operand should start.
    UnexpectedEnd,
    /// A token no operand starts with (a number, a comma, an operator…).
    ExpectedOperand { found: Tok },
    /// `AND`, `OR` or `NOT` where an operand should start.
    KeywordAsOperand { found: Tok },
    /// A word followed by `(`, or a near miss of a function name (`suggestion`).
    UnknownFunction { word: String, suggestion: Option<&'static str> },
    /// A bare word, most likely a tag path without its double quotes.
    UnquotedPath { word: String },
    /// No `(` after `function`.
    ExpectedOpenParen { function: String, found: Tok },
    /// No quoted key as `clicked`'s first argument.
    ExpectedKey { found: Tok },
    /// No `,` after `clicked`'s key.
    ExpectedComma { found: Tok },
    /// No window where one should be.
    ExpectedWindow { found: Tok },
    /// The input ends inside the `(` of `function` at column `open`.
    UnclosedCall { function: String, open: usize },
    /// Something else where the `)` after the window should be.
    ExpectedCallClose { found: Tok },
    /// `orders(..)` or `spent(..)` without `>= N`.
    MissingComparison { function: String, window: Window, found: Tok },
    /// No number after the operator `op`.
    ExpectedNumber { op: CmpOp, found: Tok },
    /// `==`.
    DoubleEquals,
    /// `!` not followed by `=`.
    Bang,
    /// `<>`.
    AngleNotEqual,
    /// A character no token starts with.
    UnexpectedChar { ch: char },
    /// A `"` never closed; the position is the opening quote's.
    UnterminatedString,
    /// A backslash before `ch`, which is neither `"` nor `\\`.
    UnknownEscape { ch: char },
    /// A quoted tag path that is not a valid one.
    TagPath(#[source] TagPathError),
    /// The menu key of `clicked("KEY", ..)`.
    Key(#[from] KeyError),
    /// The window of a predicate.
    Window(#[from] WindowError),
    /// The count compared against `clicked`/`orders`.
    Count(#[from] CountError),
    /// The amount compared against `spent`.
    Amount(#[from] AmountError),
    /// A dynamic tag's expression that names the tag itself (checked where the tag is known).
    SelfReference { path: TagPath },
}

impl fmt::Display for ExprErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const OPERAND: &str = "a tag path in double quotes, `NOT`, `(` or a predicate";
        match self {
            Self::TooLong { bytes } => {
                write!(f, "the expression is {bytes} bytes long; at most {MAX_INPUT_BYTES} are allowed")
            }
            Self::Empty => f.write_str("empty expression: write a tag path such as \"肤质/油性\" or a predicate"),
            Self::Trailing { found, suggestion } => {
                write!(f, "unexpected {found} after a complete expression; ")?;
                match (found, suggestion) {
                    (Tok::RParen, _) => f.write_str("there is no `(` for this `)` to close"),
                    (_, Some(keyword)) => write!(f, "did you mean `{keyword}`?"),
                    (_, None) => f.write_str("join expressions with AND or OR"),
                }
            }
            Self::TooDeep => write!(f, "nesting deeper than {MAX_DEPTH} levels of `(` and `NOT`"),
            Self::Unclosed { open } => write!(f, "missing `)`: the `(` at column {open} is never closed"),
            Self::ExpectedClose { open, found } => {
                write!(f, "expected AND, OR or `)` to close the `(` at column {open}, found {found}")
            }
            Self::UnexpectedEnd => {
                write!(f, "unexpected end of the expression: expected {OPERAND} such as orders(30d) >= 1")
            }
            Self::ExpectedOperand { found } => write!(f, "expected {OPERAND}, found {found}"),
            Self::KeywordAsOperand { found } => {
                write!(f, "expected a tag path, `NOT`, `(` or a predicate, found {found}")
            }
            Self::UnknownFunction { word, suggestion: Some(name) } => {
                write!(f, "unknown function `{word}`; did you mean `{name}`?")
            }
            Self::UnknownFunction { word, suggestion: None } => {
                write!(f, "unknown function `{word}`; the functions are clicked, orders and spent")
            }
            Self::UnquotedPath { word } => {
                write!(f, "unexpected `{word}`; tag paths must be in double quotes, like \"{word}\"")
            }
            Self::ExpectedOpenParen { function, found } => write!(f, "expected `(` after `{function}`, found {found}"),
            Self::ExpectedKey { found } => {
                write!(f, "expected the menu key in double quotes, like clicked(\"KEY\", 7d), found {found}")
            }
            Self::ExpectedComma { found } => {
                write!(f, "expected `,` and a window after the key, like clicked(\"KEY\", 7d), found {found}")
            }
            Self::ExpectedWindow { found } => write!(f, "expected a window like `7d`, `24h` or `all`, found {found}"),
            Self::UnclosedCall { function, open } => {
                write!(f, "missing `)`: the `(` of `{function}` at column {open} is never closed")
            }
            Self::ExpectedCallClose { found } => write!(f, "expected `)` after the window, found {found}"),
            Self::MissingComparison { function, window, found } => {
                let written = format!("{function}({window})");
                write!(f, "missing comparison after `{written}`, like `{written} >= 1`; found {found}")
            }
            Self::ExpectedNumber { op, found } => write!(f, "expected a number after `{op}`, found {found}"),
            Self::DoubleEquals => f.write_str("`==` is not an operator; write `=`"),
            Self::Bang => f.write_str("unexpected `!`; write `NOT` to negate"),
            Self::AngleNotEqual => f.write_str("`<>` is not an operator; write `!=`"),
            Self::UnexpectedChar { ch } => lexer::write_unexpected_char(f, *ch),
            Self::UnterminatedString => f.write_str("unterminated string: the `\"` opened here is never closed"),
            Self::UnknownEscape { ch } => {
                write!(f, "unknown escape `\\{ch}` in a string; only `\\\"` and `\\\\` are allowed")
            }
            Self::TagPath(error) => write!(f, "invalid tag path: {error}"),
            Self::Key(error) => fmt::Display::fmt(error, f),
            Self::Window(error) => fmt::Display::fmt(error, f),
            Self::Count(error) => fmt::Display::fmt(error, f),
            Self::Amount(error) => fmt::Display::fmt(error, f),
            Self::SelfReference { path } => {
                write!(f, "`{path}` names itself; a dynamic tag cannot depend on itself")
            }
        }
    }
}

/// Why the menu key of `clicked("KEY", ..)` was refused: WeChat allows 1–[`MAX_KEY_BYTES`] bytes
/// without control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the menu key is empty")]
    Empty,
    #[error("the menu key is {bytes} bytes; WeChat keys have at most {MAX_KEY_BYTES}")]
    TooLong { bytes: usize },
    #[error("the menu key contains a control character")]
    ControlCharacter,
}

/// Why a window was refused; `word` is the window as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Not digits followed by `d` or `h`, nor `all`.
    #[error("bad window `{word}`: write days like `7d`, hours like `24h`, or `all`")]
    Malformed { word: String },
    /// `0d` or `0h`.
    #[error("window `{word}` is empty; use at least 1")]
    Empty { word: String },
    /// More than [`MAX_WINDOW_DAYS`] days (or as many hours).
    #[error("window `{word}` is longer than {MAX_WINDOW_DAYS} days ({}h)", u64::from(MAX_WINDOW_DAYS) * 24)]
    TooLong { word: String },
}

/// Why the count in `orders(..) >= N` or `clicked(..) >= N` was refused; `text` is the number as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountError {
    /// A decimal such as `1.5`; `function` is `orders` or `clicked`.
    #[error("`{text}`: {function} counts are whole numbers")]
    Fraction { text: String, function: String },
    #[error("expected a whole number, found `{text}`")]
    NotWhole { text: String },
    /// Above [`MAX_COUNT`].
    #[error("`{text}` is too large; counts go up to {MAX_COUNT}")]
    TooLarge { text: String },
}

/// Why the amount in `spent(..) >= N` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// A refund's sign has no place in a comparison.
    #[error("expected an amount in yuan like `500` or `499.5`, found `{text}`")]
    Negative { text: String },
    /// Not an amount in yuan to the cent, or too large.
    #[error("{0}")]
    Yuan(#[from] YuanError),
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
            Self::Tag(_) | Self::Clicked { .. } | Self::Orders { .. } | Self::Spent { .. } => false,
        }
    }

    /// The windows the expression's event predicates use; see [`WindowSummary`].
    pub fn windows(&self) -> WindowSummary {
        let mut summary = WindowSummary::default();
        self.visit(&mut |e| {
            let window = match e {
                Self::Clicked { window, .. } | Self::Orders { window, .. } | Self::Spent { window, .. } => *window,
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
            Self::Tag(_) | Self::Clicked { .. } | Self::Orders { .. } | Self::Spent { .. } => {}
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

    /// `lhs op rhs`. Wide integers, so a sum of many large amounts cannot overflow.
    pub fn holds(self, lhs: i128, rhs: i128) -> bool {
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

impl Expr {
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
            (window, arb_op(), cents).prop_map(|(window, op, cents)| Expr::Spent { window, op, cents }),
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
