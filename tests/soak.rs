//! The one-minute soak in CI: relive in front of an upstream restarting every 3 s, tabs coming
//! and going, a watched file changing every 2 s and steady HTTP load. Afterwards relive is
//! alive, its memory and descriptors are back near where they were at rest, every long-lived
//! tab got every reload, and the next reload reaches every tab. (The long soak is
//! `cargo bench --bench soak`.)

#[path = "../benches/soak_engine.rs"]
mod soak_engine;

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minute_of_restarts_churn_changes_and_load() {
    let plan = soak_engine::Plan {
        duration: Duration::from_secs(60),
        sample_every: Duration::from_secs(10),
        upstream_restart_every: Duration::from_secs(3),
        write_every: Duration::from_secs(2),
        observers: 5,
        churners: 10,
        load_workers: 4,
    };
    let outcome = soak_engine::run(env!("CARGO_BIN_EXE_relive"), plan, |s| {
        eprintln!(
            "{:>4} s  rss {:>6} KiB  fds {:>4}  threads {:>3}  tabs {:>3}  requests {:>7} ({} failed)  p99 {:.1} ms  reloads {}",
            s.at_s, s.rss_kib, s.fds, s.threads, s.tabs, s.requests, s.failed_requests, s.p99_ms, s.reloads_sent
        );
    })
    .await;
    eprintln!(
        "idle: rss {} KiB, fds {}; end: rss {} KiB, fds {}; {} writes, delivered {:?}; {} socket sessions; {} upstream restarts",
        outcome.idle_rss_kib,
        outcome.idle_fds,
        outcome.end_rss_kib,
        outcome.end_fds,
        outcome.writes,
        outcome.delivered,
        outcome.socket_sessions,
        outcome.upstream_restarts
    );
    assert!(outcome.alive, "relive died");
    assert!(outcome.upstream_restarts >= 10, "the upstream restarted");
    assert!(outcome.socket_sessions > 100, "tabs came and went");
    let last = outcome.samples.last().expect("samples");
    assert!(last.requests > 1000, "there was load");
    for (tab, delivered) in outcome.delivered.iter().enumerate() {
        assert_eq!(*delivered, outcome.writes, "tab {tab} missed reloads");
    }
    assert_eq!(
        outcome.final_reloaded, outcome.final_tabs,
        "the next reload reaches every tab"
    );
    assert!(
        outcome.end_fds <= outcome.idle_fds + 8,
        "descriptors: {} at rest, {} after",
        outcome.idle_fds,
        outcome.end_fds
    );
    assert!(
        outcome.end_rss_kib <= outcome.idle_rss_kib + 24 * 1024,
        "memory: {} KiB at rest, {} KiB after",
        outcome.idle_rss_kib,
        outcome.end_rss_kib
    );
}
