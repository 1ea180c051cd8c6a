//! Compiles an [`Expr`] into one SQL boolean condition over a follower row aliased `f`, with the
//! same meaning as [`Expr::eval`]. Builds text only: [`super`] runs it, for example
//!
//! ```sql
//! SELECT f.openid FROM followers f WHERE f.subscribed AND (<condition>)
//! ```
//!
//! Every user value (tag paths, menu keys, counts, amounts) and the window cutoffs are bind
//! parameters with an explicit cast (`$1::text`, `$2::bigint`, `$3::timestamptz`), never
//! interpolated; the text depends only on the expression's shape, so it suits `prepare_cached`.
//! Time is injected: the cutoffs are computed from the caller's `now`, with the same inclusive
//! boundary as [`Window::contains`] (`occurred_at >= now - window`, no upper bound).
//! Every piece is `EXISTS`, a count or a `coalesce`d sum, so nothing is ever `NULL` and SQL's
//! three-valued logic agrees with `eval`'s two values.
//!
//! Tables: `follower_tags(openid, tag_id)` joined to `tags(id, path)`; `events(openid, kind,
//! event_key, occurred_at)` with `kind = 'click'`; `orders(id, openid, amount_cents, occurred_at)`
//! (added with order import); `follower_scores(account_id, model, openid, score)` for `score(..)`. Indexes that keep each piece a short index probe per follower:
//! - `tags(path)` (its `UNIQUE`) and `follower_tags(openid, tag_id)` (its primary key); the planner
//!   may instead drive a tag test from `follower_tags(tag_id)` as a semi-join;
//! - `events(openid, kind, occurred_at)` (adding `event_key` after `kind` narrows it further;
//!   the existing `events(openid, occurred_at)` works, scanning other kinds too);
//! - `orders(openid, occurred_at) INCLUDE (amount_cents)`, so `spent` is an index-only scan.
//!
//! [`to_sql_set_based`] is the shape for conditions over (nearly) every follower: count and sum
//! comparisons become one grouped, hashed subquery instead of a probe per follower.
//!
//! Count comparisons that only ask "any?" or "none?" (`>= 1`, `> 0`, `!= 0`, `= 0`, `< 1`,
//! `<= 0`) become `EXISTS`/`NOT EXISTS`, which stop at the first row; always-true and
//! always-false ones (`>= 0`, `< 0`) become `TRUE`/`FALSE`.

use std::fmt::Write as _;

use crate::domain::account::AccountId;
use crate::domain::expr::{CmpOp, Expr, INTERACTION_KINDS, Window};

/// A bind parameter; the caller converts each to the type its placeholder is cast to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlParam {
    /// Bind as `text` (a `&str`/`String`).
    Text(String),
    /// Bind as `bigint` (an `i64`).
    Int(i64),
    /// Unix seconds; bind as `timestamptz` (e.g. `chrono::DateTime::<Utc>::from_timestamp(secs, 0)`).
    Timestamp(i64),
}

impl SqlParam {
    fn cast(&self) -> &'static str {
        match self {
            Self::Text(_) => "text",
            Self::Int(_) => "bigint",
            Self::Timestamp(_) => "timestamptz",
        }
    }
}

/// Compiles `expr` at `now` (unix seconds) into a condition over `f.openid` of `account` and its
/// parameters, numbered from `$first_param` (pass 1 unless the query binds its own parameters first; 0 counts
/// as 1). `params[i]` is placeholder `$(first_param + i)`; equal values share one placeholder.
pub fn to_sql(expr: &Expr, account: AccountId, now: i64, first_param: usize) -> (String, Vec<SqlParam>) {
    compile(expr, account, now, first_param, false)
}

/// [`to_sql`] for conditions evaluated over (nearly) every follower, such as a segment count or
/// a dynamic tag's full recomputation: a count or sum comparison becomes membership in one
/// grouped subquery (`f.openid IN (SELECT .. GROUP BY openid HAVING ..)`, or `NOT IN` with the
/// opposite test when a follower without events matches), which Postgres hashes once instead of
/// probing per follower. Same meaning, same parameters. The hash must fit in the query's
/// `work_mem` (the caller raises it); for a handful of followers use [`to_sql`], which probes.
pub fn to_sql_set_based(expr: &Expr, account: AccountId, now: i64, first_param: usize) -> (String, Vec<SqlParam>) {
    compile(expr, account, now, first_param, true)
}

