//! A second (third, ...) Official Account in a test's deployment: its own mock WeChat, AppID,
//! token and key, created through the app's account registry, its pushes signed for its own URL.
// Some helpers are for the account tests still to land (callback per account, API header).
#![allow(dead_code)]

use actix_web::dev::ServerHandle;
use secrecy::SecretString;
use tagcast::app::accounts::AccountInput;
use tagcast::domain::account::AccountId;
use tagcast::mock_wechat::{CallbackTarget, MockAccountType, MockConfig, MockWeChat};
use tagcast::wechat::crypto::MsgCrypt;
use tagcast::wechat::signature;

use super::app::{TestApp, fresh_nonce, now};

/// The deployment key every test app starts with (`TAGCAST_SECRET_KEY`).
pub const SECRET_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// An account other than the first, as the tests drive it.
pub struct OtherAccount {
    pub id: AccountId,
    pub name: String,
    pub appid: String,
    pub token: String,
    pub crypt: MsgCrypt,
    /// Its own mock WeChat, which pushes to `/wechat/{name}`.
    pub wechat: MockWeChat,
    mock_server: ServerHandle,
}

impl Drop for OtherAccount {
    fn drop(&mut self) {
        drop(self.mock_server.stop(false));
    }
}

/// The `n`th test account's credentials: distinct from the first account's and from each other.
fn credentials(n: u32) -> (String, String, String, String) {
    let appid = format!("wxtestother{n:07}");
    let secret = format!("othersecret{n}");
    let token = format!("othertoken{n}");
    // 43 characters of the key alphabet.
    let aes_key = format!("{}{n:03}", "OtherAccountKeyOtherAccountKeyOtherAccou");
    (appid, secret, token, aes_key)
}

impl TestApp {
    /// Creates account `name` (a 服务号, or a 订阅号 when `subscription`) with its own mock WeChat,
    /// in plain message mode. Panics if the app refuses it.
    pub async fn add_account(&self, name: &str, subscription: bool) -> OtherAccount {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (appid, secret, token, aes_key) = credentials(n);
        let wechat = MockWeChat::new(MockConfig {
            appid: appid.clone(),
            secret: secret.clone(),
            account_type: if subscription { MockAccountType::Subscription } else { MockAccountType::Service },
            callback: None,
        });
        let mock = wechat.start(std::net::TcpListener::bind("127.0.0.1:0").expect("mock port")).expect("mock starts");
        let input = AccountInput {
            name: name.to_owned(),
            display_name: format!("测试公众号 {name}"),
            kind: if subscription { "subscription" } else { "service" }.to_owned(),
            appid: Some(appid.clone()),
            app_secret: Some(SecretString::from(secret)),
            token: Some(SecretString::from(token.clone())),
            encoding_aes_key: Some(SecretString::from(aes_key.clone())),
            message_mode: "plain".to_owned(),
            api_base: Some(mock.url()),
        };
        let live = self.jobs.accounts.create(&input, "test").await.unwrap_or_else(|e| panic!("account {name}: {e}"));
        wechat.set_callback(Some(CallbackTarget {
            url: format!("{}/wechat/{name}", self.address),
            token: token.clone(),
            encoding_aes_key: Some(aes_key.clone()),
            account_id: format!("gh_{name}"),
        }));
        OtherAccount {
            id: live.id,
            name: name.to_owned(),
            appid: appid.clone(),
            token,
            crypt: MsgCrypt::new(&aes_key, &appid).expect("test key"),
            wechat,
            mock_server: mock.handle,
        }
    }

    /// A plaintext push signed with `account`'s token, to `path` (`/wechat/{name}` normally; the
    /// tests of refusals point it elsewhere).
    pub async fn push_signed_for(&self, account: &OtherAccount, path: &str, xml: &str) -> reqwest::Response {
        let ts = now().to_string();
        let nonce = fresh_nonce();
        let sig = signature::sign(&[&account.token, &ts, &nonce]);
        self.http
            .post(format!("{}{path}?signature={sig}&timestamp={ts}&nonce={nonce}&openid=o_any", self.address))
            .header("content-type", "text/xml")
            .body(xml.to_owned())
            .send()
            .await
            .expect("request sent")
    }

    /// A plaintext push to `account`'s own callback URL.
    pub async fn push_to(&self, account: &OtherAccount, xml: &str) -> reqwest::Response {
        self.push_signed_for(account, &format!("/wechat/{}", account.name), xml).await
    }

    /// A JSON API call with the bearer token on account `name` (the `Tagcast-Account` header).
    pub async fn api_call_on(
        &self,
        name: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.address))
            .bearer_auth(super::app::API_TOKEN)
            .header("Tagcast-Account", name);
        super::app::send_json(request, body).await
    }
}
