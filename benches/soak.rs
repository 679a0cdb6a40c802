//! The long soak: `cargo bench --bench soak` (30 minutes; `RELIVE_SOAK_MINUTES=N` for another
//! length). relive in front of an upstream restarting every 3 s, 20 tabs coming and going, 5
//! tabs staying, a watched file written every 2 s, 4 workers of steady HTTP load. Prints a row
//! a minute (RSS, descriptors, threads, tabs, requests, p99 of the minute, reloads) and a
//! summary: memory and descriptors at rest before and after, reloads written vs delivered.
//! Loopback only; stops by itself.

#[path = "soak_engine.rs"]
mod soak_engine;

use std::time::Duration;

fn main() {
    let minutes: u64 = std::env::var("RELIVE_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(30);
    let plan = soak_engine::Plan {
        duration: Duration::from_secs(minutes * 60),
        sample_every: Duration::from_secs(60),
        upstream_restart_every: Duration::from_secs(3),
        write_every: Duration::from_secs(2),
        observers: 5,
        churners: 20,
        load_workers: 4,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "relive {} — soak, {minutes} min (release build, loopback)",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "| min | RSS MiB | fds | threads | tabs | requests | failed (502 while down) | p99 ms | reloads sent |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let outcome = runtime.block_on(soak_engine::run(env!("CARGO_BIN_EXE_relive"), plan, |s| {
        println!(
            "| {} | {:.1} | {} | {} | {} | {} | {} | {:.2} | {} |",
            s.at_s / 60,
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.threads,
            s.tabs,
            s.requests,
            s.failed_requests,
            s.p99_ms,
            s.reloads_sent
        );
    }));
    println!();
    let peak = outcome.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    println!("peak RSS during the run: {:.1} MiB", peak as f64 / 1024.0);
    println!(
        "at rest before: RSS {:.1} MiB, {} fds; at rest after: RSS {:.1} MiB, {} fds",
        outcome.idle_rss_kib as f64 / 1024.0,
        outcome.idle_fds,
        outcome.end_rss_kib as f64 / 1024.0,
        outcome.end_fds
    );
    println!(
        "file writes {}; reloads delivered to each long-lived tab {:?}; {} tab sessions; {} upstream restarts",
        outcome.writes, outcome.delivered, outcome.socket_sessions, outcome.upstream_restarts
    );
    println!(
        "after the run: {}/{} new tabs got the next reload; relive alive: {}",
        outcome.final_reloaded, outcome.final_tabs, outcome.alive
    );
}
