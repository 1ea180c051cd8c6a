//! Recursive descent over the grammar in the module docs, one token of lookahead, stopping at the
//! first error with its column. Recursion happens only for `(` and `NOT`, and is capped at
//! [`MAX_DEPTH`]; `AND`/`OR` chains are built in a loop.

use super::lexer::{Lexer, Tok, Token};
use super::{
    AmountError, CmpOp, CountError, Expr, ExprError, ExprErrorKind, KeyError, MAX_COUNT, MAX_DEPTH, MAX_INPUT_BYTES,
    MAX_KEY_BYTES, MAX_WINDOW_DAYS, SCORE_MODELS, Window, WindowError,
};
use crate::domain::tag::TagPath;

/// The event predicates, as written in canonical form.
const FUNCTIONS: [&str; 5] = ["clicked", "orders", "spent", "score", "active"];

/// Parses a segment expression.
///
/// # Errors
/// The first problem in reading order, with its 1-based character column: see [`ExprError`].
pub fn parse(input: &str) -> Result<Expr, ExprError> {
    if input.len() > MAX_INPUT_BYTES {
        let col = input.char_indices().take_while(|(i, c)| i + c.len_utf8() <= MAX_INPUT_BYTES).count() + 1;
        return Err(ExprError::at(col, ExprErrorKind::TooLong { bytes: input.len() }));
    }
    if input.trim().is_empty() {
        return Err(ExprError::at(1, ExprErrorKind::Empty));
    }
    let mut parser = Parser { lexer: Lexer::new(input), input, peeked: None, depth: 0 };
    let expr = parser.or()?;
    let next = parser.bump()?;
    if next.tok != Tok::End {
        let suggestion = match &next.tok {
            Tok::Word(w) => suggest(w, &["AND", "OR"]),
            _ => None,
        };
        return Err(ExprError::at(next.col, ExprErrorKind::Trailing { found: next.tok, suggestion }));
    }
    Ok(expr)
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    /// The text, for quoting a whole unquoted path (`肤质/干性`) back in a suggestion.
    input: &'a str,
    peeked: Option<Token>,
    /// Open `(` and `NOT`s around the current position.
    depth: usize,
}

