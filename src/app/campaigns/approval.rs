//! Approval of campaigns (seed §6: 双重审核), shared by the JSON API, the admin pages and the
//! send job: which sensitive tags an audience reaches, whether an approval still covers the
//! campaign as it is now, approving, rejecting (驳回) and letting an approval lapse.
//!
//! [`covered`] is the one place that walks an audience to the tags it reaches: directly, through
//! a saved segment's expression, and through dynamic tags' `when` conditions, transitively. The
//! send check, the approval queue, the campaign page and `GET /campaigns/{id}` all read their
//! sensitive tags from it, so none of them can see less than the others.

use std::collections::BTreeSet;

use deadpool_postgres::{GenericClient, Pool};

use super::{CampaignError, Invalid, audience_of};
use crate::domain::account::AccountId;
use crate::domain::approval::{Change, Covered, CoveredSegment, CoveredTag};
use crate::domain::campaign::{Audience, Status};
use crate::domain::expr;
use crate::store;
use crate::store::campaigns::CampaignRow;

/// The longest reason a rejection may carry, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// The campaign as approval sees it now: the tags and segment its audience reaches with their
/// definitions, and its messages.
///
/// # Errors
/// A stored row not written by `create_campaign`, a segment gone or no longer parsing, or the
/// database.
pub async fn covered(client: &impl GenericClient, row: &CampaignRow) -> Result<Covered, CampaignError> {
    let audience = audience_of(row)?;
    let (mut frontier, segment) = match &audience {
        Audience::Tag(path) => (vec![path.clone()], None),
        Audience::Segment(id) => {
            let segment = store::segments::get_segment(client, row.account, *id)
                .await?
                .ok_or(CampaignError::UnknownSegment(*id))?;
            let parsed = expr::parse(&segment.expr).map_err(|e| CampaignError::from(Invalid::SegmentUnparsable(e)))?;
            let paths = parsed.tag_paths().iter().map(|p| p.as_str().to_owned()).collect();
            (paths, Some(CoveredSegment { id: *id, expr: segment.expr }))
        }
        Audience::All(_) => (Vec::new(), None),
    };
    // Each path is looked up once, so dynamic tags naming each other in a cycle end the walk;
    // each round is one query for a whole level of `when` conditions.
    let mut seen = BTreeSet::new();
    let mut tags = Vec::new();
    let mut missing = Vec::new();
    loop {
        frontier.retain(|path| seen.insert(path.clone()));
        if frontier.is_empty() {
            break;
        }
        let paths: Vec<&str> = frontier.iter().map(String::as_str).collect();
        let found = store::tags::list_definitions(client, row.account, &paths).await?;
        missing.extend(frontier.iter().filter(|p| !found.iter().any(|f| &f.1 == *p)).cloned());
        let mut next = Vec::new();
        for (id, path, sensitive, when) in found {
            // A stored condition always parsed when it was written; one that no longer does
            // names nothing the engine can evaluate either.
            if let Some(parsed) = when.as_deref().and_then(|w| expr::parse(w).ok()) {
                next.extend(parsed.tag_paths().iter().map(|p| p.as_str().to_owned()));
            }
            tags.push(CoveredTag { id, path, sensitive, when });
        }
        frontier = next;
    }
    tags.sort_by(|a, b| a.path.cmp(&b.path));
    missing.sort();
    let mut messages = vec![row.message.clone()];
    for (_, name, message) in store::campaigns::list_variants(client, row.id).await? {
        messages.push(serde_json::json!({ "name": name, "message": message }));
    }
    Ok(Covered { audience: row.audience.clone(), segment, messages, tags, missing })
}

/// The sensitive tags a stored campaign's audience reaches (see [`covered`]): when any, someone
/// other than its creator must approve before it goes out.
///
/// # Errors
/// As [`covered`].
pub async fn sensitive_tags(client: &impl GenericClient, row: &CampaignRow) -> Result<Vec<String>, CampaignError> {
    Ok(covered(client, row).await?.sensitive().into_iter().map(str::to_owned).collect())
}

