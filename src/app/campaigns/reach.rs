//! What a send would reach if it went out now: the compose page, the campaign page and the
//! send's confirmation show it before anything is sent. The figures are the send path's own:
//! the followers `plan` would resolve (from the in-memory index when it can answer), the ones
//! WeChat will filter because they already had their monthly 4, the sensitive tags approval
//! looks at, and the sends the monthly tag cap counts. Nothing here writes.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::Pool;

use super::plan::{resolve, touched_tags};
use super::{CampaignError, CampaignSettings, Invalid, WECHAT_MONTHLY_RECEIPTS, approval, audience_of};
use crate::domain::account::AccountType;
use crate::domain::calendar::beijing_month;
use crate::domain::campaign::{self, Audience};
use crate::domain::expr::{self, Expr};
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::campaigns::CampaignRow;

/// One A/B group of the audience (the control first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupReach {
    pub members: i64,
    /// Of `members`, already at WeChat's monthly limit.
    pub at_limit: i64,
}

/// A tag the audience names, and where it stands under the monthly tag cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagLoad {
    pub path: String,
    pub sensitive: bool,
    /// Sends that reached it within the cap's window (30 days), scheduled ones included.
    pub sends: usize,
    /// `TAGCAST_MONTHLY_TAG_CAP`.
    pub cap: u32,
    /// When it is at the cap: when a send may reach it again.
    pub frees_at: Option<DateTime<Utc>>,
}

/// The audience as a send would find it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reach {
    /// Subscribed followers the audience reaches.
    pub total: i64,
    /// Of them, already sent WeChat's monthly 4 mass messages: WeChat filters them out.
    pub at_limit: i64,
    /// Service accounts only: a subscription account has no per-follower monthly limit.
    pub limit_applies: bool,
    /// One per group when the campaign has A/B variants (control first); empty without.
    pub groups: Vec<GroupReach>,
    /// The groups are the send's own split (a stored campaign); otherwise an even estimate,
    /// since the split depends on the campaign's id.
    pub groups_exact: bool,
    /// Every sensitive tag the audience reaches (directly, by a segment, by dynamic tags).
    pub sensitive: Vec<String>,
    /// The tags the audience names, as the cap counts them.
    pub tags: Vec<TagLoad>,
    /// How many of them the purchase model expects to order within 7 days (the sum of their
    /// scores), when followers have scores and the in-memory index answers.
    pub expected_buyers: Option<i64>,
}

impl Reach {
    /// Followers WeChat should deliver to.
    pub fn deliverable(&self) -> i64 {
        (self.total - self.at_limit).max(0)
    }

    /// Names of tags at the cap: the send would be refused.
    pub fn capped(&self) -> Vec<&str> {
        self.tags.iter().filter(|t| t.frees_at.is_some()).map(|t| t.path.as_str()).collect()
    }
}

/// What a stored campaign would reach now, split as its send will split it.
///
/// # Errors
/// A segment gone or no longer parsing, or the database.
pub async fn reach_of_campaign(
    pool: &Pool,
    settings: &CampaignSettings,
    row: &CampaignRow,
) -> Result<Reach, CampaignError> {
    let audience = audience_of(row)?;
    let variants = 1 + store::campaigns::list_variants(&pool.get().await?, row.id).await?.len();
    compute(pool, settings, row, &audience, variants, true).await
}

/// What a campaign being composed would reach now; with `variants` > 1 the groups are an even
/// estimate.
///
/// # Errors
/// An unknown segment, one no longer parsing, or the database.
pub async fn reach_of_draft(
    pool: &Pool,
    settings: &CampaignSettings,
    audience: &Audience,
    variants: usize,
) -> Result<Reach, CampaignError> {
    // Not stored yet: id 0 names no variants, so approval walks the audience alone.
    let row = CampaignRow {
        id: 0,
        account: settings.account,
        name: String::new(),
        audience: serde_json::to_value(audience).expect("an audience serialises to JSON"),
        message: serde_json::Value::Null,
        status: String::new(),
        send_at: None,
        created_at: settings.clock.now(),
        created_by: String::new(),
        send_requested_at: None,
        send_requested_by: None,
        delivered_at: None,
        last_error: None,
    };
    compute(pool, settings, &row, audience, variants.max(1), false).await
}

