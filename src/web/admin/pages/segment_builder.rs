//! 人群's visual builder: rows of conditions (a tag, clicked a menu, orders, spending), each
//! optionally negated (非) and joined to the row before by 且 (AND) or 或 (OR), composed on the
//! server into the same expression language an operator can type. AND binds tighter than OR, so
//! the rows read as groups: `A 且 B 或 C` is "(A and B) or C".
//!
//! The rows travel as query fields `b{i}_join`, `b{i}_not`, `b{i}_kind`, `b{i}_tag`, `b{i}_key`,
//! `b{i}_days`, `b{i}_n` and `b{i}_yuan`, so the page works without script and admin.js only
//! re-asks the same composition for a live count.

use crate::domain::expr;

/// The most rows a builder holds (a longer audience is easier to read typed).
pub const MAX_ROWS: usize = 12;

/// One condition row as the form carries it, echoed back so the operator can keep editing.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// `and` or `or`: how this row joins the one before (ignored on the first).
    pub join: String,
    pub negate: bool,
    /// `tag`, `clicked`, `orders`, `spent`, or empty for an unused row.
    pub kind: String,
    pub tag: String,
    pub key: String,
    pub days: String,
    pub n: String,
    pub yuan: String,
}

impl Row {
    pub fn is_or(&self) -> bool {
        self.join == "or"
    }
}

/// The builder's rows (at least one, blank ones included) read from the query's pairs; `None`
/// when the query carries no builder field.
pub fn rows_from(pairs: &[(String, String)]) -> Option<Vec<Row>> {
    let mut rows: Vec<Row> = Vec::new();
    let mut any = false;
    for (name, value) in pairs {
        let Some(rest) = name.strip_prefix('b') else { continue };
        let Some((index, field)) = rest.split_once('_') else { continue };
        let Ok(index) = index.parse::<usize>() else { continue };
        if index >= MAX_ROWS {
            continue;
        }
        if rows.len() <= index {
            rows.resize_with(index + 1, Row::default);
        }
        let row = &mut rows[index];
        let value = value.trim().to_owned();
        match field {
            "join" => row.join = value,
            "not" => row.negate = !value.is_empty(),
            "kind" => row.kind = value,
            "tag" => row.tag = value,
            "key" => row.key = value,
            "days" => row.days = value,
            "n" => row.n = value,
            "yuan" => row.yuan = value,
            _ => continue,
        }
        any = true;
    }
    any.then_some(rows)
}

/// What the builder composed.
#[derive(Debug, PartialEq, Eq)]
pub enum Built {
    /// The canonical expression.
    Expr(String),
    /// No row is filled in.
    Empty,
    /// A row cannot become a condition: the message names the row.
    Problem(String),
}

/// Composes the filled rows into one expression in canonical form.
pub fn compose(rows: &[Row]) -> Built {
    let mut text = String::new();
    for (number, row) in rows.iter().enumerate().filter(|(_, r)| !r.kind.is_empty()).map(|(i, r)| (i + 1, r)) {
        let term = match term(row) {
            Ok(term) => term,
            Err(why) => return Built::Problem(format!("第 {number} 个条件：{why}")),
        };
        // Each term alone first, so a problem is reported against its own row.
        if let Err(error) = expr::parse(&term) {
            return Built::Problem(format!("第 {number} 个条件：{}", error.kind));
        }
        if !text.is_empty() {
            text.push_str(if row.is_or() { " OR " } else { " AND " });
        }
        if row.negate {
            text.push_str("NOT ");
        }
        text.push_str(&term);
    }
    if text.is_empty() {
        return Built::Empty;
    }
    match expr::parse(&text) {
        Ok(parsed) => Built::Expr(parsed.to_string()),
        Err(error) => Built::Problem(format!("条件组合有误：{}", error.kind)),
    }
}

