//! A fresh database per test: cloned from a template migrated once per run, dropped when the
//! test ends. Databases left by crashed runs are swept at start.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use secrecy::SecretString;
use tokio_postgres::NoTls;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";
const PREFIX: &str = "tagcast_t_";
/// Databases of runs older than this are leftovers of crashed runs.
const STALE_AFTER: Duration = Duration::from_secs(3 * 3600);

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

fn unique_name(kind: &str) -> String {
    format!("{PREFIX}{}_{kind}_{:016x}", now_secs(), rand::thread_rng().r#gen::<u64>())
}

pub fn url_of(name: &str) -> String {
    format!("{SERVER}/{name}")
}

async fn admin() -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&url_of("postgres"), NoTls).await.expect("PostgreSQL must run on 127.0.0.1:5432");
    tokio::spawn(connection);
    client
}

/// Runs `f` on a runtime of its own: the template outlives any one test's runtime.
fn blocking<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
    })
    .join()
    .expect("database helper thread")
}

fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        blocking(async {
            let admin = admin().await;
            sweep(&admin).await;
            let name = unique_name("tpl");
            admin.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create template database");
            tagcast::store::prepare_database(&SecretString::from(url_of(&name))).await.expect("migrate template");
            name
        })
    })
}

async fn sweep(admin: &tokio_postgres::Client) {
    let rows = admin
        .query("SELECT datname FROM pg_database WHERE datname LIKE $1", &[&format!("{PREFIX}%")])
        .await
        .expect("list databases");
    for row in rows {
        let name: String = row.get(0);
        let born: Option<u64> = name.strip_prefix(PREFIX).and_then(|rest| rest.split('_').next()?.parse().ok());
        if born.is_some_and(|born| now_secs().saturating_sub(born) > STALE_AFTER.as_secs()) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

/// A database of one test's own; dropped with it.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> Self {
        let template = template();
        let name = unique_name("db");
        let admin = admin().await;
        // Cloning needs the template free of sessions; a just-closed migration connection may linger.
        let mut attempt = 0;
        loop {
            match admin.batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}")).await {
                Ok(()) => break,
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot create test database: {e}"),
            }
        }
        Self { name }
    }

    /// A database with no schema at all, for the tests that migrate it step by step.
    pub async fn empty() -> Self {
        let name = unique_name("db");
        admin().await.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create database");
        Self { name }
    }

    pub fn url(&self) -> String {
        url_of(&self.name)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        blocking(async move {
            let admin = admin().await;
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        });
    }
}
