//! Splits an expression into tokens on demand, each with its 1-based character column, so the
//! parser reports the first error in reading order. It knows nothing of the grammar: numbers,
//! windows, keywords and function names are all `Word`s the parser interprets in context.

use std::fmt;

use super::{CmpOp, ExprError, ExprErrorKind};

/// What a token is. Errors name the token they found with it; `Display` shows it as written
/// (a string shortened to 20 characters), in backquotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    LParen,
    RParen,
    Comma,
    /// A double-quoted string, escapes resolved.
    Str(String),
    /// A run of letters, digits, `_` and `.`: `AND`, `clicked`, `30d`, `500.5`, or a stray `肤质`.
    Word(String),
    Op(CmpOp),
    End,
}

/// A token and the column of its first character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) col: usize,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LParen => f.write_str("「(」"),
            Self::RParen => f.write_str("「)」"),
            Self::Comma => f.write_str("「,」"),
            Self::Str(s) => {
                let mut shown: String = s.chars().take(20).collect();
                if shown.len() < s.len() {
                    shown.push('…');
                }
                write!(f, "「\"{shown}\"」")
            }
            Self::Word(w) => write!(f, "「{w}」"),
            Self::Op(op) => write!(f, "「{op}」"),
            Self::End => f.write_str("表达式结尾"),
        }
    }
}

impl Token {
    /// Whether the token is the keyword `kw` (upper-case), in any case.
    pub(super) fn is_keyword(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

/// Reads tokens from the input one at a time.
pub(super) struct Lexer<'a> {
    rest: std::iter::Peekable<std::str::Chars<'a>>,
    /// Column of the next character to read.
    col: usize,
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '.'
}

impl<'a> Lexer<'a> {
    pub(super) fn new(input: &'a str) -> Self {
        Self { rest: input.chars().peekable(), col: 1 }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.rest.next()?;
        self.col += 1;
        Some(c)
    }

    /// The next token; `Tok::End` (at one past the last column) once the input is used up.
    ///
    /// # Errors
    /// An unterminated string, an unknown escape, or a character that starts no token.
    pub(super) fn next_token(&mut self) -> Result<Token, ExprError> {
        while self.rest.peek().is_some_and(|c| c.is_whitespace()) {
            self.bump();
        }
        let col = self.col;
        let token = |tok| Ok(Token { tok, col });
        let Some(c) = self.bump() else {
            return token(Tok::End);
        };
        match c {
            '(' => token(Tok::LParen),
            ')' => token(Tok::RParen),
            ',' => token(Tok::Comma),
            '"' => self.string(col).map(|s| Token { tok: Tok::Str(s), col }),
            '=' if self.rest.peek() == Some(&'=') => Err(ExprError::at(col, ExprErrorKind::DoubleEquals)),
            '=' => token(Tok::Op(CmpOp::Eq)),
            '!' if self.rest.peek() == Some(&'=') => {
                self.bump();
                token(Tok::Op(CmpOp::Ne))
            }
            '!' => Err(ExprError::at(col, ExprErrorKind::Bang)),
            '<' if self.rest.peek() == Some(&'>') => Err(ExprError::at(col, ExprErrorKind::AngleNotEqual)),
            '<' | '>' => {
                let or_equal = self.rest.peek() == Some(&'=');
                if or_equal {
                    self.bump();
                }
                token(Tok::Op(match (c, or_equal) {
                    ('<', false) => CmpOp::Lt,
                    ('<', true) => CmpOp::Le,
                    (_, false) => CmpOp::Gt,
                    (_, true) => CmpOp::Ge,
                }))
            }
            c if is_word_char(c) => {
                let mut word = String::from(c);
                while let Some(&c) = self.rest.peek().filter(|&&c| is_word_char(c)) {
                    word.push(c);
                    self.bump();
                }
                token(Tok::Word(word))
            }
            other => Err(ExprError::at(col, ExprErrorKind::UnexpectedChar { ch: other })),
        }
    }

