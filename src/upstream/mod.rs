//! upstream: the dev server relive fronts, what relive knows of it (address, status, the last
//! lines it printed), and the one task that follows its health.
//!
//! Status goes `pending` (no address known yet: the command has not printed its URL) →
//! `starting` (an address, not answering yet) → `ready`; later `down` (stopped answering) or
//! `exited` (the supervised command ended) and back to `ready`. Every change is published as
//! `upstream_status`; each time it becomes ready, `preview_ready`; when it comes back after
//! having been ready before, every tab reloads.
//!
//! Uses: child, config, hub, log.
//!
//! Must never: block a request on the status lock for longer than a copy, or report `ready`
//! before a connection to the upstream succeeded.

pub mod devserver;
pub mod discover;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::UpstreamUrl;
use crate::hub::Hub;
use crate::hub::protocol::{Event, UpstreamState};

/// How many output lines of a supervised command are kept for pages and overlays.
pub const OUTPUT_LINES: usize = 20;
/// How often an upstream that is not ready is probed.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(100);

/// Where the upstream is and how it is doing.
#[derive(Debug, Clone)]
struct Known {
    /// For messages and pages: the URL once known (`http://localhost:5173`).
    url: Option<Arc<UpstreamUrl>>,
    state: UpstreamState,
    /// The last state announced to tabs (a request may mark the upstream down before the
    /// lifecycle task announces it).
    announced: UpstreamState,
    /// How the supervised command last ended.
    exit: Option<String>,
    /// Whether it was ever ready (a later `ready` is a restart: tabs reload).
    was_ready: bool,
}

/// The dev server relive fronts. Shared by the front door and the lifecycle task.
pub struct Upstream {
    /// The supervised command, as the user wrote it (`None` in plain proxy mode).
    pub command: Option<String>,
    /// Every address the host resolved to (`localhost` may be `::1` and `127.0.0.1`); empty
    /// until known.
    addrs: RwLock<Arc<[SocketAddr]>>,
    /// Index into `addrs` of the one that answered last.
    current: AtomicUsize,
    known: Mutex<Known>,
    /// The command's last output lines.
    output: Mutex<VecDeque<String>>,
    /// Woken when a request finds the upstream down, so the lifecycle task starts probing.
    pub went_down: Notify,
    /// The dev server's own hot reloading, once a page loaded its client (see [`hmr_client`]).
    hmr: std::sync::OnceLock<&'static str>,
}

