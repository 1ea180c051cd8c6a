//! `Application::build(Settings)`: everything `serve` runs, and what the tests spawn on port 0.

pub mod demo;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use secrecy::ExposeSecret;
use tracing_actix_web::TracingLogger;

use crate::app::accounts::{Accounts, ClientDefaults, EnvAccount};
use crate::app::admins::Authenticator;
use crate::app::audience::index::AudienceIndex;
use crate::app::inbox::{Dispatcher, Inbox};
use crate::app::metrics::Metrics;
use crate::app::playbook::{self, PlaybookError};
use crate::app::tagging::engine::TaggingEngine;
use crate::app::tokens::PgTokenStore;
use crate::config::Settings;
use crate::jobs::{self, JobCtx};
use crate::store::{self, DatabaseError};
use crate::web::admin::{AdminState, SimulatorTarget};
use crate::web::api::ApiAuth;
use crate::web::callback::CallbackState;
use crate::web::limits::{
    BodyDeadline, ConnectionCount, MetricsListener, body_deadline as body_deadline_middleware, split_listeners,
};
use crate::web::metrics::MetricsAuth;
use crate::wechat::api::{ApiClient, ApiConfig};
use crate::wechat::crypto::{CryptoError, MsgCrypt};
use demo::Demo;
use tokio_util::sync::CancellationToken;

/// Connections of the shared pool (API, pages, background work); the callback's inbox writers
/// have their own per HTTP worker.
const POOL_SIZE: usize = 12;

/// The WeChat API client for the configured account, its token shared through PostgreSQL.
/// `None` in demo mode, where no account is configured.
pub fn api_client(settings: &Settings, pool: &deadpool_postgres::Pool) -> Option<ApiClient> {
    counted_api_client(settings, pool, crate::wechat::api::ApiMetrics::default())
}

/// [`api_client`] counting its calls in `metrics`.
fn counted_api_client(
    settings: &Settings,
    pool: &deadpool_postgres::Pool,
    metrics: crate::wechat::api::ApiMetrics,
) -> Option<ApiClient> {
    let appid = settings.wechat.appid.as_ref()?;
    let secret = settings.wechat.app_secret.clone()?;
    let mut config = ApiConfig::new(settings.wechat.api_base.clone(), appid.clone(), secret);
    config.rate_limits = settings.wechat.rate_limits.clone();
    config.retry = settings.wechat.retry.clone();
    config.timeout = settings.wechat.api_timeout;
    config.metrics = metrics;
    let stops = crate::app::quota::stops_for(pool, appid, &settings.clock);
    Some(ApiClient::with_quota_stops(config, Arc::new(PgTokenStore::new(pool.clone(), appid.clone())), stops))
}

/// The registry of accounts, the first defined by the environment (the demo's mock in demo mode).
pub async fn load_accounts(
    settings: &Settings,
    pool: &deadpool_postgres::Pool,
    metrics: crate::wechat::api::ApiMetrics,
) -> Result<Accounts, StartupError> {
    let env = EnvAccount {
        appid: settings.wechat.appid.clone(),
        app_secret: settings.wechat.app_secret.clone(),
        token: settings.wechat.token.clone(),
        encoding_aes_key: settings.wechat.encoding_aes_key.clone(),
        message_mode: settings.wechat.message_mode,
        kind: settings.wechat.account_type,
        api_base: settings.wechat.api_base.clone(),
    };
    let clients = ClientDefaults {
        rate_limits: settings.wechat.rate_limits.clone(),
        retry: settings.wechat.retry.clone(),
        timeout: settings.wechat.api_timeout,
        metrics,
        clock: settings.clock.clone(),
    };
    Ok(Accounts::load(pool.clone(), settings.secret_key.clone(), env, clients).await?)
}

/// The pause between two mass sends: the slower of the two send APIs' configured paces.
fn mass_interval(limits: &crate::wechat::api::RateLimits) -> Duration {
    let rate = ["/cgi-bin/message/mass/sendall", "/cgi-bin/message/mass/send"]
        .iter()
        .map(|path| limits.per_path.get(*path).copied().unwrap_or(limits.default_per_sec))
        .fold(f64::INFINITY, f64::min);
    Duration::from_secs_f64(1.0 / rate)
}

