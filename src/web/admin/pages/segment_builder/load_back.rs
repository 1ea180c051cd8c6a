//! A parsed expression → groups, when its tree has the builder's shape: one chain of groups,
//! each an AND or OR chain of conditions the builder knows, possibly negated.
//!
//! Chains nest to the left (`a AND b AND c` is `And(And(a, b), c)`), so only the left spine is
//! flattened: a parenthesised right operand stays a group of its own, and composing the groups
//! again gives the same text.

use super::{Builder, Group, MAX_GROUPS, MAX_ROWS, Row};
use crate::domain::expr::{CmpOp, Expr, Window};

/// The groups `expr` reads as, or why it cannot be shown in the builder (in Chinese, saying to
/// edit the text instead).
pub fn load_back(expr: &Expr) -> Result<Builder, String> {
    let (join, operands) = match expr {
        Expr::And(..) => ("and", spine(expr)),
        Expr::Or(..) => ("or", spine(expr)),
        _ => ("and", vec![expr]),
    };
    // Runs of single conditions are groups joined like the top (`A OR B OR (C AND D)` is the
    // group `A OR B`, then `C AND D`), cut into groups of at most MAX_ROWS. `compose` writes such
    // a group without parentheses, so the text is the chain's however it was cut.
    let mut groups = Vec::new();
    let mut run: Vec<Row> = Vec::new();
    let flush = |run: &mut Vec<Row>, groups: &mut Vec<Group>| {
        for chunk in run.chunks(MAX_ROWS) {
            groups.push(Group { join: join.to_owned(), negate: false, rows: chunk.to_vec() });
        }
        run.clear();
    };
    for operand in operands {
        match condition(operand) {
            Ok(row) => run.push(row),
            Err(_) => {
                flush(&mut run, &mut groups);
                groups.push(group(operand)?);
            }
        }
    }
    flush(&mut run, &mut groups);
    if groups.len() > MAX_GROUPS {
        return Err(format!("这个表达式要分成 {} 组，条件里最多 {MAX_GROUPS} 组，请在文本框中编辑。", groups.len()));
    }
    if let Some((g, too_many)) = groups.iter().enumerate().find(|(_, group)| group.rows.len() > MAX_ROWS) {
        return Err(format!(
            "第 {} 组有 {} 个条件，每组最多 {MAX_ROWS} 个，请在文本框中编辑。",
            g + 1,
            too_many.rows.len()
        ));
    }
    Ok(Builder { join: join.to_owned(), groups })
}

/// The operands of a chain of one kind, following its left spine.
fn spine(expr: &Expr) -> Vec<&Expr> {
    let mut operands = Vec::new();
    let mut at = expr;
    loop {
        match (expr, at) {
            (Expr::And(..), Expr::And(lhs, rhs)) | (Expr::Or(..), Expr::Or(lhs, rhs)) => {
                operands.push(&**rhs);
                at = lhs;
            }
            _ => {
                operands.push(at);
                break;
            }
        }
    }
    operands.reverse();
    operands
}

/// One operand of the top chain as a group: a condition, a chain of conditions, or either negated.
fn group(expr: &Expr) -> Result<Group, String> {
    let (negate, inner) = match expr {
        Expr::Not(inner)
            if !matches!(
                **inner,
                Expr::Tag(_)
                    | Expr::Clicked { .. }
                    | Expr::Orders { .. }
                    | Expr::Spent { .. }
                    | Expr::Score { .. }
                    | Expr::Active { .. }
            ) =>
        {
            (true, &**inner)
        }
        _ => (false, expr),
    };
    let (join, rows) = match inner {
        Expr::And(..) => ("and", spine(inner)),
        Expr::Or(..) => ("or", spine(inner)),
        _ => ("and", vec![inner]),
    };
    let rows = rows.into_iter().map(condition).collect::<Result<Vec<_>, _>>()?;
    Ok(Group { join: join.to_owned(), negate, rows })
}

/// A condition the builder knows, possibly negated, as a row.
fn condition(expr: &Expr) -> Result<Row, String> {
    let (negate, leaf) = match expr {
        Expr::Not(inner) => (true, &**inner),
        _ => (false, expr),
    };
    let mut row = Row { negate, ..Row::default() };
    match leaf {
        Expr::Tag(path) => {
            row.kind = "tag".to_owned();
            path.as_str().clone_into(&mut row.tag);
        }
        Expr::Clicked { key, window, op, count } => {
            row.kind = "clicked".to_owned();
            key.clone_into(&mut row.key);
            row.days = days(*window, leaf)?;
            row.n = at_least(*op, *count, leaf)?.to_string();
        }
        Expr::Orders { window, op, count } => {
            row.kind = "orders".to_owned();
            row.days = days(*window, leaf)?;
            row.n = at_least(*op, *count, leaf)?.to_string();
        }
        Expr::Spent { window, op, cents } => {
            row.kind = "spent".to_owned();
            row.days = days(*window, leaf)?;
            row.yuan = yuan(at_least(*op, *cents, leaf)?);
        }
        Expr::Score { op: CmpOp::Ge, .. } => {
            row.kind = "score".to_owned();
            // The canonical text's number: `score(purchase_7d) >= 0.6` → `0.6`.
            let text = leaf.to_string();
            text.rsplit(' ').next().unwrap_or_default().clone_into(&mut row.p);
        }
        Expr::Score { op, .. } => {
            return Err(format!("{leaf} 用的比较是 {op}，条件里只能表示「至少」（>=），请在文本框中编辑。"));
        }
        Expr::Active { .. } => {
            return Err(format!("条件里还没有「近期有互动」这一项，{leaf} 请在文本框中编辑。"));
        }
        Expr::Not(_) | Expr::And(..) | Expr::Or(..) => {
            return Err("这个表达式嵌套超过两层（组里还有组），条件里放不下，请在文本框中编辑。".to_owned());
        }
    }
    Ok(row)
}