/// A copy of what pages need to know.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub command: Option<String>,
    pub url: Option<String>,
    pub state: UpstreamState,
    pub exit: Option<String>,
    pub output: Vec<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Upstream {
    /// An upstream at a known address (`--proxy`), or one whose address a command will tell.
    pub fn new(
        command: Option<String>,
        url: Option<UpstreamUrl>,
        addrs: Vec<SocketAddr>,
    ) -> Upstream {
        let state = if addrs.is_empty() {
            UpstreamState::Pending
        } else {
            UpstreamState::Starting
        };
        Upstream {
            command,
            addrs: RwLock::new(addrs.into()),
            current: AtomicUsize::new(0),
            known: Mutex::new(Known {
                url: url.map(Arc::new),
                state,
                announced: state,
                exit: None,
                was_ready: false,
            }),
            output: Mutex::new(VecDeque::with_capacity(OUTPUT_LINES)),
            went_down: Notify::new(),
            hmr: std::sync::OnceLock::new(),
        }
    }

    /// Every known address (none while pending).
    pub fn addrs(&self) -> Arc<[SocketAddr]> {
        self.addrs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn has_address(&self) -> bool {
        !self.addrs().is_empty()
    }

    /// Sets (or clears) where the upstream is.
    pub fn set_address(&self, url: Option<UpstreamUrl>, addrs: Vec<SocketAddr>) {
        *self.addrs.write().unwrap_or_else(PoisonError::into_inner) = addrs.into();
        self.current.store(0, Ordering::Relaxed);
        lock(&self.known).url = url.map(Arc::new);
    }

    /// The address for a request's attempt number `attempt` (0 first): the one that answered
    /// last, then the others in turn. `None` when there is none left (or none known).
    pub fn addr_for_attempt(&self, attempt: usize) -> Option<SocketAddr> {
        let addrs = self.addrs();
        if attempt >= addrs.len() {
            return None;
        }
        let start = self.current.load(Ordering::Relaxed) % addrs.len();
        Some(addrs[(start + attempt) % addrs.len()])
    }

    /// Whether a request that failed to connect `failures` times has another address to try.
    pub fn has_another(&self, failures: usize) -> bool {
        failures < self.addrs().len()
    }

    /// Remembers which address answered.
    pub fn answered(&self, addr: SocketAddr) {
        if let Some(index) = self.addrs().iter().position(|a| *a == addr) {
            self.current.store(index, Ordering::Relaxed);
        }
    }

    /// A request could not reach a ready upstream: marks it down and wakes the lifecycle task.
    /// Returns true the first time (so the front door says it once).
    pub fn mark_down(&self) -> bool {
        let mut known = lock(&self.known);
        if known.state != UpstreamState::Ready {
            return false;
        }
        known.state = UpstreamState::Down;
        drop(known);
        self.went_down.notify_one();
        true
    }

    /// Notes a request path: a page loading a dev server's HMR client shows that the dev server
    /// hot-reloads by itself. Says so once.
    pub fn saw_path(&self, path: &str) {
        if self.hmr.get().is_some() {
            return;
        }
        if let Some(name) = hmr_client(path)
            && self.hmr.set(name).is_ok()
        {
            tracing::info!(
                "{name} hot-reloads modules and stylesheets itself; relive leaves changes to those \
                 files to it (watch.defer_to_hmr = false in relive.toml to reload anyway)"
            );
        }
    }

    /// The dev server's own hot reloading, if a page showed it has one.
    pub fn hmr(&self) -> Option<&'static str> {
        self.hmr.get().copied()
    }

    pub fn state(&self) -> UpstreamState {
        lock(&self.known).state
    }

    /// The URL once known, else the command, for messages.
    pub fn display(&self) -> String {
        let known = lock(&self.known);
        match (&known.url, &self.command) {
            (Some(url), _) => url.to_string(),
            (None, Some(command)) => command.clone(),
            (None, None) => "the dev server".into(),
        }
    }

    /// Where the upstream is (scheme, host, port), once known. Cheap: asked on every request.
    pub fn location(&self) -> Option<Arc<UpstreamUrl>> {
        lock(&self.known).url.clone()
    }

    pub fn snapshot(&self) -> Snapshot {
        let known = lock(&self.known).clone();
        Snapshot {
            command: self.command.clone(),
            url: known.url.as_ref().map(ToString::to_string),
            state: known.state,
            exit: known.exit,
            output: lock(&self.output).iter().cloned().collect(),
        }
    }

    /// Keeps one output line of the supervised command.
    pub fn record_output(&self, line: &str) {
        let mut output = lock(&self.output);
        if output.len() == OUTPUT_LINES {
            output.pop_front();
        }
        output.push_back(line.to_owned());
    }

    pub fn output(&self) -> Vec<String> {
        lock(&self.output).iter().cloned().collect()
    }

    pub fn clear_output(&self) {
        lock(&self.output).clear();
    }

    /// Moves to `state` and publishes the change (nothing when it is already there). Becoming
    /// ready publishes `preview_ready`, and a reload when the upstream had been ready before.
    pub fn transition(&self, hub: &Hub, state: UpstreamState, exit: Option<String>) {
        let mut known = lock(&self.known);
        if known.state == state && known.announced == state && exit.is_none() {
            return;
        }
        let was_ready = known.was_ready;
        known.state = state;
        known.announced = state;
        if state == UpstreamState::Ready {
            known.was_ready = true;
            known.exit = None;
        } else if exit.is_some() {
            known.exit = exit.clone();
        }
        let url = known.url.as_ref().map(ToString::to_string);
        drop(known);
        hub.publish(Event::UpstreamStatus {
            status: state,
            url: url.clone(),
            detail: exit.unwrap_or_default(),
        });
        if state == UpstreamState::Ready {
            let url = url.unwrap_or_default();
            hub.publish(Event::PreviewReady { url: url.clone() });
            if was_ready {
                tracing::info!("upstream {url} is back; reloading");
                hub.publish(Event::Reload {
                    reason: "the dev server is back".into(),
                    paths: vec![],
                });
            }
        }
    }
}

/// Which dev server's hot-reload client a request path is, if it is one.
pub fn hmr_client(path: &str) -> Option<&'static str> {
    if path.ends_with("/@vite/client") {
        Some("Vite")
    } else if path.starts_with("/_next/webpack-hmr") || path.starts_with("/_next/hmr") {
        Some("Next.js")
    } else if path.starts_with("/__webpack_hmr") || path.starts_with("/webpack-dev-server") {
        Some("webpack")
    } else {
        None
    }
}

/// The addresses of `host` (`localhost` is often both `::1` and `127.0.0.1`).
pub async fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    let mut addrs: Vec<SocketAddr> = Vec::new();
    // In the resolver's order (it says which to try first), each once.
    for addr in tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| e.to_string())?
    {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err("no addresses".into());
    }
    Ok(addrs)
}

