//! `accounts`: the Official Accounts one deployment serves, each with its own credentials, callback
//! URL, WeChat client and data. The first account is defined by the environment variables (as
//! before accounts existed, so today's installs and demo mode need no change); the others are
//! created by an admin, their secrets sealed at rest ([`sealing`]).
//!
//! [`Accounts`] is the in-memory registry every request and job reads: built at start, reloaded
//! when `accounts` changes (this instance at once, the others within [`REFRESH_EVERY`]).

pub mod sealing;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::app::tokens::PgTokenStore;
use crate::domain::account::{AccountId, AccountType, valid_account_name};
use crate::store;
use crate::store::accounts::{AccountFields, AccountRow, AccountWriteError, SealedSecrets};
use crate::wechat::api::{ApiClient, ApiConfig, ApiMetrics, RateLimits, RetryPolicy};
use crate::wechat::crypto::MsgCrypt;
use crate::wechat::mode::MessageMode;
use sealing::{Sealer, SealingError, SecretField};

/// How soon an instance sees an account another instance created or changed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// WeChat's API when an account names none.
pub const DEFAULT_API_BASE: &str = "https://api.weixin.qq.com";

/// One account as requests and jobs use it.
pub struct LiveAccount {
    pub id: AccountId,
    pub name: String,
    pub display_name: String,
    pub kind: AccountType,
    pub appid: Option<String>,
    pub message_mode: MessageMode,
    pub api_base: Option<String>,
    /// Signs its callbacks; `None` until set (its callback URL then refuses every push).
    pub token: Option<SecretString>,
    pub crypt: Option<MsgCrypt>,
    /// `None` until AppID and AppSecret are set.
    pub api: Option<ApiClient>,
    /// Which secrets are set, for the console (never the values).
    pub secrets_set: SecretsSet,
    /// Whether the environment variables define it (the first account).
    pub from_env: bool,
    updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for LiveAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveAccount").field("id", &self.id).field("name", &self.name).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SecretsSet {
    pub app_secret: bool,
    pub token: bool,
    pub encoding_aes_key: bool,
}

/// What the environment variables say of the first account.
#[derive(Clone)]
pub struct EnvAccount {
    pub appid: Option<String>,
    pub app_secret: Option<SecretString>,
    pub token: SecretString,
    pub encoding_aes_key: Option<SecretString>,
    pub message_mode: MessageMode,
    pub kind: AccountType,
    pub api_base: Url,
}

/// How every account's WeChat client is built.
#[derive(Clone)]
pub struct ClientDefaults {
    pub rate_limits: RateLimits,
    pub retry: RetryPolicy,
    /// Per request.
    pub timeout: std::time::Duration,
    pub metrics: ApiMetrics,
    /// The application's clock: when a 45009's stop ends (Beijing midnight) is read on it.
    pub clock: crate::domain::clock::Clock,
}

/// The client's own defaults on the system clock (tools and examples).
impl Default for ClientDefaults {
    fn default() -> Self {
        Self {
            rate_limits: RateLimits::default(),
            retry: RetryPolicy::default(),
            timeout: crate::wechat::api::DEFAULT_TIMEOUT,
            metrics: ApiMetrics::default(),
            clock: crate::domain::clock::Clock::system(),
        }
    }
}

/// Why the registry could not load or an account could not be saved.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(
        "TAGCAST_SECRET_KEY: accounts have secrets stored in the database; set the deployment key that sealed them"
    )]
    KeyMissing,
    #[error("TAGCAST_SECRET_KEY: account `{account}`")]
    Sealing {
        account: String,
        #[source]
        source: SealingError,
    },
    #[error("database query failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("cannot connect to PostgreSQL")]
    Pool(#[from] deadpool_postgres::PoolError),
}

struct Snapshot {
    stamp: (i64, Option<DateTime<Utc>>),
    accounts: Vec<Arc<LiveAccount>>,
}