fn compile(expr: &Expr, account: AccountId, now: i64, first_param: usize, set_based: bool) -> (String, Vec<SqlParam>) {
    let mut compiler = Compiler {
        sql: String::new(),
        params: Vec::new(),
        first: first_param.max(1),
        now,
        set_based,
        account: account.get(),
    };
    compiler.expr(expr);
    (compiler.sql, compiler.params)
}

struct Compiler {
    sql: String,
    params: Vec<SqlParam>,
    first: usize,
    now: i64,
    set_based: bool,
    account: i64,
}

/// The event rows a predicate reads: `FROM {from} WHERE {column} = <follower>{filters}`.
struct Rows {
    from: &'static str,
    column: &'static str,
    /// Empty, or ` AND ...` conditions on the rows.
    filters: String,
}

impl Rows {
    fn of_follower(&self) -> String {
        format!("{} WHERE {} = f.openid{}", self.from, self.column, self.filters)
    }

    /// `f.openid IN (..)` of the followers whose `aggregate` over their rows satisfies `test`,
    /// or `NOT IN` those failing it when a follower without rows (aggregate 0) satisfies it.
    fn grouped(&self, aggregate: &str, test: &str, zero_satisfies: bool) -> String {
        let (membership, having) = if zero_satisfies { ("NOT IN", "NOT ") } else { ("IN", "") };
        format!(
            "f.openid {membership} (SELECT {column} FROM {from} WHERE TRUE{filters} GROUP BY {column} \
             HAVING {having}({aggregate} {test}))",
            column = self.column,
            from = self.from,
            filters = self.filters,
        )
    }
}

/// `e.kind IN (..)` of [`INTERACTION_KINDS`]: constants of the code, never user input.
fn interaction_kinds() -> String {
    let quoted: Vec<String> = INTERACTION_KINDS.iter().map(|k| format!("'{k}'")).collect();
    format!("e.kind IN ({})", quoted.join(", "))
}

/// What `count op n` reduces to for a count that is never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CountTest {
    Always,
    Never,
    Any,
    None,
    Compare,
}

fn count_test(op: CmpOp, n: i64) -> CountTest {
    match (op, n) {
        (CmpOp::Ge, 0) => CountTest::Always,
        (CmpOp::Lt, 0) => CountTest::Never,
        (CmpOp::Ge, 1) | (CmpOp::Gt | CmpOp::Ne, 0) => CountTest::Any,
        (CmpOp::Lt, 1) | (CmpOp::Le | CmpOp::Eq, 0) => CountTest::None,
        _ => CountTest::Compare,
    }
}

impl Compiler {
    /// `$n::type` for `param`, reusing the placeholder of an equal one.
    fn bind(&mut self, param: SqlParam) -> String {
        let cast = param.cast();
        let index = match self.params.iter().position(|p| *p == param) {
            Some(index) => index,
            None => {
                self.params.push(param);
                self.params.len() - 1
            }
        };
        format!("${}::{cast}", self.first + index)
    }

    /// ` AND {alias}.account_id = $n::bigint`: two accounts may hold the same openid, and a tag
    /// path names a tag within one account (another account's tag is no tag here). Bound, not
    /// correlated with `f`, so a grouped subquery reads only the account's rows.
    fn of_account(&mut self, alias: &str) -> String {
        format!(" AND {alias}.account_id = {}", self.bind(SqlParam::Int(self.account)))
    }

    /// ` AND {column} >= $n::timestamptz`, or nothing for `all`.
    fn since(&mut self, column: &str, window: Window) -> String {
        match window.cutoff(self.now) {
            Some(cutoff) => format!(" AND {column} >= {}", self.bind(SqlParam::Timestamp(cutoff))),
            None => String::new(),
        }
    }

    /// A count of the rows `rows` selects, compared with `n`. `rows` binds its own parameters,
    /// so it is only called when the rows matter: Postgres rejects a statement with a parameter
    /// it cannot type because nothing uses it.
    fn count(&mut self, rows: impl FnOnce(&mut Self) -> Rows, op: CmpOp, n: i64) {
        let test = count_test(op, n);
        let rows = match test {
            CountTest::Always => return self.sql.push_str("TRUE"),
            CountTest::Never => return self.sql.push_str("FALSE"),
            _ => rows(self),
        };
        match test {
            CountTest::Any => write!(self.sql, "EXISTS (SELECT 1 FROM {})", rows.of_follower()),
            CountTest::None => write!(self.sql, "NOT EXISTS (SELECT 1 FROM {})", rows.of_follower()),
            _ if self.set_based => {
                let n_param = self.bind(SqlParam::Int(n));
                let zero = op.holds(0, i128::from(n));
                self.sql.push_str(&rows.grouped("count(*)", &format!("{op} {n_param}"), zero));
                Ok(())
            }
            _ => {
                let n = self.bind(SqlParam::Int(n));
                write!(self.sql, "(SELECT count(*) FROM {}) {op} {n}", rows.of_follower())
            }
        }
        .expect("String never fails");
    }

