//! Creating the database when it is missing, running the embedded migrations, and building the pool.

use std::str::FromStr;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Any instance may run migrations at start; this advisory lock lets only one do it at a time.
const MIGRATION_LOCK_KEY: i64 = 0x7461_6763_6173_7401;

/// Why the database could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("DATABASE_URL: not a PostgreSQL URL")]
    BadUrl(#[source] tokio_postgres::Error),
    #[error("DATABASE_URL: cannot connect to PostgreSQL")]
    Connect(#[source] tokio_postgres::Error),
    #[error("DATABASE_URL: cannot create database `{0}`")]
    Create(String, #[source] tokio_postgres::Error),
    #[error("database migration failed")]
    Migrate(#[from] refinery::Error),
    #[error("database query failed")]
    Query(#[from] tokio_postgres::Error),
    #[error("DATABASE_URL: cannot build the connection pool")]
    Pool(#[from] deadpool_postgres::BuildError),
    #[error("DATABASE_URL: cannot connect to PostgreSQL")]
    PoolGet(#[from] deadpool_postgres::PoolError),
}

fn parse(url: &SecretString) -> Result<tokio_postgres::Config, DatabaseError> {
    tokio_postgres::Config::from_str(url.expose_secret()).map_err(DatabaseError::BadUrl)
}

async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "migration connection closed");
        }
    });
    Ok(client)
}

/// Creates the database named in the URL if it does not exist, then applies pending migrations.
///
/// # Errors
/// The server is unreachable, the database cannot be created, or a migration fails.
#[tracing::instrument(skip_all)]
pub async fn prepare_database(url: &SecretString) -> Result<(), DatabaseError> {
    let config = parse(url)?;
    let mut client = match connect(&config).await {
        Ok(client) => client,
        Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME) => {
            create_database(&config).await?;
            connect(&config).await.map_err(DatabaseError::Connect)?
        }
        Err(error) => return Err(DatabaseError::Connect(error)),
    };
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    let outcome = migrate_locked(&mut client, None).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    outcome
}

/// Applies the migrations up to `target` (all when `None`); a database created by this very run
/// has no instance of an older release to wait for, so its contract steps are finished too.
async fn migrate_locked(client: &mut tokio_postgres::Client, target: Option<u32>) -> Result<(), DatabaseError> {
    let mut runner = embedded::migrations::runner();
    if let Some(version) = target {
        runner = runner.set_target(refinery::Target::Version(version));
    }
    let report = runner.run_async(client).await?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied migration");
    }
    let fresh = report.applied_migrations().iter().any(|m| m.version() == 1);
    if fresh && target.is_none() {
        finish_steps(client).await?;
    }
    Ok(())
}

/// The contract halves of expand/contract migrations, in order: each drops what only the
/// previous release still needed. Idempotent.
const FINISH_STEPS: &[(&str, &str)] = &[("accounts", include_str!("steps/finish_accounts.sql"))];

async fn finish_steps(client: &mut tokio_postgres::Client) -> Result<(), DatabaseError> {
    for (name, sql) in FINISH_STEPS {
        let done = client.query_opt("SELECT 1 FROM schema_steps WHERE name = $1", &[name]).await?.is_some();
        if !done {
            let transaction = client.transaction().await?;
            transaction.batch_execute(sql).await?;
            transaction.commit().await?;
            tracing::info!(step = name, "finished schema step");
        }
    }
    Ok(())
}

/// `tagcast migrate --finish`: applies pending migrations, then drops what only the previous
/// release needed. Run it once every instance runs this release.
///
/// # Errors
/// As [`prepare_database`].
pub async fn finish_upgrade(url: &SecretString) -> Result<(), DatabaseError> {
    prepare_database(url).await?;
    let config = parse(url)?;
    let mut client = connect(&config).await.map_err(DatabaseError::Connect)?;
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    let outcome = finish_steps(&mut client).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    outcome
}

/// Creates the database if needed and applies migrations up to `version` only: how the upgrade
/// tests build a database as an older release left it.
///
/// # Errors
/// As [`prepare_database`].
pub async fn prepare_database_at(url: &SecretString, version: u32) -> Result<(), DatabaseError> {
    let config = parse(url)?;
    if connect(&config).await.is_err() {
        create_database(&config).await?;
    }
    let mut client = connect(&config).await.map_err(DatabaseError::Connect)?;
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    let outcome = migrate_locked(&mut client, Some(version)).await;
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY]).await?;
    outcome
}

/// Whether every contract step this build knows is done (a second account needs it).
///
/// # Errors
/// The database failed.
pub async fn upgrade_finished(client: &impl deadpool_postgres::GenericClient) -> Result<bool, tokio_postgres::Error> {
    let names: Vec<&str> = FINISH_STEPS.iter().map(|(name, _)| *name).collect();
    let row = client.query_one("SELECT count(*) FROM schema_steps WHERE name = ANY($1)", &[&names]).await?;
    Ok(row.get::<_, i64>(0) == i64::try_from(names.len()).unwrap_or(i64::MAX))
}

