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
#[error("第 {position} 个字符处：{kind}")]
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
    /// `score(word)` where `word` is no model in `SCORE_MODELS`.
    UnknownModel { word: String, suggestion: Option<String> },
    /// Something other than a model's name inside `score(..)`.
    ExpectedModel { found: Tok },
    /// `score(model)` without `>= P`.
    MissingScoreComparison { model: String, found: Tok },
    /// A number that is not a probability with at most three decimals.
    BadProbability { text: String },
    /// `=` or `!=` against a score: a probability almost never equals a number exactly.
    ScoreEquality { op: CmpOp },
    /// `active(W) >= n`: `active` only says whether the follower interacted.
    ActiveComparison { op: CmpOp },
}

impl fmt::Display for ExprErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const OPERAND: &str = "用英文双引号括起的标签路径、NOT、( 或条件函数";
        match self {
            Self::TooLong { bytes } => {
                write!(f, "表达式有 {bytes} 字节，最多 {MAX_INPUT_BYTES} 字节，请精简")
            }
            Self::Empty => {
                f.write_str("表达式是空的：请写一个标签路径，如 \"肤质/油性\"，或一个条件，如 orders(30d) >= 1")
            }
            Self::Trailing { found, suggestion } => {
                write!(f, "完整的表达式后面多了 {found}：")?;
                match (found, suggestion) {
                    (Tok::RParen, _) => f.write_str("这个 ) 没有对应的 (，请删去或补上 ("),
                    (_, Some(keyword)) => write!(f, "是不是想写 {keyword}？"),
                    (_, None) => f.write_str("多个条件之间请用 AND 或 OR 连接"),
                }
            }
            Self::TooDeep => write!(f, "括号和 NOT 嵌套超过 {MAX_DEPTH} 层，请简化"),
            Self::Unclosed { open } => write!(f, "缺少 )：第 {open} 个字符处的 ( 没有闭合"),
            Self::ExpectedClose { open, found } => {
                write!(f, "这里应是 AND、OR 或闭合第 {open} 个字符处 ( 的 )，却是 {found}")
            }
            Self::UnexpectedEnd => {
                write!(f, "表达式没写完：这里应有{OPERAND}，如 orders(30d) >= 1")
            }
            Self::ExpectedOperand { found } => write!(f, "这里应是{OPERAND}，却是 {found}"),
            Self::KeywordAsOperand { found } => {
                write!(f, "这里应是标签路径、NOT、( 或条件函数，却是关键字 {found}：AND、OR 两边都要有条件")
            }
            Self::UnknownFunction { word, suggestion: Some(name) } => {
                write!(f, "没有名为 {word} 的函数，是不是想写 {name}？")
            }
            Self::UnknownFunction { word, suggestion: None } => {
                write!(
                    f,
                    "没有名为 {word} 的函数：可用的函数有 clicked（点击菜单）、orders（下单次数）、spent（消费金额）、score（预测概率）和 active（近期有互动）"
                )
            }
            Self::UnknownModel { word, suggestion: Some(name) } => {
                write!(f, "没有名为 {word} 的预测模型，是不是想写 {name}？")
            }
            Self::UnknownModel { word, suggestion: None } => {
                let known: Vec<String> =
                    super::SCORE_MODELS.iter().map(|(name, what)| format!("{name}（{what}）")).collect();
                write!(f, "没有名为 {word} 的预测模型：可用的有 {}", known.join("、"))
            }
            Self::ExpectedModel { found } => {
                write!(f, "score( 后应是预测模型的名称，如 score(purchase_7d) >= 0.6，却是 {found}")
            }
            Self::MissingScoreComparison { model, found } => {
                write!(f, "score({model}) 后要写比较和概率，如 score({model}) >= 0.6，却是 {found}")
            }
            Self::ScoreEquality { op } => {
                write!(
                    f,
                    "预测概率不能用 {op} 比较（几乎不会恰好相等）：请用 >=、>、<= 或 <，如 score(purchase_7d) >= 0.6"
                )
            }
            Self::ActiveComparison { op } => {
                write!(
                    f,
                    "active(..) 只表示期间内是否有过互动，后面不能再写 {op} 比较：请直接写 active(14d)；要按次数筛选请用 clicked(..) 或 orders(..)"
                )
            }
            Self::BadProbability { text } => {
                write!(f, "{text} 不是有效的概率：请写 0 到 1 之间的数，最多三位小数，如 0.6")
            }
            Self::UnquotedPath { word } => {
                write!(f, "{word} 没有加引号：标签路径要用英文双引号括起来，写成 \"{word}\"")
            }
            Self::ExpectedOpenParen { function, found } => write!(f, "{function} 后面应是 (，却是 {found}"),
            Self::ExpectedKey { found } => {
                write!(f, "这里应是用英文双引号括起的菜单 key，如 clicked(\"KEY\", 7d)，却是 {found}")
            }
            Self::ExpectedComma { found } => {
                write!(f, "菜单 key 后面应是英文逗号和时间范围，如 clicked(\"KEY\", 7d)，却是 {found}")
            }
            Self::ExpectedWindow { found } => {
                write!(f, "这里应是时间范围，如 7d（天）、24h（小时）或 all（全部），却是 {found}")
            }
            Self::UnclosedCall { function, open } => {
                write!(f, "缺少 )：第 {open} 个字符处 {function} 的 ( 没有闭合")
            }
            Self::ExpectedCallClose { found } => write!(f, "时间范围后面应是 )，却是 {found}"),
            Self::MissingComparison { function, window, found } => {
                let written = format!("{function}({window})");
                write!(f, "{written} 后面缺少比较，如 {written} >= 1；这里却是 {found}")
            }
            Self::ExpectedNumber { op, found } => write!(f, "{op} 后面应是数字，却是 {found}"),
            Self::DoubleEquals => f.write_str("没有 == 这个运算符：等于请写 ="),
            Self::Bang => f.write_str("这里不能单独用 !：取反请写 NOT"),
            Self::AngleNotEqual => f.write_str("没有 <> 这个运算符：不等于请写 !="),
            Self::UnexpectedChar { ch } => lexer::write_unexpected_char(f, *ch),
            Self::UnterminatedString => f.write_str("引号没有闭合：这里开始的 \" 后面缺少另一个 \""),
            Self::UnknownEscape { ch } => {
                write!(f, "字符串里不能写 \\{ch}：只允许 \\\" 和 \\\\")
            }
            Self::TagPath(error) => write!(f, "标签路径不合法：{error}"),
            Self::Key(error) => fmt::Display::fmt(error, f),
            Self::Window(error) => fmt::Display::fmt(error, f),
            Self::Count(error) => fmt::Display::fmt(error, f),
            Self::Amount(error) => fmt::Display::fmt(error, f),
            Self::SelfReference { path } => {
                write!(f, "动态标签不能引用自己：条件里出现了「{path}」本身")
            }
        }
    }
}

