//! Counters of the client's traffic with WeChat, for `/metrics`. They live here, not in the
//! crate's metrics module, because `wechat` imports nothing else from the crate: the application
//! registers these counters in its registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// One call's endpoint and how WeChat answered: the `errcode` (`0` on success), or `http_<status>`,
/// `transport` or `decode` when no errcode came back.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub endpoint: String,
    pub errcode: String,
}

/// What the client counts; cheap to clone (the counters are shared).
#[derive(Clone, Debug, Default)]
pub struct ApiMetrics {
    /// Every HTTP request sent to WeChat, retries included, so a 45009 storm shows as such.
    pub calls: Family<CallLabels, Counter>,
    /// Access tokens fetched from WeChat (not reads of the shared cache).
    pub token_refreshes: Counter,
}

impl ApiMetrics {
    /// Adds these counters to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tagcast_wechat_api_calls",
            "Requests sent to the WeChat API, by endpoint and errcode (0 = ok)",
            self.calls.clone(),
        );
        registry.register(
            "tagcast_wechat_token_refreshes",
            "Access tokens fetched from WeChat",
            self.token_refreshes.clone(),
        );
    }

    pub(super) fn record(&self, endpoint: &str, errcode: &str) {
        self.calls.get_or_create(&CallLabels { endpoint: endpoint.to_owned(), errcode: errcode.to_owned() }).inc();
    }
}
