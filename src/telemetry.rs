//! Logging setup. Logs never carry secrets, raw XML, message text or nicknames (STYLE.md §4).

use tracing_subscriber::EnvFilter;

/// Compact human-readable logs, or JSON lines when `TAGCAST_LOG_FORMAT=json`; `RUST_LOG` filters.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("TAGCAST_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // A second init (tests) is harmless, so its error is ignored.
    let _ = if json { builder.json().try_init() } else { builder.compact().try_init() };
}

/// [`init`] writing to stderr, for commands whose stdout is their output (`playbook`).
pub fn init_stderr() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("TAGCAST_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_writer(std::io::stderr);
    let _ = if json { builder.json().try_init() } else { builder.compact().try_init() };
}

/// Tests stay quiet unless `TEST_LOG` is set.
pub fn init_for_tests() {
    if std::env::var_os("TEST_LOG").is_some() {
        init();
    }
}
