//! The background jobs as types: one variant of [`Job`] per kind, each carrying its payload.
//!
//! A job is stored as a row of `jobs (kind text, payload jsonb)`. `Job` is adjacently tagged
//! (`kind`, `payload`), so the row's two columns are exactly the tag and the content: rows queued
//! before the jobs were typed (by kind string and JSON) decode as they are, and a job queued now
//! is written as it was then.

use serde::{Deserialize, Serialize};

/// A queued piece of background work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Job {
    /// Deletes a tag on WeChat (`tags/delete`), emptying it first when it is too large.
    DeleteWechatTag(DeleteWechatTag),
    /// Renames a tag on WeChat (`tags/update`) after a local rename.
    RenameWechatTag(RenameWechatTag),
    /// Compares WeChat's members of each mirrored tag with ours and queues the repairs.
    ReconcileTags(ReconcileTags),
    /// Recomputes dynamic tags: the scheduled pass, or one tag whose condition changed.
    RefreshDynamicTags(RefreshDynamicTags),
    /// Makes a campaign's planned WeChat calls.
    SendCampaign(SendCampaign),
    /// Fetches datacube's daily article reads.
    FetchArticleReads(FetchArticleReads),
    /// Reads back results WeChat never pushed (`mass/get`).
    CheckMassResults(CheckMassResults),
    /// Refreshes the local list of the account's WeChat drafts (`draft/batchget`).
    RefreshDrafts(RefreshDrafts),
    /// Trains, judges and scores the purchase model (issue 21): daily, or asked for in the console.
    TrainPredictions(TrainPredictions),
    /// Trains the intent classifier on the operator's labels (issue 21): after labelling, or asked
    /// for in the console.
    TrainIntents(TrainIntents),
}

/// `delete_wechat_tag {wechat_tag_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteWechatTag {
    pub wechat_tag_id: i64,
}

/// `rename_wechat_tag {wechat_tag_id, name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameWechatTag {
    pub wechat_tag_id: i64,
    pub name: String,
}

/// `reconcile_tags {}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileTags {}

/// `refresh_dynamic_tags {tag_id?}`: without `tag_id` (payload `{}`), the scheduled pass over the
/// tags that time alone can change; with it, one tag.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshDynamicTags {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_id: Option<i64>,
}

/// `send_campaign {campaign_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendCampaign {
    pub campaign_id: i64,
}

/// `fetch_article_reads {}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchArticleReads {}

/// `check_mass_results {}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckMassResults {}

/// `refresh_drafts {}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshDrafts {}

/// `train_predictions {requested_by}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainPredictions {
    /// Who asked: a username, or `system` for the daily run.
    pub requested_by: String,
}

/// `train_intents {requested_by}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainIntents {
    /// Who asked: a username, or `system` after an erasure.
    pub requested_by: String,
}

