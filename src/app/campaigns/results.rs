//! What WeChat says after a send: MASSSENDJOBFINISH (or the status `mass/get` reads back)
//! per call, the campaign's final status once every call is heard of, and what each result
//! means for the operator ([`explain`]: `err(n)` and the other statuses in Chinese, with what to
//! do).

use deadpool_postgres::GenericClient;
use serde::Serialize;

use crate::app::inbox::{Decided, Handler, HandlerError, HandlerFuture, InMemory, Received};
use crate::domain::account::AccountId;
use crate::domain::campaign::Status;
use crate::domain::job::{DeleteWechatTag, Job};
use crate::store;
use crate::wechat::message::Inbound;

/// Takes in MASSSENDJOBFINISH: the call's counts, then the campaign's status once every call
/// has finished. A temporary tag is removed on WeChat once its job is done.
#[derive(Debug, Default)]
pub struct MassResults;

impl Handler for MassResults {
    fn name(&self) -> &'static str {
        "campaign_results"
    }

    /// A send's result is written with its push, in the push's transaction.
    fn decide(&self, messages: &[Received<'_>]) -> InMemory {
        if messages.iter().any(|m| matches!(m.message.body, Inbound::MassSendJobFinish { .. })) {
            InMemory::NeedsTransaction
        } else {
            InMemory::Decided { config_version: None, answers: vec![Decided::default(); messages.len()] }
        }
    }

    fn write<'a>(
        &'a self,
        txn: &'a deadpool_postgres::Client,
        messages: &'a [Received<'a>],
        _writes: Box<dyn std::any::Any + Send + Sync>,
        stored: &'a [bool],
    ) -> HandlerFuture<'a> {
        Box::pin(async move {
            for (message, stored) in messages.iter().zip(stored) {
                if !*stored {
                    continue;
                }
                if let Inbound::MassSendJobFinish {
                    msg_id,
                    status,
                    total_count,
                    filter_count,
                    sent_count,
                    error_count,
                    copyright_check_state,
                    copyright_items,
                    ..
                } = &message.body
                {
                    let copyright = (copyright_check_state.is_some() || !copyright_items.is_empty())
                        .then(|| serde_json::json!({ "check_state": copyright_check_state, "items": copyright_items }));
                    let finish = store::campaigns::Finish {
                        msg_id: *msg_id as i64,
                        status,
                        total: *total_count as i64,
                        filter: *filter_count as i64,
                        sent: *sent_count as i64,
                        error: *error_count as i64,
                        copyright,
                    };
                    record_finish(txn, message.account, &finish).await.map_err(|e| Box::new(e) as HandlerError)?;
                }
            }
            Ok(())
        })
    }
}

/// Records `account`'s MASSSENDJOBFINISH: its msg_id names a call of that account's campaigns
/// only (another account's WeChat numbers its jobs on its own).
async fn record_finish(
    client: &impl GenericClient,
    account: AccountId,
    finish: &store::campaigns::Finish<'_>,
) -> Result<(), tokio_postgres::Error> {
    let Some((call, arrival)) = store::campaigns::record_finish(client, account, finish).await? else {
        tracing::info!(
            mass.msg_id = finish.msg_id,
            "MASSSENDJOBFINISH repeated, or for a job no campaign has recorded (yet); kept by msg_id"
        );
        return Ok(());
    };
    after_result(client, account, call, arrival == store::campaigns::Arrival::First).await
}

/// Takes in a job's final status read back with `mass/get` (`SEND_SUCCESS`, `SEND_FAIL` or
/// `DELETE`) when its MASSSENDJOBFINISH did not come: the call counts as finished, without
/// counts. `SENDING` (or anything else) records nothing.
///
/// # Errors
/// The database.
pub async fn record_read_back(
    client: &impl GenericClient,
    account: AccountId,
    msg_id: i64,
    msg_status: &str,
) -> Result<bool, tokio_postgres::Error> {
    // The `Status` strings MASSSENDJOBFINISH would have carried.
    let status = match msg_status {
        "SEND_SUCCESS" => "send success",
        "SEND_FAIL" => "send fail",
        "DELETE" => "deleted",
        _ => return Ok(false),
    };
    if let Some(call) = store::campaigns::record_read_back(client, account, msg_id, status).await? {
        after_result(client, account, call, true).await?;
    }
    Ok(true)
}

