//! 群发: the campaign pages, one file per page family: the list, compose, the approval queue
//! (approve, 驳回), send and cancel, and one campaign's page (delivery counts, results,
//! preview to test followers). Every decision (validation, approval, the cap, the quota, the
//! plan) belongs to [`crate::app::campaigns`]; these handlers turn its answers into view rows
//! and Chinese sentences. This file holds the wording the pages share and the strategy cache.

mod approvals;
mod compose;
mod detail;
mod list;
mod preview;
mod reach;
mod removal;
mod send;

pub use approvals::{approve_campaign, list_approvals, reject_campaign};
pub use compose::{create_campaign, new_campaign};
pub use detail::{preview_campaign, show_campaign};
pub use list::list_campaigns;
pub use removal::delete_campaign;
pub use send::{cancel_campaign, send_campaign};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;

use super::pages::show_time;
use super::{AdminError, AdminUser};
use crate::app::campaigns::{self, CampaignError, Invalid, StrategyStats};
use crate::domain::account::AccountId;
use crate::domain::approval::Change;
use crate::domain::campaign::{Audience, Message, RequestProblem, Status};
use crate::store::ownership::Owned;

/// Strategy figures are computed over up to 500 campaigns; shown at most a minute old.
const STRATEGIES_FRESH_FOR: Duration = Duration::from_secs(60);
/// The window the strategy comparison covers.
const STRATEGY_DAYS: i64 = 90;
/// The approval queue shows this many of the longest waiting.
const QUEUE: i64 = 100;

/// Each account's strategy comparison, shared by every viewer of its campaign pages for a minute.
#[derive(Default)]
pub struct StrategiesCache {
    figures: Mutex<std::collections::HashMap<AccountId, Computed>>,
}

/// Figures and when they were computed.
type Computed = (Instant, Arc<Vec<StrategyStats>>);

impl StrategiesCache {
    async fn get(
        &self,
        pool: &Pool,
        settings: &campaigns::CampaignSettings,
    ) -> Result<Arc<Vec<StrategyStats>>, AdminError> {
        let account = settings.account;
        if let Some((at, figures)) =
            self.figures.lock().expect("no panics while holding the lock").get(&account).cloned()
        {
            if at.elapsed() < STRATEGIES_FRESH_FOR {
                return Ok(figures);
            }
        }
        let figures = Arc::new(
            campaigns::strategies(pool, settings, STRATEGY_DAYS).await.map_err(|e| problem(e).err_or_internal())?,
        );
        self.figures
            .lock()
            .expect("no panics while holding the lock")
            .insert(account, (Instant::now(), figures.clone()));
        Ok(figures)
    }

    /// A send of `account` just finished or started: the next view should count it.
    fn forget(&self, account: AccountId) {
        self.figures.lock().expect("no panics while holding the lock").remove(&account);
    }
}

// ---------------------------------------------------------------- words

/// How the pages name a status.
pub fn status_label(status: &str) -> &'static str {
    match Status::parse(status) {
        Some(Status::Draft) => "草稿",
        Some(Status::PendingApproval) => "待审批",
        Some(Status::Approved) => "已审批",
        Some(Status::Scheduled) => "已定时",
        Some(Status::Sending) => "发送中",
        Some(Status::Sent) => "已发送",
        Some(Status::Failed) => "失败",
        Some(Status::Cancelled) => "已取消",
        None => "未知",
    }
}

fn strategy_label(kind: &str) -> &'static str {
    match kind {
        "all" => "全员群发",
        "tag" => "单个标签",
        "segment" => "人群（组合条件）",
        _ => "其他",
    }
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "—".to_owned(), |r| format!("{:.1}%", r * 100.0))
}

/// A refusal of the campaign domain as a sentence for the page, or the error page for what the
/// user cannot fix.
enum Problem {
    Say(String),
    Fail(AdminError),
}

impl Problem {
    fn err_or_internal(self) -> AdminError {
        match self {
            Self::Fail(error) => error,
            Self::Say(message) => {
                tracing::error!(message, "a campaign figure could not be computed");
                AdminError::Internal
            }
        }
    }
}

/// [`problem`] for an operation on campaign `id` the user named: one their account does not
/// hold is forbidden when another account holds it.
async fn scoped_problem(user: &AdminUser, pool: &Pool, id: i64, error: CampaignError) -> Problem {
    match error {
        CampaignError::NotFound => Problem::Fail(user.missing(pool, Owned::Campaign, &id.to_string()).await),
        other => problem(other),
    }
}

