//! 模拟器: act as a follower. The server builds the push WeChat would send, signs it with the
//! configured token and posts it to its own `/wechat`, so the test goes through exactly what a
//! real follower's message goes through (signature, inbox, rules, quizzes), then shows the reply
//! and the follower's tags before and after. With an EncodingAESKey it encrypts the push and
//! decrypts the reply as WeChat does in safe mode, so it works in every message mode. It acts on
//! the account the user works on: that account's callback URL, token and key.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use deadpool_postgres::Pool;
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{AdminError, AdminState, AdminUser, CsrfForm, Layout, render};
use crate::app::accounts::Accounts;
use crate::domain::account::AccountId;
use crate::store;
use crate::wechat::crypto::MsgCrypt;
use crate::wechat::message::{self, Envelope, Inbound, Message};
use crate::wechat::signature;

/// On a real account, simulated followers must carry this prefix, so a test never tags a person
/// and never counts in an audience or the board.
pub use crate::domain::follower::TEST_OPENID_PREFIX as TEST_PREFIX;
const ACCOUNT: &str = "gh_tagcast_simulator";

/// Where and how the simulator reaches this server's own callback.
pub struct SimulatorTarget {
    pub callback_url: String,
    pub token: SecretString,
    /// Set when the account has an EncodingAESKey: pushes go out encrypted, as in safe mode.
    pub crypt: Option<MsgCrypt>,
    /// Demo mode: every signed-in user may simulate; otherwise only admins.
    pub demo: bool,
    http: reqwest::Client,
    /// WeChat treats two events of one follower with the same `CreateTime` as a retry; two
    /// presses within a second must stay two presses.
    last_create_time: AtomicI64,
}

impl SimulatorTarget {
    pub fn new(callback_url: String, token: SecretString, crypt: Option<MsgCrypt>, demo: bool) -> Self {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(6))
            .build()
            .expect("a client without TLS roots to load builds");
        Self { callback_url, token, crypt, demo, http, last_create_time: AtomicI64::new(0) }
    }

    fn create_time(&self) -> i64 {
        let now = chrono::Utc::now().timestamp();
        let previous = self.last_create_time.fetch_max(now, Ordering::SeqCst);
        if previous >= now { self.last_create_time.fetch_add(1, Ordering::SeqCst) + 1 } else { now }
    }
}

#[derive(Template)]
#[template(path = "admin/simulator/index.html")]
struct SimulatorPage {
    layout: Layout,
    openid: String,
    content: String,
    key: String,
    demo: bool,
    outcome: Option<Outcome>,
    error: Option<String>,
    /// The test follower's conversation so far, oldest first.
    history: Vec<Turn>,
    /// Whether 重新开始 may erase this follower (simulated followers only).
    resettable: bool,
}

/// One push of the conversation and what the follower read back.
struct Turn {
    at: String,
    said: String,
    reply: Option<String>,
}

struct Outcome {
    sent: String,
    reply: String,
    before: Vec<String>,
    after: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
}

#[derive(Deserialize, Default)]
pub struct SimulatorForm {
    #[serde(default)]
    openid: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    key: String,
}

fn allowed(user: &AdminUser, target: &SimulatorTarget) -> Result<(), AdminError> {
    user.require(target.demo || user.role.may_manage_admins())
}

#[derive(Deserialize, Default)]
pub struct SimulatorQuery {
    #[serde(default)]
    openid: String,
}

pub async fn show_simulator(
    user: AdminUser,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    query: web::Query<SimulatorQuery>,
) -> Result<HttpResponse, AdminError> {
    allowed(&user, &state.simulator)?;
    let asked = query.openid.trim();
    let openid = if valid_openid(asked) { asked.to_owned() } else { format!("{TEST_PREFIX}follower") };
    let client = pool.get().await?;
    let history = conversation(&client, user.account, &openid).await?;
    render(&SimulatorPage {
        layout: user.layout("simulator"),
        resettable: openid.starts_with(TEST_PREFIX),
        openid,
        content: "我的标签".to_owned(),
        key: String::new(),
        demo: state.simulator.demo,
        outcome: None,
        error: None,
        history,
    })
}

