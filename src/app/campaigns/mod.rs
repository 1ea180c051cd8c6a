//! Campaigns: what an operator composes, asks to send and measures. This module holds what
//! the feature shares (its settings, its error, the request, reading a stored campaign back)
//! and re-exports the operations, so callers write `crate::app::campaigns::create_campaign`:
//!
//! - `ops`: creating, asking to send (approval, monthly cap, the account's quota, the estimate
//!   of what WeChat will filter), cancelling and previewing; each state change is one
//!   transaction with its audit row. Only preview calls WeChat here; sends go through the
//!   `send_campaign` job.
//! - `plan`: resolving the audience and planning the WeChat calls of a send.
//! - `results`: taking in MASSSENDJOBFINISH (or a status read back) and settling the campaign.
//! - `reach`: what a send would reach now (before it goes out); `delivery`: its counts after,
//!   each explained, adding up.
//! - `links`: short links and their clicks.
//! - `stats`: a campaign's results, strategies compared, tag health.
//! - [`approval`]: whether a campaign's approval still covers what it reaches.

pub mod approval;
mod delivery;
mod links;
mod ops;
mod plan;
mod presend;
mod reach;
mod removal;
mod results;
mod stats;

pub use delivery::{Delivery, Line, Plan, explain_delivery};
pub use links::{create_link, record_click};
pub use ops::{MAX_PREVIEW_CALLS, SendAccepted, cancel, create_campaign, preview, request_send};
pub use plan::plan;
pub use presend::{MissingDraft, check_draft};
pub use reach::{GroupReach, Reach, TagLoad, reach_of_campaign, reach_of_draft};
pub use removal::{audience_size, delete};
pub use results::{
    CallOutcome, MassResults, Outcome, call_outcomes, copyright_notes, explain, failure_summary, record_read_back,
    settle,
};
pub use stats::{
    AbTest, AbVerdict, CampaignStats, LOW_CLICK_RATE, MERGE_OVERLAP, StrategyStats, TagHealth, UNSUBSCRIBE_WINDOW_SECS,
    VariantStats, stats, strategies, tag_health,
};

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;

use crate::app::audience::index::AudienceIndex;
use crate::domain::account::{AccountId, AccountType};
use crate::domain::approval::Change;
use crate::domain::campaign::{Audience, Message, RequestProblem, Variant};
use crate::domain::clock::Clock;
use crate::domain::expr::ExprError;
use crate::domain::tag::TagPathError;
use crate::store;
use crate::store::campaigns::CampaignRow;
use crate::wechat::api::MassMessage;

/// Mass messages a service account's follower receives per month before WeChat filters them.
pub const WECHAT_MONTHLY_RECEIPTS: i32 = 4;

/// What campaigns need to know about the account and the operator's limits.
#[derive(Debug, Clone)]
pub struct CampaignSettings {
    /// The account campaigns are this account's: web handlers take it from the request
    /// ([`CampaignSettings::for_account`]), jobs from the job.
    pub account: AccountId,
    pub account_type: AccountType,
    /// `TAGCAST_MONTHLY_TAG_CAP`: sends reaching one tag per 30 days.
    pub monthly_tag_cap: u32,
    /// `TAGCAST_CONVERSION_WINDOW_HOURS`: orders this long after delivery are conversions.
    pub conversion_window: std::time::Duration,
    /// Between two mass sends of the account, across every process (the mass-send pace of
    /// `TAGCAST_WECHAT_RATE_LIMITS`; WeChat allows 60 a minute).
    pub mass_interval: std::time::Duration,
    /// Send times, the cap's window and scheduled sends follow this clock.
    pub clock: Clock,
    /// `TAGCAST_MASS_RESULT_WAIT_SECS`: an accepted call whose MASSSENDJOBFINISH has not come
    /// this long after is asked about with `mass/get`, so a lost push cannot leave its campaign
    /// `sending` for ever.
    pub result_wait: std::time::Duration,
    /// Resolves tag and segment audiences from memory (a million openids in well under a
    /// second); `None`, or an index not built yet, means SQL.
    pub audience_index: Option<AudienceIndex>,
}

impl Default for CampaignSettings {
    fn default() -> Self {
        Self {
            account: AccountId::FIRST,
            account_type: AccountType::Service,
            monthly_tag_cap: 4,
            conversion_window: std::time::Duration::from_secs(72 * 3600),
            mass_interval: std::time::Duration::from_secs(1),
            result_wait: std::time::Duration::from_secs(1800),
            clock: Clock::system(),
            audience_index: None,
        }
    }
}

impl CampaignSettings {
    /// These settings for `account`: its kind decides quotas and how sends go out. An account
    /// unknown to this process (created elsewhere a moment ago) keeps the configured kind.
    pub fn for_account(&self, accounts: &crate::app::accounts::Accounts, account: AccountId) -> Self {
        let mut settings = self.clone();
        settings.account = account;
        if let Some(live) = accounts.get(account) {
            settings.account_type = live.kind;
        }
        settings
    }
}