struct Inner {
    pool: Pool,
    sealer: Option<Arc<Sealer>>,
    env: EnvAccount,
    clients: ClientDefaults,
    snapshot: RwLock<Arc<Snapshot>>,
}

/// The registry; cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").field("count", &self.all().len()).finish()
    }
}

impl Accounts {
    /// Writes the environment's view of the first account, reseals secrets a previous key sealed,
    /// and loads every account.
    ///
    /// # Errors
    /// Sealed secrets without `TAGCAST_SECRET_KEY`, or with a key that does not open them.
    pub async fn load(
        pool: Pool,
        sealer: Option<Arc<Sealer>>,
        env: EnvAccount,
        clients: ClientDefaults,
    ) -> Result<Self, AccountsError> {
        let client = pool.get().await?;
        let api_base = env_api_base(&env);
        store::accounts::sync_first_account_from_env(
            &client,
            env.kind.as_str(),
            env.appid.as_deref(),
            env.message_mode.as_str(),
            api_base.as_deref(),
        )
        .await?;
        if sealer.is_none() && store::accounts::any_sealed_secrets(&client).await? {
            return Err(AccountsError::KeyMissing);
        }
        if let Some(sealer) = &sealer {
            reseal_rotated(&client, sealer).await?;
        }
        drop(client);
        let accounts = Self {
            inner: Arc::new(Inner {
                pool,
                sealer,
                env,
                clients,
                snapshot: RwLock::new(Arc::new(Snapshot { stamp: (0, None), accounts: Vec::new() })),
            }),
        };
        accounts.refresh().await?;
        Ok(accounts)
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.inner.snapshot.read().expect("accounts registry lock"))
    }

    /// Every account, the first one first.
    pub fn all(&self) -> Vec<Arc<LiveAccount>> {
        self.snapshot().accounts.clone()
    }

    pub fn get(&self, id: AccountId) -> Option<Arc<LiveAccount>> {
        self.snapshot().accounts.iter().find(|a| a.id == id).cloned()
    }

    pub fn by_name(&self, name: &str) -> Option<Arc<LiveAccount>> {
        self.snapshot().accounts.iter().find(|a| a.name == name).cloned()
    }

    /// The deployment's first account (always present: V22 creates it).
    pub fn first(&self) -> Arc<LiveAccount> {
        self.get(AccountId::FIRST).expect("the first account always exists")
    }

    /// Whether secrets can be stored (a deployment key is set).
    pub fn can_store_secrets(&self) -> bool {
        self.inner.sealer.is_some()
    }

    /// Reloads when `accounts` changed since the last load; keeps the clients (and their token
    /// caches and rate limiters) of accounts that did not change.
    ///
    /// # Errors
    /// The database failed, or a secret does not open.
    pub async fn refresh(&self) -> Result<bool, AccountsError> {
        let client = self.inner.pool.get().await?;
        let stamp = store::accounts::accounts_stamp(&client).await?;
        let old = self.snapshot();
        if stamp == old.stamp && !old.accounts.is_empty() {
            return Ok(false);
        }
        let rows = store::accounts::list_accounts(&client).await?;
        drop(client);
        let mut accounts = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.id;
            let kept = old.accounts.iter().find(|a| a.id.get() == id && a.updated_at == row.updated_at);
            match kept {
                Some(live) => accounts.push(Arc::clone(live)),
                None => match self.build(row) {
                    Ok(live) => accounts.push(Arc::new(live)),
                    // At start every account must open (a wrong key is a misconfiguration); once
                    // running, one row that does not open keeps its previous state, if any, and
                    // never takes the other accounts down.
                    Err(error) if !old.accounts.is_empty() => {
                        tracing::error!(error = %chain(&error), "an account could not be reloaded");
                        if let Some(previous) = old.accounts.iter().find(|a| a.id.get() == id) {
                            accounts.push(Arc::clone(previous));
                        }
                    }
                    Err(error) => return Err(error),
                },
            }
        }
        *self.inner.snapshot.write().expect("accounts registry lock") = Arc::new(Snapshot { stamp, accounts });
        Ok(true)
    }

    /// Polls for other instances' changes until `cancel`.
    pub fn spawn_refresh(&self, cancel: CancellationToken) {
        let accounts = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(REFRESH_EVERY) => {}
                }
                if let Err(error) = accounts.refresh().await {
                    tracing::warn!(error = %crate::app::accounts::chain(&error), "reloading accounts failed");
                }
            }
        });
    }

    fn open(
        &self,
        row: &AccountRow,
        field: SecretField,
        sealed: Option<&Vec<u8>>,
    ) -> Result<Option<SecretString>, AccountsError> {
        let Some(sealed) = sealed else { return Ok(None) };
        let sealer = self.inner.sealer.as_ref().ok_or(AccountsError::KeyMissing)?;
        let with = row.sealed_with.as_deref().unwrap_or_default();
        sealer
            .open(AccountId(row.id), field, sealed, with)
            .map(Some)
            .map_err(|source| AccountsError::Sealing { account: row.name.clone(), source })
    }

    fn build(&self, row: AccountRow) -> Result<LiveAccount, AccountsError> {
        let id = AccountId(row.id);
        let from_env = id == AccountId::FIRST;
        let env = &self.inner.env;
        let (appid, app_secret, token, aes_key) = if from_env {
            (env.appid.clone(), env.app_secret.clone(), Some(env.token.clone()), env.encoding_aes_key.clone())
        } else {
            (
                row.appid.clone(),
                self.open(&row, SecretField::AppSecret, row.app_secret_sealed.as_ref())?,
                self.open(&row, SecretField::Token, row.token_sealed.as_ref())?,
                self.open(&row, SecretField::AesKey, row.aes_key_sealed.as_ref())?,
            )
        };
        let message_mode =
            if from_env { env.message_mode } else { row.message_mode.parse().unwrap_or(MessageMode::Plain) };
        let kind = if from_env { env.kind } else { row.kind.parse().unwrap_or(AccountType::Service) };
        let base = if from_env {
            Some(env.api_base.clone())
        } else {
            Url::parse(row.api_base.as_deref().unwrap_or(DEFAULT_API_BASE)).ok()
        };
        // A key that does not parse was refused when it was saved (and at start for the env's).
        let crypt = aes_key
            .as_ref()
            .and_then(|key| MsgCrypt::new(key.expose_secret(), appid.as_deref().unwrap_or_default()).ok());
        let api = match (&appid, &app_secret, base) {
            (Some(appid), Some(secret), Some(base)) => {
                let mut config = ApiConfig::new(base, appid.clone(), secret.clone());
                config.rate_limits = self.inner.clients.rate_limits.clone();
                config.retry = self.inner.clients.retry.clone();
                config.timeout = self.inner.clients.timeout;
                config.metrics = self.inner.clients.metrics.clone();
                let tokens = Arc::new(PgTokenStore::new(self.inner.pool.clone(), appid.clone()));
                let stops = crate::app::quota::stops_for(&self.inner.pool, appid, &self.inner.clients.clock);
                Some(ApiClient::with_quota_stops(config, tokens, stops))
            }
            _ => None,
        };
        Ok(LiveAccount {
            id,
            name: row.name,
            display_name: row.display_name,
            kind,
            appid,
            message_mode,
            api_base: row.api_base,
            secrets_set: SecretsSet {
                app_secret: app_secret.is_some(),
                token: token.is_some(),
                encoding_aes_key: aes_key.is_some(),
            },
            token,
            crypt,
            api,
            from_env,
            updated_at: row.updated_at,
        })
    }

    /// Creates an account (a deployment admin's act).
    ///
    /// # Errors
    /// See [`SaveError`].
    pub async fn create(&self, input: &AccountInput, by: &str) -> Result<Arc<LiveAccount>, SaveError> {
        input.check(None)?;
        let mut client = self.inner.pool.get().await.map_err(AccountsError::from)?;
        if !store::database::upgrade_finished(&client).await.map_err(AccountsError::from)? {
            return Err(SaveError::UpgradeUnfinished);
        }
        if input.has_secrets() && self.inner.sealer.is_none() {
            return Err(SaveError::NoDeploymentKey);
        }
        self.check_token_free(None, input)?;
        let fields = input.fields();
        // The seal covers the id, known only after the insert: insert, then seal, in one transaction.
        let transaction = client.transaction().await.map_err(AccountsError::from)?;
        let row = store::accounts::insert_account(&transaction, &fields, &SealedSecrets::default(), by)
            .await
            .map_err(SaveError::from)?;
        let secrets = self.seal(AccountId(row.id), input);
        if secrets.sealed_with.is_some() {
            store::accounts::update_account(&transaction, row.id, &fields, &secrets).await.map_err(SaveError::from)?;
        }
        // Deployment-wide: the account itself is what changed, not something inside it.
        store::audit::record(&transaction, None, by, "create", "account", &row.name, &input.audit_detail())
            .await
            .map_err(AccountsError::from)?;
        transaction.commit().await.map_err(AccountsError::from)?;
        drop(client);
        self.refresh().await?;
        self.get(AccountId(row.id)).ok_or(SaveError::Missing)
    }

    /// Changes an account; secrets left empty keep their stored values. The first account's
    /// credentials come from the environment and cannot be changed here.
    ///
    /// # Errors
    /// See [`SaveError`].
    pub async fn update(&self, id: AccountId, input: &AccountInput, by: &str) -> Result<Arc<LiveAccount>, SaveError> {
        let current = self.get(id).ok_or(SaveError::Missing)?;
        input.check(Some(&current))?;
        if input.has_secrets() && self.inner.sealer.is_none() {
            return Err(SaveError::NoDeploymentKey);
        }
        let mut client = self.inner.pool.get().await.map_err(AccountsError::from)?;
        let mut fields = input.fields();
        if current.from_env {
            // Only the names are the console's; the environment defines the rest at every start.
            fields.kind = current.kind.as_str();
            fields.appid = current.appid.as_deref();
            fields.message_mode = current.message_mode.as_str();
            fields.api_base = current.api_base.as_deref();
        }
        self.check_token_free(Some(id), input)?;
        let base_changed = !current.from_env && fields.api_base != current.api_base.as_deref();
        if base_changed && current.secrets_set.app_secret && !is_set(&input.app_secret) {
            return Err(SaveError::Invalid(
                "更改接口地址时请重新填写 AppSecret：已保存的密钥不会被发往新的地址".to_owned(),
            ));
        }
        let transaction = client.transaction().await.map_err(AccountsError::from)?;
        let secrets =
            if current.from_env { SealedSecrets::default() } else { self.reseal_with(&transaction, id, input).await? };
        if base_changed {
            if let Some(appid) = &current.appid {
                store::tokens::forget_token(&transaction, appid).await.map_err(AccountsError::from)?;
            }
        }
        store::accounts::update_account(&transaction, id.get(), &fields, &secrets)
            .await
            .map_err(SaveError::from)?
            .ok_or(SaveError::Missing)?;
        store::audit::record(&transaction, None, by, "update", "account", &current.name, &input.audit_detail())
            .await
            .map_err(AccountsError::from)?;
        transaction.commit().await.map_err(AccountsError::from)?;
        drop(client);
        self.refresh().await?;
        self.get(id).ok_or(SaveError::Missing)
    }

    /// Every secret of the row under the current key: the new ones given, the stored ones opened
    /// and sealed again. One key per row, so a row is never half sealed by a key another instance
    /// lacks; an instance that cannot open the stored ones refuses the change.
    async fn reseal_with(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        id: AccountId,
        input: &AccountInput,
    ) -> Result<SealedSecrets, SaveError> {
        if !input.has_secrets() {
            return Ok(SealedSecrets::default());
        }
        let sealer = self.inner.sealer.as_ref().ok_or(SaveError::NoDeploymentKey)?;
        let row = store::accounts::find_account(client, id.get())
            .await
            .map_err(AccountsError::from)?
            .ok_or(SaveError::Missing)?;
        let pick =
            |field, given: &Option<SecretString>, stored: Option<&Vec<u8>>| -> Result<Option<Vec<u8>>, SaveError> {
                if let Some(value) = given.as_ref().filter(|v| !v.expose_secret().is_empty()) {
                    return Ok(Some(sealer.seal(id, field, value.expose_secret())));
                }
                match self.open(&row, field, stored)? {
                    Some(plain) => Ok(Some(sealer.seal(id, field, plain.expose_secret()))),
                    None => Ok(None),
                }
            };
        Ok(SealedSecrets {
            app_secret: pick(SecretField::AppSecret, &input.app_secret, row.app_secret_sealed.as_ref())?,
            token: pick(SecretField::Token, &input.token, row.token_sealed.as_ref())?,
            aes_key: pick(SecretField::AesKey, &input.encoding_aes_key, row.aes_key_sealed.as_ref())?,
            sealed_with: Some(sealer.fingerprint().to_owned()),
        })
    }

    /// A callback token names its account: two accounts with one token would accept each other's
    /// plaintext-mode pushes, which carry no other proof of where they were meant to go.
    fn check_token_free(&self, id: Option<AccountId>, input: &AccountInput) -> Result<(), SaveError> {
        let Some(token) = input.token.as_ref().filter(|t| !t.expose_secret().is_empty()) else { return Ok(()) };
        let taken = self.all().iter().any(|other| {
            Some(other.id) != id && other.token.as_ref().is_some_and(|t| t.expose_secret() == token.expose_secret())
        });
        if taken { Err(SaveError::TokenTaken) } else { Ok(()) }
    }

    fn seal(&self, id: AccountId, input: &AccountInput) -> SealedSecrets {
        let Some(sealer) = &self.inner.sealer else { return SealedSecrets::default() };
        let seal = |field, value: &Option<SecretString>| {
            value.as_ref().filter(|v| !v.expose_secret().is_empty()).map(|v| sealer.seal(id, field, v.expose_secret()))
        };
        let secrets = SealedSecrets {
            app_secret: seal(SecretField::AppSecret, &input.app_secret),
            token: seal(SecretField::Token, &input.token),
            aes_key: seal(SecretField::AesKey, &input.encoding_aes_key),
            sealed_with: None,
        };
        let any = secrets.app_secret.is_some() || secrets.token.is_some() || secrets.aes_key.is_some();
        SealedSecrets { sealed_with: any.then(|| sealer.fingerprint().to_owned()), ..secrets }
    }
}