/// The builder counts whole days; `all` is an empty field.
fn days(window: Window, leaf: &Expr) -> Result<String, String> {
    match window {
        Window::Days(days) => Ok(days.to_string()),
        Window::All => Ok(String::new()),
        Window::Hours(_) => Err(format!("{leaf} 的时间范围按小时计，条件里只能按天选择，请在文本框中编辑。")),
    }
}

/// The builder only says "at least" (`>=`).
fn at_least(op: CmpOp, value: i64, leaf: &Expr) -> Result<i64, String> {
    if op == CmpOp::Ge {
        return Ok(value);
    }
    let number = if matches!(leaf, Expr::Spent { .. }) { yuan(value) } else { value.to_string() };
    let hint = match (op, leaf) {
        (CmpOp::Lt, _) => format!("（可改写成 NOT … >= {number}）"),
        (CmpOp::Eq, Expr::Orders { .. } | Expr::Clicked { .. }) if value == 0 => "（可改写成 NOT … >= 1）".to_owned(),
        _ => String::new(),
    };
    Err(format!("{leaf} 用的比较是 {op}，条件里只能表示「至少」（>=），请在文本框中编辑{hint}。"))
}

/// Cents as yuan, the way the expression prints them: 49950 → `499.5`.
fn yuan(cents: i64) -> String {
    match (cents / 100, cents % 100) {
        (whole, 0) => whole.to_string(),
        (whole, part) if part % 10 == 0 => format!("{whole}.{}", part / 10),
        (whole, part) => format!("{whole}.{part:02}"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{Built, compose};
    use super::*;
    use crate::domain::expr::parse;

    /// Composes, parses, loads back and composes again; both texts must agree.
    #[track_caller]
    fn round_trip(builder: &Builder) -> Option<String> {
        let Built::Expr(text) = compose(builder) else { return None };
        let loaded = load_back(&parse(&text).expect("composed text parses")).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(compose(&loaded), Built::Expr(text.clone()), "{builder:?} → {loaded:?}");
        Some(text)
    }

    fn loads(text: &str) -> Result<Builder, String> {
        load_back(&parse(text).expect(text))
    }

    fn tag(path: &str) -> Row {
        Row { kind: "tag".into(), tag: path.into(), ..Row::default() }
    }

    #[test]
    fn typed_expressions_of_the_builders_shape_fill_the_groups() {
        let builder = loads(r#"NOT ("a" OR "b") AND "c""#).expect("fits");
        assert_eq!(builder.join, "and");
        assert_eq!(builder.groups.len(), 2);
        assert!(builder.groups[0].negate && builder.groups[0].is_or());
        assert_eq!(builder.groups[0].rows, vec![tag("a"), tag("b")]);
        assert_eq!(builder.groups[1].rows, vec![tag("c")]);

        let builder =
            loads(r#""A" OR NOT "B" OR clicked("K", 7d) AND orders(all) >= 2 AND spent(90d) >= 499.05"#).expect("fits");
        assert!(builder.is_or());
        assert_eq!(builder.groups.len(), 2, "{builder:?}");
        assert_eq!(builder.groups[0].rows, vec![tag("A"), Row { negate: true, ..tag("B") }]);
        let rows = &builder.groups[1].rows;
        assert_eq!(
            rows[0],
            Row { kind: "clicked".into(), key: "K".into(), days: "7".into(), n: "1".into(), ..Row::default() }
        );
        assert_eq!(rows[1], Row { kind: "orders".into(), n: "2".into(), ..Row::default() });
        assert_eq!(rows[2], Row { kind: "spent".into(), days: "90".into(), yuan: "499.05".into(), ..Row::default() });

        // A lone condition, a lone negated group, a doubly negated condition.
        assert_eq!(loads(r#""A""#).expect("fits").groups, vec![Group { rows: vec![tag("A")], ..Group::default() }]);
        let lone = loads(r#"NOT ("A" AND "B")"#).expect("fits");
        assert!(lone.groups[0].negate && !lone.groups[0].is_or());
        let twice = loads(r#"NOT NOT "A""#).expect("fits");
        assert_eq!(
            twice.groups[0],
            Group { negate: true, rows: vec![Row { negate: true, ..tag("A") }], ..Group::default() }
        );
    }

    #[test]
    fn other_shapes_are_refused_saying_why_in_chinese() {
        let deep = loads(r#""A" AND ("B" OR "C" AND "D")"#).unwrap_err();
        assert_eq!(deep, "这个表达式嵌套超过两层（组里还有组），条件里放不下，请在文本框中编辑。");
        assert!(loads(r#"NOT (NOT ("A" OR "B") AND "C")"#).unwrap_err().contains("嵌套超过两层"));
        assert_eq!(
            loads("orders(30d) = 0").unwrap_err(),
            "orders(30d) = 0 用的比较是 =，条件里只能表示「至少」（>=），请在文本框中编辑（可改写成 NOT … >= 1）。"
        );
        assert!(loads("spent(all) < 100").unwrap_err().contains("（可改写成 NOT … >= 100）"));
        assert!(loads(r#"clicked("K", 24h)"#).unwrap_err().contains("按小时计"));
        assert!(loads(r#""A" AND active(14d)"#).unwrap_err().contains("近期有互动"));
        let seven = (0..7).map(|i| format!(r#"("A{i}" OR "B")"#)).collect::<Vec<_>>().join(" AND ");
        assert_eq!(loads(&seven).unwrap_err(), "这个表达式要分成 7 组，条件里最多 6 组，请在文本框中编辑。");
        let nine = (0..9).map(|i| format!(r#""A{i}""#)).collect::<Vec<_>>().join(" OR ");
        assert_eq!(
            loads(&format!(r#""X" AND ({nine})"#)).unwrap_err(),
            "第 2 组有 9 个条件，每组最多 8 个，请在文本框中编辑。"
        );
        // Nine conditions in one chain fit as two groups of the same tree.
        let split = loads(&nine).expect("fits");
        assert_eq!(split.groups.iter().map(|g| g.rows.len()).collect::<Vec<_>>(), [8, 1]);
        assert_eq!(compose(&split), Built::Expr(nine));
    }

    #[test]
    fn every_builder_shape_round_trips_to_the_same_text() {
        let joins = ["and", "or"];
        let leaves = [
            tag("A"),
            Row { negate: true, ..tag("B") },
            Row { kind: "orders".into(), days: "30".into(), n: "0".into(), ..Row::default() },
            Row { negate: true, kind: "spent".into(), yuan: "0.5".into(), ..Row::default() },
            Row { kind: "score".into(), p: "0.6".into(), ..Row::default() },
        ];
        for top in joins {
            for (first, second) in [(1, 1), (1, 3), (2, 1), (3, 2), (2, 2)] {
                for inner in joins {
                    for inner2 in joins {
                        for negate in [(false, false), (true, false), (false, true), (true, true)] {
                            let group = |join: &str, negate: bool, n: usize, skip: usize| Group {
                                join: join.into(),
                                negate,
                                rows: leaves.iter().cycle().skip(skip).take(n).cloned().collect(),
                            };
                            let builder = Builder {
                                join: top.into(),
                                groups: vec![group(inner, negate.0, first, 0), group(inner2, negate.1, second, 1)],
                            };
                            assert!(round_trip(&builder).is_some(), "{builder:?}");
                        }
                    }
                }
            }
        }
    }

    fn any_row() -> impl Strategy<Value = Row> {
        let days = prop_oneof![Just(String::new()), (1u32..=3650).prop_map(|d| d.to_string())];
        let n = prop_oneof![Just(String::new()), (0u32..50).prop_map(|n| n.to_string())];
        let text = "[a-zA-Z0-9_\"\\\\ 肤质]{1,6}";
        (any::<bool>(), 0..5usize, text, days, n, 0u32..100_000).prop_map(|(negate, kind, text, days, n, cents)| {
            let mut row = Row { negate, days, n, ..Row::default() };
            match kind {
                0 => (row.kind, row.tag) = ("tag".into(), format!("x{}", text.trim())),
                1 => (row.kind, row.key) = ("clicked".into(), text),
                2 => row.kind = "orders".into(),
                3 => {
                    (row.kind, row.p, row.days, row.n) =
                        ("score".into(), format!("0.{}", cents % 1000), String::new(), String::new())
                }
                _ => (row.kind, row.yuan) = ("spent".into(), format!("{}.{:02}", cents / 100, cents % 100)),
            }
            row
        })
    }

    fn any_builder() -> impl Strategy<Value = Builder> {
        let join = prop_oneof![Just("and".to_owned()), Just("or".to_owned())];
        let group = (join.clone(), any::<bool>(), prop::collection::vec(any_row(), 1..=MAX_ROWS))
            .prop_map(|(join, negate, rows)| Group { join, negate, rows });
        (join, prop::collection::vec(group, 1..=MAX_GROUPS)).prop_map(|(join, groups)| Builder { join, groups })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn composed_groups_load_back_to_the_same_text(builder in any_builder()) {
            if let Built::Problem(problem) = compose(&builder) {
                prop_assert!(false, "{builder:?}: {problem}");
            }
            round_trip(&builder);
        }
    }
}
