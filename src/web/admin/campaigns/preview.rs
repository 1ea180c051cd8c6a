//! 预览给测试粉丝: the campaign page's preview form. It offers the account's 测试粉丝 (and, in
//! demo mode, the simulator's followers) as choices; other openids may still be typed.

use deadpool_postgres::GenericClient;

use crate::domain::account::AccountId;
use crate::store;
use crate::web::admin::AdminError;

/// How many of the simulator's followers the form offers.
const SIMULATED_CHOICES: i64 = 5;

pub struct PreviewResult {
    pub openid: String,
    pub error: Option<String>,
}

/// What a preview did, shown on the campaign page.
pub(super) struct PreviewOutcome {
    /// What was typed into the other-openids box, shown again.
    pub openids: String,
    /// The testers ticked, ticked again.
    pub chosen: Vec<String>,
    pub results: Vec<PreviewResult>,
    pub error: Option<String>,
}

pub struct PreviewChoice {
    pub openid: String,
    /// The tester's note, or where the choice comes from.
    pub label: String,
    pub checked: bool,
    /// A tester who unfollowed: WeChat's preview would fail.
    pub unsubscribed: bool,
}

/// The testers first, then (demo mode only: on a real account WeChat knows no simulated
/// follower) the simulator's most recent followers.
pub(super) async fn choices(
    client: &impl GenericClient,
    account: AccountId,
    demo: bool,
    chosen: &[String],
) -> Result<Vec<PreviewChoice>, AdminError> {
    let mut choices: Vec<PreviewChoice> = store::test_followers::list_testers(client, account)
        .await?
        .into_iter()
        .map(|t| PreviewChoice {
            checked: chosen.contains(&t.openid),
            label: if t.note.is_empty() { "测试粉丝".to_owned() } else { t.note },
            unsubscribed: !t.subscribed,
            openid: t.openid,
        })
        .collect();
    if demo {
        for openid in store::test_followers::list_simulated_followers(client, account, SIMULATED_CHOICES).await? {
            if choices.iter().all(|c| c.openid != openid) {
                let checked = chosen.contains(&openid);
                choices.push(PreviewChoice { openid, label: "模拟器".to_owned(), checked, unsubscribed: false });
            }
        }
    }
    Ok(choices)
}

/// The ticked testers (`tester`, repeated) and the typed openids, in order, each once.
pub(super) fn recipients(pairs: &[(String, String)]) -> (Vec<String>, String, Vec<String>) {
    let chosen: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "tester")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    let typed = pairs.iter().find(|(k, _)| k == "openids").map(|(_, v)| v.clone()).unwrap_or_default();
    let mut all = chosen.clone();
    for openid in typed.split(|c: char| c.is_whitespace() || matches!(c, ',' | '，' | '、')).filter(|s| !s.is_empty())
    {
        if !all.iter().any(|o| o == openid) {
            all.push(openid.to_owned());
        }
    }
    (chosen, typed, all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn ticked_and_typed_recipients_are_joined_once_each_in_order() {
        let form = pairs(&[("csrf", "x"), ("tester", "o_b"), ("tester", "o_a"), ("openids", "o_c，o_a、 o_d")]);
        let (chosen, typed, all) = recipients(&form);
        assert_eq!(chosen, ["o_b", "o_a"]);
        assert_eq!(typed, "o_c，o_a、 o_d");
        assert_eq!(all, ["o_b", "o_a", "o_c", "o_d"]);
    }

    #[test]
    fn nothing_ticked_or_typed_is_no_recipient() {
        let (_, _, all) = recipients(&pairs(&[("csrf", "x"), ("openids", "  ")]));
        assert!(all.is_empty());
    }
}
