//! devserver: runs the dev server for `relive -- CMD` and follows it through its life.
//!
//! The command runs in its own process group with its output piped: each line is printed
//! (prefixed, colours kept), kept (the last 20, for pages and overlays) and, while the dev
//! server is not ready, sent to the tabs showing relive's starting page. Its address comes from
//! `--proxy`, else the first local URL it prints, else a port in its arguments or the framework's
//! default (see `discover`). When it exits, tabs show its last lines; with `--restart` it is
//! started again with backoff.
//!
//! Must never: leave the command or anything it started running when relive stops (the whole
//! group gets SIGTERM, then SIGKILL after a grace period), or let it read the terminal (a
//! background process group reading the terminal would be stopped).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use crate::child::{Child, Report, Stopped, describe_exit};
use crate::config::{DevCommand, UpstreamUrl};
use crate::hub::Hub;
use crate::hub::protocol::{Event, UpstreamState};
use crate::upstream::discover;
use crate::upstream::{self, Upstream};

/// How long the command gets to stop after SIGTERM before the group gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// After this long without a known address, say how to give one.
const ADDRESS_HINT_AFTER: Duration = Duration::from_secs(15);
/// A run that lasted this long was healthy: the restart backoff starts over.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// The delay before restart number `attempt` (0-based): 0.5 s doubling up to 30 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(30))
}

/// Runs and follows the dev server until `shutdown`, then stops it.
pub async fn supervise(
    command: DevCommand,
    upstream: Arc<Upstream>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) {
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        let Some(outcome) = run_once(&command, &upstream, &hub, &shutdown).await else {
            return;
        };
        if started.elapsed() >= HEALTHY_RUN {
            attempt = 0;
        }
        let restart_in = command.restart.then(|| backoff(attempt));
        let lines = upstream.output();
        match restart_in {
            Some(delay) => tracing::warn!(
                "dev server {outcome}; restarting in {:.1} s",
                delay.as_secs_f32()
            ),
            None => tracing::warn!(
                "dev server {outcome}; tabs show its last lines. Restart relive, or run it with \
                 --restart to have it started again"
            ),
        }
        upstream.transition(&hub, UpstreamState::Exited, Some(outcome.clone()));
        hub.publish(Event::UpstreamExited {
            detail: outcome,
            lines,
            restart_in_ms: restart_in.map(|d| d.as_millis() as u64),
        });
        let Some(delay) = restart_in else {
            shutdown.cancelled().await;
            return;
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        attempt += 1;
    }
}

/// Starts the command and follows it until it exits (returning how) or `shutdown` (`None`,
/// after stopping it).
async fn run_once(
    command: &DevCommand,
    upstream: &Upstream,
    hub: &Hub,
    shutdown: &CancellationToken,
) -> Option<String> {
    upstream.clear_output();
    if !command.fixed_address {
        upstream.set_address(None, Vec::new());
        guess_address(command, upstream).await;
    }
    let state = if upstream.has_address() {
        UpstreamState::Starting
    } else {
        UpstreamState::Pending
    };
    upstream.transition(hub, state, None);

    tracing::info!("dev     $ {}", command.display);
    let mut child = match spawn(command) {
        Ok(child) => child,
        Err(error) => {
            let line = format!("cannot run `{}`: {error}", command.argv[0]);
            upstream.record_output(&line);
            return Some(format!("could not start ({error})"));
        }
    };
    let spawned = Instant::now();
    let mut output = Output {
        address_known: command.fixed_address,
        hinted: Vec::new(),
    };
    let mut hinted_address = false;
    let mut probe = tokio::time::interval(upstream::PROBE_INTERVAL);
    probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let state = upstream.state();
        let probing = matches!(state, UpstreamState::Starting | UpstreamState::Down);
        tokio::select! {
            _ = shutdown.cancelled() => {
                stop(child).await;
                return None;
            }
            report = child.next() => match report {
                Some(Report::Line(line)) => output.line(line, state, upstream, hub).await,
                Some(Report::Exited(status)) => {
                    // Whatever it started goes with it (it would hold the port).
                    child.end_group();
                    return Some(describe_exit(&status));
                }
                None => return Some("stopped reporting".to_owned()),
            },
            _ = probe.tick(), if probing => {
                if let Some(addr) = upstream::probe(&upstream.addrs()).await {
                    upstream.answered(addr);
                    if state == UpstreamState::Starting {
                        tracing::info!(
                            "dev server is ready at {} after {:.1} s",
                            upstream.location().map(|url| url.to_string()).unwrap_or_default(),
                            spawned.elapsed().as_secs_f32()
                        );
                    }
                    upstream.transition(hub, UpstreamState::Ready, None);
                }
            }
            _ = upstream.went_down.notified(), if state == UpstreamState::Ready => {
                upstream.transition(hub, UpstreamState::Down, None);
            }
            _ = tokio::time::sleep_until((spawned + ADDRESS_HINT_AFTER).into()),
                if !hinted_address && state == UpstreamState::Pending => {
                hinted_address = true;
                tracing::warn!(
                    "`{}` has not printed a http://localhost URL yet; if it serves on a port, \
                     give it with --proxy PORT",
                    command.display
                );
            }
        }
    }
}

