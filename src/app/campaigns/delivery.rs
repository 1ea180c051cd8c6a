//! The counts a campaign page shows after a send, each with one line saying where it comes
//! from, and the sum they make. Operators saw 收件人 6, 目标人数 5, 送达 5 side by side and could
//! not tell which was wrong: 收件人 is tagcast's list when the send was planned, the rest are
//! WeChat's MASSSENDJOBFINISH counts per call (`TotalCount`, `TotalCount − FilterCount`,
//! `SentCount`, `ErrorCount`), and a call sent by tag or to everyone is counted by WeChat from
//! its own members, which can differ from tagcast's.

use super::CallOutcome;

/// One count and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The element id the page and tests find it by.
    pub key: &'static str,
    pub label: &'static str,
    pub value: i64,
    pub meaning: String,
}

/// A sent (or sending) campaign's counts, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub recipients: i64,
    pub target: i64,
    pub filtered: i64,
    pub sent: i64,
    pub failed: i64,
    /// Targets of calls WeChat sent nothing of (content review, originality, protection).
    pub not_sent: i64,
    pub lines: Vec<Line>,
    /// `目标人数 T = 送达 S + 被过滤 F + 失败 E (+ 未发出 U)`, with WeChat's own discrepancy if any.
    pub sum: String,
    /// How 收件人 relates to 目标人数.
    pub recipients_vs_target: String,
}

/// What a campaign's plan and calls say: `recipients` planned, the plan's call `kinds`, calls
/// not answered yet, answered by `mass/get` only (no counts), and refused outright.
#[derive(Debug, Clone, Default)]
pub struct Plan<'a> {
    pub recipients: i64,
    pub kinds: &'a [String],
    pub waiting: i64,
    pub uncounted: i64,
    pub refused: i64,
    pub pending: i64,
}

/// Adds up the calls' results and words each count.
#[must_use]
pub fn explain_delivery(plan: &Plan<'_>, calls: &[CallOutcome]) -> Delivery {
    let (mut target, mut filtered, mut sent, mut failed, mut not_sent, mut off) = (0, 0, 0, 0, 0, 0);
    for call in calls {
        let Some(total) = call.total else { continue };
        if call.outcome.state == "failed" {
            not_sent += total;
            target += total;
            continue;
        }
        let (filter, s, e) = (call.filter.unwrap_or(0), call.sent.unwrap_or(0), call.error.unwrap_or(0));
        target += total;
        filtered += (total - filter).max(0);
        sent += s;
        failed += e;
        // WeChat documents FilterCount ≈ SentCount + ErrorCount, not equality.
        off += filter.min(total) - (s + e);
    }
    let by_tag = plan.kinds.iter().any(|k| k == "tag" || k == "all");
    let by_list = plan.kinds.iter().any(|k| k == "openids" || k == "temp_tag");
    let mut lines = vec![
        Line {
            key: "recipients",
            label: "收件人",
            value: plan.recipients,
            meaning: "发送时 tagcast 按受众算出、交给微信的已关注粉丝（含各 A/B 组）；点击率、转化率都以它为分母。预览给测试粉丝的不计入。"
                .to_owned(),
        },
        Line {
            key: "target",
            label: "目标人数",
            value: target,
            meaning: "微信统计的群发对象人数（各次群发结果报告的对象人数之和）。".to_owned(),
        },
        Line {
            key: "sent",
            label: "送达",
            value: sent,
            meaning: "微信实际发出的人数。".to_owned(),
        },
        Line {
            key: "filtered",
            label: "被过滤",
            value: filtered,
            meaning: "微信过滤掉、没有发给的人：本月已收满 4 条群发、拒收消息等。这是微信的规则，无需处理。"
                .to_owned(),
        },
        Line {
            key: "failed",
            label: "失败",
            value: failed,
            meaning: "过滤后仍发送失败的人，微信不说明原因，常见于用户拒收或账号异常；不必重发。".to_owned(),
        },
    ];
    if not_sent > 0 {
        lines.push(Line {
            key: "not-sent",
            label: "未发出",
            value: not_sent,
            meaning: "整次群发被微信拒绝（内容审核、原创校验、管理员拒绝等）的目标人数，这些人没有收到；原因和处理办法见下方。"
                .to_owned(),
        });
    }
    let mut sum = format!("目标人数 {target} = 送达 {sent} + 被过滤 {filtered} + 失败 {failed}");
    if not_sent > 0 {
        sum.push_str(&format!(" + 未发出 {not_sent}"));
    }
    if off != 0 {
        sum.push_str(&format!(
            "（另有 {} 人：微信报告的过滤后人数与送达加失败人数相差 {off}，以微信的统计为准）",
            off.abs()
        ));
    }
    let recipients_vs_target = recipients_vs_target(plan, target, by_tag, by_list);
    Delivery { recipients: plan.recipients, target, filtered, sent, failed, not_sent, lines, sum, recipients_vs_target }
}

