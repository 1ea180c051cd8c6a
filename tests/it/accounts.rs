//! Several accounts in one deployment (issue 17): the registry, secrets at rest, the upgrade of a
//! single-account database.

use secrecy::{ExposeSecret, SecretString};
use tagcast::app::accounts::{AccountInput, SaveError};
use tagcast::domain::account::AccountId;

use crate::support::app::spawn_app;
use crate::support::db::TestDb;

#[tokio::test]
async fn a_second_accounts_secrets_are_sealed_at_rest_and_open_again_after_a_restart() {
    let mut app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    assert_ne!(shop.id, AccountId::FIRST);

    let rows = app
        .query(
            "SELECT app_secret_sealed, token_sealed, aes_key_sealed, sealed_with FROM accounts WHERE name = 'shop'",
            &[],
        )
        .await;
    let sealed: Vec<Option<Vec<u8>>> = (0..3).map(|i| rows[0].get(i)).collect();
    for (value, plain) in sealed.iter().zip([b"othersecret".as_slice(), b"othertoken", b"OtherAccountKey"]) {
        let value = value.as_ref().expect("stored");
        assert!(!value.windows(plain.len()).any(|w| w == plain), "a secret is stored in the clear");
    }
    assert!(rows[0].get::<_, Option<String>>(3).is_some(), "the key's fingerprint is kept");

    app.restart().await;
    let live = app.jobs.accounts.by_name("shop").expect("loaded after a restart");
    assert_eq!(live.appid.as_deref(), Some(shop.appid.as_str()));
    assert_eq!(live.token.as_ref().map(|t| t.expose_secret().to_owned()), Some(shop.token.clone()));
    assert!(live.api.is_some(), "AppID and AppSecret make a client");
    assert!(live.secrets_set.app_secret && live.secrets_set.token && live.secrets_set.encoding_aes_key);
}

#[tokio::test]
async fn once_secrets_are_stored_the_server_refuses_to_start_without_the_key_that_sealed_them() {
    let app = spawn_app().await;
    app.add_account("shop", false).await;

    let mut without = app.settings.clone();
    without.secret_key = None;
    without.bind = "127.0.0.1:0".parse().expect("addr");
    let error = tagcast::startup::Application::build(without).await.err().expect("refused");
    assert!(error.to_string().contains("TAGCAST_SECRET_KEY"), "{error}");

    let mut wrong = app.settings.clone();
    wrong.secret_key = Some(std::sync::Arc::new(
        tagcast::app::accounts::sealing::Sealer::new(&SecretString::from("ab".repeat(32)), None).expect("key"),
    ));
    wrong.bind = "127.0.0.1:0".parse().expect("addr");
    let error = tagcast::startup::Application::build(wrong).await.err().expect("refused");
    assert!(error.to_string().contains("TAGCAST_SECRET_KEY"), "{error}");
}

#[tokio::test]
async fn a_rotated_key_reseals_every_account_at_start_and_the_previous_key_can_then_go() {
    let mut app = spawn_app().await;
    app.add_account("shop", false).await;
    let before: String = app.query("SELECT sealed_with FROM accounts WHERE name = 'shop'", &[]).await[0].get(0);

    let new_key = SecretString::from("cd".repeat(32));
    let old_key = SecretString::from(crate::support::accounts::SECRET_KEY.to_owned());
    app.settings.secret_key = Some(std::sync::Arc::new(
        tagcast::app::accounts::sealing::Sealer::new(&new_key, Some(&old_key)).expect("keys"),
    ));
    app.restart().await;
    let after: String = app.query("SELECT sealed_with FROM accounts WHERE name = 'shop'", &[]).await[0].get(0);
    assert_ne!(before, after, "resealed under the new key");

    app.settings.secret_key =
        Some(std::sync::Arc::new(tagcast::app::accounts::sealing::Sealer::new(&new_key, None).expect("key")));
    app.restart().await;
    assert!(app.jobs.accounts.by_name("shop").expect("loaded").api.is_some());
}