/// Where a campaign's approval stands now.
#[derive(Debug, Clone)]
pub struct Standing {
    pub covered: Covered,
    /// Who approved exactly what [`Standing::covered`] describes (never the creator).
    pub approved_by: Option<String>,
    /// Approvals by others exist, but none covers the campaign as it is now: what changed since
    /// the latest (empty for approvals given before approvals recorded what they covered).
    pub lapsed: Option<Vec<Change>>,
}

impl Standing {
    /// The campaign reaches a sensitive tag and nobody but its creator approved it as it is.
    pub fn needs_approval(&self) -> bool {
        !self.covered.sensitive().is_empty() && self.approved_by.is_none()
    }
}

/// Recomputes what the campaign reaches and compares it with its approvals.
///
/// # Errors
/// As [`covered`].
pub async fn standing(client: &impl GenericClient, row: &CampaignRow) -> Result<Standing, CampaignError> {
    let covered = covered(client, row).await?;
    let fingerprint = covered.fingerprint();
    let approvals = store::approvals::list_approvals(client, row.id).await?;
    let by_others: Vec<_> = approvals.iter().filter(|a| a.by != row.created_by).collect();
    let approved_by =
        by_others.iter().find(|a| a.fingerprint.as_deref() == Some(fingerprint.as_str())).map(|a| a.by.clone());
    let lapsed = match (&approved_by, by_others.last()) {
        (None, Some(latest)) => Some(
            latest
                .covered
                .as_ref()
                .and_then(|c| serde_json::from_value::<Covered>(c.clone()).ok())
                .map(|then| covered.changes_since(&then))
                .unwrap_or_default(),
        ),
        _ => None,
    };
    Ok(Standing { covered, approved_by, lapsed })
}

/// Sends the campaign back to the approval queue in the caller's transaction: its approvals
/// are forgotten, the cap slots a send request took are given back, and the log says why.
///
/// # Errors
/// The database.
pub async fn lapse(
    client: &impl GenericClient,
    account: AccountId,
    campaign_id: i64,
    changes: &[Change],
    actor: &str,
) -> Result<(), tokio_postgres::Error> {
    store::approvals::delete_approvals(client, campaign_id).await?;
    store::approvals::release_tag_sends(client, campaign_id).await?;
    store::campaigns::update_status(client, campaign_id, Status::PendingApproval.as_str(), None).await?;
    let changes_json = serde_json::to_value(changes).expect("changes serialise to JSON");
    store::approvals::record_lapse(client, campaign_id, &changes_json).await?;
    let said: Vec<String> = changes.iter().map(ToString::to_string).collect();
    let detail = serde_json::json!({ "changes": changes_json, "said": said });
    store::audit::record(
        client,
        Some(account),
        actor,
        "approval_lapsed",
        "campaign",
        &campaign_id.to_string(),
        &detail,
    )
    .await?;
    tracing::warn!(campaign.id = campaign_id, changes = said.join("; "), "campaign approval lapsed");
    Ok(())
}

/// Why an approval lapsed, as one sentence.
pub fn describe(changes: &[Change]) -> String {
    if changes.is_empty() {
        "the audience reaches a sensitive tag that no valid approval covers (it became sensitive after the \
         send was asked for, or the approval was given before approvals recorded what they covered)"
            .to_owned()
    } else {
        changes.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    }
}

/// 双重审核 wants a second person: the API's bearer token (`api`, with the admin role) or any
/// other machine actor neither approves nor rejects, whoever created the campaign.
fn refuse_machine(actor: &str) -> Result<(), CampaignError> {
    if crate::domain::admin::is_reserved(actor) {
        return Err(CampaignError::MachineReviewer { actor: actor.to_owned() });
    }
    Ok(())
}