/// How many of the latest pushes the conversation shows: a whole quiz with room to spare.
const HISTORY_TURNS: i64 = 60;

async fn conversation(
    client: &impl deadpool_postgres::GenericClient,
    account: AccountId,
    openid: &str,
) -> Result<Vec<Turn>, AdminError> {
    let turns = store::board::list_conversation(client, account, openid, HISTORY_TURNS).await?;
    Ok(turns
        .into_iter()
        .map(|t| Turn {
            at: crate::web::admin::pages::show_time(t.occurred_at),
            said: said(&t.kind, t.event_key.as_deref(), t.content.as_deref()),
            reply: (!t.reply.is_empty()).then(|| reply_text(&t.reply)),
        })
        .collect())
}

/// A stored push as the conversation shows the follower's side.
fn said(kind: &str, key: Option<&str>, content: Option<&str>) -> String {
    match (kind, key, content) {
        ("text", _, Some(content)) => content.to_owned(),
        ("click", Some(key), _) => format!("［点击菜单 {key}］"),
        ("subscribe", _, _) => "［关注公众号］".to_owned(),
        ("unsubscribe", _, _) => "［取消关注］".to_owned(),
        (kind, _, _) => format!("［{}］", crate::web::admin::followers::kind_label(kind)),
    }
}