fn is_set(secret: &Option<SecretString>) -> bool {
    secret.as_ref().is_some_and(|v| !v.expose_secret().is_empty())
}

fn env_api_base(env: &EnvAccount) -> Option<String> {
    let base = env.api_base.as_str().trim_end_matches('/');
    (base != DEFAULT_API_BASE).then(|| base.to_owned())
}

/// Reseals every row a previous key sealed, so the previous key can be dropped after one start.
async fn reseal_rotated(client: &impl deadpool_postgres::GenericClient, sealer: &Sealer) -> Result<(), AccountsError> {
    for row in store::accounts::list_accounts(client).await? {
        let Some(with) = row.sealed_with.as_deref() else { continue };
        if with == sealer.fingerprint() {
            continue;
        }
        let id = AccountId(row.id);
        let reseal = |field, sealed: &Option<Vec<u8>>| -> Result<Option<Vec<u8>>, AccountsError> {
            match sealed {
                Some(bytes) => {
                    let plain = sealer
                        .open(id, field, bytes, with)
                        .map_err(|source| AccountsError::Sealing { account: row.name.clone(), source })?;
                    Ok(Some(sealer.seal(id, field, plain.expose_secret())))
                }
                None => Ok(None),
            }
        };
        let secrets = SealedSecrets {
            app_secret: reseal(SecretField::AppSecret, &row.app_secret_sealed)?,
            token: reseal(SecretField::Token, &row.token_sealed)?,
            aes_key: reseal(SecretField::AesKey, &row.aes_key_sealed)?,
            sealed_with: Some(sealer.fingerprint().to_owned()),
        };
        store::accounts::reseal_account(client, row.id, &secrets).await?;
        tracing::info!(account = %row.name, "resealed account secrets under the current TAGCAST_SECRET_KEY");
    }
    Ok(())
}