/// Why the server could not start; each names the variable to fix where there is one.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("TAGCAST_BIND: cannot listen on {addr}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("WECHAT_ENCODING_AES_KEY: unusable key")]
    AesKey(#[source] CryptoError),
    #[error("cannot start the demo's mock WeChat")]
    Demo(#[source] std::io::Error),
    #[error("TAGCAST_PLAYBOOK: the playbook was not applied")]
    Playbook(#[source] PlaybookError),
    #[error("the demo's sample playbook was not applied")]
    DemoPlaybook(#[source] PlaybookError),
    #[error("TAGCAST_ADMIN_PASSWORD: the start-up admin could not be created")]
    Admin(#[source] crate::app::admins::AccountError),
    #[error("cannot start the HTTP server")]
    Server(#[source] std::io::Error),
    #[error(transparent)]
    Accounts(#[from] crate::app::accounts::AccountsError),
}

/// A built, listening server and its background tasks.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    demo: Option<Arc<Demo>>,
    api: Option<ApiClient>,
    pool: deadpool_postgres::Pool,
    jobs: Option<JobCtx>,
    workers: Option<tokio::task::JoinHandle<()>>,
    cancel: CancellationToken,
}

impl Application {
    /// Prepares the database (create, migrate), starts the inbox writers and binds the listener.
    ///
    /// # Errors
    /// See [`StartupError`]; nothing is left running on error.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let engine = TaggingEngine::new(settings.quiz_expiry, settings.clock.clone());
        let dispatcher = Dispatcher::default().with(engine).with(crate::app::campaigns::MassResults);
        Self::build_with(settings, dispatcher).await
    }

    /// [`Application::build`] with the handlers pushes are dispatched to.
    ///
    /// # Errors
    /// See [`StartupError`].
    pub async fn build_with(mut settings: Settings, dispatcher: Dispatcher) -> Result<Self, StartupError> {
        store::prepare_database(&settings.database_url).await?;
        let pool = store::connect_pool(&settings.database_url, POOL_SIZE).await?;
        let metrics = Arc::new(Metrics::new());
        metrics.watch_pool("shared", pool.clone());
        // Before serving, so the first push already meets the playbook's rules.
        if settings.is_demo() {
            playbook::apply_sample_on_first_start(&pool).await.map_err(StartupError::DemoPlaybook)?;
        }
        if let Some(password) = &settings.admin_password {
            crate::app::admins::ensure_start_admin(&pool, "admin", password.expose_secret())
                .await
                .map_err(StartupError::Admin)?;
        } else if settings.is_demo() {
            crate::app::admins::ensure_start_admin(&pool, demo::DEMO_ADMIN_USER, demo::DEMO_ADMIN_PASSWORD)
                .await
                .map_err(StartupError::Admin)?;
        }
        if let Some(path) = &settings.playbook {
            let source = playbook::read(path).map_err(StartupError::Playbook)?;
            playbook::apply_at_start(&pool, &path.display().to_string(), &source)
                .await
                .map_err(StartupError::Playbook)?;
        }
        let crypt = match &settings.wechat.encoding_aes_key {
            Some(key) => Some(
                MsgCrypt::new(key.expose_secret(), settings.wechat.appid.as_deref().unwrap_or_default())
                    .map_err(StartupError::AesKey)?,
            ),
            None => None,
        };
        let listener =
            TcpListener::bind(settings.bind).map_err(|source| StartupError::Bind { addr: settings.bind, source })?;
        let port = listener.local_addr().map_err(StartupError::Server)?.port();
        let metrics_listener = match settings.metrics_bind {
            Some(addr) => Some(TcpListener::bind(addr).map_err(|source| StartupError::Bind { addr, source })?),
            None => None,
        };
        let metrics_addr = match &metrics_listener {
            Some(listener) => Some(listener.local_addr().map_err(StartupError::Server)?),
            None => None,
        };
        let demo = if settings.is_demo() {
            Some(Arc::new(demo::start(&mut settings, port).map_err(StartupError::Demo)?))
        } else {
            None
        };
        let accounts = load_accounts(&settings, &pool, metrics.wechat.clone()).await?;
        let api = accounts.first().api.clone();
        let audience_index = AudienceIndex::new(pool.clone(), settings.audience_index.clone());
        let campaign_settings = crate::app::campaigns::CampaignSettings {
            account: crate::domain::account::AccountId::FIRST,
            account_type: settings.wechat.account_type,
            monthly_tag_cap: settings.monthly_tag_cap,
            conversion_window: settings.conversion_window,
            mass_interval: mass_interval(&settings.wechat.rate_limits),
            result_wait: settings.mass_result_wait,
            clock: settings.clock.clone(),
            audience_index: Some(audience_index.clone()),
        };
        let seed_pool = pool.clone();
        let jobs = api.clone().map(|api| JobCtx {
            pool: pool.clone(),
            api,
            accounts: accounts.clone(),
            account: crate::domain::account::AccountId::FIRST,
            quiz_expiry: settings.quiz_expiry,
            clock: settings.clock.clone(),
            campaigns: campaign_settings.clone(),
            turn: jobs::ClaimTurn::default(),
        });
        let cancel = CancellationToken::new();
        accounts.spawn_refresh(cancel.clone());
        let accounts_data = web::Data::new(accounts.clone());
        let workers = match &jobs {
            Some(ctx) if settings.role.runs_workers() => Some(jobs::spawn_workers(ctx.clone(), cancel.clone())),
            _ => None,
        };
        let role = settings.role;
        if role.serves_http() {
            audience_index.spawn_maintenance(cancel.clone());
        }
        // Every role applies stored pushes: the cursor's lock lets one instance at a time do it,
        // and a deployment of web-only instances must not leave tags unapplied.
        let consumer_wake = Arc::new(tokio::sync::Notify::new());
        let consumer_pool = store::database::build_consumer_pool(&settings.database_url, 1)?;
        metrics.watch_pool("consumer", consumer_pool.clone());
        let consumer =
            crate::app::inbox::consumer::Consumer::new(consumer_pool, dispatcher.clone(), metrics.tagging_lag.clone());
        tokio::spawn(consumer.run(Arc::clone(&consumer_wake), cancel.clone()));
        let audience_index = web::Data::new(audience_index);

        let replay_window = settings.replay_window;
        let signature_retention = crate::app::inbox::signature_retention(replay_window);
        let database_url = settings.database_url.clone();
        let pool = web::Data::new(pool);
        let users = Authenticator::new(settings.password_checks, metrics.passwords.clone());
        let trusted_proxies = web::Data::new(settings.trusted_proxies.clone());
        let api_auth = web::Data::new(ApiAuth { token: settings.api_token.clone(), users: users.clone() });
        // The simulator posts to this very listener; an unspecified bind address is reached on loopback.
        let own_ip = match settings.bind.ip() {
            ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
            ip => ip,
        };
        let simulator = SimulatorTarget::new(
            format!("http://{}/wechat", std::net::SocketAddr::new(own_ip, port)),
            settings.wechat.token.clone(),
            crypt.clone(),
            // demo::start has filled in the mock's credentials by now, so ask whether it ran.
            demo.is_some(),
        );
        let admin = web::Data::new(AdminState::new(api.clone(), users, simulator));
        if role.serves_http() {
            // The segmentation dictionary loads once (~0.2 s, 32 MiB): paid here, not by the
            // first text push an intent model reads.
            std::thread::spawn(crate::domain::intent::tokenize::warm_up);
            crate::web::admin::warm_up_board(
                pool.get_ref().clone(),
                settings.clock.clone(),
                admin.get_ref().clone(),
                accounts.clone(),
            );
        }
        let session_key = crate::web::admin::session_key(settings.session_key.as_ref().map(|k| k.expose_secret()));
        let clock = web::Data::new(settings.clock.clone());
        let metrics_auth =
            web::Data::new(MetricsAuth::new(settings.metrics_token.clone(), metrics_addr.is_some(), demo.is_some()));
        let metrics_listener_data = web::Data::new(MetricsListener(metrics_addr));
        let body_deadline = web::Data::new(BodyDeadline(settings.http_limits.body_timeout));
        let connections = ConnectionCount::new(
            settings.http_limits.max_connections,
            metrics.http_connections.clone(),
            metrics.http_connection_cap_reached.clone(),
        );
        let per_worker_connections = connections.per_worker(settings.http_workers);
        let metrics_data = web::Data::new(Arc::clone(&metrics));
        let campaign_web =
            web::Data::new(crate::web::api::CampaignContext { settings: campaign_settings, api: api.clone() });
        let server = HttpServer::new(move || {
            // Each HTTP worker thread stores its own pushes, on connections of its own: a push
            // never changes threads between arriving, being committed and being answered.
            let inbox_pool = store::database::build_inbox_pool(&database_url, crate::app::inbox::WRITERS)
                .expect("the URL was checked when the shared pool connected");
            metrics.watch_pool("inbox", inbox_pool.clone());
            let callback = web::Data::new(CallbackState {
                replay_window,
                inbox: Inbox::start(inbox_pool, dispatcher.clone(), signature_retention, Arc::clone(&consumer_wake)),
                metrics: Arc::clone(&metrics),
            });
            App::new()
                .wrap(from_fn(split_listeners))
                .wrap(from_fn(body_deadline_middleware))
                .wrap(TracingLogger::<crate::web::request_span::PathOnlySpan>::new())
                .app_data(metrics_listener_data.clone())
                .app_data(body_deadline.clone())
                .app_data(callback)
                .app_data(api_auth.clone())
                .app_data(trusted_proxies.clone())
                .app_data(pool.clone())
                .app_data(accounts_data.clone())
                .app_data(clock.clone())
                .app_data(audience_index.clone())
                .app_data(campaign_web.clone())
                .app_data(admin.clone())
                .app_data(metrics_auth.clone())
                .app_data(metrics_data.clone())
                .configure(|cfg| crate::web::configure(cfg, role.serves_http(), session_key.clone()))
        })
        .workers(settings.http_workers)
        .client_request_timeout(settings.http_limits.header_timeout)
        .keep_alive(match settings.http_limits.keep_alive {
            Some(idle) => actix_web::http::KeepAlive::Timeout(idle),
            None => actix_web::http::KeepAlive::Disabled,
        })
        .max_connections(per_worker_connections)
        .on_connect(move |_, extensions| connections.on_connect(extensions))
        .shutdown_timeout(10)
        .listen(listener)
        .map_err(StartupError::Server)?;
        let server = match metrics_listener {
            Some(listener) => server.listen(listener).map_err(StartupError::Server)?,
            None => server,
        }
        .run();
        Ok(Self { port, server, demo, api, pool: seed_pool, jobs, workers, cancel })
    }

    /// The port actually bound (tests bind port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The WeChat API client (the mock's in demo mode).
    pub fn api(&self) -> Option<&ApiClient> {
        self.api.as_ref()
    }

    /// What background work needs; tests drive it with `jobs::run_pending`.
    pub fn jobs(&self) -> Option<&JobCtx> {
        self.jobs.as_ref()
    }

    /// The in-process mock WeChat of demo mode.
    pub fn demo(&self) -> Option<Arc<Demo>> {
        self.demo.clone()
    }

    /// Stops the server from outside (tests, graceful shutdown).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM, then lets in-flight pushes finish storing.
    ///
    /// # Errors
    /// The HTTP server failed.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        if let (Some(demo), Some(api)) = (self.demo, self.api) {
            let callback = format!("http://127.0.0.1:{}/wechat", self.port);
            let pool = self.pool.clone();
            tokio::spawn(async move {
                if let Err(error) = demo::seed(&demo, &pool, &api, &callback).await {
                    tracing::error!(error = %error, "seeding the demo failed");
                }
            });
        }
        let served = self.server.await;
        // Workers finish the work in hand, then stop.
        self.cancel.cancel();
        if let Some(workers) = self.workers {
            if tokio::time::timeout(Duration::from_secs(30), workers).await.is_err() {
                tracing::warn!("background workers did not stop within 30 s");
            }
        }
        served
    }
}