    fn expr(&mut self, expr: &Expr) {
        match expr {
            Expr::Tag(path) => {
                let path = self.bind(SqlParam::Text(path.as_str().to_owned()));
                let account = self.of_account("t");
                write!(
                    self.sql,
                    "EXISTS (SELECT 1 FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id \
                     WHERE ft.openid = f.openid AND t.path = {path}{account})"
                )
                .expect("String never fails");
            }
            Expr::Clicked { key, window, op, count } => {
                let rows = |c: &mut Self| {
                    let key = c.bind(SqlParam::Text(key.clone()));
                    let since = c.since("e.occurred_at", *window);
                    let account = c.of_account("e");
                    Rows {
                        from: "events e",
                        column: "e.openid",
                        filters: format!(" AND e.kind = 'click' AND e.event_key = {key}{since}{account}"),
                    }
                };
                self.count(rows, *op, *count);
            }
            Expr::Orders { window, op, count } => {
                let rows = |c: &mut Self| {
                    let since = c.since("o.occurred_at", *window);
                    let account = c.of_account("o");
                    Rows { from: "orders o", column: "o.openid", filters: format!("{since}{account}") }
                };
                self.count(rows, *op, *count);
            }
            Expr::Spent { window, op, cents } => {
                let since = self.since("o.occurred_at", *window);
                let account = self.of_account("o");
                let rows = Rows { from: "orders o", column: "o.openid", filters: format!("{since}{account}") };
                let zero = op.holds(0, i128::from(*cents));
                let cents = self.bind(SqlParam::Int(*cents));
                if self.set_based {
                    self.sql.push_str(&rows.grouped("sum(o.amount_cents)", &format!("{op} {cents}"), zero));
                } else {
                    write!(
                        self.sql,
                        "(SELECT coalesce(sum(o.amount_cents), 0) FROM {}) {op} {cents}",
                        rows.of_follower()
                    )
                    .expect("String never fails");
                }
            }
            Expr::Score { model, op, milli } => {
                let model = self.bind(SqlParam::Text(model.clone()));
                let account = self.of_account("s");
                let milli = self.bind(SqlParam::Int(*milli));
                // Both sides as float8, divided as `score_threshold` divides in memory, so a score
                // exactly at the threshold compares alike here and in `Expr::eval`.
                write!(
                    self.sql,
                    "EXISTS (SELECT 1 FROM follower_scores s WHERE s.openid = f.openid AND s.model = {model}\
                     {account} AND s.score::float8 {op} ({milli})::float8 / 1000)"
                )
                .expect("String never fails");
            }
            Expr::Active { window } => {
                let rows = |c: &mut Self| {
                    let since = c.since("e.occurred_at", *window);
                    let account = c.of_account("e");
                    Rows {
                        from: "events e",
                        column: "e.openid",
                        filters: format!(" AND {}{since}{account}", interaction_kinds()),
                    }
                };
                self.count(rows, CmpOp::Ge, 1);
            }
            Expr::Not(inner) => {
                self.sql.push_str("(NOT ");
                self.expr(inner);
                self.sql.push(')');
            }
            Expr::And(lhs, rhs) | Expr::Or(lhs, rhs) => {
                let joiner = if matches!(expr, Expr::And(..)) { " AND " } else { " OR " };
                self.sql.push('(');
                self.expr(lhs);
                self.sql.push_str(joiner);
                self.expr(rhs);
                self.sql.push(')');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::expr::tests::{KEYS, PATHS, arb_expr, longest_flat_chain, on_a_small_stack};
    use crate::domain::expr::{MAX_AMOUNT_CENTS, MAX_COUNT, parse};

    const NOW: i64 = 1_750_000_000;
    /// Not 1, so the account's placeholder never coincides with a count's.
    const A: AccountId = AccountId(7);

    fn compile(input: &str) -> (String, Vec<SqlParam>) {
        to_sql(&parse(input).unwrap(), A, NOW, 1)
    }

    #[test]
    fn tags_and_logic_compile_to_exists_and_parenthesised_operators() {
        let (sql, params) = compile(r#""肤质/油性" AND NOT "状态/已购" OR "肤质/油性""#);
        let tag = |n: usize| {
            format!(
                "EXISTS (SELECT 1 FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id \
                 WHERE ft.openid = f.openid AND t.path = ${n}::text AND t.account_id = $2::bigint)"
            )
        };
        assert_eq!(sql, format!("(({} AND (NOT {})) OR {})", tag(1), tag(3), tag(1)));
        assert_eq!(
            params,
            [SqlParam::Text("肤质/油性".into()), SqlParam::Int(A.get()), SqlParam::Text("状态/已购".into())]
        );
    }

    #[test]
    fn event_predicates_bind_keys_counts_amounts_and_cutoffs() {
        let (sql, params) = compile(r#"clicked("SKIN_TEST", 7d) AND orders(30d) >= 2 AND spent(all) >= 499.5"#);
        assert_eq!(
            sql,
            "((EXISTS (SELECT 1 FROM events e WHERE e.openid = f.openid AND e.kind = 'click' \
             AND e.event_key = $1::text AND e.occurred_at >= $2::timestamptz AND e.account_id = $3::bigint) \
             AND (SELECT count(*) FROM orders o WHERE o.openid = f.openid AND o.occurred_at >= $4::timestamptz \
             AND o.account_id = $3::bigint) >= $5::bigint) \
             AND (SELECT coalesce(sum(o.amount_cents), 0) FROM orders o WHERE o.openid = f.openid \
             AND o.account_id = $3::bigint) >= $6::bigint)"
        );
        assert_eq!(
            params,
            [
                SqlParam::Text("SKIN_TEST".into()),
                SqlParam::Timestamp(NOW - 7 * 86_400),
                SqlParam::Int(A.get()),
                SqlParam::Timestamp(NOW - 30 * 86_400),
                SqlParam::Int(2),
                SqlParam::Int(49_950),
            ]
        );
    }

    #[test]
    fn active_is_any_interaction_event_inside_the_window() {
        let (sql, params) = compile("NOT active(14d)");
        assert_eq!(
            sql,
            "(NOT EXISTS (SELECT 1 FROM events e WHERE e.openid = f.openid \
             AND e.kind IN ('click', 'view', 'text', 'subscribe', 'scan') \
             AND e.occurred_at >= $1::timestamptz AND e.account_id = $2::bigint))"
        );
        assert_eq!(params, [SqlParam::Timestamp(NOW - 14 * 86_400), SqlParam::Int(A.get())]);
    }

    #[test]
    fn any_or_none_counts_become_exists_and_trivial_ones_constants() {
        let (sql, params) = compile("orders(24h) = 0");
        assert_eq!(
            sql,
            "NOT EXISTS (SELECT 1 FROM orders o WHERE o.openid = f.openid AND o.occurred_at >= $1::timestamptz \
             AND o.account_id = $2::bigint)"
        );
        assert_eq!(params, [SqlParam::Timestamp(NOW - 86_400), SqlParam::Int(A.get())]);
        // Nothing is bound for them: Postgres cannot type a parameter that nothing uses.
        assert_eq!(compile(r#"clicked("K", 7d) >= 0"#), ("TRUE".to_owned(), vec![]));
        assert_eq!(compile("orders(7d) < 0"), ("FALSE".to_owned(), vec![]));
        // The shortcuts mean exactly what the comparison means, for every count.
        for op in [CmpOp::Eq, CmpOp::Ne, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge] {
            for n in 0..4 {
                for count in 0..6 {
                    let shortcut = match count_test(op, n) {
                        CountTest::Always => true,
                        CountTest::Never => false,
                        CountTest::Any => count > 0,
                        CountTest::None => count == 0,
                        CountTest::Compare => continue,
                    };
                    assert_eq!(shortcut, op.holds(count, i128::from(n)), "count {count} {op} {n}");
                }
            }
        }
    }

    #[test]
    fn set_based_comparisons_group_once_and_keep_followers_without_events_right() {
        let expr = parse(r#"orders(30d) >= 2 OR spent(all) < 100 OR clicked("K", 7d) != 3 OR orders(7d) = 0"#).unwrap();
        let (sql, params) = to_sql_set_based(&expr, A, NOW, 1);
        assert_eq!(
            sql,
            "(((f.openid IN (SELECT o.openid FROM orders o WHERE TRUE AND o.occurred_at >= $1::timestamptz \
             AND o.account_id = $2::bigint GROUP BY o.openid HAVING (count(*) >= $3::bigint)) \
             OR f.openid NOT IN (SELECT o.openid FROM orders o WHERE TRUE AND o.account_id = $2::bigint \
             GROUP BY o.openid HAVING NOT (sum(o.amount_cents) < $4::bigint))) \
             OR f.openid NOT IN (SELECT e.openid FROM events e WHERE TRUE AND e.kind = 'click' \
             AND e.event_key = $5::text AND e.occurred_at >= $6::timestamptz AND e.account_id = $2::bigint \
             GROUP BY e.openid HAVING NOT (count(*) != $7::bigint))) \
             OR NOT EXISTS (SELECT 1 FROM orders o WHERE o.openid = f.openid AND o.occurred_at >= $6::timestamptz \
             AND o.account_id = $2::bigint))"
        );
        assert_eq!(params.len(), 7, "the two 7-day cutoffs share one parameter, and every piece the account's");
        // Per follower, the same expression probes instead.
        assert!(!to_sql(&expr, A, NOW, 1).0.contains("GROUP BY"));
    }

    #[test]
    fn placeholders_start_where_the_caller_says() {
        let (sql, params) = compile(r#""VIP""#);
        let (shifted, same) = to_sql(&parse(r#""VIP""#).unwrap(), A, NOW, 3);
        assert_eq!(shifted, sql.replace("$2", "$4").replace("$1", "$3"));
        assert_eq!(same, params);
        assert_eq!(to_sql(&parse(r#""VIP""#).unwrap(), A, NOW, 0).0, sql);
    }

    #[test]
    fn the_cutoff_moves_with_the_injected_now() {
        let expr = parse("orders(2h) > 3").unwrap();
        let (a, pa) = to_sql(&expr, A, NOW, 1);
        let (b, pb) = to_sql(&expr, A, NOW + 60, 1);
        assert_eq!(a, b, "the text does not depend on time");
        assert_eq!(pa[0], SqlParam::Timestamp(NOW - 7_200));
        assert_eq!(pb[0], SqlParam::Timestamp(NOW + 60 - 7_200));
    }

    /// The `$n` placeholders in `sql`, in order.
    fn placeholders(sql: &str) -> Vec<usize> {
        let mut out = Vec::new();
        let mut rest = sql;
        while let Some(i) = rest.find('$') {
            rest = &rest[i + 1..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            out.push(digits.parse().expect("a number follows every $"));
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn user_values_only_reach_sql_as_parameters(
            expr in arb_expr(
                prop_oneof![Just(Window::Days(7)), Just(Window::Hours(5)), Just(Window::All)],
                prop_oneof![0..3i64, 0..=MAX_COUNT],
                prop_oneof![Just(0i64), 0..=MAX_AMOUNT_CENTS],
            ),
            first in 1usize..5,
            set_based in any::<bool>(),
        ) {
            let (sql, params) = if set_based { to_sql_set_based(&expr, A, NOW, first) } else { to_sql(&expr, A, NOW, first) };
            // Every placeholder has a parameter and every parameter is used.
            let used = placeholders(&sql);
            for n in &used {
                prop_assert!((first..first + params.len()).contains(n), "${} in {}", n, sql);
            }
            for i in 0..params.len() {
                prop_assert!(used.contains(&(first + i)), "parameter {} unused in {}", i, sql);
            }
            // Paths and keys (quotes, `'); DROP ..`) never appear in the text.
            for text in PATHS.iter().chain(KEYS) {
                prop_assert!(!sql.contains(text), "{} leaked into {}", text, sql);
            }
            prop_assert!(!sql.contains('"') && !sql.contains(';') && !sql.contains("--"), "{}", sql);
            let constants = sql.replace(&interaction_kinds(), "");
            prop_assert_eq!(constants.matches('\'').count(), 2 * constants.matches("'click'").count(), "{}", sql);
            // Balanced parentheses.
            let mut depth = 0i64;
            for c in sql.chars() {
                depth += match c { '(' => 1, ')' => -1, _ => 0 };
                prop_assert!(depth >= 0);
            }
            prop_assert_eq!(depth, 0);
        }
    }

    #[test]
    fn the_longest_flat_chain_compiles_on_a_small_stack() {
        let input = longest_flat_chain();
        on_a_small_stack(move || {
            let expr = parse(&input).unwrap();
            let (sql, params) = to_sql(&expr, A, 0, 1);
            assert!(sql.len() > input.len());
            assert_eq!(params.len(), 3, "two tag paths and the account");
        });
    }
}