/// A call's job has finished: its temporary tag goes (once: `first` result heard), and the
/// campaign's status follows.
async fn after_result(
    client: &impl GenericClient,
    account: AccountId,
    (campaign_id, kind, wechat_tag_id): (i64, String, Option<i64>),
    first: bool,
) -> Result<(), tokio_postgres::Error> {
    if let (Some(tag), "temp_tag", true) = (wechat_tag_id, kind.as_str(), first) {
        store::jobs::enqueue(client, account, &Job::DeleteWechatTag(DeleteWechatTag { wechat_tag_id: tag })).await?;
    }
    settle(client, account, campaign_id).await
}

/// Moves `account`'s `sending` campaign to `sent` or `failed` once nothing is left to hear about.
///
/// # Errors
/// The database.
pub async fn settle(
    client: &impl GenericClient,
    account: AccountId,
    campaign_id: i64,
) -> Result<(), tokio_postgres::Error> {
    // Two results settling at once in two transactions would each miss the other's: inside a
    // transaction the campaign's row lock makes the second wait and then see the first.
    if store::campaigns::lock_campaign(client, account, campaign_id).await?.is_none() {
        return Ok(());
    }
    let p = store::campaigns::progress(client, campaign_id).await?;
    if p.chunks == 0 || p.pending > 0 || p.finished < p.submitted {
        return Ok(());
    }
    let status = if p.succeeded > 0 { Status::Sent } else { Status::Failed };
    store::campaigns::finish_sending(client, campaign_id, status.as_str()).await?;
    if status == Status::Failed {
        // The list and the page show `last_error`: say there what WeChat did, and what to do.
        let failures = failure_summary(&call_outcomes(client, campaign_id).await?);
        if !failures.is_empty() {
            store::campaigns::record_failure_reason(client, campaign_id, &failures.join("；")).await?;
        }
    }
    tracing::info!(campaign.id = campaign_id, status = status.as_str(), sent = p.sent, "campaign finished");
    Ok(())
}

/// What one call's result means, for the campaign page and the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// `sent` (WeChat sent it, perhaps not to everyone), `failed` (WeChat sent nothing) or
    /// `waiting` (no result yet).
    pub state: &'static str,
    /// Short Chinese label: 群发成功, 原创校验未通过（判定为转载）, 管理员拒绝群发 …
    pub label: String,
    /// What happened and what to do, in Chinese; empty when there is nothing to do.
    pub advice: String,
}

impl Outcome {
    fn new(state: &'static str, label: impl Into<String>, advice: impl Into<String>) -> Self {
        Self { state, label: label.into(), advice: advice.into() }
    }

    fn failed(label: impl Into<String>, advice: impl Into<String>) -> Self {
        Self::new("failed", label, advice)
    }
}

/// The suspected-content codes of `err(n)` (wechat-api.md §9.8) and what WeChat suspects.
const CONTENT_CODES: [(i64, &str); 9] = [
    (10001, "涉嫌广告"),
    (20001, "涉嫌政治"),
    (20002, "涉嫌色情"),
    (20004, "涉嫌社会"),
    (20006, "涉嫌违法犯罪"),
    (20008, "涉嫌欺诈"),
    (20013, "涉嫌版权"),
    (21000, "涉嫌其他"),
    (22000, "涉嫌互推（互相宣传）"),
];