    /// The rest of a string whose opening quote, at `open`, was just read.
    fn string(&mut self, open: usize) -> Result<String, ExprError> {
        let mut out = String::new();
        loop {
            let col = self.col;
            match self.bump() {
                None => {
                    return Err(ExprError::at(open, ExprErrorKind::UnterminatedString));
                }
                Some('"') => return Ok(out),
                Some('\\') => match self.bump() {
                    Some(c @ ('"' | '\\')) => out.push(c),
                    Some(c) => {
                        return Err(ExprError::at(col, ExprErrorKind::UnknownEscape { ch: c }));
                    }
                    None => {
                        return Err(ExprError::at(open, ExprErrorKind::UnterminatedString));
                    }
                },
                Some(c) => out.push(c),
            }
        }
    }
}

/// The message for a character no token starts with, with a hint for the usual slips
/// (a Chinese input method's punctuation, C-style operators, negative numbers).
pub(super) fn write_unexpected_char(f: &mut fmt::Formatter<'_>, c: char) -> fmt::Result {
    match c {
        '“' | '”' | '‘' | '’' | '\'' | '「' | '」' => {
            write!(f, "不能用 {c} 作引号：标签路径和菜单 key 请用英文双引号 \" 括起来")
        }
        '（' => f.write_str("这里用了中文括号（，请改成英文括号 ("),
        '）' => f.write_str("这里用了中文括号），请改成英文括号 )"),
        '，' => f.write_str("这里用了中文逗号，请改成英文逗号 ,"),
        '＝' | '＞' | '＜' => write!(f, "这里用了全角符号 {c}，请改成半角（英文）符号"),
        '&' => f.write_str("不能用 &：「并且」请写 AND"),
        '|' => f.write_str("不能用 |：「或者」请写 OR"),
        '-' => f.write_str("不能用 -：数字不能是负数"),
        c if c.is_control() => write!(f, "这里有一个看不见的控制字符 U+{:04X}，请删去", u32::from(c)),
        c => write!(f, "这里不能出现字符 {c}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(input: &str) -> Result<Vec<(Tok, usize)>, ExprError> {
        let mut lexer = Lexer::new(input);
        let mut out = Vec::new();
        loop {
            let t = lexer.next_token()?;
            let end = t.tok == Tok::End;
            out.push((t.tok, t.col));
            if end {
                return Ok(out);
            }
        }
    }

    #[test]
    fn tokens_carry_character_columns() {
        let got = tokens(r#""肤质/油性" AND orders(30d)>=1"#).unwrap();
        assert_eq!(
            got,
            vec![
                (Tok::Str("肤质/油性".into()), 1),
                (Tok::Word("AND".into()), 9),
                (Tok::Word("orders".into()), 13),
                (Tok::LParen, 19),
                (Tok::Word("30d".into()), 20),
                (Tok::RParen, 23),
                (Tok::Op(CmpOp::Ge), 24),
                (Tok::Word("1".into()), 26),
                (Tok::End, 27),
            ]
        );
    }

    #[test]
    fn operators_and_escapes() {
        let got = tokens(r#"= != < <= > >= "a\"b\\""#).unwrap();
        let kinds: Vec<Tok> = got.into_iter().map(|(t, _)| t).collect();
        assert_eq!(
            kinds,
            vec![
                Tok::Op(CmpOp::Eq),
                Tok::Op(CmpOp::Ne),
                Tok::Op(CmpOp::Lt),
                Tok::Op(CmpOp::Le),
                Tok::Op(CmpOp::Gt),
                Tok::Op(CmpOp::Ge),
                Tok::Str(r#"a"b\"#.into()),
                Tok::End,
            ]
        );
    }

    #[test]
    fn full_width_space_separates_tokens() {
        let got = tokens("NOT\u{3000}\"A\"").unwrap();
        assert_eq!(got[1], (Tok::Str("A".into()), 5));
    }
}