/// What an admin submits for an account (API and console).
#[derive(Clone, Default)]
pub struct AccountInput {
    pub name: String,
    pub display_name: String,
    pub kind: String,
    pub appid: Option<String>,
    pub app_secret: Option<SecretString>,
    pub token: Option<SecretString>,
    pub encoding_aes_key: Option<SecretString>,
    pub message_mode: String,
    pub api_base: Option<String>,
}

impl AccountInput {
    /// What the audit log keeps of a save: the fields, and which secrets were replaced (never their values).
    fn audit_detail(&self) -> serde_json::Value {
        let given = |s: &Option<SecretString>| s.as_ref().is_some_and(|v| !v.expose_secret().is_empty());
        serde_json::json!({
            "display_name": self.display_name.trim(),
            "kind": self.kind,
            "appid": self.appid,
            "message_mode": self.message_mode,
            "api_base": self.api_base,
            "replaced_secrets": {
                "app_secret": given(&self.app_secret),
                "token": given(&self.token),
                "encoding_aes_key": given(&self.encoding_aes_key),
            },
        })
    }

    fn has_secrets(&self) -> bool {
        [&self.app_secret, &self.token, &self.encoding_aes_key]
            .iter()
            .any(|s| s.as_ref().is_some_and(|v| !v.expose_secret().is_empty()))
    }