/// Approves a campaign as it is now. `shown` is the fingerprint of what the approver was shown
/// (the admin pages send it): when the campaign changed since, nothing is approved. The caller's
/// role was checked by the web layer.
///
/// # Errors
/// [`CampaignError::MachineReviewer`] for a machine actor, [`CampaignError::SelfApproval`] for
/// the creator, [`CampaignError::ChangedSinceShown`], a campaign past approval, or the database.
pub async fn approve(
    pool: &Pool,
    account: AccountId,
    id: i64,
    actor: &str,
    shown: Option<&str>,
) -> Result<CampaignRow, CampaignError> {
    refuse_machine(actor)?;
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let row = store::campaigns::lock_campaign(&txn, account, id).await?.ok_or(CampaignError::NotFound)?;
    if row.created_by == actor {
        return Err(CampaignError::SelfApproval);
    }
    let status = Status::parse(&row.status).unwrap_or(Status::Failed);
    if !status.may_approve() {
        return Err(CampaignError::WrongStatus { status: row.status, action: "approved" });
    }
    let covered = covered(&txn, &row).await?;
    let fingerprint = covered.fingerprint();
    if shown.is_some_and(|shown| shown != fingerprint) {
        return Err(CampaignError::ChangedSinceShown);
    }
    let covered_json = serde_json::to_value(&covered).expect("a snapshot serialises to JSON");
    store::approvals::upsert_approval(&txn, id, actor, &covered_json, &fingerprint).await?;
    store::approvals::clear_review(&txn, id).await?;
    store::campaigns::update_status(&txn, id, Status::Approved.as_str(), None).await?;
    let detail = serde_json::json!({ "sensitive_tags": covered.sensitive(), "fingerprint": fingerprint });
    store::audit::record(&txn, Some(account), actor, "approve", "campaign", &id.to_string(), &detail).await?;
    let row = store::campaigns::get_campaign(&txn, account, id).await?.ok_or(CampaignError::NotFound)?;
    txn.commit().await?;
    Ok(row)
}

/// Rejects (驳回) a campaign waiting for approval: it goes back to draft with the reason, who
/// and when, for its creator to read; sending it again puts it back in the queue. The caller's
/// role was checked by the web layer.
///
/// # Errors
/// [`CampaignError::MachineReviewer`] for a machine actor, a missing or over-long reason, a
/// campaign not waiting for approval, or the database.
pub async fn reject(
    pool: &Pool,
    account: AccountId,
    id: i64,
    actor: &str,
    reason: &str,
) -> Result<CampaignRow, CampaignError> {
    refuse_machine(actor)?;
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Invalid::ReasonRequired.into());
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(Invalid::ReasonTooLong { max: MAX_REASON_CHARS }.into());
    }
    // Shown to the creator, in the queue and in the audit log: nothing that hides or reorders text.
    let hidden = |c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t');
    if reason.chars().any(|c| hidden(c) || crate::domain::tag::is_invisible_format(c)) {
        return Err(Invalid::ReasonControlCharacter.into());
    }
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    let row = store::campaigns::lock_campaign(&txn, account, id).await?.ok_or(CampaignError::NotFound)?;
    if row.status != Status::PendingApproval.as_str() {
        return Err(CampaignError::WrongStatus { status: row.status, action: "rejected" });
    }
    store::approvals::delete_approvals(&txn, id).await?;
    store::approvals::record_rejection(&txn, id, actor, reason).await?;
    store::campaigns::update_status(&txn, id, Status::Draft.as_str(), None).await?;
    store::audit::record(
        &txn,
        Some(account),
        actor,
        "reject",
        "campaign",
        &id.to_string(),
        &serde_json::json!({ "reason": reason }),
    )
    .await?;
    let row = store::campaigns::get_campaign(&txn, account, id).await?.ok_or(CampaignError::NotFound)?;
    txn.commit().await?;
    tracing::info!(campaign.id = id, "campaign rejected");
    Ok(row)
}
