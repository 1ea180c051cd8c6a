//! What counting one callback for `/metrics` costs (`CallbackMetrics::observe`: request counter,
//! latency histogram, reply counter), alone and from several threads at once as HTTP workers do.
//!
//!   cargo run --release --example metrics_cost

use std::time::{Duration, Instant};

use tagcast::app::metrics::Metrics;

fn main() {
    let metrics = Metrics::new();
    let per_thread: u32 = 1_000_000;
    for threads in [1_u32, 2, 4] {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let metrics = &metrics;
                scope.spawn(move || {
                    for i in 0..per_thread {
                        let kind = if i % 2 == 0 { "text" } else { "click" };
                        metrics.callback.observe(kind, "ok", Duration::from_micros(1_500));
                    }
                });
            }
        });
        let nanos = started.elapsed().as_nanos() as f64 / f64::from(per_thread * threads);
        println!("{threads} thread(s): {nanos:.0} ns of wall time per observation");
    }
}
