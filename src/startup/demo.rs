//! Demo mode: with no WeChat credentials, `serve` plays against the mock WeChat in-process. The
//! mock gets a few thousand generated followers, `sync` imports them, and each gets a plausible
//! history (a follow, menu clicks, messages) pushed through the real callback, signature and all.

use std::net::TcpListener;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::stream::{self, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use secrecy::SecretString;

use crate::config::{DEMO_TOKEN, Settings};
use crate::mock_wechat::{CallbackTarget, MockAccountType, MockConfig, MockWeChat, RunningMock};
use crate::wechat::api::ApiClient;
use crate::wechat::message::{Inbound, Message};
use crate::wechat::signature;

/// The demo account's AppID and original id.
pub const DEMO_APPID: &str = "wxdemo0000000001";
pub const DEMO_ACCOUNT: &str = "gh_tagcastdemo";
/// The demo's admin login, printed at start (only when `TAGCAST_ADMIN_PASSWORD` is unset and
/// no admin exists yet). Demo mode holds generated followers only.
pub const DEMO_ADMIN_USER: &str = "admin";
pub const DEMO_ADMIN_PASSWORD: &str = "tagcast-demo";
/// Followers the demo account starts with.
pub const DEMO_FOLLOWERS: usize = 3_000;

/// The menu keys and keywords the generated histories use (the sample playbook reacts to some).
const MENU_KEYS: &[&str] = &["SKIN_TEST", "NEW_ARRIVALS", "VIP_CENTER", "STORE_HOURS", "COUPONS"];
const TEXTS: &[&str] = &["你好", "营业时间", "优惠", "我的标签", "怎么退货", "有新品吗"];
const SCENES: &[&str] = &["poster_spring", "store_checkout", "live_stream"];
/// The demo's draft box: one multi-article draft and one single article.
const DEMO_DRAFTS: &[&[&str]] =
    &[&["春季护肤新品上市", "油皮护理三步法", "会员日优惠券领取指南"], &["门店营业时间调整通知"]];

/// Why seeding the demo stopped; the server keeps running without the generated histories.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("importing the demo followers failed")]
    Sync(#[from] crate::app::sync::SyncError),
    #[error("no database connection")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database statement failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("pushing a demo event to the callback failed")]
    Push(#[from] reqwest::Error),
}

/// The running mock of a demo.
pub struct Demo {
    pub mock: MockWeChat,
    pub running: RunningMock,
    /// Turns true once seeding has finished (or failed and given up).
    seeded: tokio::sync::watch::Sender<bool>,
}

impl Demo {
    /// Waits until the generated followers and their histories are in place.
    pub async fn wait_until_seeded(&self) {
        let mut seeded = self.seeded.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we hold it.
        let _ = seeded.wait_for(|done| *done).await;
    }
}

/// Starts the mock on a free loopback port, pushing its events to `callback_port`, and points
/// `settings` at it.
///
/// # Errors
/// The mock cannot bind or start.
pub fn start(settings: &mut Settings, callback_port: u16) -> std::io::Result<Demo> {
    let secret = format!("demo{:016x}", rand::thread_rng().r#gen::<u64>());
    let mock = MockWeChat::new(MockConfig {
        appid: DEMO_APPID.to_owned(),
        secret: secret.clone(),
        account_type: match settings.wechat.account_type {
            crate::domain::account::AccountType::Service => MockAccountType::Service,
            crate::domain::account::AccountType::Subscription => MockAccountType::Subscription,
        },
        callback: Some(CallbackTarget {
            url: format!("http://127.0.0.1:{callback_port}/wechat"),
            token: DEMO_TOKEN.to_owned(),
            encoding_aes_key: None,
            account_id: DEMO_ACCOUNT.to_owned(),
        }),
    });
    let running = mock.start(TcpListener::bind("127.0.0.1:0")?)?;
    settings.wechat.appid = Some(DEMO_APPID.to_owned());
    settings.wechat.app_secret = Some(SecretString::from(secret));
    settings.wechat.api_base = url::Url::parse(&running.url()).map_err(std::io::Error::other)?;
    Ok(Demo { mock, running, seeded: tokio::sync::watch::channel(false).0 })
}

/// Fills the mock and, on a fresh database, imports the followers and pushes their histories.
///
/// # Errors
/// The import or a push failed.
pub async fn seed(demo: &Demo, pool: &Pool, api: &ApiClient, callback_url: &str) -> Result<(), DemoError> {
    let outcome = seed_once(demo, pool, api, callback_url).await;
    demo.seeded.send_replace(true);
    outcome
}

async fn seed_once(demo: &Demo, pool: &Pool, api: &ApiClient, callback_url: &str) -> Result<(), DemoError> {
    // Deterministic openids: every start gives the mock the same followers the database knows.
    let openids = demo.mock.seed_followers(DEMO_FOLLOWERS);
    // Drafts for the composer's picker; the mock's ids are deterministic, so every start gives
    // the ones the database listed before.
    for titles in DEMO_DRAFTS {
        demo.mock.add_draft(titles);
    }
    // The simulator's default follower follows the demo account on the mock too, so a campaign's
    // preview to it (offered on the campaign page) reaches it as it would a real tester's phone.
    demo.mock.add_follower(&format!("{}follower", crate::domain::follower::TEST_OPENID_PREFIX));
    let known =
        crate::store::followers::count_followers(&pool.get().await?, crate::domain::account::AccountId::FIRST).await?;
    if known > 0 {
        return Ok(());
    }
    crate::app::sync::run_sync(pool, api, |_| {}).await?;
    let http = reqwest::Client::new();
    let mut rng = StdRng::seed_from_u64(2024);
    let now = chrono::Utc::now().timestamp();
    let mut pushes = Vec::new();
    for (i, openid) in openids.iter().enumerate() {
        let joined = now - rng.gen_range(3_600..90 * 86_400);
        let scene = (rng.gen_ratio(1, 3)).then(|| SCENES[rng.gen_range(0..SCENES.len())]);
        let follow = Inbound::Subscribe {
            event_key: scene.map(|s| format!("qrscene_{s}")),
            scene: scene.map(str::to_owned),
            ticket: None,
        };
        pushes.push(push_xml(openid, joined, follow));
        for _ in 0..rng.gen_range(0..4) {
            let at = rng.gen_range(joined..now);
            let key = MENU_KEYS[rng.gen_range(0..MENU_KEYS.len())].to_owned();
            pushes.push(push_xml(openid, at, Inbound::Click { key }));
        }
        for j in 0..rng.gen_range(0..3u64) {
            let at = rng.gen_range(joined..now);
            let msg_id = 7_000_000_000_000_000 + (i as u64) * 16 + j;
            let content = TEXTS[rng.gen_range(0..TEXTS.len())].to_owned();
            pushes.push(push_xml(
                openid,
                at,
                Inbound::Text { content, msg_id: Some(msg_id), msg_data_id: None, idx: None },
            ));
        }
    }
    let total = pushes.len();
    let mut stream = stream::iter(pushes.into_iter().enumerate().map(|(n, xml)| {
        let http = http.clone();
        async move {
            let ts = chrono::Utc::now().timestamp().to_string();
            let nonce = n.to_string();
            let sig = signature::sign(&[DEMO_TOKEN, &ts, &nonce]);
            let url = format!("{callback_url}?signature={sig}&timestamp={ts}&nonce={nonce}");
            // reqwest's errors carry the URL, and with it the signature: keep it out of logs.
            let response = http.post(url).body(xml).timeout(Duration::from_secs(10)).send().await;
            response.and_then(reqwest::Response::error_for_status).map_err(reqwest::Error::without_url)
        }
    }))
    .buffer_unordered(16);
    while let Some(result) = stream.next().await {
        result?;
    }
    tracing::info!(followers = openids.len(), pushes = total, "demo followers seeded with their histories");
    Ok(())
}

/// A push from `openid` to the demo account, as WeChat writes it.
fn push_xml(openid: &str, at: i64, body: Inbound) -> String {
    Message { to_user: DEMO_ACCOUNT.to_owned(), from_user: openid.to_owned(), create_time: at, body }.to_xml()
}
