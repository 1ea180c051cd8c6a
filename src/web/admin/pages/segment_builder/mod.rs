//! 人群's visual builder: up to [`MAX_GROUPS`] groups of up to [`MAX_ROWS`] conditions (a tag,
//! clicked a menu, orders, spending). A row may be negated (不); a group joins its rows with
//! 全部满足 (AND) or 任一满足 (OR) and may be excluded as a whole (排除这一组 = `NOT (…)`); the
//! groups are joined by one top-level connector (满足全部组 / 满足任一组). [`compose`] writes
//! the groups as the canonical text of the expression language an operator can type, and
//! [`load_back`] fills the groups from a typed expression when its tree has that shape.
//!
//! The form travels as query fields (`groups_join`, `g{g}_join`, `g{g}_not`, `g{g}r{r}_not`,
//! `g{g}r{r}_kind`, `_tag`, `_key`, `_days`, `_n`, `_yuan`, `_p`) plus one action button (`build`,
//! `add_row={g}`, `add_group`, `remove_row={g}.{r}`, `remove_group={g}`), so the page works
//! without script and admin.js only re-asks the same composition for a live count.

mod compose;
mod load_back;

pub use compose::{Built, compose};
pub use load_back::load_back;

/// The most groups a builder holds (a longer audience is easier to read typed).
pub const MAX_GROUPS: usize = 6;
/// The most rows one group holds.
pub const MAX_ROWS: usize = 8;

/// The days a fresh behaviour row starts with.
const FRESH_DAYS: &str = "30";

/// The whole builder as the form carries it, echoed back so the operator can keep editing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Builder {
    /// `and` (满足全部组) or `or` (满足任一组).
    pub join: String,
    pub groups: Vec<Group>,
}

/// One group of rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// `and` (全部满足) or `or` (任一满足).
    pub join: String,
    /// 排除这一组: the group is `NOT (…)`.
    pub negate: bool,
    pub rows: Vec<Row>,
}

/// One condition row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Row {
    pub negate: bool,
    /// `tag`, `clicked`, `orders`, `spent`, `score`, or empty for an unused row.
    pub kind: String,
    pub tag: String,
    pub key: String,
    pub days: String,
    pub n: String,
    pub yuan: String,
    /// The least purchase probability of a `score` row (`0.6`).
    pub p: String,
}

impl Row {
    /// An unused row, its days prefilled for when a behaviour is chosen.
    pub fn fresh() -> Self {
        Self { days: FRESH_DAYS.to_owned(), ..Self::default() }
    }
}

impl Default for Group {
    fn default() -> Self {
        Self { join: "and".to_owned(), negate: false, rows: Vec::new() }
    }
}

impl Group {
    pub fn is_or(&self) -> bool {
        self.join == "or"
    }
}

impl Default for Builder {
    /// What an empty page shows: one group with a tag row and an unused row.
    fn default() -> Self {
        let rows = vec![Row { kind: "tag".to_owned(), ..Row::default() }, Row::fresh()];
        Self { join: "and".to_owned(), groups: vec![Group { rows, ..Group::default() }] }
    }
}

impl Builder {
    pub fn is_or(&self) -> bool {
        self.join == "or"
    }
}

/// A structural change asked for by one of the builder's buttons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    AddRow(usize),
    AddGroup,
    RemoveRow(usize, usize),
    RemoveGroup(usize),
}

impl Action {
    /// The action the query's pairs ask for, if any.
    pub fn from_pairs(pairs: &[(String, String)]) -> Option<Self> {
        pairs.iter().find_map(|(name, value)| match name.as_str() {
            "add_row" => Some(Self::AddRow(value.parse().unwrap_or(0))),
            "add_group" => Some(Self::AddGroup),
            "remove_group" => value.parse().ok().map(Self::RemoveGroup),
            "remove_row" => {
                let (g, r) = value.split_once('.')?;
                Some(Self::RemoveRow(g.parse().ok()?, r.parse().ok()?))
            }
            _ => None,
        })
    }
}

impl Builder {
    /// The builder read from the query's pairs; `None` when the query carries no builder field.
    pub fn from_pairs(pairs: &[(String, String)]) -> Option<Self> {
        let mut builder = Self { join: "and".to_owned(), groups: Vec::new() };
        let mut any = false;
        for (name, value) in pairs {
            let value = value.trim();
            if name == "groups_join" {
                value.clone_into(&mut builder.join);
                any = true;
                continue;
            }
            let Some((g, r, field)) = field_name(name) else { continue };
            if builder.groups.len() <= g {
                builder.groups.resize_with(g + 1, Group::default);
            }
            let group = &mut builder.groups[g];
            let Some(r) = r else {
                match field {
                    "join" => value.clone_into(&mut group.join),
                    "not" => group.negate = !value.is_empty(),
                    _ => continue,
                }
                any = true;
                continue;
            };
            if group.rows.len() <= r {
                group.rows.resize_with(r + 1, Row::default);
            }
            let row = &mut group.rows[r];
            let slot = match field {
                "not" => {
                    row.negate = !value.is_empty();
                    any = true;
                    continue;
                }
                "kind" => &mut row.kind,
                "tag" => &mut row.tag,
                "key" => &mut row.key,
                "days" => &mut row.days,
                "n" => &mut row.n,
                "yuan" => &mut row.yuan,
                "p" => &mut row.p,
                _ => continue,
            };
            value.clone_into(slot);
            any = true;
        }
        any.then_some(builder)
    }