    fn fields(&self) -> AccountFields<'_> {
        AccountFields {
            name: &self.name,
            display_name: self.display_name.trim(),
            kind: &self.kind,
            appid: self.appid.as_deref().map(str::trim).filter(|a| !a.is_empty()),
            message_mode: &self.message_mode,
            api_base: self.api_base.as_deref().map(str::trim).filter(|a| !a.is_empty()),
        }
    }

    /// Each field as WeChat and the URL need it; the first problem, in Chinese, for the operator.
    fn check(&self, current: Option<&LiveAccount>) -> Result<(), SaveError> {
        let invalid = |message: &str| Err(SaveError::Invalid(message.to_owned()));
        if !valid_account_name(&self.name) {
            return invalid("标识只能由小写字母、数字、- 和 _ 组成（1–32 个字符，以字母或数字开头），例如 shop-east");
        }
        let display = self.display_name.trim();
        if display.is_empty() || display.chars().count() > 40 {
            return invalid("请填写公众号名称（1–40 个字）");
        }
        if self.kind.parse::<AccountType>().is_err() {
            return invalid("类型只能是 service（服务号）或 subscription（订阅号）");
        }
        let mode: MessageMode = match self.message_mode.parse() {
            Ok(mode) => mode,
            Err(_) => return invalid("消息加解密方式只能是 plain（明文）、compat（兼容）或 safe（安全）"),
        };
        // The first account's AppID is the environment's, checked at start.
        let from_env = current.is_some_and(|c| c.from_env);
        if let Some(appid) = self.appid.as_deref().map(str::trim).filter(|a| !a.is_empty() && !from_env) {
            if !appid.starts_with("wx") || appid.len() != 18 || !appid.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return invalid("AppID 应为 wx 开头的 18 位字母数字（在公众平台 设置与开发 → 基本配置 中查看）");
            }
        }
        if let Some(key) = self.encoding_aes_key.as_ref().filter(|k| !k.expose_secret().is_empty()) {
            if MsgCrypt::new(key.expose_secret(), "").is_err() {
                return invalid("EncodingAESKey 应为 43 位字母数字（在公众平台 基本配置 → 服务器配置 中查看）");
            }
        }
        let has_key = self.encoding_aes_key.as_ref().is_some_and(|k| !k.expose_secret().is_empty())
            || current.is_some_and(|c| c.secrets_set.encoding_aes_key);
        if mode.requires_encryption() && !has_key && !current.is_some_and(|c| c.from_env) {
            return invalid("兼容模式和安全模式需要 EncodingAESKey，请一并填写");
        }
        if let Some(base) = self.api_base.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            match Url::parse(base) {
                // Plain http only to this machine (a test double or a local proxy): the AppSecret
                // and access tokens travel on it.
                Ok(url)
                    if url.scheme() == "https"
                        || (url.scheme() == "http"
                            && matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))) => {}
                _ => {
                    return invalid(
                        "接口地址应为 https:// 开头的网址（http:// 只允许本机地址），留空即使用微信官方接口",
                    );
                }
            }
        }
        Ok(())
    }
}

