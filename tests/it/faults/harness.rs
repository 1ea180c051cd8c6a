//! The fault suite's machinery: real `tagcast serve` processes on one database (killed with
//! SIGKILL, restarted on the same port), the mock WeChat in this process (stopped and started
//! again with its state), a private PostgreSQL cluster that can be restarted without touching
//! the shared one, and a load generator that sends mixed pushes and retries failures the way
//! WeChat does. Everything listens on loopback only and every loop is bounded in time.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tagcast::mock_wechat::{CallbackTarget, MockAccountType, MockConfig, MockWeChat, RunningMock};
use tagcast::wechat::message::Inbound;
use tagcast::wechat::signature;

use crate::support::app::{ACCOUNT, APPID, SECRET, TOKEN, push_from};

pub const API_TOKEN: &str = "faults-api-token-0123456789";
/// The click that tags (one rule, one tag): every click is one tag change for WeChat.
pub const TAG_KEY: &str = "LOAD_TAG";
pub const TAG_PATH: &str = "负载/点击";
/// WeChat retries a push three times when it gets no answer in 5 s.
const WECHAT_ATTEMPTS: usize = 4;
const WECHAT_PATIENCE: Duration = Duration::from_secs(5);
/// WeChat's retries come seconds apart; shorter here, so the short runs stay short.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// How long a scenario runs: short in CI, long from `bench/faults/run.sh`
/// (`TAGCAST_FAULTS_SCALE=long`), each part overridable there.
#[derive(Debug, Clone)]
pub struct Scale {
    pub load: Duration,
    pub kill_every: Duration,
    pub pg_down: Duration,
    pub wechat_down: Duration,
    pub storm_calls: usize,
    pub mass_followers: usize,
    pub concurrency: usize,
    pub long: bool,
}