fn recipients_vs_target(plan: &Plan<'_>, target: i64, by_tag: bool, by_list: bool) -> String {
    let recipients = plan.recipients;
    let mut why = Vec::new();
    if plan.pending > 0 || plan.waiting > 0 {
        why.push(format!(
            "还有 {} 次群发尚未收到微信的结果，它们的人数还没有计入目标人数",
            plan.pending + plan.waiting
        ));
    }
    if plan.uncounted > 0 {
        why.push(format!("{} 次群发微信没有推送结果，状态是查询得到的，没有人数明细，不计入目标人数", plan.uncounted));
    }
    if plan.refused > 0 {
        why.push(format!("{} 次群发请求被微信直接拒绝，其中的收件人没有交给微信", plan.refused));
    }
    if by_tag {
        why.push(
            "按标签或全部粉丝群发时，目标人数是微信那边该标签（或公众号）的粉丝数：刚打的标签尚未同步到微信、粉丝刚关注或取消关注时，两边会不同"
                .to_owned(),
        );
    }
    if recipients == target {
        return format!("收件人 {recipients} = 目标人数 {target}：微信收到的正是 tagcast 算出的名单。");
    }
    if why.is_empty() && by_list {
        why.push("按 openid 列表群发时，微信只统计列表中仍关注的粉丝，发送前刚取消关注的人不计入".to_owned());
    }
    if why.is_empty() {
        why.push("两边统计的时刻不同".to_owned());
    }
    format!("收件人 {recipients} 与目标人数 {target} 相差 {}：{}。", (recipients - target).abs(), why.join("；"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::campaigns::explain;

    fn call(status: &str, counts: (i64, i64, i64, i64)) -> CallOutcome {
        CallOutcome {
            msg_id: 1,
            status: Some(status.to_owned()),
            outcome: explain(Some(status), Some(counts.3)),
            total: Some(counts.0),
            filter: Some(counts.1),
            sent: Some(counts.2),
            error: Some(counts.3),
            copyright: Vec::new(),
        }
    }

    #[test]
    fn counts_add_up_to_the_target() {
        let kinds = ["openids".to_owned()];
        let plan = Plan { recipients: 12, kinds: &kinds, ..Plan::default() };
        let calls = [call("send success", (10, 8, 7, 1)), call("err(30003)", (2, 0, 0, 0))];
        let d = explain_delivery(&plan, &calls);
        assert_eq!((d.target, d.sent, d.filtered, d.failed, d.not_sent), (12, 7, 2, 1, 2));
        assert_eq!(d.target, d.sent + d.filtered + d.failed + d.not_sent);
        assert_eq!(d.sum, "目标人数 12 = 送达 7 + 被过滤 2 + 失败 1 + 未发出 2");
        assert!(d.recipients_vs_target.starts_with("收件人 12 = 目标人数 12"));
    }

    #[test]
    fn a_tag_send_says_why_wechat_counts_differently() {
        let kinds = ["tag".to_owned()];
        let plan = Plan { recipients: 6, kinds: &kinds, ..Plan::default() };
        let d = explain_delivery(&plan, &[call("send success", (5, 5, 5, 0))]);
        assert!(d.recipients_vs_target.contains("相差 1"), "{}", d.recipients_vs_target);
        assert!(d.recipients_vs_target.contains("尚未同步到微信"));
    }

    #[test]
    fn wechats_own_discrepancy_is_shown_not_hidden() {
        let plan = Plan { recipients: 5, ..Plan::default() };
        let d = explain_delivery(&plan, &[call("send success", (5, 5, 4, 0))]);
        assert!(d.sum.contains("相差 1"), "{}", d.sum);
    }
}