fn valid_openid(openid: &str) -> bool {
    !openid.is_empty()
        && openid.len() <= 64
        && openid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Where a simulated push of the user's account goes, and what signs and seals it.
struct Endpoint {
    url: String,
    token: SecretString,
    crypt: Option<MsgCrypt>,
}

/// The first account's is the one set at start (`/wechat`); any other's is `/wechat/{name}` with
/// its own credentials. `None`: the account has no callback token.
fn endpoint(target: &SimulatorTarget, accounts: &Accounts, account: AccountId) -> Option<Endpoint> {
    if account == AccountId::FIRST {
        return Some(Endpoint {
            url: target.callback_url.clone(),
            token: target.token.clone(),
            crypt: target.crypt.clone(),
        });
    }
    let live = accounts.get(account)?;
    Some(Endpoint {
        url: format!("{}/{}", target.callback_url, live.name),
        token: live.token.clone()?,
        crypt: live.crypt.clone(),
    })
}

pub async fn simulate(
    user: AdminUser,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    accounts: web::Data<Accounts>,
    CsrfForm(form): CsrfForm<SimulatorForm>,
) -> Result<HttpResponse, AdminError> {
    let target = &state.simulator;
    allowed(&user, target)?;
    let openid = form.openid.trim().to_owned();
    let page = |outcome: Option<Outcome>, error: Option<String>, history: Vec<Turn>| SimulatorPage {
        layout: user.layout("simulator"),
        openid: openid.clone(),
        content: form.content.clone(),
        key: form.key.clone(),
        demo: target.demo,
        outcome,
        error,
        history,
        resettable: openid.starts_with(TEST_PREFIX),
    };
    if !valid_openid(&openid) || (!target.demo && !openid.starts_with(TEST_PREFIX)) {
        let message = if target.demo {
            "openid 只能用字母、数字、_ 和 -，最多 64 个字符。".to_owned()
        } else {
            format!("真实账号上只能模拟测试粉丝：openid 须以「{TEST_PREFIX}」开头。")
        };
        return render(&page(None, Some(message), Vec::new())).map(unprocessable);
    }
    let create_time = target.create_time();
    let (body, sent) = match form.action.as_str() {
        "click" if !form.key.trim().is_empty() => {
            (Inbound::Click { key: form.key.trim().to_owned() }, format!("点击菜单 {}", form.key.trim()))
        }
        "subscribe" => (Inbound::Subscribe { event_key: None, scene: None, ticket: None }, "关注公众号".to_owned()),
        "unsubscribe" => (Inbound::Unsubscribe, "取消关注".to_owned()),
        "text" if !form.content.trim().is_empty() => {
            let msg_id: u64 = rand::thread_rng().gen_range(1..i64::MAX as u64);
            (
                Inbound::Text { content: form.content.clone(), msg_id: Some(msg_id), msg_data_id: None, idx: None },
                format!("发送消息「{}」", form.content),
            )
        }
        _ => return render(&page(None, Some("请输入消息内容或菜单 key。".to_owned()), Vec::new())).map(unprocessable),
    };
    let xml = Message { to_user: ACCOUNT.to_owned(), from_user: openid.clone(), create_time, body }.to_xml();
    let Some(endpoint) = endpoint(target, &accounts, user.account) else {
        let message = "当前公众号还没有设置回调 Token，无法模拟；请先在账号设置中填写。".to_owned();
        return render(&page(None, Some(message), Vec::new())).map(unprocessable);
    };

    let client = pool.get().await?;
    let before = tags_of(&client, user.account, &openid).await?;
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let nonce = rand::thread_rng().gen_range(100_000_000u64..999_999_999).to_string();
    let (query, body) = signed_push(&endpoint, xml, &timestamp, &nonce, &openid);
    let answer =
        target.http.post(&endpoint.url).query(&query).header("content-type", "text/xml").body(body).send().await;
    let reply = match answer {
        Ok(response) if response.status().is_success() => {
            let body = response.text().await.unwrap_or_default();
            endpoint.crypt.as_ref().map_or_else(|| body.clone(), |crypt| open_reply(crypt, &body))
        }
        Ok(response) => {
            let message =
                format!("本服务的回调返回了 HTTP {}，消息未被处理；请查看服务日志。", response.status().as_u16());
            return render(&page(None, Some(message), Vec::new())).map(unprocessable);
        }
        Err(error) => {
            // reqwest puts the URL, signature and all, into its errors.
            tracing::warn!(error = %error.without_url(), "the simulator could not reach the callback");
            return render(&page(None, Some("无法连接到本服务的 /wechat 回调。".to_owned()), Vec::new()))
                .map(unprocessable);
        }
    };
    wait_for_consumer(&client, user.account, &openid).await?;
    let after = tags_of(&client, user.account, &openid).await?;
    let outcome = Outcome {
        sent,
        reply: reply_text(&reply),
        added: after.iter().filter(|t| !before.contains(t)).cloned().collect(),
        removed: before.iter().filter(|t| !after.contains(t)).cloned().collect(),
        before,
        after,
    };
    let history = conversation(&client, user.account, &openid).await?;
    tracing::info!(admin.username = %user.username, user.openid = %openid, "simulated a push");
    render(&page(Some(outcome), None, history))
}

/// The query and body WeChat would send for `xml`: encrypted under `msg_signature` when the
/// account has a key (accepted in every mode), plaintext otherwise.
fn signed_push(
    target: &Endpoint,
    xml: String,
    timestamp: &str,
    nonce: &str,
    openid: &str,
) -> (Vec<(&'static str, String)>, String) {
    let token = target.token.expose_secret();
    let mut query = vec![
        ("signature", signature::sign(&[token, timestamp, nonce])),
        ("timestamp", timestamp.to_owned()),
        ("nonce", nonce.to_owned()),
        ("openid", openid.to_owned()),
    ];
    let Some(crypt) = &target.crypt else { return (query, xml) };
    let encrypt = crypt.encrypt(xml.as_bytes());
    query.push(("encrypt_type", "aes".to_owned()));
    query.push(("msg_signature", signature::sign(&[token, timestamp, nonce, &encrypt])));
    (query, Envelope { to_user: Some(ACCOUNT.to_owned()), encrypt: Some(encrypt) }.to_xml())
}

/// The plaintext of an encrypted passive reply; `success` and empty replies come unencrypted.
fn open_reply(crypt: &MsgCrypt, body: &str) -> String {
    let Some(encrypt) = message::parse_envelope(body).ok().and_then(|envelope| envelope.encrypt) else {
        return body.to_owned();
    };
    crypt.decrypt(&encrypt).ok().and_then(|plain| String::from_utf8(plain).ok()).unwrap_or_default()
}

fn unprocessable(mut response: HttpResponse) -> HttpResponse {
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    response
}

/// Tags follow a push by a moment (the consumer applies them after the answer): the page waits
/// for that moment, so "after" shows what the push earned. Gives up after 3 s and shows what is
/// there.
async fn wait_for_consumer(
    client: &deadpool_postgres::Client,
    account: AccountId,
    openid: &str,
) -> Result<(), AdminError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while store::event_cursor::has_unapplied(client, store::event_cursor::TAGGING, account, openid).await? {
        if std::time::Instant::now() >= deadline {
            tracing::warn!(user.openid = %openid, "the simulator's push was not applied within 3 s");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(())
}

async fn tags_of(
    client: &impl deadpool_postgres::GenericClient,
    account: AccountId,
    openid: &str,
) -> Result<Vec<String>, AdminError> {
    Ok(store::tags::list_follower_tag_paths(client, account, &[openid]).await?.remove(openid).unwrap_or_default())
}

/// What the follower would read: the text of a passive reply, the titles of a news reply.
fn reply_text(body: &str) -> String {
    if body.trim().is_empty() || body == "success" {
        return "（无回复）".to_owned();
    }
    let Ok(fields) = message::flatten(body) else { return "（回复无法解析）".to_owned() };
    let content: Vec<&str> = fields
        .iter()
        .filter(|(k, _)| k == "Content" || k.ends_with("Title") || k.ends_with("Description"))
        .map(|(_, v)| v.as_str())
        .collect();
    if content.is_empty() { "（非文字回复）".to_owned() } else { content.join("\n") }
}

#[derive(Deserialize, Default)]
pub struct ResetForm {
    #[serde(default)]
    openid: String,
}

/// 重新开始: erases a simulated follower (conversation, tags, quiz progress), so a quiz can be
/// taken again from its first question. Only openids with the test prefix: a real follower's data
/// is erased on the follower's page, on request, with its own confirmation.
pub async fn reset_simulator(
    user: AdminUser,
    pool: web::Data<Pool>,
    state: web::Data<Arc<AdminState>>,
    CsrfForm(form): CsrfForm<ResetForm>,
) -> Result<HttpResponse, AdminError> {
    allowed(&user, &state.simulator)?;
    let openid = form.openid.trim().to_owned();
    if !valid_openid(&openid) || !openid.starts_with(TEST_PREFIX) {
        user.flash(format!(
            "只能重置模拟的测试粉丝（openid 以「{TEST_PREFIX}」开头）；真实粉丝的数据请在粉丝详情页按删除请求处理。"
        ));
        return Ok(super::see_other("/admin/simulator"));
    }
    let erased =
        crate::app::tagging::erase_follower(&pool, user.account, &openid).await.map_err(|error| match error {
            crate::app::tagging::TaggingError::Pool(e) => AdminError::Pool(e),
            crate::app::tagging::TaggingError::Query(e) => AdminError::Query(e),
            _ => AdminError::Internal,
        })?;
    if erased {
        super::pages::audit(&pool, &user, "reset_simulator", "follower", &openid, serde_json::json!({})).await?;
        tracing::info!(admin.username = %user.username, user.openid = %openid, "reset a simulated follower");
    }
    user.flash(format!("已重新开始：{openid} 的对话、标签和测验进度已清空。"));
    let back = format!(
        "/admin/simulator?openid={}",
        url::form_urlencoded::byte_serialize(openid.as_bytes()).collect::<String>()
    );
    Ok(super::see_other(&back))
}
