//! Measuring campaigns: one campaign's rates and A/B verdicts, strategies compared over the
//! account's history, and tag health.

use chrono::Duration;
use deadpool_postgres::{GenericClient, Pool};
use serde::Serialize;

use super::{CampaignError, CampaignSettings};
use crate::domain::campaign::{self, Audience};
use crate::store;

/// Unsubscribes this long after delivery are counted against a campaign (SEED.md §3's 退订率).
pub const UNSUBSCRIBE_WINDOW_SECS: f64 = 48.0 * 3600.0;
/// Tags whose campaigns' click rate stays under this over 30 days are weeding candidates (SEED.md §5).
pub const LOW_CLICK_RATE: f64 = 0.05;
/// Tags sharing at least this much of the smaller one's members are merge candidates.
pub const MERGE_OVERLAP: f64 = 0.9;

fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// A campaign's measured results: rates over its recipients, per variant, and the A/B verdicts.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignStats {
    pub recipients: i64,
    pub clicks: i64,
    /// Clicks nobody could be named for (opened outside WeChat).
    pub anonymous_clicks: i64,
    pub clickers: i64,
    pub conversions: i64,
    pub unsubscribes: i64,
    /// Attributed clickers plus anonymous clicks, over recipients.
    pub click_rate: Option<f64>,
    pub conversion_rate: Option<f64>,
    pub unsubscribe_rate: Option<f64>,
    /// mpnews only: the readers datacube last reported for the campaign's articles (cumulative
    /// since publishing) over SentCount; `None` before any figure.
    pub read_rate: Option<f64>,
    /// Per article of an mpnews send (article 1 first): readers and the clicks on links placed
    /// in that article; empty before any figure.
    pub articles: Vec<ArticleStats>,
    pub variants: Vec<VariantStats>,
    /// Present with variants: significance tests on clicks and on conversions.
    pub ab_test: Option<AbVerdict>,
}