/// Stops the dev server at shutdown: SIGTERM to its group, SIGKILL after [`STOP_GRACE`].
async fn stop(child: Child) {
    let stopped = child
        .stop(STOP_GRACE, |line| crate::log::output_line("dev", line))
        .await;
    if stopped == Stopped::Killed {
        tracing::warn!(
            "the dev server did not stop within {} s; killed it",
            STOP_GRACE.as_secs()
        );
    }
}

/// What the dev server's output has told relive so far.
struct Output {
    /// Whether its address is known (given, or printed by it already).
    address_known: bool,
    /// Hints already given once.
    hinted: Vec<&'static str>,
}

impl Output {
    /// Shows a line, keeps it for the waiting page, and learns from it: a hint to give, or the
    /// address the dev server printed.
    async fn line(&mut self, line: String, state: UpstreamState, upstream: &Upstream, hub: &Hub) {
        crate::log::output_line("dev", &line);
        upstream.record_output(&line);
        if state != UpstreamState::Ready {
            hub.broadcast(Event::UpstreamOutput { line: line.clone() });
        }
        if let Some(hint) = hint_for(&line)
            && !self.hinted.contains(&hint)
        {
            self.hinted.push(hint);
            tracing::warn!("{hint}");
        }
        if !self.address_known
            && let Some(printed) = discover::url_in_line(&line)
        {
            self.address_known = true;
            use_printed(printed, upstream, hub).await;
        }
    }
}

/// What to do about a line where the dev server says it refused relive's requests.
fn hint_for(line: &str) -> Option<&'static str> {
    if line.contains("Blocked cross-origin request to Next.js") {
        Some(
            "Next.js refused a request made through relive from a host other than localhost. \
             Open relive at the http://localhost URL it printed, or add that host to \
             `allowedDevOrigins` in next.config as Next's message above shows, then restart.",
        )
    } else if line.contains("server.allowedHosts") {
        Some(
            "Vite refused a host name used to reach relive. Open relive at the http://localhost \
             URL it printed, or add the name to `server.allowedHosts` in vite.config.",
        )
    } else {
        None
    }
}

/// Guesses the port before the command prints anything, unless something else already
/// answers there (then only a printed URL is trusted).
async fn guess_address(command: &DevCommand, upstream: &Upstream) {
    let Some(guess) = discover::guess(&command.words, &command.cwd) else {
        return;
    };
    let Ok(addrs) = upstream::resolve("localhost", guess.port).await else {
        return;
    };
    if upstream::probe(&addrs).await.is_some() {
        tracing::warn!(
            "port {} ({}) is already in use by another program; waiting for `{}` to print its URL",
            guess.port,
            guess.why,
            command.display
        );
        return;
    }
    let url = UpstreamUrl {
        tls: false,
        host: "localhost".into(),
        port: guess.port,
    };
    tracing::info!("dev server expected at {url} ({})", guess.why);
    upstream.set_address(Some(url), addrs);
}

/// Takes the URL the command printed as the dev server's address (it beats a guess).
async fn use_printed(printed: UpstreamUrl, upstream: &Upstream, hub: &Hub) {
    let url = printed.to_string();
    if upstream.location().is_some_and(|known| *known == printed) {
        tracing::info!("dev server at {url} (printed by the command)");
        return;
    }
    match upstream::resolve(&printed.host, printed.port).await {
        Ok(addrs) => {
            tracing::info!("dev server at {url} (printed by the command)");
            upstream.set_address(Some(printed), addrs);
            if upstream.state() != UpstreamState::Starting {
                upstream.transition(hub, UpstreamState::Starting, None);
            }
        }
        Err(error) => tracing::warn!("cannot resolve {url}: {error}"),
    }
}

/// Starts the command in its own process group, its output unbuffered and, on a terminal, in
/// colour.
fn spawn(command: &DevCommand) -> std::io::Result<Child> {
    let mut process = Command::new(&command.argv[0]);
    process
        .args(&command.argv[1..])
        .current_dir(&command.cwd)
        // Output through a pipe is block-buffered by Python unless told otherwise.
        .env("PYTHONUNBUFFERED", "1");
    if crate::log::colour() {
        process.env("FORCE_COLOR", "1");
    }
    Child::spawn(process)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_get_a_hint() {
        assert!(hint_for("⚠ Blocked cross-origin request to Next.js dev resource /_next/webpack-hmr from \"127.0.0.1\".").is_some());
        assert!(hint_for("  VITE v8 ready").is_none());
    }

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(6), Duration::from_secs(30));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