/// Why an account was not saved; the messages are for the operator, in Chinese.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("{0}")]
    Invalid(String),
    #[error("已有同名标识的公众号，请换一个标识")]
    NameTaken,
    #[error("这个 AppID 已属于本系统中的另一个公众号")]
    AppidTaken,
    #[error(
        "未设置部署密钥 TAGCAST_SECRET_KEY，无法保存 AppSecret、Token 或 EncodingAESKey；请先在服务器上设置（见 docs/deploy.md）"
    )]
    NoDeploymentKey,
    #[error("数据库升级尚未完成：所有实例升级到本版本后，请运行 `tagcast migrate --finish`，再添加公众号")]
    UpgradeUnfinished,
    #[error("这个 Token 已被本系统中的另一个公众号使用；每个公众号请设置各自不同的 Token")]
    TokenTaken,
    #[error("没有这个公众号")]
    Missing,
    #[error(transparent)]
    Failed(#[from] AccountsError),
}

impl From<AccountWriteError> for SaveError {
    fn from(error: AccountWriteError) -> Self {
        match error {
            AccountWriteError::NameTaken => Self::NameTaken,
            AccountWriteError::AppidTaken => Self::AppidTaken,
            AccountWriteError::Query(error) => Self::Failed(AccountsError::Query(error)),
        }
    }
}

