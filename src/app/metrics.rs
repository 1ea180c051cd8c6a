//! Prometheus metrics, served at `/metrics` in the OpenMetrics text format.
//!
//! Counters and histograms are updated where things happen (the callback, the WeChat client);
//! what lives in PostgreSQL (queue depths) and in the pools is read when scraped, so workers
//! never write metrics to the database and a scrape always sees every instance's queued work.
//! Each [`crate::startup::Application`] has its own registry, so tests in one process do not
//! see each other's counts.

use std::sync::Mutex;
use std::time::Duration;

use deadpool_postgres::Pool;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::store::ops::QueueSnapshot;
use crate::wechat::api::ApiMetrics;

/// From a push's commit to its tags being applied: tens of milliseconds, a second at most.
const TAGGING_LAG_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// The callback answers in milliseconds, and WeChat gives up at 5 s: the buckets span both.
const CALLBACK_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

type HistogramFamily = Family<KindLabel, Histogram, fn() -> Histogram>;

fn callback_histogram() -> Histogram {
    Histogram::new(CALLBACK_BUCKETS)
}

/// What the callback counts. Labels are `&'static str`, so a request costs a hash lookup under
/// a read lock and atomic adds (plus the histogram's short lock), with no allocation.
#[derive(Debug)]
pub struct CallbackMetrics {
    requests: Family<KindLabel, Counter>,
    duration: HistogramFamily,
    replies: Family<ResultLabel, Counter>,
}

impl CallbackMetrics {
    /// Records one `POST /wechat`: `kind` is the push's kind (`none` when it was refused before
    /// being parsed), `result` how it was answered (`ok`, `dup`, `bad_signature`, ...).
    pub fn observe(&self, kind: &'static str, result: &'static str, elapsed: Duration) {
        let kind = KindLabel { kind };
        self.requests.get_or_create(&kind).inc();
        self.duration.get_or_create(&kind).observe(elapsed.as_secs_f64());
        self.replies.get_or_create(&ResultLabel { result }).inc();
    }
}