/// One article of a multi-article send.
#[derive(Debug, Clone, Serialize)]
pub struct ArticleStats {
    /// 1-based, as in the draft.
    pub article_idx: i32,
    /// Readers datacube last reported (cumulative), summed over the campaign's calls.
    pub read_user: Option<i64>,
    /// `read_user` over SentCount.
    pub read_rate: Option<f64>,
    /// Clicks on the short links created for this article.
    pub clicks: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantStats {
    pub variant: i32,
    pub recipients: i64,
    pub clickers: i64,
    pub conversions: i64,
    pub unsubscribes: i64,
    pub click_rate: Option<f64>,
    pub conversion_rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AbVerdict {
    pub clicks: AbTest,
    pub conversions: AbTest,
}

/// Each variant against the control, and the winner when one beats all others at p < 0.05.
#[derive(Debug, Clone, Serialize)]
pub struct AbTest {
    pub against_control: Vec<Option<campaign::ZTest>>,
    pub winner: Option<i32>,
}

fn ab_test(variants: &[VariantStats], successes: impl Fn(&VariantStats) -> i64) -> AbTest {
    let results: Vec<(u64, u64)> =
        variants.iter().map(|v| (successes(v).max(0) as u64, v.recipients.max(0) as u64)).collect();
    let against_control = results.iter().skip(1).map(|r| campaign::two_proportion_z(*r, results[0])).collect();
    let winner = campaign::winner(&results).map(|i| variants[i].variant);
    AbTest { against_control, winner }
}

/// Measures a campaign.
///
/// # Errors
/// The database.
pub async fn stats(
    client: &impl GenericClient,
    settings: &CampaignSettings,
    campaign_id: i64,
) -> Result<CampaignStats, CampaignError> {
    let outcomes = store::campaigns::list_outcomes(
        client,
        campaign_id,
        settings.conversion_window.as_secs_f64(),
        UNSUBSCRIBE_WINDOW_SECS,
    )
    .await?;
    let (clicks, anonymous_clicks) = store::campaigns::count_clicks(client, campaign_id).await?;
    let reads = store::campaigns::sum_article_reads(client, campaign_id).await?;
    let delivered = store::campaigns::progress(client, campaign_id).await?.sent;
    let articles = store::campaigns::list_article_stats(client, campaign_id)
        .await?
        .into_iter()
        .map(|(article_idx, read_user, clicks)| ArticleStats {
            article_idx,
            read_user,
            read_rate: read_user.and_then(|r| rate(r, delivered)),
            clicks,
        })
        .collect();
    let sum = |f: fn(&store::campaigns::VariantOutcome) -> i64| outcomes.iter().map(f).sum::<i64>();
    let recipients = sum(|o| o.recipients);
    let clickers = sum(|o| o.clickers);
    let conversions = sum(|o| o.converted);
    let unsubscribes = sum(|o| o.unsubscribed);
    let variants: Vec<VariantStats> = outcomes
        .iter()
        .map(|o| VariantStats {
            variant: o.variant,
            recipients: o.recipients,
            clickers: o.clickers,
            conversions: o.converted,
            unsubscribes: o.unsubscribed,
            click_rate: rate(o.clickers, o.recipients),
            conversion_rate: rate(o.converted, o.recipients),
        })
        .collect();
    let ab_test = (variants.len() > 1).then(|| AbVerdict {
        clicks: ab_test(&variants, |v| v.clickers),
        conversions: ab_test(&variants, |v| v.conversions),
    });
    Ok(CampaignStats {
        recipients,
        clicks,
        anonymous_clicks,
        clickers,
        conversions,
        unsubscribes,
        click_rate: rate((clickers + anonymous_clicks).min(recipients), recipients),
        conversion_rate: rate(conversions, recipients),
        unsubscribe_rate: rate(unsubscribes, recipients),
        read_rate: reads.and_then(|r| rate(r, delivered)),
        articles,
        variants,
        ab_test,
    })
}

/// One strategy's results over the account's history (SEED.md §3's table).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct StrategyStats {
    pub strategy: &'static str,
    pub campaigns: i64,
    pub recipients: i64,
    pub click_rate: Option<f64>,
    pub conversion_rate: Option<f64>,
    pub unsubscribe_rate: Option<f64>,
}

/// Broadcast (`all`) against a single tag against a segment, over delivered campaigns of the
/// last `days` days (at most 500 campaigns).
///
/// # Errors
/// The database.
pub async fn strategies(
    pool: &Pool,
    settings: &CampaignSettings,
    days: i64,
) -> Result<Vec<StrategyStats>, CampaignError> {
    let client = pool.get().await?;
    let since = settings.clock.now() - Duration::days(days);
    let mut totals: Vec<(StrategyStats, i64, i64, i64)> = ["all", "tag", "segment"]
        .into_iter()
        .map(|strategy| (StrategyStats { strategy, ..StrategyStats::default() }, 0, 0, 0))
        .collect();
    for (id, audience) in store::campaigns::list_delivered(&client, settings.account, since, 500).await? {
        let Ok(audience) = serde_json::from_value::<Audience>(audience) else { continue };
        let s = stats(&client, settings, id).await?;
        let entry = totals.iter_mut().find(|t| t.0.strategy == audience.kind()).expect("every kind is listed");
        entry.0.campaigns += 1;
        entry.0.recipients += s.recipients;
        entry.1 += (s.clickers + s.anonymous_clicks).min(s.recipients);
        entry.2 += s.conversions;
        entry.3 += s.unsubscribes;
    }
    Ok(totals
        .into_iter()
        .map(|(mut t, clicked, converted, unsubscribed)| {
            t.click_rate = rate(clicked, t.recipients);
            t.conversion_rate = rate(converted, t.recipients);
            t.unsubscribe_rate = rate(unsubscribed, t.recipients);
            t
        })
        .collect())
}

/// What the admin page shows about tag health (SEED.md §5).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TagHealth {
    /// Tags whose campaigns of the last 30 days reached followers who clicked less than 5%.
    pub low_click_tags: Vec<serde_json::Value>,
    /// Pairs of tags whose members overlap ≥ 90% of the smaller: merge candidates.
    pub overlapping_tags: Vec<serde_json::Value>,
}

/// # Errors
/// The database.
pub async fn tag_health(pool: &Pool, settings: &CampaignSettings) -> Result<TagHealth, CampaignError> {
    let client = pool.get().await?;
    let since = settings.clock.now() - Duration::days(30);
    let mut low_click_tags = Vec::new();
    for (tag_id, path, campaign_ids) in store::campaigns::list_tag_campaigns(&client, settings.account, since).await? {
        let (mut recipients, mut clicked) = (0, 0);
        for id in &campaign_ids {
            let s = stats(&client, settings, *id).await?;
            recipients += s.recipients;
            clicked += (s.clickers + s.anonymous_clicks).min(s.recipients);
        }
        if let Some(click_rate) = rate(clicked, recipients).filter(|r| *r < LOW_CLICK_RATE) {
            low_click_tags.push(serde_json::json!({
                "tag_id": tag_id, "path": path, "campaigns": campaign_ids.len(),
                "recipients": recipients, "click_rate": click_rate,
            }));
        }
    }
    let overlapping_tags = store::campaigns::list_overlapping_tags(&client, settings.account, MERGE_OVERLAP)
        .await?
        .into_iter()
        .map(|(a, b, common, na, nb)| {
            serde_json::json!({
                "tags": [a, b], "common_members": common, "members": [na, nb],
                "overlap": common as f64 / na.min(nb).max(1) as f64,
            })
        })
        .collect();
    Ok(TagHealth { low_click_tags, overlapping_tags })
}