#[tokio::test]
async fn account_fields_are_checked_and_explained_in_chinese() {
    let app = spawn_app().await;
    let good = AccountInput {
        name: "east".into(),
        display_name: "华东店".into(),
        kind: "subscription".into(),
        appid: Some("wxabcdefabcdef0001".into()),
        message_mode: "plain".into(),
        ..AccountInput::default()
    };
    let cases = [
        AccountInput { name: "East Shop".into(), ..good.clone() },
        AccountInput { display_name: " ".into(), ..good.clone() },
        AccountInput { kind: "mini".into(), ..good.clone() },
        AccountInput { appid: Some("12345".into()), ..good.clone() },
        AccountInput { message_mode: "safe".into(), ..good.clone() },
        AccountInput { encoding_aes_key: Some(SecretString::from("short".to_owned())), ..good.clone() },
        AccountInput { api_base: Some("ftp://x".into()), ..good.clone() },
    ];
    for input in &cases {
        match app.jobs.accounts.create(input, "test").await {
            Err(SaveError::Invalid(message)) => {
                assert!(message.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{message}")
            }
            other => panic!("accepted or refused for another reason: {:?}", other.map(|a| a.name.clone())),
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM accounts").await, 1, "nothing was created");

    app.jobs.accounts.create(&good, "test").await.expect("valid");
    assert!(matches!(app.jobs.accounts.create(&good, "test").await, Err(SaveError::NameTaken)));
    let same_appid = AccountInput { name: "west".into(), ..good.clone() };
    assert!(matches!(app.jobs.accounts.create(&same_appid, "test").await, Err(SaveError::AppidTaken)));
}

/// The previous release's statements, as it runs them against the new schema during a rolling
/// upgrade (copied from the release before accounts).
const PREVIOUS_RELEASE_WRITES: &str = "
    INSERT INTO followers (openid, subscribed, first_seen_at, last_seen_at) VALUES ('o_old', true, now(), now())
      ON CONFLICT (openid) DO UPDATE SET last_seen_at = now();
    INSERT INTO tags (path, created_by) VALUES ('旧/标签', 'old') ON CONFLICT (path) DO NOTHING;
    INSERT INTO quizzes (id, spec) VALUES ('old-quiz', '{}') ON CONFLICT (id) DO UPDATE SET spec = EXCLUDED.spec;
    INSERT INTO orders (id, openid, amount_cents, occurred_at) VALUES ('ord-old', 'o_old', 100, now())
      ON CONFLICT (id) DO NOTHING;
";

#[tokio::test]
async fn a_single_account_database_upgrades_in_place_and_the_previous_release_keeps_working_until_finish() {
    let db = TestDb::empty().await;
    let url = SecretString::from(db.url());
    tagcast::store::database::prepare_database_at(&url, 21).await.expect("the schema of the release before");
    let (client, connection) = tokio_postgres::connect(&db.url(), tokio_postgres::NoTls).await.expect("db");
    tokio::spawn(connection);
    client.batch_execute(PREVIOUS_RELEASE_WRITES).await.expect("the previous release on its own schema");
    client
        .batch_execute(
            "INSERT INTO events (dedupe_key, openid, kind, occurred_at, payload) VALUES ('m:1', 'o_old', 'text', now(), '{}');
             INSERT INTO campaigns (name, audience, message, status, created_by) VALUES ('旧群发', '{}', '{}', 'draft', 'old');",
        )
        .await
        .expect("rows of the release before");

    tagcast::store::prepare_database(&url).await.expect("upgrade");
    for table in ["followers", "tags", "quizzes", "orders", "events", "campaigns"] {
        let row = client
            .query_one(&format!("SELECT count(*), count(*) FILTER (WHERE account_id = 1) FROM {table}"), &[])
            .await
            .expect("count");
        let (all, first): (i64, i64) = (row.get(0), row.get(1));
        assert!(all > 0 && all == first, "{table}: {first} of {all} rows are the first account's");
    }
    client.batch_execute(PREVIOUS_RELEASE_WRITES).await.expect("the previous release still writes after the upgrade");
    let pool = tagcast::store::connect_pool(&url, 2).await.expect("pool");
    assert!(!tagcast::store::database::upgrade_finished(&pool.get().await.expect("conn")).await.expect("query"));

    tagcast::store::database::finish_upgrade(&url).await.expect("finish");
    assert!(tagcast::store::database::upgrade_finished(&pool.get().await.expect("conn")).await.expect("query"));
    tagcast::store::database::finish_upgrade(&url).await.expect("finishing twice changes nothing");
    // Two accounts may now hold the same openid.
    client
        .batch_execute(
            "INSERT INTO accounts (id, name, display_name) VALUES (2, 'second', '第二个');
             INSERT INTO followers (account_id, openid, subscribed, first_seen_at, last_seen_at)
               VALUES (2, 'o_old', true, now(), now());",
        )
        .await
        .expect("the same openid in another account");
    assert_eq!(
        client
            .query_one("SELECT count(*) FROM followers WHERE openid = 'o_old'", &[])
            .await
            .expect("n")
            .get::<_, i64>(0),
        2
    );
}

#[tokio::test]
async fn a_second_account_waits_for_the_upgrade_to_finish() {
    let app = spawn_app().await;
    app.query("DELETE FROM schema_steps", &[]).await;
    let input = AccountInput {
        name: "east".into(),
        display_name: "华东店".into(),
        kind: "service".into(),
        message_mode: "plain".into(),
        ..AccountInput::default()
    };
    match app.jobs.accounts.create(&input, "test").await {
        Err(error @ SaveError::UpgradeUnfinished) => assert!(error.to_string().contains("tagcast migrate --finish")),
        other => panic!("not refused: {:?}", other.map(|a| a.name.clone())),
    }
}

async fn stored_token(app: &crate::support::app::TestApp, appid: &str) -> Option<String> {
    app.query("SELECT token FROM access_tokens WHERE appid = $1", &[&appid]).await[0].get(0)
}

fn input_like(live: &tagcast::app::accounts::LiveAccount) -> AccountInput {
    AccountInput {
        name: live.name.clone(),
        display_name: live.display_name.clone(),
        kind: live.kind.as_str().to_owned(),
        appid: live.appid.clone(),
        message_mode: live.message_mode.as_str().to_owned(),
        api_base: live.api_base.clone(),
        ..AccountInput::default()
    }
}

#[tokio::test]
async fn a_callback_token_belongs_to_one_account_only() {
    let app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    let fresh = |token: &str| AccountInput {
        name: "east".into(),
        display_name: "华东店".into(),
        kind: "service".into(),
        token: Some(SecretString::from(token.to_owned())),
        message_mode: "plain".into(),
        ..AccountInput::default()
    };
    for taken in [shop.token.as_str(), crate::support::app::TOKEN] {
        match app.jobs.accounts.create(&fresh(taken), "test").await {
            Err(error @ SaveError::TokenTaken) => assert!(error.to_string().contains("Token"), "{error}"),
            other => panic!("a shared token was accepted: {:?}", other.map(|a| a.name.clone())),
        }
    }
    app.jobs.accounts.create(&fresh("a-token-of-its-own"), "test").await.expect("its own token");
    let east = app.jobs.accounts.by_name("east").expect("created");
    let reuse = AccountInput { token: Some(SecretString::from(shop.token.clone())), ..input_like(&east) };
    assert!(matches!(app.jobs.accounts.update(east.id, &reuse, "test").await, Err(SaveError::TokenTaken)));
}

#[tokio::test]
async fn moving_an_account_to_another_api_base_needs_its_appsecret_again_and_drops_its_token() {
    let mut app = spawn_app().await;
    let shop = app.add_account("shop", false).await;
    let live = app.jobs.accounts.get(shop.id).expect("loaded");
    live.api.as_ref().expect("client").access_token().await.expect("a token from shop's mock");
    assert!(stored_token(&app, &shop.appid).await.is_some());

    let elsewhere = AccountInput { api_base: Some("https://api.example.com".into()), ..input_like(&live) };
    match app.jobs.accounts.update(shop.id, &elsewhere, "test").await {
        Err(SaveError::Invalid(message)) => assert!(message.contains("AppSecret"), "{message}"),
        other => panic!("moved without the secret: {:?}", other.map(|a| a.name.clone())),
    }
    let plain_http = AccountInput { api_base: Some("http://api.example.com".into()), ..input_like(&live) };
    assert!(matches!(app.jobs.accounts.update(shop.id, &plain_http, "test").await, Err(SaveError::Invalid(_))));
    assert!(stored_token(&app, &shop.appid).await.is_some(), "a refused change changes nothing");

    let with_secret =
        AccountInput { app_secret: Some(SecretString::from("othersecret-new".to_owned())), ..elsewhere.clone() };
    app.jobs.accounts.update(shop.id, &with_secret, "test").await.expect("moved with its secret typed again");
    assert_eq!(stored_token(&app, &shop.appid).await, None, "the old access token must not travel to the new address");

    // Changing one secret keeps the others: after a restart every one of them still opens.
    let token_only = AccountInput {
        token: Some(SecretString::from("shop-new-token".to_owned())),
        ..input_like(&app.jobs.accounts.get(shop.id).expect("loaded"))
    };
    app.jobs.accounts.update(shop.id, &token_only, "test").await.expect("token changed");
    app.restart().await;
    let live = app.jobs.accounts.get(shop.id).expect("loaded after restart");
    assert!(live.secrets_set.app_secret && live.secrets_set.encoding_aes_key);
    assert_eq!(live.token.as_ref().map(|t| t.expose_secret().to_owned()), Some("shop-new-token".to_owned()));
}