fn problem(error: CampaignError) -> Problem {
    let say = |s: String| Problem::Say(s);
    match error {
        CampaignError::Invalid(message) => say(invalid_problem(&message)),
        CampaignError::NotFound => Problem::Fail(AdminError::NotFound),
        CampaignError::UnknownTag(path) => say(format!("标签「{path}」不存在，请先在「标签」页创建。")),
        CampaignError::UnknownSegment(id) => say(format!("人群 #{id} 不存在。")),
        CampaignError::WrongStatus { status, action } => {
            let action = match action {
                "sent" => "发送",
                "approved" => "审批",
                "rejected" => "驳回",
                "cancelled" => "取消",
                other => other,
            };
            say(format!("该群发当前为「{}」，不能{action}。", status_label(&status)))
        }
        CampaignError::NeedsApproval(tags) => {
            say(format!("受众包含敏感标签（{tags}），需由创建人以外的审批人或管理员审批后才能发送。已放入审批队列。"))
        }
        CampaignError::PreviewReachesSensitive { openids, tags } => say(format!(
            "未预览：{openids} 带有本群发涉及的敏感标签（{tags}）。审批通过之前，只能预览给不带这些标签的粉丝（如测试粉丝）。"
        )),
        CampaignError::FrequencyCap { tag, cap, frees_at } => say(format!(
            "标签「{tag}」近 30 天已群发 {cap} 次，达到上限（技术人员可在部署设置中调整）；{} 之后可再发。",
            show_time(frees_at)
        )),
        CampaignError::ApprovalLapsed { tags, changes } => say(format!(
            "审批已失效：{}。受众包含敏感标签（{tags}），已放回审批队列，需重新审批后才能发送。",
            lapse_text(&changes)
        )),
        CampaignError::NotCreatorOrApprover { creator, approver } => {
            say(format!("该群发已审批：只有创建人（{creator}）或审批人（{approver}）可以发送。请联系他们发送。"))
        }
        CampaignError::ChangedSinceShown => {
            say("未审批：你查看之后，该群发或它涉及的标签、人群有了变化。请重新查看后再审批。".to_owned())
        }
        CampaignError::SelfApproval => say("不能审批自己创建的群发：请另一位审批人或管理员审批。".to_owned()),
        CampaignError::MachineReviewer { actor } => {
            say(format!("「{actor}」是系统身份，不能审批或驳回群发：请由审批人或管理员本人登录操作。"))
        }
        CampaignError::EmptyAudience => say("受众中没有已关注的粉丝，无法发送。".to_owned()),
        CampaignError::AudienceTooSmall(why) => say(format!("{why}。")),
        CampaignError::QuotaExhausted { next } => {
            say(format!("订阅号每天只能群发一次，今天的次数已用完；{} 起可再发。", show_time(next)))
        }
        CampaignError::WeChat(source) => match source.quota_resumes_at() {
            Some(until) => say(format!(
                "微信今天的预览接口额度已用完（每天 100 次）：{} 起可再预览；急需时可在数据看板清零接口额度。",
                show_time(until)
            )),
            None => say(format!("微信拒绝了预览：{}", crate::wechat::errcode_zh::describe(&source))),
        },
        CampaignError::NoAccount => say("没有配置微信公众号，无法预览。".to_owned()),
        CampaignError::Pool(e) => Problem::Fail(AdminError::Pool(e)),
        CampaignError::Query(e) => Problem::Fail(AdminError::Query(e)),
    }
}

/// [`crate::app::campaigns`]'s validation sentences in the operator's words; others pass through.
fn invalid_problem(invalid: &Invalid) -> String {
    match invalid {
        Invalid::Name => "群发名称需 1–100 个字。".to_owned(),
        Invalid::Request(RequestProblem::EmptyContent) => "请填写群发内容。".to_owned(),
        Invalid::Request(RequestProblem::ContentTooLong { .. }) => "文字内容最多 2,000 字。".to_owned(),
        Invalid::Request(RequestProblem::EmptyMediaId) => "请填写素材的 media_id。".to_owned(),
        Invalid::TooManyVariants { max } => format!("最多 {max} 个对比方案。"),
        Invalid::UnnamedVariant => "每个对比方案都需要名称。".to_owned(),
        Invalid::VariantsOnSubscription => {
            "订阅号每天只能群发一次，而每个 A/B 方案都是一次单独的群发：订阅号不能使用对比方案。".to_owned()
        }
        Invalid::ReasonRequired => "驳回需填写原因：告诉创建人需要修改什么。".to_owned(),
        Invalid::ReasonTooLong { max } => format!("驳回原因最多 {max} 字。"),
        Invalid::ReasonControlCharacter => {
            "驳回原因里有看不见的控制字符或排版字符（常见于从其他软件复制的文字），请删去后再提交。".to_owned()
        }
        Invalid::PreviewOpenids => "请勾选或填写 1–10 位测试粉丝。".to_owned(),
        Invalid::PreviewTooManyCalls { max, .. } => {
            format!("预览对每位测试粉丝的每条消息各调用一次微信，一次最多 {max} 次：请减少测试粉丝。")
        }
        Invalid::Request(problem @ RequestProblem::TextTooLong { .. }) => format!("{problem}。"),
        Invalid::Request(RequestProblem::AllNotTrue) => "请选择受众：标签、人群或全部粉丝。".to_owned(),
        Invalid::Request(RequestProblem::EmptyTag) => "请选择标签。".to_owned(),
        Invalid::SegmentUnparsable(error) => {
            format!("人群的条件已无法解析（{error}）：请到「人群」页修改条件，或换一个人群。")
        }
        Invalid::TagPath { source, .. } => format!("{source}。"),
        Invalid::Url(_) => "链接格式不对：请填写完整的网址，如 https://example.com/sale。".to_owned(),
        Invalid::UrlNotHttp => "链接须以 http:// 或 https:// 开头。".to_owned(),
        Invalid::ArticleIdx => "文章序号须为 1–8：即链接所在的是这次群发的第几篇文章。".to_owned(),
        Invalid::Stored { what, .. } => {
            tracing::error!(what, "a stored campaign could not be read back");
            "这条群发保存的数据无法读取，请联系技术人员。".to_owned()
        }
    }
}

