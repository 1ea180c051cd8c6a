//! 受众人数: what a send would reach now, as the compose page, the campaign page and the send's
//! confirmation show it (`templates/admin/campaigns/reach.html`). The figures come from
//! [`crate::app::campaigns::reach_of_campaign`] / [`crate::app::campaigns::reach_of_draft`].

use crate::app::campaigns::{Reach, WECHAT_MONTHLY_RECEIPTS};
use crate::web::admin::pages::show_time;

pub struct GroupView {
    pub label: String,
    pub members: i64,
    pub at_limit: i64,
}

pub struct TagView {
    pub path: String,
    pub sensitive: bool,
    /// 近 30 天 n 次 / 上限 m 次, and when it frees up at the cap.
    pub load: String,
    pub capped: bool,
}

/// A [`Reach`] in the operator's words.
pub struct ReachView {
    pub total: i64,
    pub at_limit: i64,
    pub deliverable: i64,
    pub limit_applies: bool,
    /// "将发送给 N 位粉丝（其中 M 位本月已收满 4 条，将被过滤）".
    pub headline: String,
    pub groups: Vec<GroupView>,
    pub groups_note: &'static str,
    pub sensitive: Vec<String>,
    pub tags: Vec<TagView>,
    /// Tags at the cap: the send would be refused.
    pub capped: Vec<String>,
    pub expected_buyers: Option<i64>,
}

impl ReachView {
    /// `names` are the A/B variants' names, control excluded.
    pub fn new(reach: &Reach, names: &[String]) -> Self {
        let headline = headline(reach);
        let groups = reach
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| GroupView {
                label: match i {
                    0 => "对照".to_owned(),
                    i => names.get(i - 1).map_or_else(|| format!("方案 {i}"), |n| format!("方案 {i}「{n}」")),
                },
                members: g.members,
                at_limit: g.at_limit,
            })
            .collect();
        let groups_note = if reach.groups_exact {
            "按粉丝随机分组，与发送时的分组相同。"
        } else {
            "按粉丝随机分组，保存前只能估算每组人数；保存后群发页显示每组确切人数。"
        };
        Self {
            total: reach.total,
            at_limit: reach.at_limit,
            deliverable: reach.deliverable(),
            limit_applies: reach.limit_applies,
            headline,
            groups,
            groups_note,
            sensitive: reach.sensitive.clone(),
            expected_buyers: reach.expected_buyers,
            tags: reach
                .tags
                .iter()
                .map(|t| TagView {
                    path: t.path.clone(),
                    sensitive: t.sensitive,
                    load: match t.frees_at {
                        Some(at) => format!(
                            "近 30 天已群发 {} 次，已达上限 {} 次：{} 之后才能再发",
                            t.sends,
                            t.cap,
                            show_time(at)
                        ),
                        None => format!(
                            "近 30 天已群发 {} 次，上限 {} 次，还可再发 {} 次",
                            t.sends,
                            t.cap,
                            t.cap as usize - t.sends.min(t.cap as usize)
                        ),
                    },
                    capped: t.frees_at.is_some(),
                })
                .collect(),
            capped: reach.capped().into_iter().map(str::to_owned).collect(),
        }
    }
}

/// The one sentence naming how many followers a send goes to.
pub fn headline(reach: &Reach) -> String {
    if reach.limit_applies && reach.at_limit > 0 {
        format!(
            "将发送给 {} 位粉丝（其中 {} 位本月已收满 {WECHAT_MONTHLY_RECEIPTS} 条群发，将被微信过滤，预计送达 {} 位）",
            reach.total,
            reach.at_limit,
            reach.deliverable()
        )
    } else {
        format!("将发送给 {} 位粉丝", reach.total)
    }
}
