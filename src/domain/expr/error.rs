//! Why an expression was refused: [`ExprError`] (where, and what) and the value errors its kinds
//! carry. Each variant holds what a message needs (the token found, the function, the window), so
//! the web edge can word it for an operator; `Display` is the API's English text.

use std::fmt;

use super::lexer::{self, Tok};
use super::{CmpOp, MAX_COUNT, MAX_DEPTH, MAX_INPUT_BYTES, MAX_KEY_BYTES, MAX_WINDOW_DAYS, Window};
use crate::domain::order::YuanError;
use crate::domain::tag::{TagPath, TagPathError};

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
