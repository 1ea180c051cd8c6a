//! The tag picker the 人群, 标签 and 规则 pages share: the account's tags as a tree (grouped
//! by their first level, indented by depth) with member counts, for a `<select>` with optgroups
//! or a `<datalist>` the browser searches as the operator types. Counts come from the cached
//! per-tag counts the 标签 page uses, so a picker costs no scan of followers.

use std::collections::BTreeSet;

use deadpool_postgres::Pool;

use crate::domain::account::AccountId;
use crate::web::admin::{AdminError, AdminState};

/// One tag as the picker offers it.
pub struct TagOption {
    pub path: String,
    /// The last level, indented by depth with full-width spaces (a `<select>` keeps them).
    pub label: String,
    pub members: i64,
}

/// Tags sharing a first level: one `<optgroup>`.
pub struct TagGroup {
    pub name: String,
    pub tags: Vec<TagOption>,
}

/// A level a new tag may sit under: every existing tag or path prefix of one or two levels.
pub struct ParentOption {
    pub path: String,
    pub label: String,
}

/// The account's tags, in path order, with their member counts.
pub async fn tag_options(pool: &Pool, account: AccountId, state: &AdminState) -> Result<Vec<TagOption>, AdminError> {
    let client = pool.get().await?;
    let tags = crate::web::admin::board::tags_with_members(&client, account, pool, &state.tag_members).await?;
    Ok(tags.into_iter().map(|t| option(t.path, t.members)).collect())
}

/// The account's tags without member counts (a picker that only names tags).
pub async fn tag_names(pool: &Pool, account: AccountId) -> Result<Vec<TagOption>, AdminError> {
    let client = pool.get().await?;
    Ok(crate::store::tags::list_tag_rows(&client, account).await?.into_iter().map(|t| option(t.path, 0)).collect())
}

fn option(path: String, members: i64) -> TagOption {
    let depth = path.matches('/').count();
    let leaf = path.rsplit('/').next().unwrap_or_default().to_owned();
    TagOption { label: format!("{}{leaf}", "\u{3000}".repeat(depth)), path, members }
}

/// The options grouped by first level, for optgroups.
pub fn groups(options: Vec<TagOption>) -> Vec<TagGroup> {
    let mut groups: Vec<TagGroup> = Vec::new();
    for option in options {
        let top = option.path.split('/').next().unwrap_or_default().to_owned();
        match groups.last_mut() {
            Some(group) if group.name == top => group.tags.push(option),
            _ => groups.push(TagGroup { name: top, tags: vec![option] }),
        }
    }
    groups
}

/// Where a new tag can go: WeChat allows three levels, so parents have one or two.
pub fn parents(options: &[TagOption]) -> Vec<ParentOption> {
    let mut prefixes = BTreeSet::new();
    for option in options {
        let levels: Vec<&str> = option.path.split('/').collect();
        for depth in 1..=levels.len().min(2) {
            prefixes.insert(levels[..depth].join("/"));
        }
    }
    prefixes
        .into_iter()
        .map(|path| {
            let depth = path.matches('/').count();
            let leaf = path.rsplit('/').next().unwrap_or_default();
            ParentOption { label: format!("{}{leaf}", "\u{3000}".repeat(depth)), path }
        })
        .collect()
}
