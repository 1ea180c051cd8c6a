//! What the benchmarks in `examples/` share: environment knobs, bulk loading with COPY,
//! percentiles and peak memory. Each example uses a part of it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::SinkExt;

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Streams `rows` (already COPY text lines) into `COPY <target> FROM STDIN` in ~1 MiB chunks.
pub async fn copy_in(
    client: &tokio_postgres::Client,
    target: &str,
    rows: impl Iterator<Item = String>,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in(&format!("COPY {target} FROM STDIN")).await?;
    futures_util::pin_mut!(sink);
    let mut chunk = String::with_capacity(1 << 20);
    for row in rows {
        chunk.push_str(&row);
        if chunk.len() >= 1 << 20 {
            sink.send(VecDeque::from(std::mem::take(&mut chunk).into_bytes())).await?;
        }
    }
    if !chunk.is_empty() {
        sink.send(VecDeque::from(chunk.into_bytes())).await?;
    }
    sink.finish().await
}

pub fn ts(unix: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(unix, 0).expect("in range").to_rfc3339()
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
