//! 同步到微信: on the tags page, the tag changes still on their way to WeChat and the ones WeChat
//! refused for good, with WeChat's reason in Chinese and what to do, and a button to try the
//! refused ones again once the cause is fixed (the outbox keeps them for exactly this).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;

use super::audit;
use crate::store;
use crate::store::outbox::{HEALTH_COUNT_CAP, SyncHealth};
use crate::web::admin::{AdminError, AdminUser, CsrfForm, Empty, see_other};

/// The section as the template shows it.
pub struct SyncView {
    /// 「12 条」 or 「超过 10000 条」.
    pub pending: Option<String>,
    /// How long the oldest pending change has waited, when it is more than a few minutes.
    pub waiting_since: Option<String>,
    pub dead: Option<String>,
    /// WeChat's reasons in Chinese, with how many changes each stopped.
    pub reasons: Vec<(String, i64)>,
}

impl SyncView {
    pub fn is_quiet(&self) -> bool {
        self.pending.is_none() && self.dead.is_none()
    }
}

fn amount(n: i64) -> Option<String> {
    match n {
        0 => None,
        n if n > HEALTH_COUNT_CAP => Some(format!("超过 {HEALTH_COUNT_CAP} 条")),
        n => Some(format!("{n} 条")),
    }
}

/// A wait worth mentioning: changes normally leave within seconds, so under five minutes is
/// not news.
fn waited(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Option<String> {
    let minutes = (now - since?).num_minutes();
    match minutes {
        ..5 => None,
        5..120 => Some(format!("最早的一条已等待 {minutes} 分钟")),
        _ => Some(format!("最早的一条已等待 {} 小时", minutes / 60)),
    }
}

pub fn view(health: SyncHealth, now: DateTime<Utc>) -> SyncView {
    SyncView {
        pending: amount(health.pending),
        waiting_since: waited(health.oldest_pending_at, now),
        dead: amount(health.dead),
        reasons: health
            .dead_errors
            .into_iter()
            .map(|(error, n)| {
                let reason = if error.is_empty() {
                    "未记录原因。".to_owned()
                } else {
                    crate::wechat::errcode_zh::humanize(&error)
                };
                (reason, n)
            })
            .collect(),
    }
}

/// 重新尝试: every refused change of the account gets a fresh set of attempts.
pub async fn retry_refused(
    user: AdminUser,
    pool: web::Data<Pool>,
    CsrfForm(_): CsrfForm<Empty>,
) -> Result<HttpResponse, AdminError> {
    let revived = store::outbox::revive_dead(&pool.get().await?, user.account).await?;
    if revived == 0 {
        user.flash("没有需要重新尝试的标签变更。");
    } else {
        audit(&pool, &user, "retry", "wechat_sync", "", serde_json::json!({ "changes": revived })).await?;
        user.flash(format!("已重新尝试 {revived} 条标签变更；如果微信仍然拒绝，原因会再次显示在这里。"));
    }
    Ok(see_other("/admin/tags#wechat-sync"))
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn counts_and_waits_read_as_plain_words() {
        let now = Utc::now();
        let health = SyncHealth {
            pending: HEALTH_COUNT_CAP + 1,
            oldest_pending_at: Some(now - Duration::minutes(200)),
            dead: 2,
            dead_errors: vec![("WeChat answered errcode 45157: invalid tag name".to_owned(), 2)],
        };
        let view = view(health, now);
        assert_eq!(view.pending.as_deref(), Some("超过 10000 条"));
        assert_eq!(view.waiting_since.as_deref(), Some("最早的一条已等待 3 小时"));
        assert_eq!(view.dead.as_deref(), Some("2 条"));
        assert_eq!(amount(HEALTH_COUNT_CAP).as_deref(), Some("10000 条"));
        assert!(!view.reasons[0].0.contains("WeChat answered"), "{}", view.reasons[0].0);
        assert_eq!(waited(Some(now - Duration::minutes(4)), now), None);
        assert!(super::view(SyncHealth::default(), now).is_quiet());
    }
}