/// Why the menu key of `clicked("KEY", ..)` was refused: WeChat allows 1–[`MAX_KEY_BYTES`] bytes
/// without control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("菜单 key 是空的")]
    Empty,
    #[error("菜单 key 有 {bytes} 字节，微信的菜单 key 最多 {MAX_KEY_BYTES} 字节")]
    TooLong { bytes: usize },
    #[error("菜单 key 里有控制字符，请删去")]
    ControlCharacter,
}

/// Why a window was refused; `word` is the window as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// Not digits followed by `d` or `h`, nor `all`.
    #[error("时间范围 {word} 写法不对：天数写成 7d，小时写成 24h，不限时间写 all")]
    Malformed { word: String },
    /// `0d` or `0h`.
    #[error("时间范围 {word} 是 0：至少写 1")]
    Empty { word: String },
    /// More than [`MAX_WINDOW_DAYS`] days (or as many hours).
    #[error("时间范围 {word} 超过 {MAX_WINDOW_DAYS} 天（{}h），请缩短", u64::from(MAX_WINDOW_DAYS) * 24)]
    TooLong { word: String },
}

/// Why the count in `orders(..) >= N` or `clicked(..) >= N` was refused; `text` is the number as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountError {
    /// A decimal such as `1.5`; `function` is `orders` or `clicked`.
    #[error("{text} 不是整数：{function} 的次数只能是整数")]
    Fraction { text: String, function: String },
    #[error("这里应是整数，却是 {text}")]
    NotWhole { text: String },
    /// Above [`MAX_COUNT`].
    #[error("{text} 太大：次数最多 {MAX_COUNT}")]
    TooLarge { text: String },
}

/// Why the amount in `spent(..) >= N` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// A refund's sign has no place in a comparison.
    #[error("这里应是以元为单位的金额，如 500 或 499.5，却是 {text}")]
    Negative { text: String },
    /// Not an amount in yuan to the cent, or too large.
    #[error("{0}")]
    Yuan(#[from] YuanError),
}