impl Parser<'_> {
    fn peek(&mut self) -> Result<&Token, ExprError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        Ok(self.peeked.as_ref().expect("just filled"))
    }

    fn bump(&mut self) -> Result<Token, ExprError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    /// Consumes the next token if it is the keyword `kw`.
    fn eat_keyword(&mut self, kw: &str) -> Result<bool, ExprError> {
        let found = self.peek()?.is_keyword(kw);
        if found {
            self.bump()?;
        }
        Ok(found)
    }

    fn enter(&mut self, at: &Token) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError::at(at.col, ExprErrorKind::TooDeep));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut lhs = self.and()?;
        while self.eat_keyword("OR")? {
            let rhs = self.and()?;
            lhs = Expr::Or(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut lhs = self.not()?;
        while self.eat_keyword("AND")? {
            let rhs = self.not()?;
            lhs = Expr::And(Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn not(&mut self) -> Result<Expr, ExprError> {
        if !self.peek()?.is_keyword("NOT") {
            return self.atom();
        }
        let not = self.bump()?;
        self.enter(&not)?;
        let inner = self.not()?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(inner)))
    }

    fn atom(&mut self) -> Result<Expr, ExprError> {
        let token = self.bump()?;
        match &token.tok {
            Tok::LParen => {
                self.enter(&token)?;
                let inner = self.or()?;
                let close = self.bump()?;
                match close.tok {
                    Tok::RParen => {}
                    Tok::End => return Err(ExprError::at(close.col, ExprErrorKind::Unclosed { open: token.col })),
                    found => {
                        return Err(ExprError::at(close.col, ExprErrorKind::ExpectedClose { open: token.col, found }));
                    }
                }
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Str(raw) => {
                TagPath::parse(raw).map(Expr::Tag).map_err(|e| ExprError::at(token.col, ExprErrorKind::TagPath(e)))
            }
            Tok::Word(word) => {
                let name = word.to_ascii_lowercase();
                if name == "score" {
                    return self.score();
                }
                if name == "active" {
                    return self.active();
                }
                if FUNCTIONS.contains(&name.as_str()) {
                    return self.predicate(&name);
                }
                Err(self.unknown_word(word, &token))
            }
            Tok::End => Err(ExprError::at(token.col, ExprErrorKind::UnexpectedEnd)),
            found => Err(ExprError::at(token.col, ExprErrorKind::ExpectedOperand { found: found.clone() })),
        }
    }

    /// The error for a word where an operand should start.
    fn unknown_word(&mut self, word: &str, token: &Token) -> ExprError {
        let found = token.tok.clone();
        if ["AND", "OR", "NOT"].iter().any(|kw| token.is_keyword(kw)) {
            return ExprError::at(token.col, ExprErrorKind::KeywordAsOperand { found });
        }
        // A lexical error after the word (`肤质/干性`) must not hide the word's own problem.
        let called = matches!(self.peek(), Ok(next) if next.tok == Tok::LParen);
        let word = word.to_owned();
        let kind = match suggest(&word, &FUNCTIONS) {
            suggestion @ Some(_) => ExprErrorKind::UnknownFunction { word, suggestion },
            None if called => ExprErrorKind::UnknownFunction { word, suggestion: None },
            None if word.starts_with(|c: char| c.is_ascii_digit()) => ExprErrorKind::ExpectedOperand { found },
            None => ExprErrorKind::UnquotedPath { word: self.unquoted_path_at(token.col).unwrap_or(word) },
        };
        ExprError::at(token.col, kind)
    }

    /// The run of text from 1-based column `col` up to a space, parenthesis or quote: the whole of
    /// `肤质/干性` where the lexer stopped at the `/`.
    fn unquoted_path_at(&self, col: usize) -> Option<String> {
        let (start, _) = self.input.char_indices().nth(col.checked_sub(1)?)?;
        let run: String =
            self.input[start..].chars().take_while(|c| !c.is_whitespace() && !matches!(c, '(' | ')' | '"')).collect();
        (!run.is_empty()).then_some(run)
    }

    /// After a function name: `(` arguments `)` and the comparison.
    fn predicate(&mut self, name: &str) -> Result<Expr, ExprError> {
        let open = self.bump()?;
        if open.tok != Tok::LParen {
            let kind = ExprErrorKind::ExpectedOpenParen { function: name.to_owned(), found: open.tok };
            return Err(ExprError::at(open.col, kind));
        }
        let key = if name == "clicked" {
            let key = self.bump()?;
            let Tok::Str(raw) = &key.tok else {
                return Err(ExprError::at(key.col, ExprErrorKind::ExpectedKey { found: key.tok.clone() }));
            };
            check_key(raw).map_err(|e| ExprError::at(key.col, e))?;
            let comma = self.bump()?;
            if comma.tok != Tok::Comma {
                return Err(ExprError::at(comma.col, ExprErrorKind::ExpectedComma { found: comma.tok }));
            }
            Some(raw.clone())
        } else {
            None
        };
        let window = self.window()?;
        let close = self.bump()?;
        if close.tok != Tok::RParen {
            let kind = match close.tok {
                Tok::End => ExprErrorKind::UnclosedCall { function: name.to_owned(), open: open.col },
                found => ExprErrorKind::ExpectedCallClose { found },
            };
            return Err(ExprError::at(close.col, kind));
        }
        let op = if let Tok::Op(op) = self.peek()?.tok {
            self.bump()?;
            op
        } else if let Some(key) = key {
            // A plain `clicked(..)` means at least one click.
            return Ok(Expr::Clicked { key, window, op: CmpOp::Ge, count: 1 });
        } else {
            let next = self.bump()?;
            let kind = ExprErrorKind::MissingComparison { function: name.to_owned(), window, found: next.tok };
            return Err(ExprError::at(next.col, kind));
        };
        let number = self.bump()?;
        let text = match &number.tok {
            Tok::Word(text) if text.starts_with(|c: char| c.is_ascii_digit() || c == '.') => text,
            found => {
                return Err(ExprError::at(number.col, ExprErrorKind::ExpectedNumber { op, found: found.clone() }));
            }
        };
        let parsed = if name == "spent" {
            parse_amount(text).map_err(ExprErrorKind::from)
        } else {
            parse_count(text, name).map_err(ExprErrorKind::from)
        };
        let value = parsed.map_err(|kind| ExprError::at(number.col, kind))?;
        Ok(match (name, key) {
            (_, Some(key)) => Expr::Clicked { key, window, op, count: value },
            ("orders", None) => Expr::Orders { window, op, count: value },
            _ => Expr::Spent { window, op, cents: value },
        })
    }

    /// After `score`: `(` a model `)` and the comparison with a probability.
    fn score(&mut self) -> Result<Expr, ExprError> {
        let open = self.bump()?;
        if open.tok != Tok::LParen {
            let kind = ExprErrorKind::ExpectedOpenParen { function: "score".to_owned(), found: open.tok };
            return Err(ExprError::at(open.col, kind));
        }
        let named = self.bump()?;
        let model = match &named.tok {
            Tok::Word(word) | Tok::Str(word) => {
                let lower = word.to_ascii_lowercase();
                let names: Vec<&str> = SCORE_MODELS.iter().map(|(name, _)| *name).collect();
                if !names.contains(&lower.as_str()) {
                    let suggestion = suggest(word, &names).map(str::to_owned);
                    return Err(ExprError::at(
                        named.col,
                        ExprErrorKind::UnknownModel { word: word.clone(), suggestion },
                    ));
                }
                lower
            }
            found => return Err(ExprError::at(named.col, ExprErrorKind::ExpectedModel { found: found.clone() })),
        };
        let close = self.bump()?;
        if close.tok != Tok::RParen {
            let kind = match close.tok {
                Tok::End => ExprErrorKind::UnclosedCall { function: "score".to_owned(), open: open.col },
                found => ExprErrorKind::ExpectedCallClose { found },
            };
            return Err(ExprError::at(close.col, kind));
        }
        let next = self.bump()?;
        let Tok::Op(op) = next.tok else {
            return Err(ExprError::at(next.col, ExprErrorKind::MissingScoreComparison { model, found: next.tok }));
        };
        if matches!(op, CmpOp::Eq | CmpOp::Ne) {
            return Err(ExprError::at(next.col, ExprErrorKind::ScoreEquality { op }));
        }
        let number = self.bump()?;
        let text = match &number.tok {
            Tok::Word(text) if text.starts_with(|c: char| c.is_ascii_digit() || c == '.') => text,
            found => {
                return Err(ExprError::at(number.col, ExprErrorKind::ExpectedNumber { op, found: found.clone() }));
            }
        };
        let milli = parse_probability(text)
            .ok_or_else(|| ExprError::at(number.col, ExprErrorKind::BadProbability { text: text.clone() }))?;
        Ok(Expr::Score { model, op, milli })
    }

    /// After `active`: `(` a window `)`, and no comparison (it is a yes/no question).
    fn active(&mut self) -> Result<Expr, ExprError> {
        let open = self.bump()?;
        if open.tok != Tok::LParen {
            let kind = ExprErrorKind::ExpectedOpenParen { function: "active".to_owned(), found: open.tok };
            return Err(ExprError::at(open.col, kind));
        }
        let window = self.window()?;
        let close = self.bump()?;
        if close.tok != Tok::RParen {
            let kind = match close.tok {
                Tok::End => ExprErrorKind::UnclosedCall { function: "active".to_owned(), open: open.col },
                found => ExprErrorKind::ExpectedCallClose { found },
            };
            return Err(ExprError::at(close.col, kind));
        }
        if let Tok::Op(op) = self.peek()?.tok {
            let col = self.peek()?.col;
            return Err(ExprError::at(col, ExprErrorKind::ActiveComparison { op }));
        }
        Ok(Expr::Active { window })
    }

    fn window(&mut self) -> Result<Window, ExprError> {
        let token = self.bump()?;
        let Tok::Word(word) = &token.tok else {
            return Err(ExprError::at(token.col, ExprErrorKind::ExpectedWindow { found: token.tok.clone() }));
        };
        parse_window(word).map_err(|e| ExprError::at(token.col, e))
    }
}

/// A menu key as WeChat allows it: 1–128 bytes, no control characters.
fn check_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KeyError::TooLong { bytes: key.len() });
    }
    if key.chars().any(char::is_control) {
        return Err(KeyError::ControlCharacter);
    }
    Ok(())
}