/// Explains a call's `Status` (`None`: no result yet); `error_count` is WeChat's `ErrorCount`.
#[must_use]
pub fn explain(status: Option<&str>, error_count: Option<i64>) -> Outcome {
    let Some(status) = status else {
        return Outcome::new("waiting", "等待微信结果", "微信已受理，群发结果通常几分钟内推送，请稍后刷新。");
    };
    match status {
        "send success" => match error_count.unwrap_or(0) {
            0 => Outcome::new("sent", "群发成功", ""),
            n => Outcome::new(
                "sent",
                "群发成功，部分未送达",
                format!("微信报告 {n} 人发送失败，原因未说明，常见于用户拒收或账号异常；其余人已送达，无需重发。"),
            ),
        },
        "deleted" => Outcome::new("sent", "已删除", "群发成功后，文章已在微信删除，用户打开会看到已删除。"),
        "send fail" => Outcome::failed(
            "群发失败",
            "微信报告群发失败，没有说明原因，这次没有发出。请在公众号后台的群发记录中查看，处理后重新发送。",
        ),
        other => match err_code(other) {
            Some(code) => explain_err(code),
            None => Outcome::failed(
                format!("群发失败（微信状态：{other}）"),
                "微信返回了本系统不认识的群发状态，这次可能没有发出。请在公众号后台的群发记录中确认。",
            ),
        },
    }
}

/// `n` of `err(n)`.
fn err_code(status: &str) -> Option<i64> {
    status.strip_prefix("err(")?.strip_suffix(')')?.trim().parse().ok()
}

fn explain_err(code: i64) -> Outcome {
    if let Some((_, suspicion)) = CONTENT_CODES.iter().find(|(c, _)| *c == code) {
        return Outcome::failed(
            format!("内容审核未通过（{suspicion}）"),
            format!("微信判定内容{suspicion}（err({code})），这次没有发出。请修改内容后重新创建群发。"),
        );
    }
    match code {
        30001 => Outcome::failed(
            "原创校验未通过（校验出错）",
            "微信原创校验出现系统错误，而本系统设置为遇到转载即停止群发，这次没有发出（err(30001)）。请稍后重新发送。",
        ),
        30002 => Outcome::failed(
            "原创校验未通过（不可群发）",
            "微信原创校验认为这篇文章不能群发，这次没有发出（err(30002)）。请改用原创内容，或取得原作者授权后再发。",
        ),
        30003 => Outcome::failed(
            "原创校验未通过（判定为转载）",
            "文章被微信判定为转载，而本系统设置为遇到转载即停止群发，这次没有发出（err(30003)）。\
             请改用原创内容，或确认原文允许转载后在公众号后台发送。",
        ),
        40001 => Outcome::failed(
            "管理员拒绝群发",
            "公众号开启了群发保护，群发给全部用户须经管理员在微信上确认，管理员拒绝了这次群发，没有发出（err(40001)）。\
             请与管理员确认后重新发送。",
        ),
        40002 => Outcome::failed(
            "管理员未在30分钟内确认",
            "公众号开启了群发保护，管理员未在 30 分钟内确认这次群发给全部用户的消息，没有发出（err(40002)）。\
             请先提醒管理员留意微信上的确认通知，再重新发送。",
        ),
        n => Outcome::failed(
            format!("群发失败（微信错误码 {n}）"),
            format!("微信没有发出这次群发（err({n})）。请在公众号后台的群发记录中查看原因，处理后重新发送。"),
        ),
    }
}

/// What the originality check said per article, in Chinese (empty without matches).
#[must_use]
pub fn copyright_notes(copyright: Option<&serde_json::Value>) -> Vec<String> {
    let items: Vec<crate::wechat::message::CopyrightCheckItem> = copyright
        .and_then(|c| c.get("items"))
        .and_then(|items| serde_json::from_value(items.clone()).ok())
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|item| {
            let url = item.original_article_url.as_deref()?;
            let article = item.article_idx.map_or_else(|| "文章".to_owned(), |i| format!("第 {i} 篇"));
            let reprint = match item.can_reprint {
                Some(1) => "原文允许转载",
                Some(_) => "原文不允许转载",
                None => "未说明能否转载",
            };
            Some(format!("{article}与原文 {url} 相符，{reprint}。"))
        })
        .collect()
}