/// What made an approval lapse, in the operator's words.
pub(in crate::web::admin) fn change_text(change: &Change) -> String {
    match change {
        Change::Audience => "受众已修改".to_owned(),
        Change::Content => "内容已修改".to_owned(),
        Change::Segment { id } => format!("人群 #{id} 的条件已修改"),
        Change::Renamed { from, to } => format!("标签「{from}」已改名为「{to}」"),
        Change::Sensitivity { path, to: true } => format!("标签「{path}」被标为敏感"),
        Change::Sensitivity { path, to: false } => format!("标签「{path}」不再是敏感标签"),
        Change::Definition { path } => format!("动态标签「{path}」的条件已修改"),
        Change::Reached { path } => format!("受众现在包含标签「{path}」"),
        Change::Unreached { path } => format!("受众不再包含标签「{path}」"),
    }
}

fn lapse_text(changes: &[Change]) -> String {
    if changes.is_empty() {
        "受众涉及的敏感标签没有有效审批（发送请求之后才成为敏感标签，或审批来自旧版本、没有记录审批时的受众与内容）"
            .to_owned()
    } else {
        changes.iter().map(change_text).collect::<Vec<_>>().join("；")
    }
}

/// WeChat's `FilterCount` is how many were left *after* its filters (the monthly 4, refusals),
/// so the filtered-out are the rest of `TotalCount`.
fn filtered_out(total: i64, filter_count: i64) -> i64 {
    (total - filter_count).max(0)
}

fn audience_text(audience: &Audience, segment_name: Option<&str>) -> String {
    match (audience, segment_name) {
        (Audience::Tag(path), _) => format!("标签「{path}」"),
        (Audience::Segment(id), Some(name)) => format!("人群「{name}」（#{id}）"),
        (Audience::Segment(id), None) => format!("人群 #{id}"),
        (Audience::All(_), _) => "全部粉丝".to_owned(),
    }
}

fn message_text(message: &Message) -> (&'static str, String) {
    match message {
        Message::Text { content } => ("文字", content.clone()),
        Message::Mpnews { media_id } => ("图文", media_id.clone()),
        Message::Image { media_id } => ("图片", media_id.clone()),
        Message::Voice { media_id } => ("语音", media_id.clone()),
        Message::Mpvideo { media_id } => ("视频", media_id.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_chinese(text: &str) -> bool {
        text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn every_refusal_an_operator_can_cause_reads_in_chinese() {
        let refusals = [
            Invalid::Name,
            Invalid::Request(RequestProblem::EmptyContent),
            Invalid::Request(RequestProblem::ContentTooLong { chars: 2_001 }),
            Invalid::Request(RequestProblem::EmptyMediaId),
            Invalid::TooManyVariants { max: 4 },
            Invalid::UnnamedVariant,
            Invalid::VariantsOnSubscription,
            Invalid::ReasonRequired,
            Invalid::ReasonTooLong { max: 500 },
            Invalid::ReasonControlCharacter,
            Invalid::PreviewOpenids,
            Invalid::PreviewTooManyCalls { max: 20, messages: 3 },
            Invalid::UrlNotHttp,
            Invalid::ArticleIdx,
            Invalid::TagPath { path: "a//b".into(), source: crate::domain::tag::TagPathError::Empty },
        ];
        for refusal in &refusals {
            let text = invalid_problem(refusal);
            assert!(is_chinese(&text), "{refusal:?} reads {text}");
        }
        assert_eq!(invalid_problem(&Invalid::TooManyVariants { max: 4 }), "最多 4 个对比方案。");
        assert_eq!(invalid_problem(&Invalid::ReasonTooLong { max: 500 }), "驳回原因最多 500 字。");
    }
}
