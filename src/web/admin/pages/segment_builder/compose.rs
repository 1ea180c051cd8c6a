//! Groups → the canonical text of one expression.

use super::{Builder, Row};
use crate::domain::expr;

/// What the builder composed.
#[derive(Debug, PartialEq, Eq)]
pub enum Built {
    /// The canonical expression.
    Expr(String),
    /// No row is filled in.
    Empty,
    /// A row cannot become a condition: the message names the group and the row.
    Problem(String),
}

/// Composes the filled rows into one expression in canonical form. Every group is written in
/// parentheses and the parser drops those the tree does not need, so the text is exactly what
/// typing the same tree would give.
pub fn compose(builder: &Builder) -> Built {
    let mut groups = Vec::new();
    for (g, group) in builder.groups.iter().enumerate() {
        let mut terms = Vec::new();
        for (r, row) in group.rows.iter().enumerate().filter(|(_, row)| !row.kind.is_empty()) {
            let place = format!("第 {} 组第 {} 个条件", g + 1, r + 1);
            let term = match term(row) {
                Ok(term) => term,
                Err(why) => return Built::Problem(format!("{place}：{why}")),
            };
            // Each term alone first, so a problem is reported against its own row.
            if let Err(error) = expr::parse(&term) {
                return Built::Problem(format!("{place}：{}", error.kind));
            }
            terms.push(if row.negate { format!("NOT {term}") } else { term });
        }
        if terms.is_empty() {
            continue;
        }
        let inner = terms.join(if group.is_or() { " OR " } else { " AND " });
        // A group joined like the groups is part of one chain: written without parentheses, its
        // text is the chain's, which `load_back` cuts into the same groups again.
        let same_join = group.is_or() == builder.is_or();
        groups.push(match (group.negate, same_join) {
            (true, _) => format!("NOT ({inner})"),
            (false, true) => inner,
            (false, false) => format!("({inner})"),
        });
    }
    if groups.is_empty() {
        return Built::Empty;
    }
    let text = groups.join(if builder.is_or() { " OR " } else { " AND " });
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
            let whole = |w: &str| !w.is_empty() && w.len() <= 12 && w.bytes().all(|b| b.is_ascii_digit());
            let valid = yuan
                .split_once('.')
                .map_or(whole(yuan), |(w, f)| whole(w) && f.len() <= 2 && f.bytes().all(|b| b.is_ascii_digit()));
            if !valid {
                return Err("金额请填不小于 0 的数字，最多两位小数，如 199.5。".to_owned());
            }
            Ok(format!("spent({window}) >= {yuan}"))
        }
        "score" => {
            let p = row.p.trim();
            if p.is_empty() {
                return Err("请填写概率（0 到 1 之间，如 0.6）。".to_owned());
            }
            Ok(format!("score(purchase_7d) >= {p}"))
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
    use super::super::tests::pairs;
    use super::*;

    fn built(list: &[(&str, &str)]) -> Built {
        compose(&Builder::from_pairs(&pairs(list)).expect("builder fields"))
    }

    #[test]
    fn groups_compose_into_canonical_text_with_only_the_parentheses_needed() {
        // (A OR B) AND C
        let text = built(&[
            ("g0_join", "or"),
            ("g0r0_kind", "tag"),
            ("g0r0_tag", "A"),
            ("g0r1_kind", "tag"),
            ("g0r1_tag", "B"),
            ("g1r0_kind", "tag"),
            ("g1r0_tag", "C"),
        ]);
        assert_eq!(text, Built::Expr(r#"("A" OR "B") AND "C""#.to_owned()));
        // NOT (A OR B) AND C, and the same joined by 满足任一组.
        let not_a_or_b = [
            ("g0_join", "or"),
            ("g0_not", "1"),
            ("g0r0_kind", "tag"),
            ("g0r0_tag", "a"),
            ("g0r1_kind", "tag"),
            ("g0r1_tag", "b"),
            ("g1r0_kind", "tag"),
            ("g1r0_tag", "c"),
        ];
        assert_eq!(built(&not_a_or_b), Built::Expr(r#"NOT ("a" OR "b") AND "c""#.to_owned()));
        let either = [&not_a_or_b[..], &[("groups_join", "or")]].concat();
        assert_eq!(built(&either), Built::Expr(r#"NOT ("a" OR "b") OR "c""#.to_owned()));
        // Every kind of row, negated rows, an unused row and an empty group in between.
        let text = built(&[
            ("groups_join", "or"),
            ("g0r0_kind", "tag"),
            ("g0r0_tag", "肤质/油性"),
            ("g0r1_kind", "clicked"),
            ("g0r1_key", "SKIN_TEST"),
            ("g0r1_days", "7"),
            ("g0r2_kind", ""),
            ("g0r2_tag", "left over"),
            ("g1r0_kind", ""),
            ("g2_join", "and"),
            ("g2r0_not", "1"),
            ("g2r0_kind", "orders"),
            ("g2r0_days", "30"),
            ("g2r0_n", "2"),
            ("g2r1_kind", "spent"),
            ("g2r1_yuan", "¥499.50"),
            ("g2r2_kind", "clicked"),
            ("g2r2_key", "MENU"),
            ("g2r2_n", "3"),
        ]);
        assert_eq!(
            text,
            Built::Expr(
                r#""肤质/油性" AND clicked("SKIN_TEST", 7d) OR NOT orders(30d) >= 2 AND spent(all) >= 499.5 AND clicked("MENU", all) >= 3"#
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_bad_row_is_named_by_group_and_place_in_chinese_and_nothing_filled_is_empty() {
        let problem = built(&[("g0r0_kind", "tag"), ("g0r0_tag", "A"), ("g1r2_kind", "orders"), ("g1r2_days", "0")]);
        assert_eq!(problem, Built::Problem("第 2 组第 3 个条件：天数请填 1–3650 的整数，留空表示不限时间。".into()));
        let problem = built(&[("g0r0_kind", "spent"), ("g0r0_yuan", "1.234")]);
        assert!(matches!(problem, Built::Problem(p) if p.starts_with("第 1 组第 1 个条件：金额")));
        let problem = built(&[("g0r0_kind", "tag"), ("g0r0_tag", "a//b")]);
        assert!(
            matches!(&problem, Built::Problem(p) if p.starts_with("第 1 组第 1 个条件：标签路径不合法")),
            "{problem:?}"
        );
        assert_eq!(built(&[("g0r0_kind", ""), ("g0r0_tag", "A"), ("g0_not", "1")]), Built::Empty);
        assert_eq!(built(&[("g0r0_kind", "tag"), ("g0r0_tag", "say \"hi\"")]), Built::Expr(r#""say \"hi\"""#.into()));
    }
}