/// A job's kind: the `jobs.kind` column, for queries about jobs of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    DeleteWechatTag,
    RenameWechatTag,
    ReconcileTags,
    RefreshDynamicTags,
    SendCampaign,
    FetchArticleReads,
    CheckMassResults,
    RefreshDrafts,
    TrainPredictions,
    TrainIntents,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [JobKind; 10] = [
        JobKind::DeleteWechatTag,
        JobKind::RenameWechatTag,
        JobKind::ReconcileTags,
        JobKind::RefreshDynamicTags,
        JobKind::SendCampaign,
        JobKind::FetchArticleReads,
        JobKind::CheckMassResults,
        JobKind::RefreshDrafts,
        JobKind::TrainPredictions,
        JobKind::TrainIntents,
    ];

    /// The kind as stored (the serde tag of [`Job`]).
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::DeleteWechatTag => "delete_wechat_tag",
            JobKind::RenameWechatTag => "rename_wechat_tag",
            JobKind::ReconcileTags => "reconcile_tags",
            JobKind::RefreshDynamicTags => "refresh_dynamic_tags",
            JobKind::SendCampaign => "send_campaign",
            JobKind::FetchArticleReads => "fetch_article_reads",
            JobKind::CheckMassResults => "check_mass_results",
            JobKind::RefreshDrafts => "refresh_drafts",
            JobKind::TrainPredictions => "train_predictions",
            JobKind::TrainIntents => "train_intents",
        }
    }

    /// The kind a stored string names, if any.
    pub fn parse(kind: &str) -> Option<JobKind> {
        JobKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a stored row is no job this release can run: failed for good, never retried.
#[derive(Debug, thiserror::Error)]
pub enum JobDecodeError {
    #[error("unknown job kind `{0}`")]
    UnknownKind(String),
    #[error("payload of a `{kind}` job: {source}")]
    Payload {
        kind: JobKind,
        #[source]
        source: serde_json::Error,
    },
}

impl Job {
    /// The job's kind.
    pub fn kind(&self) -> JobKind {
        match self {
            Job::DeleteWechatTag(_) => JobKind::DeleteWechatTag,
            Job::RenameWechatTag(_) => JobKind::RenameWechatTag,
            Job::ReconcileTags(_) => JobKind::ReconcileTags,
            Job::RefreshDynamicTags(_) => JobKind::RefreshDynamicTags,
            Job::SendCampaign(_) => JobKind::SendCampaign,
            Job::FetchArticleReads(_) => JobKind::FetchArticleReads,
            Job::CheckMassResults(_) => JobKind::CheckMassResults,
            Job::RefreshDrafts(_) => JobKind::RefreshDrafts,
            Job::TrainPredictions(_) => JobKind::TrainPredictions,
            Job::TrainIntents(_) => JobKind::TrainIntents,
        }
    }

    /// The `payload` column: the serde content of the job.
    pub fn payload(&self) -> serde_json::Value {
        // Payloads are plain structs of integers and strings: serializing them cannot fail.
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut row)) => row.remove("payload").unwrap_or_default(),
            _ => serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// The job a stored `(kind, payload)` row holds.
    ///
    /// # Errors
    /// [`JobDecodeError`] for a kind this release does not know or a payload that does not fit it.
    pub fn decode(kind: &str, payload: serde_json::Value) -> Result<Job, JobDecodeError> {
        let known = JobKind::parse(kind).ok_or_else(|| JobDecodeError::UnknownKind(kind.to_owned()))?;
        serde_json::from_value(serde_json::json!({ "kind": kind, "payload": payload }))
            .map_err(|source| JobDecodeError::Payload { kind: known, source })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What the code queued before jobs were typed: `(kind, payload)` as written by hand.
    fn rows_as_queued_before() -> Vec<(&'static str, serde_json::Value, Job)> {
        vec![
            (
                "delete_wechat_tag",
                json!({"wechat_tag_id": 104}),
                Job::DeleteWechatTag(DeleteWechatTag { wechat_tag_id: 104 }),
            ),
            (
                "rename_wechat_tag",
                json!({"wechat_tag_id": 104, "name": "活动/双十一"}),
                Job::RenameWechatTag(RenameWechatTag { wechat_tag_id: 104, name: "活动/双十一".to_owned() }),
            ),
            ("reconcile_tags", json!({}), Job::ReconcileTags(ReconcileTags {})),
            ("refresh_dynamic_tags", json!({}), Job::RefreshDynamicTags(RefreshDynamicTags { tag_id: None })),
            (
                "refresh_dynamic_tags",
                json!({"tag_id": 7}),
                Job::RefreshDynamicTags(RefreshDynamicTags { tag_id: Some(7) }),
            ),
            ("send_campaign", json!({"campaign_id": 3}), Job::SendCampaign(SendCampaign { campaign_id: 3 })),
            ("fetch_article_reads", json!({}), Job::FetchArticleReads(FetchArticleReads {})),
            ("check_mass_results", json!({}), Job::CheckMassResults(CheckMassResults {})),
            ("refresh_drafts", json!({}), Job::RefreshDrafts(RefreshDrafts {})),
            (
                "train_predictions",
                json!({"requested_by": "system"}),
                Job::TrainPredictions(TrainPredictions { requested_by: "system".to_owned() }),
            ),
            (
                "train_intents",
                json!({"requested_by": "olivia"}),
                Job::TrainIntents(TrainIntents { requested_by: "olivia".to_owned() }),
            ),
        ]
    }

    #[test]
    fn old_rows_decode_and_new_jobs_are_written_the_same_way() {
        for (kind, payload, job) in rows_as_queued_before() {
            assert_eq!(Job::decode(kind, payload.clone()).expect(kind), job);
            assert_eq!(job.kind().as_str(), kind);
            assert_eq!(job.payload(), payload, "{kind}");
        }
    }

    #[test]
    fn every_kind_is_covered_and_its_name_is_the_serde_tag() {
        let rows = rows_as_queued_before();
        for kind in JobKind::ALL {
            let (_, _, job) = rows.iter().find(|(_, _, job)| job.kind() == kind).expect("a sample of every kind");
            let tagged = serde_json::to_value(job).expect("serializes");
            assert_eq!(tagged["kind"], kind.as_str());
            assert_eq!(JobKind::parse(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn payloads_ignore_extra_fields_as_before_except_the_dynamic_refresh() {
        let job =
            Job::decode("delete_wechat_tag", json!({"wechat_tag_id": 1, "note": "x"})).expect("extra field ignored");
        assert_eq!(job, Job::DeleteWechatTag(DeleteWechatTag { wechat_tag_id: 1 }));
        assert!(Job::decode("fetch_article_reads", json!({"anything": true})).is_ok());
        assert!(Job::decode("refresh_dynamic_tags", json!({"tag": 1})).is_err());
    }

    #[test]
    fn an_unknown_kind_or_a_payload_that_does_not_fit_is_named() {
        let error = Job::decode("frobnicate", json!({})).expect_err("unknown");
        assert_eq!(error.to_string(), "unknown job kind `frobnicate`");
        let error = Job::decode("send_campaign", json!({})).expect_err("no campaign_id");
        assert!(
            error.to_string().starts_with("payload of a `send_campaign` job: missing field `campaign_id`"),
            "{error}"
        );
        let error = Job::decode("delete_wechat_tag", json!({"wechat_tag_id": "104"})).expect_err("a string");
        assert!(matches!(error, JobDecodeError::Payload { kind: JobKind::DeleteWechatTag, .. }), "{error}");
    }
}
