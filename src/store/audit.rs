//! `audit_log`: who did what and when, append-only.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;

/// One entry of the audit log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub object_kind: String,
    pub object_id: String,
    pub detail: serde_json::Value,
}

/// Appends an entry; call it inside the transaction of the change it records. `account` is the
/// account the change belongs to, `None` for deployment-wide acts (accounts, users).
pub async fn record(
    client: &impl GenericClient,
    account: Option<AccountId>,
    actor: &str,
    action: &str,
    object_kind: &str,
    object_id: &str,
    detail: &serde_json::Value,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO audit_log (account_id, actor, action, object_kind, object_id, detail)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&account.map(AccountId::get), &actor, &action, &object_kind, &object_id, detail],
        )
        .await?;
    Ok(())
}

/// What to show of the log: newest first, entries older than `before_id` (keyset paging),
/// optionally of one actor or one object.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub before_id: Option<i64>,
    pub actor: Option<String>,
    pub object_kind: Option<String>,
    pub object_id: Option<String>,
}

/// The entries of `account`, and the deployment-wide ones (no account) when `with_deployment`.
pub async fn list(
    client: &impl GenericClient,
    account: AccountId,
    with_deployment: bool,
    filter: &AuditFilter,
    limit: i64,
) -> Result<Vec<AuditEntry>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, at, actor, action, object_kind, object_id, detail FROM audit_log
             WHERE (account_id = $6 OR ($7 AND account_id IS NULL))
               AND ($1::bigint IS NULL OR id < $1)
               AND ($2::text IS NULL OR actor = $2)
               AND ($3::text IS NULL OR object_kind = $3)
               AND ($4::text IS NULL OR object_id = $4)
             ORDER BY id DESC LIMIT $5",
            &[
                &filter.before_id,
                &filter.actor,
                &filter.object_kind,
                &filter.object_id,
                &limit,
                &account.get(),
                &with_deployment,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AuditEntry {
            id: r.get(0),
            at: r.get(1),
            actor: r.get(2),
            action: r.get(3),
            object_kind: r.get(4),
            object_id: r.get(5),
            detail: r.get(6),
        })
        .collect())
}