async fn create_database(config: &tokio_postgres::Config) -> Result<(), DatabaseError> {
    let name = config.get_dbname().unwrap_or("postgres").to_owned();
    let mut admin = config.clone();
    admin.dbname("postgres");
    let client = connect(&admin).await.map_err(DatabaseError::Connect)?;
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match client.batch_execute(&format!("CREATE DATABASE {quoted}")).await {
        Ok(()) => {
            tracing::info!(database = %name, "created database");
            Ok(())
        }
        // Another instance starting at the same moment won the race: that is fine.
        Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE) => Ok(()),
        Err(error) => Err(DatabaseError::Create(name, error)),
    }
}

/// Builds a connection pool without connecting: connections open on first use, on the runtime
/// that uses them.
///
/// # Errors
/// A bad URL.
pub fn build_pool(url: &SecretString, max_size: usize) -> Result<Pool, DatabaseError> {
    pool_from(parse(url)?, max_size)
}

/// Session settings of the inbox writers' connections. No transaction on them may stay open
/// anywhere near [`EVENT_HOLE_PATIENCE`]: the event consumer waits that long for an event id
/// taken by an uncommitted transaction, then passes it for good.
const WRITER_SESSION_OPTIONS: &str = "-c statement_timeout=20s -c idle_in_transaction_session_timeout=20s";

/// The consumer's: the writers' limits, and every statement planned with its parameters. Its
/// passes read from a mark that moves through tables that grow from empty to millions of rows
/// on a server whose statistics may never be refreshed (autovacuum off); a plan cached while a
/// table was small would keep serving it. A pass applies hundreds of events, so planning each
/// statement costs it little. (The writers' statements run thousands of times a second: planning
/// each was a third of Postgres's CPU per push, so they keep cached plans, each written so that
/// any plan of it probes an index; `tests/it/plans.rs` checks plans cached on an empty database.)
const CONSUMER_SESSION_OPTIONS: &str =
    "-c plan_cache_mode=force_custom_plan -c statement_timeout=20s -c idle_in_transaction_session_timeout=20s";

/// How long the event consumer waits for an event id below its mark to be committed before it
/// decides the id will never be: three times the longest a writer's transaction can last.
pub const EVENT_HOLE_PATIENCE: Duration = Duration::from_secs(60);

/// [`build_pool`] for the inbox writers, with [`WRITER_SESSION_OPTIONS`].
///
/// # Errors
/// A bad URL.
pub fn build_inbox_pool(url: &SecretString, max_size: usize) -> Result<Pool, DatabaseError> {
    pool_with_options(url, max_size, WRITER_SESSION_OPTIONS)
}

/// [`build_pool`] for the event consumer, with [`CONSUMER_SESSION_OPTIONS`].
///
/// # Errors
/// A bad URL.
pub fn build_consumer_pool(url: &SecretString, max_size: usize) -> Result<Pool, DatabaseError> {
    pool_with_options(url, max_size, CONSUMER_SESSION_OPTIONS)
}

/// Our options after the URL's own, so ours win where both set one.
fn pool_with_options(url: &SecretString, max_size: usize, ours: &str) -> Result<Pool, DatabaseError> {
    let mut config = parse(url)?;
    let options = match config.get_options() {
        Some(own) if !own.is_empty() => format!("{own} {ours}"),
        _ => ours.to_owned(),
    };
    config.options(&options);
    pool_from(config, max_size)
}

fn pool_from(config: tokio_postgres::Config, max_size: usize) -> Result<Pool, DatabaseError> {
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        // A request must fail fast while Postgres is down instead of hanging past WeChat's 5 s.
        .wait_timeout(Some(Duration::from_secs(2)))
        .create_timeout(Some(Duration::from_secs(2)))
        .recycle_timeout(Some(Duration::from_secs(2)))
        .build()?)
}

/// Builds the connection pool and proves it can reach the database.
///
/// # Errors
/// A bad URL, or no connection can be made.
pub async fn connect_pool(url: &SecretString, max_size: usize) -> Result<Pool, DatabaseError> {
    let pool = build_pool(url, max_size)?;
    let client = pool.get().await?;
    client.simple_query("SELECT 1").await?;
    Ok(pool)
}

/// The newest migration this build carries: `/readyz` wants the database at least this far.
pub fn expected_schema_version() -> i64 {
    embedded::migrations::runner().get_migrations().iter().map(|m| i64::from(m.version())).max().unwrap_or(0)
}

/// The newest migration applied to the database, `None` before the first.
///
/// # Errors
/// The database failed.
pub async fn schema_version(
    client: &impl deadpool_postgres::GenericClient,
) -> Result<Option<i64>, tokio_postgres::Error> {
    let row = client.query_one("SELECT max(version)::bigint FROM refinery_schema_history", &[]).await?;
    Ok(row.get(0))
}