/// One row as expression text, before parsing.
fn term(row: &Row) -> Result<String, String> {
    let window = window(&row.days)?;
    let at_least = |default: &str| -> Result<String, String> {
        let n = if row.n.is_empty() { default } else { row.n.as_str() };
        match n.parse::<u64>() {
            Ok(n) if n <= expr::MAX_COUNT as u64 => Ok(n.to_string()),
            _ => Err(format!("次数请填 0–{} 的整数。", expr::MAX_COUNT)),
        }
    };
    match row.kind.as_str() {
        "tag" => {
            if row.tag.is_empty() {
                return Err("请选择或输入一个标签。".to_owned());
            }
            Ok(quoted(&row.tag))
        }
        "clicked" => {
            if row.key.is_empty() {
                return Err("请填写菜单的 key（EventKey）。".to_owned());
            }
            let n = at_least("1")?;
            let base = format!("clicked({}, {window})", quoted(&row.key));
            Ok(if n == "1" { base } else { format!("{base} >= {n}") })
        }
        "orders" => Ok(format!("orders({window}) >= {}", at_least("1")?)),
        "spent" => {
            let yuan = row.yuan.trim_start_matches('¥').trim();
            if yuan.is_empty() {
                return Err("请填写金额（元）。".to_owned());
            }
            let valid =
                yuan.split_once('.').map_or(yuan.len() <= 12 && yuan.bytes().all(|b| b.is_ascii_digit()), |(w, f)| {
                    !w.is_empty()
                        && w.len() <= 12
                        && w.bytes().all(|b| b.is_ascii_digit())
                        && f.len() <= 2
                        && f.bytes().all(|b| b.is_ascii_digit())
                });
            if !valid {
                return Err("金额请填不小于 0 的数字，最多两位小数，如 199.5。".to_owned());
            }
            Ok(format!("spent({window}) >= {yuan}"))
        }
        other => Err(format!("不认识的条件类型「{other}」。")),
    }
}

/// Days as a window: empty means ever (`all`).
fn window(days: &str) -> Result<String, String> {
    if days.is_empty() {
        return Ok("all".to_owned());
    }
    match days.parse::<u32>() {
        Ok(d) if (1..=expr::MAX_WINDOW_DAYS).contains(&d) => Ok(format!("{d}d")),
        _ => Err(format!("天数请填 1–{} 的整数，留空表示不限时间。", expr::MAX_WINDOW_DAYS)),
    }
}

/// A double-quoted string with the lexer's two escapes.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn rows_compose_into_canonical_text_with_and_binding_tighter_than_or() {
        let rows = rows_from(&pairs(&[
            ("b0_kind", "tag"),
            ("b0_tag", "肤质/油性"),
            ("b1_join", "and"),
            ("b1_kind", "clicked"),
            ("b1_key", "SKIN_TEST"),
            ("b1_days", "7"),
            ("b2_join", "or"),
            ("b2_not", "1"),
            ("b2_kind", "orders"),
            ("b2_days", "30"),
            ("b2_n", "2"),
            ("b3_join", "and"),
            ("b3_kind", "spent"),
            ("b3_yuan", "¥499.5"),
            ("b4_kind", ""),
            ("expr", "ignored"),
        ]))
        .expect("builder fields");
        assert_eq!(rows.len(), 5);
        assert_eq!(
            compose(&rows),
            Built::Expr(
                r#""肤质/油性" AND clicked("SKIN_TEST", 7d) OR NOT orders(30d) >= 2 AND spent(all) >= 499.5"#
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_bad_row_is_named_in_chinese_and_nothing_filled_is_empty() {
        let rows = rows_from(&pairs(&[("b0_kind", "tag"), ("b0_tag", "A"), ("b1_kind", "orders"), ("b1_days", "0")]))
            .expect("rows");
        assert_eq!(
            compose(&rows),
            Built::Problem("第 2 个条件：天数请填 1–3650 的整数，留空表示不限时间。".to_owned())
        );
        let rows = rows_from(&pairs(&[("b0_kind", "spent"), ("b0_yuan", "1.234")])).expect("rows");
        assert!(matches!(compose(&rows), Built::Problem(p) if p.starts_with("第 1 个条件：金额")));
        let rows = rows_from(&pairs(&[("b0_kind", ""), ("b0_tag", "A")])).expect("rows");
        assert_eq!(compose(&rows), Built::Empty);
        assert!(rows_from(&pairs(&[("expr", "\"A\"")])).is_none());
        let rows = rows_from(&pairs(&[("b0_kind", "tag"), ("b0_tag", "say \"hi\"")])).expect("rows");
        assert_eq!(compose(&rows), Built::Expr(r#""say \"hi\"""#.to_owned()));
    }
}