/// One accepted call of a campaign as the operator sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallOutcome {
    pub msg_id: i64,
    /// WeChat's `Status` (`send success`, `err(30003)`, ...); `None` before a result.
    pub status: Option<String>,
    pub outcome: Outcome,
    pub total: Option<i64>,
    pub filter: Option<i64>,
    pub sent: Option<i64>,
    pub error: Option<i64>,
    /// The originality check's matches, in Chinese.
    pub copyright: Vec<String>,
}

/// Every accepted call of a campaign with what its result means, by seq.
///
/// # Errors
/// The database.
pub async fn call_outcomes(
    client: &impl GenericClient,
    campaign_id: i64,
) -> Result<Vec<CallOutcome>, tokio_postgres::Error> {
    Ok(store::campaigns::list_call_results(client, campaign_id)
        .await?
        .into_iter()
        .map(|r| CallOutcome {
            msg_id: r.msg_id,
            outcome: explain(r.status.as_deref(), r.error),
            copyright: copyright_notes(r.copyright.as_ref()),
            status: r.status,
            total: r.total,
            filter: r.filter,
            sent: r.sent,
            error: r.error,
        })
        .collect())
}

/// The campaign's summary of what did not go out: each distinct failure once, with how many
/// calls met it (`（2 次）`) and what to do.
#[must_use]
pub fn failure_summary(calls: &[CallOutcome]) -> Vec<String> {
    let mut seen: Vec<(&Outcome, usize)> = Vec::new();
    for call in calls.iter().filter(|c| c.outcome.state == "failed") {
        match seen.iter_mut().find(|(o, _)| o.label == call.outcome.label) {
            Some((_, n)) => *n += 1,
            None => seen.push((&call.outcome, 1)),
        }
    }
    seen.into_iter().map(|(o, n)| format!("{}（{n} 次）：{}", o.label, o.advice)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_status_reads_in_chinese() {
        assert_eq!(explain(Some("send success"), Some(0)).label, "群发成功");
        assert!(explain(Some("send success"), Some(3)).advice.contains("3 人"));
        assert_eq!(explain(Some("err(40001)"), None).label, "管理员拒绝群发");
        assert_eq!(explain(Some("err(40002)"), None).label, "管理员未在30分钟内确认");
        for code in [30001, 30002, 30003] {
            let outcome = explain(Some(&format!("err({code})")), None);
            assert!(outcome.label.starts_with("原创校验未通过"), "{code}");
            assert_eq!(outcome.state, "failed");
        }
        assert_eq!(explain(Some("err(10001)"), None).label, "内容审核未通过（涉嫌广告）");
        assert_eq!(explain(Some("err(22000)"), None).label, "内容审核未通过（涉嫌互推（互相宣传））");
        assert_eq!(explain(Some("err(20431)"), None).label, "群发失败（微信错误码 20431）");
        assert_eq!(explain(Some("send fail"), None).state, "failed");
        assert_eq!(explain(None, None).state, "waiting");
        assert_eq!(explain(Some("weird"), None).state, "failed");
    }

    #[test]
    fn failures_are_summarised_once_each() {
        let call = |status: &str| CallOutcome {
            msg_id: 1,
            status: Some(status.to_owned()),
            outcome: explain(Some(status), None),
            total: None,
            filter: None,
            sent: None,
            error: None,
            copyright: Vec::new(),
        };
        let calls = [call("err(40001)"), call("send success"), call("err(40001)"), call("err(30003)")];
        let summary = failure_summary(&calls);
        assert_eq!(summary.len(), 2);
        assert!(summary[0].starts_with("管理员拒绝群发（2 次）："));
        assert!(summary[1].starts_with("原创校验未通过（判定为转载）（1 次）："));
    }

    #[test]
    fn copyright_matches_name_the_original() {
        let copyright = serde_json::json!({"check_state": 3, "items": [
            {"article_idx": 1, "original_article_url": "http://mp.weixin.qq.com/s/orig", "can_reprint": 0},
            {"article_idx": 2}
        ]});
        assert_eq!(
            copyright_notes(Some(&copyright)),
            vec!["第 1 篇与原文 http://mp.weixin.qq.com/s/orig 相符，原文不允许转载。".to_owned()]
        );
        assert!(copyright_notes(None).is_empty());
    }
}