/// An error with its causes on one line, for logs.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Why `--account` names could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum NamedError {
    #[error("--account {name}: no such account (the accounts are: {known})")]
    Unknown { name: String, known: String },
    #[error("reading the accounts failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("cannot connect to PostgreSQL")]
    Pool(#[from] deadpool_postgres::PoolError),
}

/// The accounts the command line names (`--account`, repeatable, or `--all-accounts`), read from
/// the database without opening any secret; the first account when none is named.
///
/// # Errors
/// A name no account has, or the database failed.
pub async fn named(pool: &Pool, names: &[String], all: bool) -> Result<Vec<(AccountId, String)>, NamedError> {
    let rows = store::accounts::list_accounts(&pool.get().await?).await?;
    if all {
        return Ok(rows.into_iter().map(|r| (AccountId(r.id), r.name)).collect());
    }
    if names.is_empty() {
        let first = rows.iter().find(|r| r.id == AccountId::FIRST.get());
        return Ok(vec![(AccountId::FIRST, first.map_or_else(|| "main".to_owned(), |r| r.name.clone()))]);
    }
    let mut out: Vec<(AccountId, String)> = Vec::new();
    for name in names {
        let row = rows.iter().find(|r| &r.name == name).ok_or_else(|| NamedError::Unknown {
            name: name.clone(),
            known: rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(", "),
        })?;
        if !out.iter().any(|(id, _)| id.get() == row.id) {
            out.push((AccountId(row.id), row.name.clone()));
        }
    }
    Ok(out)
}
