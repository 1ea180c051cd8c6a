//! 高潜力客户 (issue 21, point 5): the built-in dynamic tag `预测/高潜力客户`, enabled and adjusted
//! from the 预测 page while the purchase model is trusted. Saving writes the definition's
//! expression as the tag's `when` (creating the tag local-only the first time) and queues its
//! recomputation; the scheduled pass keeps it true afterwards like any dynamic tag.

use deadpool_postgres::{GenericClient, Pool};

use super::predictions::PURCHASE_MODEL;
use super::tagging::{self, TagRequest, TaggingError};
use crate::domain::account::AccountId;
use crate::domain::expr;
use crate::domain::predict::high_potential::{Definition, INTENT_PREFIX, TAG_PATH};
use crate::domain::tag::TagPath;
use crate::store;
use crate::store::tags::TagRow;

/// What the 预测 page shows about 高潜力客户.
#[derive(Debug, Clone)]
pub struct Status {
    /// The latest finished run is trusted: the section may be saved.
    pub trusted: bool,
    /// The tag, once enabled (its `members` counted).
    pub tag: Option<TagRow>,
    /// The definition the tag's `when` is; `None` before enabling or after a hand edit.
    pub definition: Option<Definition>,
    /// The account's intent tags (paths under `意图/`), for the checkboxes.
    pub intent_tags: Vec<String>,
}

/// Reads the section's state.
///
/// # Errors
/// The database.
pub async fn status(client: &impl GenericClient, account: AccountId) -> Result<Status, tokio_postgres::Error> {
    let trusted =
        store::predictions::latest_verdict(client, account, PURCHASE_MODEL).await?.as_deref() == Some("trusted");
    let path = TagPath::parse(TAG_PATH).expect("a valid path");
    let tag = store::tags::get_tag_by_path(client, account, &path).await?;
    let definition = tag
        .as_ref()
        .and_then(|t| t.when_expr.as_deref())
        .and_then(|when| expr::parse(when).ok())
        .and_then(|e| Definition::from_expr(&e));
    let intent_tags = store::tags::list_tag_rows(client, account)
        .await?
        .into_iter()
        .map(|t| t.path)
        .filter(|p| p.starts_with(INTENT_PREFIX))
        .collect();
    Ok(Status { trusted, tag, definition, intent_tags })
}

/// Why saving was refused.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("模型最近一次训练的结论不是「可信」，评分不能用来圈定高潜力客户：请等下一次可信的训练后再启用或修改。")]
    NotTrusted,
    #[error("没有意图标签「{0}」：请刷新页面后重新勾选。")]
    UnknownIntent(String),
    #[error("{0}")]
    Tagging(#[from] TaggingError),
    #[error("数据库暂时不可用，请稍后重试")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("数据库暂时不可用，请稍后重试")]
    Query(#[from] tokio_postgres::Error),
}

/// What saving did, for the audit log and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    Created { id: i64, when: String },
    Updated { id: i64, from: Option<String>, when: String },
    Unchanged,
}

/// Creates or updates the tag's `when` to `definition`, in one transaction.
///
/// # Errors
/// [`SaveError::NotTrusted`] unless the latest finished run is trusted, an intent tag that does not
/// exist, or the database.
pub async fn save(pool: &Pool, account: AccountId, definition: &Definition, actor: &str) -> Result<Saved, SaveError> {
    let mut client = pool.get().await?;
    let txn = client.transaction().await?;
    if store::predictions::latest_verdict(&txn, account, PURCHASE_MODEL).await?.as_deref() != Some("trusted") {
        return Err(SaveError::NotTrusted);
    }
    for intent in &definition.intents {
        if !store::tags::tag_exists(&txn, account, intent.as_str()).await? {
            return Err(SaveError::UnknownIntent(intent.to_string()));
        }
    }
    let when = definition.to_expr().to_string();
    let path = TagPath::parse(TAG_PATH).expect("a valid path");
    let saved = match store::tags::get_tag_by_path(&txn, account, &path).await? {
        None => {
            let request = TagRequest {
                path,
                description: "系统内置：按购买预测、近期互动和意图标签圈定，在「预测」页调整".to_owned(),
                sensitive: false,
                wechat: false,
                when_expr: Some(when.clone()),
            };
            let row = tagging::create_tag_in(&txn, account, &request, actor).await?;
            Saved::Created { id: row.id, when }
        }
        Some(row) if row.when_expr.as_deref() == Some(when.as_str()) => Saved::Unchanged,
        Some(row) => {
            store::tags::update_tag_meta(&txn, account, row.id, &row.description, row.sensitive, Some(&when)).await?;
            tagging::queue_dynamic_fill(&txn, account, row.id).await?;
            Saved::Updated { id: row.id, from: row.when_expr, when }
        }
    };
    txn.commit().await?;
    Ok(saved)
}