/// A request that cannot be carried out as written, with what its message needs.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("`name` must be 1 to 100 characters")]
    Name,
    #[error(transparent)]
    Request(#[from] RequestProblem),
    #[error("at most {max} variants")]
    TooManyVariants { max: usize },
    #[error("every variant needs a `name`")]
    UnnamedVariant,
    #[error("a subscription account may mass-send once a day, and each A/B variant is a send of its own")]
    VariantsOnSubscription,
    #[error("人群的条件已无法解析（{0}），请到「人群」页修改条件")]
    SegmentUnparsable(#[source] ExprError),
    #[error("tag {path}: {source}")]
    TagPath { path: String, source: TagPathError },
    #[error("`reason` is required: say what the creator should change")]
    ReasonRequired,
    #[error("`reason` must be at most {max} characters")]
    ReasonTooLong { max: usize },
    #[error("`reason` holds a control or invisible formatting character")]
    ReasonControlCharacter,
    #[error("`url`: {0}")]
    Url(#[source] url::ParseError),
    #[error("`url` must be http or https")]
    UrlNotHttp,
    #[error("`article_idx` must be 1 to 8: the article of the send the link sits in")]
    ArticleIdx,
    #[error("`openids` must list 1 to 10 test followers")]
    PreviewOpenids,
    #[error("a preview makes one call per test follower and message; at most {max} at once ({messages} messages here)")]
    PreviewTooManyCalls { max: usize, messages: usize },
    #[error("stored {what}: {source}")]
    Stored { what: &'static str, source: serde_json::Error },
}

/// Why a campaign operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("no such campaign")]
    NotFound,
    #[error("标签「{0}」不存在，请先在「标签」页创建")]
    UnknownTag(String),
    #[error("人群 #{0} 不存在（可能已被删除），请换一个人群")]
    UnknownSegment(i64),
    #[error("a campaign that is {status} cannot be {action}")]
    WrongStatus { status: String, action: &'static str },
    #[error("the audience touches the sensitive tag(s) {0}; an admin or approver other than the creator must approve")]
    NeedsApproval(String),
    #[error(
        "{openids} carry the sensitive tag(s) {tags} this campaign reaches; until it is approved, preview it to \
         followers who do not"
    )]
    PreviewReachesSensitive { openids: String, tags: String },
    #[error("the tag `{tag}` already had {cap} sends in the last 30 days; it frees up on {frees_at}")]
    FrequencyCap { tag: String, cap: u32, frees_at: DateTime<Utc> },
    #[error(
        "the approval lapsed ({}); the audience touches the sensitive tag(s) {tags}, so the campaign is back in the approval queue",
        approval::describe(changes)
    )]
    ApprovalLapsed { tags: String, changes: Vec<Change> },
    #[error("once approved, only its creator ({creator}) or its approver ({approver}) may send it")]
    NotCreatorOrApprover { creator: String, approver: String },
    #[error("the creator of a campaign cannot approve it")]
    SelfApproval,
    #[error(
        "`{actor}` is a machine actor (the API's bearer token or tagcast itself): approving or rejecting a campaign \
         takes a person, signed in as themselves (HTTP Basic or the admin pages)"
    )]
    MachineReviewer { actor: String },
    #[error("the campaign, or a tag or segment it reaches, changed since it was shown; look again before approving")]
    ChangedSinceShown,
    #[error("受众中没有已关注的粉丝，无法发送")]
    EmptyAudience,
    #[error("{0}")]
    AudienceTooSmall(String),
    #[error(
        "a subscription account may mass-send once a day and today's send is used; the next is possible from {next}"
    )]
    QuotaExhausted { next: DateTime<Utc> },
    #[error("WeChat refused the preview")]
    WeChat(#[from] crate::wechat::api::WeChatError),
    #[error("no WeChat account is configured")]
    NoAccount,
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
}

/// What an operator asks for when creating a campaign.
#[derive(Debug, Clone)]
pub struct CampaignRequest {
    pub name: String,
    pub audience: Audience,
    pub message: Message,
    pub variants: Vec<Variant>,
    pub send_at: Option<DateTime<Utc>>,
}

/// Converts a campaign message to what the mass APIs take.
pub fn mass_message(message: &Message) -> MassMessage {
    match message {
        Message::Text { content } => MassMessage::Text { content: content.clone() },
        Message::Mpnews { media_id } => MassMessage::Mpnews { media_id: media_id.clone() },
        Message::Image { media_id } => MassMessage::Image { media_ids: vec![media_id.clone()] },
        Message::Voice { media_id } => MassMessage::Voice { media_id: media_id.clone() },
        Message::Mpvideo { media_id } => MassMessage::Mpvideo { media_id: media_id.clone() },
    }
}

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("campaign types serialise to JSON")
}

/// The audience of a stored campaign.
///
/// # Errors
/// A row not written by [`create_campaign`].
pub fn audience_of(row: &CampaignRow) -> Result<Audience, CampaignError> {
    serde_json::from_value(row.audience.clone()).map_err(|source| Invalid::Stored { what: "audience", source }.into())
}

/// The messages of a stored campaign, control first.
///
/// # Errors
/// The database, or rows not written by [`create_campaign`].
pub async fn messages_of(client: &impl GenericClient, row: &CampaignRow) -> Result<Vec<Message>, CampaignError> {
    let parse = |v: serde_json::Value| {
        serde_json::from_value::<Message>(v)
            .map_err(|source| CampaignError::from(Invalid::Stored { what: "message", source }))
    };
    let mut messages = vec![parse(row.message.clone())?];
    for (_, _, message) in store::campaigns::list_variants(client, row.id).await? {
        messages.push(parse(message)?);
    }
    Ok(messages)
}