async fn compute(
    pool: &Pool,
    settings: &CampaignSettings,
    row: &CampaignRow,
    audience: &Audience,
    variants: usize,
    exact: bool,
) -> Result<Reach, CampaignError> {
    let now = settings.clock.now();
    let mut client = pool.get().await?;
    let sensitive = approval::covered(&client, row).await?.sensitive().into_iter().map(str::to_owned).collect();
    let touched = touched_tags(&client, row.account, audience).await?;
    let tag_ids: Vec<i64> = touched.iter().map(|t| t.0).collect();
    let sends =
        store::campaigns::list_tag_sends(&client, &tag_ids, now - Duration::seconds(campaign::CAP_WINDOW_SECS)).await?;
    let tags = touched
        .iter()
        .map(|(id, path, sensitive, _)| {
            let times: Vec<i64> = sends.iter().filter(|(t, _)| t == id).map(|(_, at)| at.timestamp()).collect();
            TagLoad {
                path: path.clone(),
                sensitive: *sensitive,
                sends: times.len(),
                cap: settings.monthly_tag_cap,
                frees_at: campaign::cap_frees_at(times, settings.monthly_tag_cap, now.timestamp())
                    .and_then(|at| DateTime::from_timestamp(at, 0)),
            }
        })
        .collect();
    let limit_applies = settings.account_type == AccountType::Service;
    let marked: Arc<HashSet<String>> = Arc::new(if limit_applies {
        store::campaigns::list_at_monthly_limit(&client, row.account, beijing_month(now), WECHAT_MONTHLY_RECEIPTS)
            .await?
            .into_iter()
            .collect()
    } else {
        HashSet::new()
    });
    let split = (exact && variants > 1).then_some((row.id, variants));
    let mut counted = None;
    let mut expected_buyers = None;
    if let Some(index) = &settings.audience_index
        && let Some(expr) = audience_expr(&client, row, audience).await?
    {
        let model = crate::app::predictions::PURCHASE_MODEL;
        expected_buyers = index.expected(row.account, &expr, now.timestamp(), model).await.map(|e| e.round() as i64);
        let marked = marked.clone();
        counted = match split {
            // Without a split, look the few marked followers up instead of walking every member.
            None => index
                .count_marked(row.account, &expr, now.timestamp(), marked)
                .await
                .map(|(members, at_limit)| vec![GroupReach { members, at_limit }]),
            Some(_) => {
                index
                    .fold_members(row.account, &expr, now.timestamp(), move |members| {
                        tally(members, &marked, split, variants)
                    })
                    .await
            }
        };
    }
    let groups = match counted {
        Some(groups) => groups,
        None => {
            let txn = client.transaction().await?;
            let openids = resolve(&txn, None, row.account, audience, now.timestamp()).await?;
            txn.commit().await?;
            tally(&mut openids.iter().map(String::as_str), &marked, split, variants)
        }
    };
    let total = groups.iter().map(|g| g.members).sum();
    let at_limit = groups.iter().map(|g| g.at_limit).sum();
    let groups = match (variants, exact) {
        (1, _) => Vec::new(),
        (_, true) => groups,
        (n, false) => even_split(total, at_limit, n),
    };
    Ok(Reach { total, at_limit, limit_applies, groups, groups_exact: exact, sensitive, tags, expected_buyers })
}

/// The audience as an expression the index evaluates; `None` for a tag that does not parse
/// (the SQL path then says which tag is unknown).
async fn audience_expr(
    client: &impl deadpool_postgres::GenericClient,
    row: &CampaignRow,
    audience: &Audience,
) -> Result<Option<Expr>, CampaignError> {
    Ok(match audience {
        Audience::Tag(path) => TagPath::parse(path).ok().map(Expr::Tag),
        Audience::Segment(id) => {
            let segment = store::segments::get_segment(client, row.account, *id)
                .await?
                .ok_or(CampaignError::UnknownSegment(*id))?;
            Some(expr::parse(&segment.expr).map_err(|e| CampaignError::from(Invalid::SegmentUnparsable(e)))?)
        }
        // Every subscribed follower: nobody has fewer than 0 orders.
        Audience::All(_) => Some(expr::parse("orders(all) >= 0").expect("a constant expression parses")),
    })
}

/// Counts members per group (as `split` = (campaign id, groups) assigns them, else all in the
/// first) and those of them in `marked`.
fn tally(
    members: &mut dyn Iterator<Item = &str>,
    marked: &HashSet<String>,
    split: Option<(i64, usize)>,
    variants: usize,
) -> Vec<GroupReach> {
    let mut groups = vec![GroupReach { members: 0, at_limit: 0 }; variants.max(1)];
    for openid in members {
        let group = split.map_or(0, |(id, n)| campaign::variant_of(id, openid, n));
        groups[group].members += 1;
        if !marked.is_empty() && marked.contains(openid) {
            groups[group].at_limit += 1;
        }
    }
    groups
}

/// `total` spread over `n` groups as evenly as the random split is expected to.
fn even_split(total: i64, at_limit: i64, n: usize) -> Vec<GroupReach> {
    let n = n as i64;
    (0..n)
        .map(|i| GroupReach {
            members: total / n + i64::from(i < total % n),
            at_limit: at_limit / n + i64::from(i < at_limit % n),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_even_estimate_adds_up_to_the_whole() {
        let groups = even_split(10, 3, 3);
        assert_eq!(groups.iter().map(|g| g.members).sum::<i64>(), 10);
        assert_eq!(groups.iter().map(|g| g.at_limit).sum::<i64>(), 3);
        assert_eq!(groups[0], GroupReach { members: 4, at_limit: 1 });
    }

    #[test]
    fn tally_splits_as_the_send_does_and_counts_the_marked() {
        let openids = ["a", "b", "c", "d", "e"];
        let marked: HashSet<String> = ["b".to_owned(), "e".to_owned()].into();
        let groups = tally(&mut openids.iter().copied(), &marked, Some((7, 2)), 2);
        for (g, group) in groups.iter().enumerate() {
            let mine: Vec<&str> = openids.iter().copied().filter(|o| campaign::variant_of(7, o, 2) == g).collect();
            assert_eq!(group.members, mine.len() as i64);
            assert_eq!(group.at_limit, mine.iter().filter(|o| marked.contains(**o)).count() as i64);
        }
    }
}