/// The process's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub callback: CallbackMetrics,
    pub wechat: ApiMetrics,
    /// Open HTTP connections of this instance.
    pub http_connections: Gauge,
    /// Connections accepted while the instance was at `TAGCAST_MAX_CONNECTIONS`.
    pub http_connection_cap_reached: Counter,
    pub passwords: crate::app::admins::PasswordMetrics,
    /// Seconds from a push's commit to the commit that applied its effects.
    pub tagging_lag: Histogram,
    /// Pools whose use is reported, by name; the inbox has one per HTTP worker, summed.
    pools: Mutex<Vec<(&'static str, Pool)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let callback = CallbackMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(callback_histogram),
            replies: Family::default(),
        };
        registry.register(
            "tagcast_callback_requests",
            "POST /wechat requests, by message kind (none: refused before parsing)",
            callback.requests.clone(),
        );
        registry.register(
            "tagcast_callback_duration_seconds",
            "Time to answer POST /wechat, by message kind",
            callback.duration.clone(),
        );
        registry.register(
            "tagcast_callback_replies",
            "Answers to POST /wechat, by result (ok, dup, bad_signature, stale, bad_request, bad_xml, \
             bad_encryption, too_large, downgrade, replayed, bad_field, unavailable)",
            callback.replies.clone(),
        );
        let wechat = ApiMetrics::default();
        wechat.register(&mut registry);
        let http_connections = Gauge::default();
        registry.register("tagcast_http_connections", "Open HTTP connections", http_connections.clone());
        let http_connection_cap_reached = Counter::default();
        registry.register(
            "tagcast_http_connection_cap_reached",
            "Connections that brought the instance to TAGCAST_MAX_CONNECTIONS (later ones wait in the backlog)",
            http_connection_cap_reached.clone(),
        );
        let passwords = crate::app::admins::PasswordMetrics::default();
        passwords.register(&mut registry);
        let tagging_lag = Histogram::new(TAGGING_LAG_BUCKETS);
        registry.register(
            "tagcast_tagging_lag_seconds",
            "From a push's commit to the commit that applied its tags, follower state and dynamic tags",
            tagging_lag.clone(),
        );
        Self {
            registry,
            callback,
            wechat,
            http_connections,
            http_connection_cap_reached,
            passwords,
            tagging_lag,
            pools: Mutex::new(Vec::new()),
        }
    }

    /// Reports `pool`'s use under `name`.
    pub fn watch_pool(&self, name: &'static str, pool: Pool) {
        self.pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((name, pool));
    }

    /// The OpenMetrics text: the counters, the pools, and `queues` when the database answered.
    pub fn render(&self, queues: Option<&QueueSnapshot>) -> String {
        self.render_with_stops(queues, &[])
    }

    /// [`Metrics::render`] plus the WeChat APIs stopped by a used-up daily quota, each with the
    /// unix time it resumes.
    pub fn render_with_stops(&self, queues: Option<&QueueSnapshot>, stops: &[crate::app::quota::StoppedApi]) -> String {
        let mut scrape = scrape_registry(&self.pools_status(), queues);
        if queues.is_some() {
            let stopped = Family::<StopLabel, Gauge>::default();
            for stop in stops {
                let label = StopLabel { appid: stop.appid.clone(), path: stop.path.clone() };
                stopped.get_or_create(&label).set(stop.until.timestamp());
            }
            scrape.register(
                "tagcast_wechat_api_stopped_until_seconds",
                "WeChat APIs whose daily quota is used up (45009), by AppID and path: the unix time they are \
                 called again (the next Beijing midnight, or sooner after clear_quota)",
                stopped,
            );
        }
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &self.registry);
        let _ = prometheus_client::encoding::text::encode_registry(&mut out, &scrape);
        let _ = prometheus_client::encoding::text::encode_eof(&mut out);
        out
    }

    fn pools_status(&self) -> Vec<(&'static str, deadpool_postgres::Status)> {
        let pools = self.pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut totals: Vec<(&'static str, deadpool_postgres::Status)> = Vec::new();
        for (name, pool) in pools.iter() {
            let status = pool.status();
            match totals.iter_mut().find(|(n, _)| n == name) {
                Some((_, total)) => {
                    total.max_size += status.max_size;
                    total.size += status.size;
                    total.available += status.available;
                    total.waiting += status.waiting;
                }
                None => totals.push((name, status)),
            }
        }
        totals
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    pool: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StopLabel {
    appid: String,
    path: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    kind: String,
    state: String,
}

fn gauge(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Values read at scrape time, in a registry of their own built for this scrape, so nothing
/// stale is reported when the database did not answer.
fn scrape_registry(pools: &[(&'static str, deadpool_postgres::Status)], queues: Option<&QueueSnapshot>) -> Registry {
    let mut registry = Registry::default();
    let max_size = Family::<PoolLabel, Gauge>::default();
    let size = Family::<PoolLabel, Gauge>::default();
    let available = Family::<PoolLabel, Gauge>::default();
    let waiting = Family::<PoolLabel, Gauge>::default();
    for (pool, status) in pools {
        let label = PoolLabel { pool };
        max_size.get_or_create(&label).set(gauge(status.max_size));
        size.get_or_create(&label).set(gauge(status.size));
        available.get_or_create(&label).set(gauge(status.available));
        waiting.get_or_create(&label).set(gauge(status.waiting));
    }
    registry.register("tagcast_db_pool_max_size", "Connections a pool may open", max_size);
    registry.register("tagcast_db_pool_size", "Connections a pool holds open", size);
    registry.register("tagcast_db_pool_available", "Idle connections of a pool", available);
    registry.register("tagcast_db_pool_waiting", "Tasks waiting for a connection", waiting);

    let up = Gauge::<i64>::default();
    up.set(i64::from(queues.is_some()));
    registry.register("tagcast_db_up", "Whether the database answered this scrape's queue query", up);
    let Some(queues) = queues else {
        return registry;
    };
    let outbox = Family::<StateLabel, Gauge>::default();
    // Both states are always reported, so an empty outbox reads 0 rather than nothing.
    for state in ["pending", "dead"] {
        outbox.get_or_create(&StateLabel { state: state.to_owned() }).set(0);
    }
    for (state, count) in &queues.outbox {
        outbox.get_or_create(&StateLabel { state: state.clone() }).set(*count);
    }
    registry.register("tagcast_outbox_depth", "Tag changes not yet on WeChat, by state", outbox);
    let oldest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    oldest.set(queues.outbox_oldest_pending_s);
    registry.register(
        "tagcast_outbox_oldest_pending_age_seconds",
        "Age of the oldest pending tag change (0 when none)",
        oldest,
    );
    let jobs = Family::<JobLabel, Gauge>::default();
    for (kind, state, count) in &queues.jobs {
        jobs.get_or_create(&JobLabel { kind: kind.clone(), state: state.clone() }).set(*count);
    }
    registry.register("tagcast_jobs", "Background jobs not done, by kind and state (pending, dead)", jobs);
    let mass = Family::<StateLabel, Gauge>::default();
    for (state, count) in &queues.mass_sends {
        mass.get_or_create(&StateLabel { state: state.clone() }).set(*count);
    }
    let unapplied = Gauge::<i64>::default();
    unapplied.set(queues.events_unapplied);
    registry.register(
        "tagcast_tagging_backlog",
        "Stored pushes whose tags, follower state and dynamic tags are not applied yet (counted up to 10000)",
        unapplied,
    );
    let unapplied_age = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
    unapplied_age.set(queues.events_oldest_unapplied_s);
    registry.register(
        "tagcast_tagging_backlog_age_seconds",
        "Age of the oldest stored push not applied yet (0 when none)",
        unapplied_age,
    );
    registry.register(
        "tagcast_mass_sends",
        "Planned WeChat mass-send calls of campaigns, by state (pending, submitted, failed, skipped)",
        mass,
    );
    registry
}