fn parse_window(word: &str) -> Result<Window, WindowError> {
    if word.eq_ignore_ascii_case("all") {
        return Ok(Window::All);
    }
    let bad = || WindowError::Malformed { word: word.to_owned() };
    let (digits, unit) = word.split_at(word.len() - word.chars().last().map_or(0, char::len_utf8));
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (limit, make): (u64, fn(u32) -> Window) = match unit {
        "d" | "D" => (u64::from(MAX_WINDOW_DAYS), Window::Days),
        "h" | "H" => (u64::from(MAX_WINDOW_DAYS) * 24, Window::Hours),
        _ => return Err(bad()),
    };
    let too_long = || WindowError::TooLong { word: word.to_owned() };
    // Digits only, so a parse failure means the number overflowed.
    let n: u64 = digits.parse().map_err(|_| too_long())?;
    if n == 0 {
        return Err(WindowError::Empty { word: word.to_owned() });
    }
    if n > limit {
        return Err(too_long());
    }
    Ok(make(u32::try_from(n).map_err(|_| too_long())?))
}

/// A count: a whole number from 0 to [`MAX_COUNT`]; `name` is the function it is compared with.
fn parse_count(text: &str, name: &str) -> Result<i64, CountError> {
    if text.contains('.') && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(CountError::Fraction { text: text.to_owned(), function: name.to_owned() });
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CountError::NotWhole { text: text.to_owned() });
    }
    match text.parse::<i64>() {
        Ok(n) if n <= MAX_COUNT => Ok(n),
        _ => Err(CountError::TooLarge { text: text.to_owned() }),
    }
}

/// An amount in yuan with at most two decimals, as cents, from 0 to [`MAX_AMOUNT_CENTS`]: an
/// order amount without the refund sign.
fn parse_amount(text: &str) -> Result<i64, AmountError> {
    if text.starts_with('-') {
        return Err(AmountError::Negative { text: text.to_owned() });
    }
    Ok(crate::domain::order::parse_yuan(text)?)
}