impl Scale {
    pub fn from_env() -> Self {
        let long = std::env::var("TAGCAST_FAULTS_SCALE").is_ok_and(|s| s == "long");
        let secs = |name: &str, short: u64, long_value: u64| {
            Duration::from_secs(std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(if long {
                long_value
            } else {
                short
            }))
        };
        let count = |name: &str, short: usize, long_value: usize| {
            std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(if long { long_value } else { short })
        };
        Self {
            load: secs("TAGCAST_FAULTS_LOAD_SECS", 6, 60),
            kill_every: secs("TAGCAST_FAULTS_KILL_EVERY_SECS", 2, 5),
            pg_down: secs("TAGCAST_FAULTS_PG_DOWN_SECS", 3, 10),
            wechat_down: secs("TAGCAST_FAULTS_WECHAT_DOWN_SECS", 3, 30),
            storm_calls: count("TAGCAST_FAULTS_STORM_CALLS", 20, 200),
            mass_followers: count("TAGCAST_FAULTS_MASS_FOLLOWERS", 25_000, 100_000),
            concurrency: count("TAGCAST_FAULTS_CONCURRENCY", 16, 64),
            long,
        }
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port()
}

fn scratch_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "tagcast-faults-{kind}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// The sample playbook plus one click rule that tags, so the load both tags and runs quizzes.
fn playbook(dir: &Path) -> PathBuf {
    let sample = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/skin-quiz.toml"))
        .expect("sample playbook");
    let extra = format!(
        "\n[[tag]]\npath = \"{TAG_PATH}\"\n\n[[rule]]\non = \"click\"\nkey = \"{TAG_KEY}\"\nadd = [\"{TAG_PATH}\"]\n"
    );
    let path = dir.join("faults.toml");
    std::fs::write(&path, sample + &extra).expect("write playbook");
    path
}

/// One `tagcast serve` process.
pub struct Server {
    pub name: String,
    pub port: u16,
    child: Option<Child>,
    env: Vec<(String, String)>,
    log: PathBuf,
    pub kills: usize,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("server log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_tagcast"));
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(self.log.parent().expect("log dir"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        self.child = Some(command.spawn().expect("tagcast serve starts"));
    }

    /// SIGKILL: nothing in memory survives, nothing is flushed or handed back.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.kills += 1;
        }
    }

    /// SIGTERM, as systemd or Kubernetes stop a process; the exit status and how long it took.
    pub async fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        let sent = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
        assert!(sent.success());
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return (status, started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("{} did not stop within 60 s of SIGTERM; log: {}", self.name, tail(&self.log));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Waits until `/healthz` answers 200.
    pub async fn wait_ready(&mut self, http: &reqwest::Client, within: Duration) {
        let started = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("{} exited with {status}; log: {}", self.name, tail(&self.log));
                }
            }
            if let Ok(r) = http.get(format!("{}/healthz", self.url())).timeout(Duration::from_secs(1)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                started.elapsed() < within,
                "{} not ready in {within:?}; log {}: {}",
                self.name,
                self.log.display(),
                tail(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts it again on the same port (a supervisor's restart).
    pub async fn restart(&mut self, http: &reqwest::Client) {
        if self.is_running() {
            self.kill();
            self.kills -= 1;
        }
        self.spawn();
        self.wait_ready(http, Duration::from_secs(60)).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The mock WeChat, in this process so its call log can be read, on a fixed port so it can be
/// stopped and started again with its state.
pub struct Mock {
    pub wechat: MockWeChat,
    pub addr: SocketAddr,
    running: Option<RunningMock>,
}

impl Mock {
    pub fn start() -> Self {
        let wechat = MockWeChat::new(MockConfig {
            appid: APPID.to_owned(),
            secret: SECRET.to_owned(),
            account_type: MockAccountType::Service,
            callback: None,
        });
        let running = wechat.start(TcpListener::bind("127.0.0.1:0").expect("mock port")).expect("mock starts");
        Self { wechat, addr: running.addr, running: Some(running) }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// WeChat unreachable: connections are refused.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.handle.stop(false).await;
        }
    }

    pub async fn resume(&mut self) {
        let started = Instant::now();
        let listener = loop {
            match TcpListener::bind(self.addr) {
                Ok(listener) => break listener,
                Err(e) => {
                    assert!(started.elapsed() < Duration::from_secs(10), "cannot rebind the mock: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.running = Some(self.wechat.start(listener).expect("mock restarts"));
    }

    /// Pushes MASSSENDJOBFINISH to `server`, as WeChat pushes to the account's callback URL.
    pub fn push_results_to(&self, server: &Server) {
        self.wechat.set_callback(Some(CallbackTarget {
            url: format!("{}/wechat", server.url()),
            token: TOKEN.to_owned(),
            encoding_aes_key: None,
            account_id: ACCOUNT.to_owned(),
        }));
    }
}

/// Several `tagcast serve` processes on one database and one mock.
pub struct Cluster {
    pub servers: Vec<Server>,
    pub mock: Mock,
    pub db_url: String,
    pub http: reqwest::Client,
    pub dir: PathBuf,
}

impl Cluster {
    /// `n` instances (role `all`) on `db_url`, each on a port of its own, with the fault
    /// playbook applied. `extra` variables go to every instance.
    pub async fn start(db_url: &str, n: usize, extra: &[(&str, &str)]) -> Self {
        let dir = scratch_dir("cluster");
        let mock = Mock::start();
        let playbook = playbook(&dir);
        let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client");
        let mut servers = Vec::new();
        for i in 0..n {
            let name = format!("tagcast-{}", (b'a' + i as u8) as char);
            let port = free_port();
            let separator = if db_url.contains('?') { '&' } else { '?' };
            let mut env: Vec<(String, String)> = [
                // Names the process in pg_stat_activity, so a test can tell who holds a job.
                ("DATABASE_URL", format!("{db_url}{separator}application_name={name}")),
                ("TAGCAST_BIND", format!("127.0.0.1:{port}")),
                ("WECHAT_APPID", APPID.to_owned()),
                ("WECHAT_APPSECRET", SECRET.to_owned()),
                ("WECHAT_TOKEN", TOKEN.to_owned()),
                ("WECHAT_API_BASE", mock.url()),
                ("TAGCAST_API_TOKEN", API_TOKEN.to_owned()),
                ("TAGCAST_PLAYBOOK", playbook.display().to_string()),
                ("TAGCAST_HTTP_WORKERS", "1".to_owned()),
                ("RUST_LOG", "warn".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            for (k, v) in extra {
                env.retain(|(name, _)| name != k);
                env.push(((*k).to_owned(), (*v).to_owned()));
            }
            let mut server =
                Server { name: name.clone(), port, child: None, env, log: dir.join(format!("{name}.log")), kills: 0 };
            server.spawn();
            // One after the other: migrations and the playbook run at start.
            server.wait_ready(&http, Duration::from_secs(90)).await;
            servers.push(server);
        }
        mock.push_results_to(&servers[0]);
        Self { servers, mock, db_url: db_url.to_owned(), http, dir }
    }

    /// Runs a `tagcast` subcommand with the first instance's environment.
    pub fn run(&self, subcommand: &str) -> std::process::ExitStatus {
        let server = &self.servers[0];
        let mut command = Command::new(env!("CARGO_BIN_EXE_tagcast"));
        command
            .arg(subcommand)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in &server.env {
            command.env(k, v);
        }
        command.status().expect("tagcast runs")
    }

    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(Server::url).collect()
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.db_url, tokio_postgres::NoTls).await.expect("test db");
        tokio::spawn(connection);
        client
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.api_on(0, method, path, body).await
    }

    /// A JSON API call to instance `i`.
    pub async fn api_on(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.servers[i].url()))
            .bearer_auth(API_TOKEN)
            .timeout(Duration::from_secs(10));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("API answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    /// Waits until WeChat has learned every tag change (no pending outbox row); the time it took.
    pub async fn wait_outbox_drained(&self, within: Duration) -> Duration {
        match self.wait_for_no_outbox_rows("state = 'pending'", within).await {
            Ok(took) => took,
            Err(pending) => panic!("{pending} tag changes still pending after {within:?}"),
        }
    }

    /// Waits until no outbox row matches `condition` (SQL); the time it took, or how many rows
    /// still matched after `within`.
    pub async fn wait_for_no_outbox_rows(&self, condition: &str, within: Duration) -> Result<Duration, i64> {
        let db = self.db().await;
        let started = Instant::now();
        let sql = format!("SELECT count(*) FROM tag_outbox WHERE {condition}");
        loop {
            let matching: i64 = db.query_one(&sql, &[]).await.expect("outbox rows").get(0);
            if matching == 0 {
                return Ok(started.elapsed());
            }
            if started.elapsed() >= within {
                return Err(matching);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Tag changes WeChat must have learned, and how many times the mock took each: every
    /// (tag, openid) a local follower carries on a mirrored tag against the successful
    /// batchtagging calls. Returns (expected, delivered once, delivered more than once, missing,
    /// delivered but not expected).
    pub async fn tag_delivery(&self) -> TagDelivery {
        let db = self.db().await;
        let rows = db
            .query(
                "SELECT t.wechat_tag_id, ft.openid FROM follower_tags ft JOIN tags t ON t.id = ft.tag_id
                 WHERE t.mirrored",
                &[],
            )
            .await
            .expect("follower tags");
        let expected: HashSet<(i64, String)> =
            rows.iter().map(|r| (r.get::<_, Option<i64>>(0).unwrap_or(-1), r.get(1))).collect();
        let mut delivered: HashMap<(i64, String), usize> = HashMap::new();
        for call in self.mock.wechat.calls() {
            if call.path != "/cgi-bin/tags/members/batchtagging" || call.errcode != 0 {
                continue;
            }
            let tag = call.body["tagid"].as_i64().unwrap_or(-2);
            for openid in call.body["openid_list"].as_array().into_iter().flatten() {
                *delivered.entry((tag, openid.as_str().unwrap_or_default().to_owned())).or_default() += 1;
            }
        }
        let mut report = TagDelivery { expected: expected.len(), ..TagDelivery::default() };
        for key in &expected {
            match delivered.get(key) {
                None => report.missing += 1,
                Some(1) => report.once += 1,
                Some(_) => report.repeated += 1,
            }
        }
        report.unexpected = delivered.keys().filter(|k| !expected.contains(*k)).count();
        report
    }

    /// Which instance holds the running job (its transaction sits idle on the claim).
    pub async fn job_holder(&self) -> Option<usize> {
        let db = self.db().await;
        let rows = db
            .query(
                "SELECT application_name FROM pg_stat_activity
                 WHERE datname = current_database() AND state LIKE 'idle in transaction%'
                   AND query LIKE '%FOR UPDATE SKIP LOCKED%' AND query LIKE '%jobs%'",
                &[],
            )
            .await
            .expect("pg_stat_activity");
        let name: String = rows.first()?.get(0);
        self.servers.iter().position(|s| s.name == name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The processes first, then their logs, which a failed test keeps for whoever looks.
        self.servers.clear();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TagDelivery {
    pub expected: usize,
    pub once: usize,
    pub repeated: usize,
    pub missing: usize,
    pub unexpected: usize,
}

/// A PostgreSQL cluster of the test's own (initdb into a temp dir, its own port), so it can be
/// stopped and started without disturbing anyone else's tests.
pub struct PrivatePostgres {
    pub port: u16,
    data: PathBuf,
    as_postgres: bool,
    bin: PathBuf,
}

/// The newest Debian-installed PostgreSQL's binaries (`/usr/lib/postgresql/<major>/bin`).
fn pg_bin() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
}

impl PrivatePostgres {
    /// `None` when this machine has no PostgreSQL binaries to make a cluster with.
    pub fn init() -> Option<Self> {
        let bin = pg_bin()?;
        let dir = scratch_dir("pg");
        // initdb refuses to run as root: then the cluster belongs to the `postgres` user.
        let as_postgres = running_as_root();
        if as_postgres {
            let status = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().expect("chown");
            assert!(status.success());
        }
        let data = dir.join("data");
        let pg = Self { port: free_port(), data, as_postgres, bin };
        let status = pg
            .command("initdb")
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-D"])
            .arg(&pg.data)
            .stdout(Stdio::null())
            .status()
            .expect("initdb runs");
        assert!(status.success(), "initdb failed");
        pg.start();
        Some(pg)
    }

    fn command(&self, tool: &str) -> Command {
        let path = self.bin.join(tool);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.data.parent().expect("dir").display()
        );
        let status = self
            .command("pg_ctl")
            .args(["-w", "-t", "30", "-D"])
            .arg(&self.data)
            .args(["-o", &options, "-l"])
            .arg(self.data.parent().expect("dir").join("pg.log"))
            .arg("start")
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl start");
        assert!(status.success(), "the private cluster did not start");
    }

    /// A fast shutdown: sessions are cut, what was committed stays.
    pub fn stop(&self) {
        let status = self
            .command("pg_ctl")
            .args(["-w", "-t", "30", "-m", "fast", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .status()
            .expect("pg_ctl stop");
        assert!(status.success(), "the private cluster did not stop");
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-w", "-m", "immediate", "-D"])
            .arg(&self.data)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(dir) = self.data.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// What the load generator sent and saw.
#[derive(Default)]
pub struct LoadStats {
    /// Dedupe keys of every distinct push sent, and when it was first answered 200 (if ever).
    pub sent: HashMap<String, Option<Instant>>,
    pub requests: usize,
    pub retries_of_earlier: usize,
    pub wechat_retries: usize,
    pub given_up: usize,
    pub statuses: HashMap<u16, usize>,
    pub transport_errors: usize,
    /// When each request answered 200 was sent and how long it took; the same for every
    /// answer that was not 200.
    pub ok_latencies: Vec<(Instant, Duration)>,
    pub failed_latencies: Vec<Duration>,

    pub quizzes_finished: usize,
}

impl LoadStats {
    pub fn acked(&self) -> usize {
        self.sent.values().filter(|t| t.is_some()).count()
    }

    pub fn summary(&self, elapsed: Duration) -> String {
        let mut ok: Vec<Duration> = self.ok_latencies.iter().map(|(_, d)| *d).collect();
        ok.sort();
        let pct =
            |v: &[Duration], p: f64| v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1))).copied();
        let max_failed = self.failed_latencies.iter().max().copied();
        format!(
            "{} requests in {:.1} s ({:.0}/s): {} distinct pushes, {} acknowledged, {} resends of earlier pushes, \
             {} WeChat-style retries, {} given up after 4 attempts, {} quizzes finished; statuses {:?}, \
             {} transport errors; 200 latency p50 {:?} p99 {:?} max {:?}; slowest non-200 {:?}",
            self.requests,
            elapsed.as_secs_f64(),
            self.requests as f64 / elapsed.as_secs_f64(),
            self.sent.len(),
            self.acked(),
            self.retries_of_earlier,
            self.wechat_retries,
            self.given_up,
            self.quizzes_finished,
            self.statuses,
            self.transport_errors,
            pct(&ok, 0.5),
            pct(&ok, 0.99),
            ok.last(),
            max_failed,
        )
    }
}

/// Mixed pushes against several instances until `deadline`, each failure retried the way WeChat
/// retries (on whichever instance the balancer picks next).
pub struct Load {
    targets: Vec<String>,
    http: reqwest::Client,
    stats: Mutex<LoadStats>,
    earlier: Mutex<Vec<String>>,
    followers: Vec<String>,
    next_follower: AtomicUsize,
    next_msg_id: AtomicU64,
    rr: AtomicUsize,
}

impl Load {
    /// `followers` must be known to the mock (tag changes for strangers are refused by WeChat).
    pub fn new(targets: Vec<String>, followers: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            targets,
            http: reqwest::Client::builder().pool_max_idle_per_host(256).build().expect("client"),
            stats: Mutex::new(LoadStats::default()),
            earlier: Mutex::new(Vec::new()),
            followers,
            next_follower: AtomicUsize::new(0),
            next_msg_id: AtomicU64::new(u64::from(rand::random::<u32>()) << 24),
            rr: AtomicUsize::new(0),
        })
    }

    /// [`Load::run`] in the background, so the test can break things meanwhile.
    pub fn spawn_run(self: &Arc<Self>, concurrency: usize, duration: Duration) -> tokio::task::JoinHandle<()> {
        let load = Arc::clone(self);
        tokio::spawn(async move { load.run(concurrency, duration).await })
    }

    /// Runs `concurrency` senders for `duration`.
    pub async fn run(self: &Arc<Self>, concurrency: usize, duration: Duration) {
        let deadline = Instant::now() + duration;
        let tasks: Vec<_> = (0..concurrency)
            .map(|i| {
                let load = Arc::clone(self);
                tokio::spawn(async move {
                    let mut n = i;
                    while Instant::now() < deadline {
                        load.one_action(n).await;
                        n += concurrency;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("sender");
        }
    }

    pub fn into_stats(self: Arc<Self>) -> LoadStats {
        std::mem::take(&mut *self.stats.lock().expect("stats"))
    }

    fn follower(&self) -> String {
        let i = self.next_follower.fetch_add(1, Ordering::Relaxed);
        self.followers[i % self.followers.len()].clone()
    }

    fn msg_id(&self) -> u64 {
        self.next_msg_id.fetch_add(1, Ordering::Relaxed)
    }

    async fn one_action(&self, n: usize) {
        match n % 20 {
            // Half plain text from anyone.
            0..=9 => {
                let who = &self.followers[rand::random::<usize>() % self.followers.len()];
                self.send_new(&text_xml(who, "你好", self.msg_id())).await;
            }
            // A fifth: clicks that tag a follower (one tag change each).
            10..=13 => {
                self.send_new(&click_xml(&self.follower(), TAG_KEY, chrono::Utc::now().timestamp())).await;
            }
            // A tenth: a whole quiz, answer after answer.
            14 | 15 => self.quiz().await,
            // The rest: WeChat delivering an earlier push again.
            _ => {
                let earlier = {
                    let earlier = self.earlier.lock().expect("earlier");
                    (!earlier.is_empty()).then(|| earlier[rand::random::<usize>() % earlier.len()].clone())
                };
                if let Some(xml) = earlier {
                    self.stats.lock().expect("stats").retries_of_earlier += 1;
                    self.deliver(&xml).await;
                }
            }
        }
    }

    async fn quiz(&self) {
        let who = self.follower();
        if !self.send_new(&click_xml(&who, "SKIN_TEST", chrono::Utc::now().timestamp())).await {
            return;
        }
        for _ in 0..5 {
            if !self.send_new(&text_xml(&who, "A", self.msg_id())).await {
                return;
            }
        }
        self.stats.lock().expect("stats").quizzes_finished += 1;
    }

    /// Sends a push not sent before; true when it was acknowledged.
    async fn send_new(&self, xml: &str) -> bool {
        let key = tagcast::wechat::message::parse(xml).expect("generated push parses").dedupe_key();
        // Same follower, same second, same event would be a retry to WeChat too: counted once.
        self.stats.lock().expect("stats").sent.entry(key.clone()).or_insert(None);
        let acked = self.deliver(xml).await;
        {
            let mut earlier = self.earlier.lock().expect("earlier");
            if earlier.len() < 20_000 {
                earlier.push(xml.to_owned());
            } else {
                let i = rand::random::<usize>() % earlier.len();
                earlier[i] = xml.to_owned();
            }
        }
        let mut stats = self.stats.lock().expect("stats");
        let first_ack = stats.sent.get(&key).copied().flatten();
        let ack = if acked { first_ack.or(Some(Instant::now())) } else { first_ack };
        stats.sent.insert(key, ack);
        acked
    }

    /// WeChat's delivery: up to four attempts, 5 s each. The first goes to the balancer's next
    /// pick, each retry to the instance after the last one tried (a balancer skips an upstream that
    /// just refused).
    async fn deliver(&self, xml: &str) -> bool {
        let first = self.rr.fetch_add(1, Ordering::Relaxed);
        for attempt in 0..WECHAT_ATTEMPTS {
            let target = &self.targets[(first + attempt) % self.targets.len()];
            let ts = chrono::Utc::now().timestamp().to_string();
            // Unique: in plain mode a signature carries one push, and random ones could collide.
            let nonce = crate::support::app::fresh_nonce();
            let sig = signature::sign(&[TOKEN, &ts, &nonce]);
            let started = Instant::now();
            let result = self
                .http
                .post(format!("{target}/wechat?signature={sig}&timestamp={ts}&nonce={nonce}"))
                .header("content-type", "text/xml")
                .body(xml.to_owned())
                .timeout(WECHAT_PATIENCE)
                .send()
                .await;
            // The body must arrive too: a reply cut off is no answer to WeChat.
            let outcome = match result {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = response.bytes().await;
                    if status == 200 && body.is_err() { Err(()) } else { Ok(status) }
                }
                Err(_) => Err(()),
            };
            let elapsed = started.elapsed();
            {
                let mut stats = self.stats.lock().expect("stats");
                stats.requests += 1;
                if attempt > 0 {
                    stats.wechat_retries += 1;
                }
                match outcome {
                    Ok(200) => {
                        *stats.statuses.entry(200).or_default() += 1;
                        stats.ok_latencies.push((started, elapsed));
                        return true;
                    }
                    Ok(status) => {
                        *stats.statuses.entry(status).or_default() += 1;
                        stats.failed_latencies.push(elapsed);
                    }
                    Err(()) => {
                        stats.transport_errors += 1;
                        stats.failed_latencies.push(elapsed);
                    }
                }
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        self.stats.lock().expect("stats").given_up += 1;
        false
    }
}

pub fn text_xml(from: &str, content: &str, msg_id: u64) -> String {
    let body = Inbound::Text { content: content.to_owned(), msg_id: Some(msg_id), msg_data_id: None, idx: None };
    push_from(from, chrono::Utc::now().timestamp(), body)
}

pub fn click_xml(from: &str, key: &str, create_time: i64) -> String {
    push_from(from, create_time, Inbound::Click { key: key.to_owned() })
}

/// Every push answered 200 is stored, and nothing that was never sent is: the events table against
/// what the generator sent. Returns how many rows there are (each dedupe key is stored once).
pub async fn check_stored(db: &tokio_postgres::Client, stats: &LoadStats) -> usize {
    let rows = db.query("SELECT dedupe_key FROM events", &[]).await.expect("events");
    let stored: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let acked_missing: Vec<&String> =
        stats.sent.iter().filter(|(k, t)| t.is_some() && !stored.contains(*k)).map(|(k, _)| k).collect();
    assert!(
        acked_missing.is_empty(),
        "{} acknowledged pushes were not stored: {:?}",
        acked_missing.len(),
        &acked_missing[..acked_missing.len().min(5)]
    );
    let strangers = stored.iter().filter(|k| !stats.sent.contains_key(*k)).count();
    assert_eq!(strangers, 0, "events stored that were never sent");
    stored.len()
}

/// The 99th percentile of the 200 answers' latencies for requests sent in `[from, to)`.
pub fn p99_between(stats: &LoadStats, from: Instant, to: Instant) -> Option<Duration> {
    let mut window: Vec<Duration> =
        stats.ok_latencies.iter().filter(|(at, _)| *at >= from && *at < to).map(|(_, d)| *d).collect();
    window.sort();
    window.get((window.len() as f64 * 0.99) as usize).or(window.last()).copied()
}