/// Whether any of `addrs` accepts a connection (the first that does).
pub async fn probe(addrs: &[SocketAddr]) -> Option<SocketAddr> {
    for addr in addrs {
        let attempt =
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr));
        if let Ok(Ok(_)) = attempt.await {
            return Some(*addr);
        }
    }
    None
}

/// Probes the upstream until it answers (then marks it ready) or `shutdown`. Returns false
/// on shutdown.
pub async fn wait_until_ready(
    upstream: &Upstream,
    hub: &Hub,
    shutdown: &CancellationToken,
) -> bool {
    loop {
        if let Some(addr) = probe(&upstream.addrs()).await {
            upstream.answered(addr);
            upstream.transition(hub, UpstreamState::Ready, None);
            return true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
        }
    }
}

/// Follows an upstream relive does not run (`--proxy` alone): ready once it answers; when a
/// request finds it down, probes until it is back.
pub async fn follow(upstream: Arc<Upstream>, hub: Arc<Hub>, shutdown: CancellationToken) {
    loop {
        if upstream.state() == UpstreamState::Starting {
            let shown = upstream.display();
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ready = wait_until_ready(&upstream, &hub, &shutdown) => if !ready { return },
                _ = tokio::time::sleep(Duration::from_secs(2)) => {
                    tracing::warn!(
                        "upstream {shown} is not answering yet; pages show a waiting page until it does"
                    );
                    if !wait_until_ready(&upstream, &hub, &shutdown).await {
                        return;
                    }
                }
            }
        } else if !wait_until_ready(&upstream, &hub, &shutdown).await {
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = upstream.went_down.notified() => {}
        }
        upstream.transition(&hub, UpstreamState::Down, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(hub: &Hub) -> Vec<Event> {
        match hub.subscribe(Some(0)).backlog {
            crate::hub::Backlog::Missed(events) => {
                events.iter().map(|p| p.envelope.event.clone()).collect()
            }
            crate::hub::Backlog::Gap => panic!("gap"),
        }
    }

    #[test]
    fn becoming_ready_again_reloads_every_tab() {
        let hub = Hub::new("s".into());
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let upstream = Upstream::new(
            None,
            UpstreamUrl::parse("http://127.0.0.1:1").ok(),
            vec![addr],
        );
        upstream.transition(&hub, UpstreamState::Ready, None);
        assert!(upstream.mark_down());
        assert!(!upstream.mark_down(), "said once");
        upstream.transition(&hub, UpstreamState::Ready, None);
        let kinds: Vec<&str> = events(&hub)
            .iter()
            .map(|e| match e {
                Event::UpstreamStatus { .. } => "status",
                Event::PreviewReady { .. } => "preview_ready",
                Event::Reload { .. } => "reload",
                _ => "other",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "status",
                "preview_ready",
                "status",
                "preview_ready",
                "reload"
            ],
            "the first ready does not reload; the one after going down does"
        );
    }

    #[test]
    fn each_attempt_tries_the_next_address_from_the_one_that_answered() {
        let a: SocketAddr = "[::1]:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let upstream = Upstream::new(None, None, vec![a, b]);
        assert_eq!(upstream.addr_for_attempt(0), Some(a));
        assert_eq!(upstream.addr_for_attempt(1), Some(b));
        assert_eq!(upstream.addr_for_attempt(2), None);
        upstream.answered(b);
        assert_eq!(upstream.addr_for_attempt(0), Some(b));
        assert_eq!(upstream.addr_for_attempt(1), Some(a));
        assert!(upstream.has_another(1) && !upstream.has_another(2));
    }

    #[test]
    fn hot_reload_clients_are_recognised_by_path() {
        assert_eq!(hmr_client("/@vite/client"), Some("Vite"));
        assert_eq!(hmr_client("/base/@vite/client"), Some("Vite"));
        assert_eq!(hmr_client("/_next/hmr?id=1"), Some("Next.js"));
        assert_eq!(hmr_client("/app.js"), None);
    }

    #[test]
    fn a_pending_upstream_has_no_address_and_keeps_its_last_lines() {
        let upstream = Upstream::new(Some("npm run dev".into()), None, vec![]);
        assert_eq!(upstream.state(), UpstreamState::Pending);
        assert_eq!(upstream.addr_for_attempt(0), None);
        assert_eq!(upstream.display(), "npm run dev");
        for n in 0..30 {
            upstream.record_output(&format!("line {n}"));
        }
        let output = upstream.output();
        assert_eq!(output.len(), OUTPUT_LINES);
        assert_eq!(output.last().unwrap(), "line 29");
        assert!(!upstream.mark_down(), "only a ready upstream goes down");
    }
}
