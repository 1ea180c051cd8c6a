//! 预览给测试粉丝: the campaign page's preview form. It offers the account's 测试粉丝 (and, in
//! demo mode, the simulator's followers) as choices; other openids may still be typed.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use deadpool_postgres::{GenericClient, Pool};

use super::detail::{PreviewOutcome, PreviewResult, detail_page};
use super::{Problem, scoped_problem};
use crate::app::campaigns;
use crate::domain::account::AccountId;
use crate::store;
use crate::web::admin::{AdminError, AdminState, AdminUser, CsrfForm};
use crate::web::api::CampaignContext;

/// How many of the simulator's followers the form offers.
const SIMULATED_CHOICES: i64 = 5;

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
fn recipients(pairs: &[(String, String)]) -> (Vec<String>, String, Vec<String>) {
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

/// Sends every message of the campaign to the chosen test followers through WeChat's preview,
/// and shows, per follower, whether WeChat took it.
pub async fn preview_campaign(
    user: AdminUser,
    pool: web::Data<Pool>,
    ctx: web::Data<CampaignContext>,
    accounts: web::Data<crate::app::accounts::Accounts>,
    state: web::Data<Arc<AdminState>>,
    id: web::Path<i64>,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, AdminError> {
    let id = id.into_inner();
    let (settings, api) = ctx.for_account(&accounts, user.account);
    let (chosen, typed, openids) = recipients(&pairs);
    let outcome = match campaigns::preview(&pool, api.as_ref(), user.account, id, &openids, &user.username).await {
        Ok(results) => PreviewOutcome {
            openids: typed,
            chosen,
            results: results.into_iter().map(|(openid, error)| PreviewResult { openid, error }).collect(),
            error: None,
        },
        Err(error) => match scoped_problem(&user, &pool, id, error).await {
            Problem::Say(message) => {
                PreviewOutcome { openids: typed, chosen, results: Vec::new(), error: Some(message) }
            }
            Problem::Fail(error) => return Err(error),
        },
    };
    detail_page(&user, &pool, &settings, &state, id, Some(outcome)).await
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