/// A probability from 0 to 1 with at most three decimals, as thousandths.
fn parse_probability(text: &str) -> Option<i64> {
    let (whole, fraction) = match text.split_once('.') {
        Some((_, "")) => return None,
        Some(parts) => parts,
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) || fraction.len() > 3 || (whole.is_empty() && fraction.is_empty()) {
        return None;
    }
    if whole.len() > 4 {
        return None;
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let fraction: i64 = if fraction.is_empty() { 0 } else { format!("{fraction:0<3}").parse().ok()? };
    let milli = whole * 1000 + fraction;
    (milli <= 1000).then_some(milli)
}

/// The candidate `word` is probably a misspelling of (case-insensitive edit distance ≤ 2, or a
/// prefix of at least 3 letters), if any.
fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let word = word.to_lowercase();
    candidates.iter().copied().find(|c| {
        let c = c.to_lowercase();
        let close = edit_distance(&word, &c) <= 2.min(c.len() / 2);
        close || (word.chars().count() >= 3 && c.starts_with(&word))
    })
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb)).min(row[j] + 1).min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::order::YuanError;
    use crate::domain::tag::TagPathError;

    /// Parses `input`, expecting an error at `col` whose message contains `fragment`.
    #[track_caller]
    fn rejects(input: &str, col: usize, fragment: &str) {
        let err = parse(input).expect_err(input);
        assert_eq!(err.position, col, "{input}: {err}");
        let message = err.kind.to_string();
        assert!(message.contains(fragment), "{input}: {err}\n  expected to contain: {fragment}");
        assert_eq!(err.to_string(), format!("第 {col} 个字符处：{message}"));
    }

    #[test]
    fn malformed_expressions_report_the_column_in_characters() {
        // `"肤质/油性"` is 7 characters (but 17 bytes): the columns after it prove characters are counted.
        rejects("", 1, r#"表达式是空的：请写一个标签路径，如 "肤质/油性"，或一个条件，如 orders(30d) >= 1"#);
        rejects("   ", 1, r#"表达式是空的：请写一个标签路径，如 "肤质/油性"，或一个条件，如 orders(30d) >= 1"#);
        rejects(
            r#""肤质/油性" AND"#,
            12,
            r#"表达式没写完：这里应有用英文双引号括起的标签路径、NOT、( 或条件函数，如 orders(30d) >= 1"#,
        );
        rejects(r#""肤质/油性" AND click("K", 7d)"#, 13, r#"没有名为 click 的函数，是不是想写 clicked？"#);
        rejects(r#""肤质/油性" OR order(7d) > 1"#, 12, r#"没有名为 order 的函数，是不是想写 orders？"#);
        rejects(
            r#""肤质/油性" OR frobnicate(7d)"#,
            12,
            r#"没有名为 frobnicate 的函数：可用的函数有 clicked（点击菜单）、orders（下单次数）、spent（消费金额）、score（预测概率）和 active（近期有互动）"#,
        );
        rejects(r#""肤质/油性" OR "未闭合"#, 12, r#"引号没有闭合：这里开始的 " 后面缺少另一个 ""#);
        rejects(r#"("肤质/油性" OR "状态/已购""#, 20, r#"缺少 )：第 1 个字符处的 ( 没有闭合"#);
        rejects(
            r#"("肤质/油性" "状态/已购")"#,
            10,
            r#"这里应是 AND、OR 或闭合第 1 个字符处 ( 的 )，却是 「"状态/已购"」"#,
        );
        rejects(
            r#""肤质/油性" AND clicked("K", 7x)"#,
            26,
            r#"时间范围 7x 写法不对：天数写成 7d，小时写成 24h，不限时间写 all"#,
        );
        rejects(
            r#""肤质/油性" AND orders(30d)"#,
            24,
            r#"orders(30d) 后面缺少比较，如 orders(30d) >= 1；这里却是 表达式结尾"#,
        );
        rejects(
            r#""肤质/油性" AND orders(30d) AND "VIP""#,
            25,
            r#"orders(30d) 后面缺少比较，如 orders(30d) >= 1；这里却是 「AND」"#,
        );
        rejects(
            r#""肤质/油性" "状态/已购""#,
            9,
            r#"完整的表达式后面多了 「"状态/已购"」：多个条件之间请用 AND 或 OR 连接"#,
        );
        rejects(r#""肤质/油性" OR 30d"#, 12, r#"这里应是用英文双引号括起的标签路径、NOT、( 或条件函数，却是 「30d」"#);
        rejects(r#""肤质/油性" ANDD "VIP""#, 9, r#"完整的表达式后面多了 「ANDD」：是不是想写 AND？"#);
        rejects(r#""肤质/油性")"#, 8, r#"完整的表达式后面多了 「)」：这个 ) 没有对应的 (，请删去或补上 ("#);
        rejects(
            r#""肤质/油性" AND "状态//已购""#,
            13,
            r#"标签路径不合法：「状态//已购」的第 2 级是空的：两个 / 之间要有名称"#,
        );
        rejects(
            r#""肤质/油性" AND "a/b/c/d""#,
            13,
            r#"标签路径不合法：「a/b/c/d」有 4 级，最多 3 级（大类/子类/细项）"#,
        );
        rejects(
            r#""肤质/油性" AND AND "VIP""#,
            13,
            r#"这里应是标签路径、NOT、( 或条件函数，却是关键字 「AND」：AND、OR 两边都要有条件"#,
        );
        rejects(
            r#""肤质/油性" AND NOT"#,
            16,
            r#"表达式没写完：这里应有用英文双引号括起的标签路径、NOT、( 或条件函数，如 orders(30d) >= 1"#,
        );
        rejects(
            r#""肤质/油性" AND 肤质/干性"#,
            13,
            r#"肤质/干性 没有加引号：标签路径要用英文双引号括起来，写成 "肤质/干性""#,
        );
        rejects(r#"“肤质/油性”"#, 1, r#"不能用 “ 作引号：标签路径和菜单 key 请用英文双引号 " 括起来"#);
        rejects(r#""肤质/油性" AND （"VIP"）"#, 13, r#"这里用了中文括号（，请改成英文括号 ("#);
        rejects(r#""肤质/油性" && "VIP""#, 9, r#"不能用 &：「并且」请写 AND"#);
        rejects(r#""肤质/油性\n""#, 7, r#"字符串里不能写 \n：只允许 \" 和 \\"#);
    }

    #[test]
    fn scores_parse_print_canonically_and_refuse_what_is_not_a_probability() {
        let canonical = |input: &str| parse(input).unwrap().to_string();
        assert_eq!(canonical("SCORE(Purchase_7d)>=.6"), "score(purchase_7d) >= 0.6");
        assert_eq!(canonical("score(purchase_7d) < 0.125"), "score(purchase_7d) < 0.125");
        assert_eq!(canonical("score(purchase_7d) >= 0.050"), "score(purchase_7d) >= 0.05");
        assert_eq!(canonical("score(purchase_7d) > 1"), "score(purchase_7d) > 1");
        assert_eq!(canonical("score(\"purchase_7d\") <= 0"), "score(purchase_7d) <= 0");
        rejects("score(purchase_7d) = 0.6", 20, "预测概率不能用 = 比较（几乎不会恰好相等）：请用 >=、>、<= 或 <");
        rejects("score(purchase_7d) != 0.6", 20, "预测概率不能用 != 比较");
        assert_eq!(parse(r#""肤质/油性" AND NOT score(purchase_7d) >= 0.6"#).unwrap().score_models(), ["purchase_7d"]);
        rejects("score(purchase7d) >= 0.6", 7, "没有名为 purchase7d 的预测模型，是不是想写 purchase_7d？");
        rejects("score(churn) >= 0.6", 7, "没有名为 churn 的预测模型：可用的有 purchase_7d（7 天内下单的概率）");
        rejects("score(0.6)", 7, "没有名为 0.6 的预测模型：可用的有 purchase_7d（7 天内下单的概率）");
        rejects("score() >= 1", 7, "score( 后应是预测模型的名称，如 score(purchase_7d) >= 0.6，却是 「)」");
        rejects(
            "score(purchase_7d)",
            19,
            "score(purchase_7d) 后要写比较和概率，如 score(purchase_7d) >= 0.6，却是 表达式结尾",
        );
        for bad in ["1.5", "60", "0.6251", "1.", "0..6"] {
            let input = format!("score(purchase_7d) >= {bad}");
            let error = parse(&input).unwrap_err();
            assert_eq!(
                error.kind.to_string(),
                format!("{bad} 不是有效的概率：请写 0 到 1 之间的数，最多三位小数，如 0.6")
            );
        }
        assert_eq!(canonical("score(purchase_7d) >= 1.0"), "score(purchase_7d) >= 1");
    }

    #[test]
    fn active_takes_a_window_and_no_comparison() {
        let canonical = |input: &str| parse(input).unwrap().to_string();
        assert_eq!(canonical("ACTIVE( 14D )"), "active(14d)");
        assert_eq!(canonical("active(48h) AND NOT active(all)"), "active(48h) AND NOT active(all)");
        assert_eq!(parse("active(14d)").unwrap(), Expr::Active { window: Window::Days(14) });
        rejects("active(14d) >= 2", 13, "active(..) 只表示期间内是否有过互动，后面不能再写 >= 比较");
        rejects("active 14d", 8, "active 后面应是 (");
        rejects("active(14d", 11, "缺少 )");
        rejects("active(0d)", 8, "");
        rejects("activ(7d)", 1, "没有名为 activ 的函数，是不是想写 active？");
    }

    #[test]
    fn malformed_predicates_say_what_to_write() {
        rejects("orders >= 1", 8, r#"orders 后面应是 (，却是 「>=」"#);
        rejects("orders(30d) => 1", 14, r#"= 后面应是数字，却是 「>」"#);
        rejects("orders(30d) == 1", 13, r#"没有 == 这个运算符：等于请写 ="#);
        rejects("orders(30d) >= -1", 16, r#"不能用 -：数字不能是负数"#);
        rejects("orders(30d) >= 1.5", 16, r#"1.5 不是整数：orders 的次数只能是整数"#);
        rejects("orders(30d) >= 1e3", 16, r#"这里应是整数，却是 1e3"#);
        rejects(r#"orders(30d) = AND "VIP""#, 15, r#"= 后面应是数字，却是 「AND」"#);
        rejects("orders(0x) > 1", 8, r#"时间范围 0x 写法不对：天数写成 7d，小时写成 24h，不限时间写 all"#);
        rejects("orders(30d) >= 99999999999999999999999", 16, r#"99999999999999999999999 太大：次数最多 1000000000"#);
        rejects("orders(30d) >=", 15, r#">= 后面应是数字，却是 表达式结尾"#);
        rejects("orders(30d >= 1", 12, r#"时间范围后面应是 )，却是 「>=」"#);
        rejects("orders(30d", 11, r#"缺少 )：第 7 个字符处 orders 的 ( 没有闭合"#);
        rejects("orders()", 8, r#"这里应是时间范围，如 7d（天）、24h（小时）或 all（全部），却是 「)」"#);
        rejects("orders(0d) > 1", 8, r#"时间范围 0d 是 0：至少写 1"#);
        rejects("orders(3651d) > 1", 8, r#"时间范围 3651d 超过 3650 天（87600h），请缩短"#);
        rejects("orders(87601h) > 1", 8, r#"时间范围 87601h 超过 3650 天（87600h），请缩短"#);
        rejects(
            "orders(99999999999999999999999d) > 1",
            8,
            r#"时间范围 99999999999999999999999d 超过 3650 天（87600h），请缩短"#,
        );
        rejects("orders(d) > 1", 8, r#"时间范围 d 写法不对：天数写成 7d，小时写成 24h，不限时间写 all"#);
        rejects("orders(7 d) > 1", 8, r#"时间范围 7 写法不对：天数写成 7d，小时写成 24h，不限时间写 all"#);
        rejects("orders(7天) > 1", 8, r#"时间范围 7天 写法不对：天数写成 7d，小时写成 24h，不限时间写 all"#);
        rejects("spent(90d) >= 1.234", 15, r#"1.234 超过 2 位小数：金额以元为单位，精确到分"#);
        rejects("spent(90d) >= 1.", 15, r#"这里应是以元为单位的金额，如 500 或 499.5，却是 1."#);
        rejects("spent(90d) >= .5", 15, r#"这里应是以元为单位的金额，如 500 或 499.5，却是 .5"#);
        rejects("spent(90d) >= 1000000001", 15, r#"1000000001 太大：金额最多 1000000000 元"#);
        rejects(r#"clicked(KEY, 7d)"#, 9, r#"这里应是用英文双引号括起的菜单 key，如 clicked("KEY", 7d)，却是 「KEY」"#);
        rejects(r#"clicked("KEY")"#, 14, r#"菜单 key 后面应是英文逗号和时间范围，如 clicked("KEY", 7d)，却是 「)」"#);
        rejects(r#"clicked("", 7d)"#, 9, r#"菜单 key 是空的"#);
        rejects(
            &format!(r#"clicked("{}", 7d)"#, "k".repeat(129)),
            9,
            r#"菜单 key 有 129 字节，微信的菜单 key 最多 128 字节"#,
        );
        rejects(r#"clicked("K", 7d) >= 1.5"#, 21, r#"1.5 不是整数：clicked 的次数只能是整数"#);
    }

    #[test]
    fn hostile_input_is_bounded() {
        let deep = format!("{}\"A\"{}", "(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        rejects(&deep, MAX_DEPTH + 1, r#"括号和 NOT 嵌套超过 64 层，请简化"#);
        let deep_not = format!("{}\"A\"", "NOT ".repeat(MAX_DEPTH + 1));
        rejects(&deep_not, MAX_DEPTH * 4 + 1, r#"括号和 NOT 嵌套超过 64 层，请简化"#);
        // Mixed: 32 `(` and 33 `NOT`s.
        let mixed = format!("{}\"A\"{}", "NOT (".repeat(32) + "NOT ", ")".repeat(32));
        rejects(&mixed, 32 * 5 + 1, r#"括号和 NOT 嵌套超过 64 层，请简化"#);

        // Exactly at the limits is fine.
        let deepest = format!("{}\"A\"{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&deepest).is_ok());
        let longest = format!("\"A\"{}", " ".repeat(MAX_INPUT_BYTES - 3));
        assert!(parse(&longest).is_ok());

        // One byte over; the column is the first character past the limit, in characters.
        let too_long = format!("\"肤质\"{}", " ".repeat(MAX_INPUT_BYTES - 7));
        assert_eq!(too_long.len(), MAX_INPUT_BYTES + 1);
        rejects(&too_long, 4 + (MAX_INPUT_BYTES - 8) + 1, r#"表达式有 4097 字节，最多 4096 字节，请精简"#);
    }

    #[test]
    fn windows_numbers_and_amounts_parse_at_their_bounds() {
        assert_eq!(parse_window("3650d"), Ok(Window::Days(3650)));
        assert_eq!(parse_window("87600h"), Ok(Window::Hours(87600)));
        assert_eq!(parse_window("1H"), Ok(Window::Hours(1)));
        assert_eq!(parse_window("ALL"), Ok(Window::All));
        assert_eq!(parse_count("0", "orders"), Ok(0));
        assert_eq!(parse_count("1000000000", "orders"), Ok(MAX_COUNT));
        assert!(parse_count("1000000001", "orders").is_err());
        assert_eq!(parse_amount("0"), Ok(0));
        assert_eq!(parse_amount("499.5"), Ok(49_950));
        assert_eq!(parse_amount("499.05"), Ok(49_905));
        assert_eq!(parse_amount("007.10"), Ok(710));
        assert_eq!(parse_amount("1000000000"), Ok(crate::domain::expr::MAX_AMOUNT_CENTS));
        assert!(parse_amount("1000000000.01").is_err());
        assert!(parse_amount("1.2.3").is_err());
    }

    #[test]
    fn grammar_errors_carry_the_token_found() {
        use ExprErrorKind as K;
        let word = |w: &str| Tok::Word(w.to_owned());
        let cases = [
            ("   ", K::Empty),
            (r#""A" "B""#, K::Trailing { found: Tok::Str("B".into()), suggestion: None }),
            (r#""A" ANDD "B""#, K::Trailing { found: word("ANDD"), suggestion: Some("AND") }),
            (r#""A")"#, K::Trailing { found: Tok::RParen, suggestion: None }),
            (r#"("A" "B")"#, K::ExpectedClose { open: 1, found: Tok::Str("B".into()) }),
            (r#" ("A""#, K::Unclosed { open: 2 }),
            (r#""A" AND"#, K::UnexpectedEnd),
            (r#""A" OR 30d"#, K::ExpectedOperand { found: word("30d") }),
            (r#""A" OR ,"#, K::ExpectedOperand { found: Tok::Comma }),
            (r#""A" AND and "B""#, K::KeywordAsOperand { found: word("and") }),
            (r#"click("K", 7d)"#, K::UnknownFunction { word: "click".into(), suggestion: Some("clicked") }),
            ("frobnicate(7d)", K::UnknownFunction { word: "frobnicate".into(), suggestion: None }),
            ("VIP", K::UnquotedPath { word: "VIP".into() }),
            ("肤质/干性 AND orders(30d) >= 1", K::UnquotedPath { word: "肤质/干性".into() }),
            ("orders >= 1", K::ExpectedOpenParen { function: "orders".into(), found: Tok::Op(CmpOp::Ge) }),
            ("clicked(KEY, 7d)", K::ExpectedKey { found: word("KEY") }),
            (r#"clicked("K")"#, K::ExpectedComma { found: Tok::RParen }),
            ("orders()", K::ExpectedWindow { found: Tok::RParen }),
            ("ORDERS(30d", K::UnclosedCall { function: "orders".into(), open: 7 }),
            ("orders(30d >= 1", K::ExpectedCallClose { found: Tok::Op(CmpOp::Ge) }),
            (
                "spent(24h)",
                K::MissingComparison { function: "spent".into(), window: Window::Hours(24), found: Tok::End },
            ),
            ("orders(30d) < AND", K::ExpectedNumber { op: CmpOp::Lt, found: word("AND") }),
            ("orders(30d) == 1", K::DoubleEquals),
            (r#"!"A""#, K::Bang),
            ("orders(30d) <> 1", K::AngleNotEqual),
            (r#""A" && "B""#, K::UnexpectedChar { ch: '&' }),
            (r#""A" OR "B"#, K::UnterminatedString),
            (r#""a\n""#, K::UnknownEscape { ch: 'n' }),
        ];
        for (input, kind) in cases {
            assert_eq!(parse(input).expect_err(input).kind, kind, "{input}");
        }
        let too_long = "\"A\"".to_owned() + &" ".repeat(MAX_INPUT_BYTES);
        assert_eq!(parse(&too_long).unwrap_err().kind, K::TooLong { bytes: MAX_INPUT_BYTES + 3 });
        let deep = "NOT ".repeat(MAX_DEPTH + 1) + "\"A\"";
        assert_eq!(parse(&deep).unwrap_err().kind, K::TooDeep);
    }

    #[test]
    fn a_token_is_named_as_written_and_a_long_string_shortened() {
        assert_eq!(
            Tok::Str("一二三四五六七八九十一二三四五六七八九十一".into()).to_string(),
            "「\"一二三四五六七八九十一二三四五六七八九十…\"」"
        );
        assert_eq!(Tok::Str("短".into()).to_string(), "「\"短\"」");
        assert_eq!(Tok::Op(CmpOp::Ne).to_string(), "「!=」");
        assert_eq!(Tok::End.to_string(), "表达式结尾");
        let kind = ExprErrorKind::MissingComparison {
            function: "orders".into(),
            window: Window::Days(30),
            found: Tok::Word("AND".into()),
        };
        assert_eq!(kind.to_string(), "orders(30d) 后面缺少比较，如 orders(30d) >= 1；这里却是 「AND」");
    }

    #[test]
    fn value_errors_keep_their_kind_and_the_text_as_written() {
        let kind = |input: &str| parse(input).expect_err(input).kind;
        assert_eq!(kind(r#"clicked("", 7d)"#), ExprErrorKind::Key(KeyError::Empty));
        let long = format!(r#"clicked("{}", 7d)"#, "k".repeat(129));
        assert_eq!(kind(&long), ExprErrorKind::Key(KeyError::TooLong { bytes: 129 }));
        assert_eq!(kind("clicked(\"a\u{7}b\", 7d)"), ExprErrorKind::Key(KeyError::ControlCharacter));
        assert_eq!(kind("orders(7x) > 1"), ExprErrorKind::Window(WindowError::Malformed { word: "7x".into() }));
        assert_eq!(kind("orders(0h) > 1"), ExprErrorKind::Window(WindowError::Empty { word: "0h".into() }));
        assert_eq!(kind("orders(3651D) > 1"), ExprErrorKind::Window(WindowError::TooLong { word: "3651D".into() }));
        let fraction = CountError::Fraction { text: "1.5".into(), function: "orders".into() };
        assert_eq!(kind("orders(7d) > 1.5"), ExprErrorKind::Count(fraction));
        assert_eq!(kind("orders(7d) > 1e3"), ExprErrorKind::Count(CountError::NotWhole { text: "1e3".into() }));
        let huge = "1000000001";
        assert_eq!(
            kind(&format!("orders(7d) > {huge}")),
            ExprErrorKind::Count(CountError::TooLarge { text: huge.into() })
        );
        let precise = YuanError::TooPrecise { text: "1.234".into() };
        assert_eq!(kind("spent(7d) > 1.234"), ExprErrorKind::Amount(AmountError::Yuan(precise)));
        assert_eq!(parse_amount("-5"), Err(AmountError::Negative { text: "-5".into() }));
        assert_eq!(
            kind(r#""a//b""#),
            ExprErrorKind::TagPath(TagPathError::EmptyLevel { path: "a//b".into(), level: 2 })
        );
    }

    #[test]
    fn value_errors_read_as_before_and_keep_the_chain() {
        assert_eq!(KeyError::TooLong { bytes: 130 }.to_string(), "菜单 key 有 130 字节，微信的菜单 key 最多 128 字节");
        let too_long = WindowError::TooLong { word: "87601h".into() };
        assert_eq!(too_long.to_string(), "时间范围 87601h 超过 3650 天（87600h），请缩短");
        let fraction = CountError::Fraction { text: "2.5".into(), function: "clicked".into() };
        assert_eq!(fraction.to_string(), "2.5 不是整数：clicked 的次数只能是整数");
        assert_eq!(CountError::TooLarge { text: "9".into() }.to_string(), "9 太大：次数最多 1000000000");
        let err = parse("spent(7d) > 1.234").unwrap_err();
        assert_eq!(err.position, 13);
        assert_eq!(err.to_string(), "第 13 个字符处：1.234 超过 2 位小数：金额以元为单位，精确到分");
        let kind = std::error::Error::source(&err).expect("the kind");
        let amount = kind.source().expect("the amount error");
        assert!(amount.downcast_ref::<AmountError>().is_some());
        let yuan = amount.source().expect("the yuan error");
        assert!(yuan.downcast_ref::<YuanError>().is_some());
    }

    #[test]
    fn suggestions_are_for_near_misses_only() {
        assert_eq!(suggest("click", &FUNCTIONS), Some("clicked"));
        assert_eq!(suggest("CLICKS", &FUNCTIONS), Some("clicked"));
        assert_eq!(suggest("spend", &FUNCTIONS), Some("spent"));
        assert_eq!(suggest("order", &FUNCTIONS), Some("orders"));
        assert_eq!(suggest("VIP", &FUNCTIONS), None);
        assert_eq!(suggest("肤质", &FUNCTIONS), None);
        assert_eq!(suggest("ANDD", &["AND", "OR"]), Some("AND"));
        assert_eq!(suggest("x", &["AND", "OR"]), None);
    }
}
