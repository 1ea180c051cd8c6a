//! Whom a campaign reaches and how its send is cut into WeChat calls: the tags an audience
//! touches, the followers it resolves to, and the plan stored once per campaign.

use deadpool_postgres::{GenericClient, Pool};

use super::{CampaignError, CampaignSettings, Invalid, approval, audience_of};
use crate::app::audience::index::AudienceIndex;
use crate::domain::account::{AccountId, AccountType};
use crate::domain::campaign::{self, Audience};
use crate::domain::expr::{self, Expr};
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::campaigns::{CampaignRow, NewChunk};
use crate::wechat::api::{MASS_SEND_MAX_OPENIDS, MASS_SEND_MIN_OPENIDS};

/// A tag the audience touches: (id, path, sensitive, WeChat tag id).
pub(super) type TouchedTag = (i64, String, bool, Option<i64>);

/// Every tag of `account` the audience names: the tag itself, or the tags a segment's
/// expression names.
pub(super) async fn touched_tags(
    client: &impl GenericClient,
    account: AccountId,
    audience: &Audience,
) -> Result<Vec<TouchedTag>, CampaignError> {
    let paths: Vec<String> = match audience {
        Audience::Tag(path) => vec![path.clone()],
        Audience::Segment(id) => {
            let segment =
                store::segments::get_segment(client, account, *id).await?.ok_or(CampaignError::UnknownSegment(*id))?;
            let parsed = expr::parse(&segment.expr).map_err(|e| CampaignError::from(Invalid::SegmentUnparsable(e)))?;
            parsed.tag_paths().iter().map(|p| p.as_str().to_owned()).collect()
        }
        Audience::All(_) => Vec::new(),
    };
    let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    Ok(store::campaigns::find_tags(client, account, &refs).await?)
}

/// The subscribed followers of `account` the audience reaches now, in openid order.
pub(super) async fn resolve(
    txn: &deadpool_postgres::Transaction<'_>,
    index: Option<&AudienceIndex>,
    account: AccountId,
    audience: &Audience,
    now: i64,
) -> Result<Vec<String>, CampaignError> {
    let expr = match audience {
        Audience::Tag(path) => {
            let tags = store::campaigns::find_tags(txn, account, &[path.as_str()]).await?;
            let (id, ..) = tags.first().ok_or_else(|| CampaignError::UnknownTag(path.clone()))?;
            if index.is_none() {
                return Ok(store::campaigns::list_tag_members(txn, account, *id).await?);
            }
            let path = TagPath::parse(path)
                .map_err(|source| CampaignError::from(Invalid::TagPath { path: path.clone(), source }))?;
            Expr::Tag(path)
        }
        Audience::Segment(id) => {
            let segment =
                store::segments::get_segment(txn, account, *id).await?.ok_or(CampaignError::UnknownSegment(*id))?;
            expr::parse(&segment.expr).map_err(|e| CampaignError::from(Invalid::SegmentUnparsable(e)))?
        }
        Audience::All(_) => return Ok(store::campaigns::list_subscribed(txn, account).await?),
    };
    if let Some(index) = index
        && let Some(members) = index.members(account, &expr, now).await
    {
        return Ok(members);
    }
    Ok(store::segments::list_all_members(txn, account, &expr, now).await?)
}

/// Plans a campaign's WeChat calls and its recipients, once: a mirrored tag without variants
/// goes by tag, everyone without variants by `is_to_all`; anything else by openid lists (service
/// account, ≤ 10,000 per call, split by variant) or a temporary tag (subscription account).
///
/// # Errors
/// An audience that resolves to nobody, or the database.
pub async fn plan(pool: &Pool, settings: &CampaignSettings, row: &CampaignRow) -> Result<(), CampaignError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    // Two workers never plan the same campaign: the job row is held by one, and this lock
    // covers a hand-run job.
    store::campaigns::lock_campaign(&txn, row.account, row.id).await?;
    if store::campaigns::has_plan(&txn, row.id).await? {
        return Ok(());
    }
    // Approval is checked again when the send starts: a scheduled send waits for hours, and a
    // segment or dynamic tag can change in between.
    let standing = approval::standing(&txn, row).await?;
    if standing.needs_approval() {
        let changes = standing.lapsed.unwrap_or_default();
        approval::lapse(&txn, row.account, row.id, &changes, crate::domain::admin::SEND_JOB_ACTOR).await?;
        txn.commit().await?;
        let tags = standing.covered.sensitive().join(", ");
        return Err(CampaignError::ApprovalLapsed { tags, changes });
    }
    let audience = audience_of(row)?;
    let variants = 1 + store::campaigns::list_variants(&txn, row.id).await?.len();
    let openids =
        resolve(&txn, settings.audience_index.as_ref(), row.account, &audience, settings.clock.unix()).await?;
    if openids.is_empty() {
        return Err(CampaignError::EmptyAudience);
    }
    let mut chunks = Vec::new();
    let whole = match (&audience, variants) {
        (Audience::All(true), 1) => {
            Some(NewChunk { variant: 0, kind: "all", wechat_tag_id: None, openids: Vec::new() })
        }
        (Audience::Tag(path), 1) => {
            let tags = store::campaigns::find_tags(&txn, row.account, &[path.as_str()]).await?;
            tags.first().and_then(|t| t.3).map(|wechat_tag_id| NewChunk {
                variant: 0,
                kind: "tag",
                wechat_tag_id: Some(wechat_tag_id),
                openids: Vec::new(),
            })
        }
        _ => None,
    };
    if let Some(chunk) = whole {
        store::campaigns::insert_recipients(&txn, row.id, openids.iter().map(|o| (o.as_str(), 0)).collect()).await?;
        chunks.push(chunk);
    } else {
        let mut by_variant: Vec<Vec<String>> = vec![Vec::new(); variants];
        for openid in openids {
            let v = campaign::variant_of(row.id, &openid, variants);
            by_variant[v].push(openid);
        }
        for (variant, list) in by_variant.into_iter().enumerate() {
            // The kind of the campaign's own account, whatever account the settings were made for.
            match settings.account_type {
                AccountType::Service => {
                    let mut rest = list.as_slice();
                    for size in campaign::chunk_sizes(rest.len(), MASS_SEND_MIN_OPENIDS, MASS_SEND_MAX_OPENIDS) {
                        let (head, tail) = rest.split_at(size);
                        chunks.push(NewChunk {
                            variant: variant as i32,
                            kind: "openids",
                            wechat_tag_id: None,
                            openids: head.to_vec(),
                        });
                        rest = tail;
                    }
                }
                AccountType::Subscription if !list.is_empty() => {
                    chunks.push(NewChunk {
                        variant: variant as i32,
                        kind: "temp_tag",
                        wechat_tag_id: None,
                        openids: list,
                    });
                }
                AccountType::Subscription => {}
            }
        }
    }
    if chunks.is_empty() {
        return Err(CampaignError::AudienceTooSmall(
            "受众人数太少：每个对比方案的人数都不够一次微信群发（按 openid 群发至少 2 人）".into(),
        ));
    }
    store::campaigns::insert_plan(&txn, row.id, &chunks).await?;
    txn.commit().await?;
    tracing::info!(campaign.id = row.id, calls = chunks.len(), "campaign planned");
    Ok(())
}