    /// Applies a structural change; a builder is never left without a group or a row.
    /// `Err` says, in Chinese, why an addition was refused (a limit reached).
    pub fn apply(&mut self, action: Action) -> Result<(), String> {
        match action {
            Action::AddRow(g) => {
                let Some(group) = self.groups.get_mut(g) else { return Ok(()) };
                if group.rows.len() >= MAX_ROWS {
                    return Err(format!("第 {} 组已有 {MAX_ROWS} 个条件，不能再加：请新增一组。", g + 1));
                }
                group.rows.push(Row::fresh());
            }
            Action::AddGroup => {
                if self.groups.len() >= MAX_GROUPS {
                    return Err(format!("最多 {MAX_GROUPS} 组条件；更复杂的人群请在文本框中写表达式。"));
                }
                self.groups.push(Group { rows: vec![Row::fresh()], ..Group::default() });
            }
            Action::RemoveRow(g, r) => {
                if let Some(group) = self.groups.get_mut(g) {
                    if r < group.rows.len() {
                        group.rows.remove(r);
                    }
                    if group.rows.is_empty() {
                        self.groups.remove(g);
                    }
                }
            }
            Action::RemoveGroup(g) => {
                if g < self.groups.len() {
                    self.groups.remove(g);
                }
            }
        }
        if self.groups.is_empty() {
            *self = Self::default();
        }
        Ok(())
    }
}

/// `g{g}_{field}` or `g{g}r{r}_{field}`, within the limits.
fn field_name(name: &str) -> Option<(usize, Option<usize>, &str)> {
    let rest = name.strip_prefix('g')?;
    let (head, field) = rest.split_once('_')?;
    let (g, r) = match head.split_once('r') {
        Some((g, r)) => (g.parse::<usize>().ok()?, Some(r.parse::<usize>().ok()?)),
        None => (head.parse::<usize>().ok()?, None),
    };
    let within = g < MAX_GROUPS && r.is_none_or(|r| r < MAX_ROWS);
    within.then_some((g, r, field))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn fields_are_read_into_groups_and_rows_and_out_of_range_ones_ignored() {
        let builder = Builder::from_pairs(&pairs(&[
            ("groups_join", "or"),
            ("g0r0_kind", "tag"),
            ("g0r0_tag", " 肤质/油性 "),
            ("g1_join", "or"),
            ("g1_not", "1"),
            ("g1r1_not", "1"),
            ("g1r1_kind", "orders"),
            ("g1r1_n", "2"),
            ("g6r0_kind", "tag"),
            ("g0r8_kind", "tag"),
            ("gxr0_kind", "tag"),
            ("expr", "ignored"),
        ]))
        .expect("builder fields");
        assert!(builder.is_or());
        assert_eq!(builder.groups.len(), 2);
        assert_eq!(builder.groups[0].rows, vec![Row { kind: "tag".into(), tag: "肤质/油性".into(), ..Row::default() }]);
        let second = &builder.groups[1];
        assert!(second.is_or() && second.negate);
        assert_eq!(second.rows[0], Row::default());
        assert_eq!(second.rows[1], Row { negate: true, kind: "orders".into(), n: "2".into(), ..Row::default() });
        assert!(Builder::from_pairs(&pairs(&[("expr", "\"A\""), ("b0_kind", "tag")])).is_none());
    }

    #[test]
    fn buttons_add_and_remove_rows_and_groups_within_the_limits() {
        let action = |list: &[(&str, &str)]| Action::from_pairs(&pairs(list));
        assert_eq!(action(&[("add_row", "1")]), Some(Action::AddRow(1)));
        assert_eq!(action(&[("add_group", "1")]), Some(Action::AddGroup));
        assert_eq!(action(&[("remove_row", "1.2")]), Some(Action::RemoveRow(1, 2)));
        assert_eq!(action(&[("remove_group", "0")]), Some(Action::RemoveGroup(0)));
        assert_eq!(action(&[("build", "1")]), None);

        let mut builder = Builder::default();
        builder.apply(Action::AddRow(0)).expect("room");
        assert_eq!(builder.groups[0].rows.len(), 3);
        assert_eq!(builder.groups[0].rows[2], Row::fresh());
        builder.apply(Action::AddGroup).expect("room");
        assert_eq!(builder.groups.len(), 2);
        builder.apply(Action::RemoveRow(1, 0)).expect("removed");
        assert_eq!(builder.groups.len(), 1, "a group without rows goes");
        builder.apply(Action::RemoveGroup(0)).expect("removed");
        assert_eq!(builder, Builder::default(), "the last group is replaced by a fresh one");

        for _ in 1..MAX_GROUPS {
            builder.apply(Action::AddGroup).expect("room");
        }
        assert_eq!(builder.apply(Action::AddGroup), Err("最多 6 组条件；更复杂的人群请在文本框中写表达式。".into()));
        for _ in 2..MAX_ROWS {
            builder.apply(Action::AddRow(0)).expect("room");
        }
        assert_eq!(builder.apply(Action::AddRow(0)), Err("第 1 组已有 8 个条件，不能再加：请新增一组。".into()));
    }
}
