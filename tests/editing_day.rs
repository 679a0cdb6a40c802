//! A day of editing, compressed, in real headless Chromium against the real binary, in static
//! and in proxy mode: 200 changes at a person's cadences (0.3 s to 3 s between saves, a
//! formatter writing twice, an editor's atomic rename save, stylesheet saves among page saves,
//! saves made the moment the page shows), seen by three tabs — one behind a proxy that blocks
//! WebSockets for the first half (so on the event stream, reporting its page errors), one on a
//! slow network — plus one in a minimized window; relive is restarted in the middle and, in
//! proxy mode, so is the dev server. After every change every tab shows the newest content
//! (reloaded, or restyled without a reload for a stylesheet), no tab is paused or stranded, the
//! event-stream tab's errors reach relive's output and it takes the WebSocket again once it
//! can, and the save → navigation times are printed.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::browser::{Browser, Tab};
use common::file_server::FileServer;
use common::{PATIENCE, Relive};
use serde_json::Value;

const CHANGES: usize = 200;
const RELIVE_RESTART_AT: usize = 70;
const UPSTREAM_RESTART_AT: usize = 140;
/// Where the proxy in front of the event-stream tab stops blocking WebSockets.
const WEBSOCKETS_ALLOWED_AT: usize = 100;
/// A person looks before saving again; only the "at once" saves come sooner.
const REACTION: Duration = Duration::from_millis(150);
/// Network latency of the slow tab (a phone on Wi-Fi).
const SLOW_LATENCY_MS: u64 = 150;
/// How long a tab may take to show a save before the test fails: longer than elsewhere, as
/// eight tabs, two relives and a dev server share two cores while `cargo test` runs both modes.
const TAB_PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Save {
    /// The page saved once.
    Page,
    /// A formatter on save: the page written twice in quick succession.
    Formatted,
    /// An editor's atomic save: a temp file renamed over the page.
    Atomic,
    /// The stylesheet saved: tabs restyle without a reload.
    Stylesheet,
    /// The page saved the moment the fast tabs show the previous save, while the slow tab is
    /// still loading it (its socket not yet open).
    AtOnce,
}

/// A fixed pseudo-random plan, the same on every run: what each save is and the pause before
/// the next one.
fn plan() -> Vec<(Save, Duration)> {
    let mut seed: u64 = 0x5eed_1dea;
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let mut at_once_run = 0;
    (0..CHANGES)
        .map(|i| {
            let roll = next(100);
            let mut save = match roll {
                0..45 => Save::Page,
                45..60 => Save::Formatted,
                60..75 => Save::Atomic,
                75..90 => Save::Stylesheet,
                _ => Save::AtOnce,
            };
            // A person reacts at once now and then, not three times running; and the restarts
            // come with a plain page save.
            if save == Save::AtOnce && at_once_run == 2
                || i == RELIVE_RESTART_AT
                || i == UPSTREAM_RESTART_AT
            {
                save = Save::Page;
            }
            at_once_run = if save == Save::AtOnce {
                at_once_run + 1
            } else {
                0
            };
            let pause_ms = match next(100) {
                0..60 => 300 + next(400),
                60..90 => 700 + next(800),
                _ => 1500 + next(1500),
            };
            (save, Duration::from_millis(pause_ms))
        })
        .collect()
}

fn page(version: usize, formatted: bool) -> String {
    // The page reports an error once loaded, on the tab that asks for it.
    let body = format!(
        "<p id=v data-v={version}>version {version}</p><script>addEventListener('load', () => \
         {{ if (window.reportDayErrors) console.error('day-error-{version}'); }});</script>"
    );
    if formatted {
        format!(
            "<!doctype html>\n<html>\n  <head>\n    <meta charset=utf-8>\n    <title>day</title>\n    \
             <link rel=stylesheet href=/style.css>\n  </head>\n  <body>\n    {body}\n  </body>\n</html>\n"
        )
    } else {
        format!(
            "<!doctype html><html><head><meta charset=utf-8><title>day</title>\
             <link rel=stylesheet href=/style.css></head><body>{body}</body></html>"
        )
    }
}

fn stylesheet(version: usize) -> String {
    format!("#v {{ padding-left: {version}px; }}\n")
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// What each tab must show: the page's version and the stylesheet's.
#[derive(Debug, Clone, Copy)]
struct Expected {
    page: usize,
    css: usize,
}

impl Expected {
    fn check(self) -> String {
        format!(
            "(() => {{ const el = document.getElementById('v'); \
             return el !== null && document.readyState === 'complete' \
             && el.dataset.v === '{}' && getComputedStyle(el).paddingLeft === '{}px'; }})()",
            self.page, self.css
        )
    }
}

struct Session {
    browser: Browser,
    /// Three visible tabs (the last on a slow network) and one hidden.
    tabs: Vec<Tab>,
    /// Each tab's current document, by its navigation start (ms since the epoch).
    origins: Vec<f64>,
    /// Save → navigation for page saves, in ms, visible and hidden tabs.
    visible_ms: Vec<f64>,
    hidden_ms: Vec<f64>,
    /// Stylesheet saves that reloaded a tab instead of restyling it.
    css_reloads: usize,
}

const HIDDEN: usize = 3;
const SLOW: usize = 2;
const EVENT_STREAM: usize = 1;

/// A proxy that blocks WebSockets until the tab's session storage says otherwise.
const BLOCK_WEBSOCKETS: &str = "(() => {
  const Real = window.WebSocket;
  function Blockable(url, protocols) {
    if (sessionStorage.getItem('relive-test-ws') !== 'open') throw new Error('blocked by a proxy');
    return new Real(url, protocols);
  }
  Blockable.prototype = Real.prototype;
  for (const name of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Blockable[name] = Real[name];
  window.WebSocket = Blockable;
  window.reportDayErrors = true;
})();";

impl Session {
    async fn open(url: &str) -> Option<Session> {
        let mut browser = Browser::launch().await?;
        let mut tabs = Vec::new();
        for index in 0..4 {
            let tab = browser.open_tab(index == HIDDEN).await;
            if index == EVENT_STREAM {
                browser
                    .call_in(
                        &tab,
                        "Page.addScriptToEvaluateOnNewDocument",
                        serde_json::json!({"source": BLOCK_WEBSOCKETS}),
                    )
                    .await;
            }
            if index == SLOW {
                browser
                    .call_in(&tab, "Network.enable", serde_json::json!({}))
                    .await;
                browser
                    .call_in(
                        &tab,
                        "Network.emulateNetworkConditions",
                        serde_json::json!({"offline": false, "latency": SLOW_LATENCY_MS,
                            "downloadThroughput": -1, "uploadThroughput": -1}),
                    )
                    .await;
            }
            browser
                .call_in(&tab, "Page.navigate", serde_json::json!({"url": url}))
                .await;
            tabs.push(tab);
        }
        for (index, tab) in tabs.iter().enumerate() {
            let seen = browser.eval_in(tab, "document.visibilityState").await;
            let expected = if index == HIDDEN { "hidden" } else { "visible" };
            assert_eq!(seen, expected, "tab {index}");
        }
        let mut session = Session {
            browser,
            tabs,
            origins: vec![0.0; 4],
            visible_ms: Vec::new(),
            hidden_ms: Vec::new(),
            css_reloads: 0,
        };
        session
            .wait_all(Expected { page: 0, css: 0 }, None, 0.0)
            .await;
        Some(session)
    }

    /// Waits until each of `which` tabs (all when `None`) shows `expected` and is not paused;
    /// records save → navigation for the tabs that navigated after `saved_at`.
    async fn wait_all(&mut self, expected: Expected, which: Option<&[usize]>, saved_at: f64) {
        let check = expected.check();
        let all: Vec<usize> = (0..self.tabs.len()).collect();
        for &index in which.unwrap_or(&all) {
            let started = Instant::now();
            let deadline = started + TAB_PATIENCE;
            loop {
                if self.browser.eval_in(&self.tabs[index], &check).await == true {
                    if started.elapsed() > Duration::from_secs(3) {
                        eprintln!(
                            "tab {index} took {:?} to show {expected:?}",
                            started.elapsed()
                        );
                    }
                    break;
                }
                if Instant::now() > deadline {
                    let seen = self
                        .browser
                        .eval_in(
                            &self.tabs[index],
                            "JSON.stringify({v: document.getElementById('v')?.dataset.v, \
                             pad: document.getElementById('v') && getComputedStyle(document.getElementById('v')).paddingLeft, \
                             relive: globalThis.__relive ?? null, url: location.href})",
                        )
                        .await;
                    panic!("tab {index} never showed {expected:?}: {seen}");
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            let state = self
                .browser
                .eval_in(
                    &self.tabs[index],
                    "JSON.stringify({origin: performance.timeOrigin, paused: __relive.paused, loop: __relive.loop})",
                )
                .await;
            let state: Value = serde_json::from_str(state.as_str().unwrap_or("{}")).unwrap();
            assert_eq!(state["paused"], false, "tab {index} paused live reload");
            assert_eq!(state["loop"], Value::Null, "tab {index} saw a loop");
            let origin = state["origin"].as_f64().expect("a navigation start");
            if origin > saved_at && saved_at > 0.0 && origin != self.origins[index] {
                let ms = origin - saved_at;
                if index == HIDDEN {
                    self.hidden_ms.push(ms);
                } else {
                    self.visible_ms.push(ms);
                }
            }
            self.origins[index] = origin;
        }
    }

    async fn origins_now(&mut self) -> Vec<f64> {
        let mut now = Vec::new();
        for tab in &self.tabs {
            now.push(
                self.browser
                    .eval_in(tab, "performance.timeOrigin")
                    .await
                    .as_f64()
                    .unwrap_or(0.0),
            );
        }
        now
    }
}

fn write_atomically(path: &Path, content: &str) {
    let temp = path.with_extension("html.tmp");
    std::fs::write(&temp, content).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank]
}

/// The two modes take turns: each drives four tabs, and `cargo test` runs on two cores.
static ONE_MODE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn a_day_of_editing(proxy: bool) {
    let _turn = ONE_MODE_AT_A_TIME.lock().await;
    if proxy && !FileServer::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let site: PathBuf = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    let index = site.join("index.html");
    std::fs::write(&index, page(0, false)).unwrap();
    std::fs::write(site.join("style.css"), stylesheet(0)).unwrap();

    let upstream_port = common::unused_port();
    let mut upstream = proxy.then(|| FileServer::start(&site, upstream_port));
    let upstream_url = format!("http://127.0.0.1:{upstream_port}");
    let port = common::unused_port().to_string();
    let site_arg = site.to_str().unwrap().to_owned();
    let args: Vec<&str> = if proxy {
        vec![
            "--port",
            &port,
            "--strict-port",
            "--proxy",
            &upstream_url,
            "--watch",
            &site_arg,
        ]
    } else {
        vec!["--port", &port, "--strict-port", &site_arg]
    };
    let mut relive = Some(Relive::start(&args, dir.path()));
    let url = relive.as_ref().unwrap().url("/");
    let Some(mut session) = Session::open(&url).await else {
        return;
    };

    let mut expected = Expected { page: 0, css: 0 };
    let plan = plan();
    for (i, &(save, pause)) in plan.iter().enumerate() {
        let version = i + 1;
        let before = session.origins.clone();
        let saved_at = now_ms();
        let started = Instant::now();
        match save {
            Save::Stylesheet => {
                std::fs::write(site.join("style.css"), stylesheet(version)).unwrap();
                expected.css = version;
            }
            Save::Formatted => {
                std::fs::write(&index, page(version, false)).unwrap();
                std::fs::write(&index, page(version, true)).unwrap();
                expected.page = version;
            }
            Save::Atomic => {
                write_atomically(&index, &page(version, i % 2 == 0));
                expected.page = version;
            }
            Save::Page | Save::AtOnce if i == RELIVE_RESTART_AT => {
                drop(relive.take());
                std::fs::write(&index, page(version, false)).unwrap();
                relive = Some(Relive::start(&args, dir.path()));
                expected.page = version;
            }
            Save::Page | Save::AtOnce if proxy && i == UPSTREAM_RESTART_AT => {
                drop(upstream.take());
                std::fs::write(&index, page(version, false)).unwrap();
                upstream = Some(FileServer::start(&site, upstream_port));
                expected.page = version;
            }
            Save::Page | Save::AtOnce => {
                std::fs::write(&index, page(version, false)).unwrap();
                expected.page = version;
            }
        }
        // The next save at once: only the fast tabs are waited for, the slow one is mid-load.
        let next_at_once = plan
            .get(i + 1)
            .is_some_and(|(next, _)| *next == Save::AtOnce);
        let fast: Vec<usize> = (0..session.tabs.len()).filter(|&t| t != SLOW).collect();
        session
            .wait_all(expected, next_at_once.then_some(&fast[..]), saved_at)
            .await;
        if save == Save::Stylesheet {
            let after = session.origins_now().await;
            for (tab, (was, is)) in before.iter().zip(&after).enumerate() {
                if was != is && *was != 0.0 && i > 0 && plan[i - 1].0 != Save::AtOnce {
                    eprintln!("tab {tab} reloaded for a stylesheet save (change {version})");
                    session.css_reloads += 1;
                }
            }
        }
        if version == WEBSOCKETS_ALLOWED_AT {
            allow_websockets(&mut session, relive.as_ref().expect("relive runs")).await;
        }
        if !next_at_once {
            let looked = started.elapsed();
            tokio::time::sleep(pause.saturating_sub(looked).max(REACTION)).await;
        }
    }

    // Nobody is stranded: every tab ends connected, showing the last save.
    session.wait_all(expected, None, 0.0).await;
    for tab in &session.tabs {
        session
            .browser
            .wait_until_in(tab, "__relive.status === 'connected'", PATIENCE)
            .await;
    }
    let relive = relive.expect("relive runs");
    let mut loop_lines = Vec::new();
    while let Ok(line) = relive.lines.try_recv() {
        if line.contains("\"event\":\"loop\"") {
            loop_lines.push(line);
        }
    }
    assert!(loop_lines.is_empty(), "relive saw a loop: {loop_lines:?}");
    assert_eq!(session.css_reloads, 0, "stylesheet saves reloaded tabs");
    let mode = if proxy { "proxy" } else { "static" };
    let (visible, hidden) = (&mut session.visible_ms, &mut session.hidden_ms);
    eprintln!(
        "{mode}: {CHANGES} changes; save → navigation over {} page loads: p50 {:.0} ms, p99 {:.0} ms \
         (hidden tab: {} loads, p50 {:.0} ms, p99 {:.0} ms)",
        visible.len(),
        percentile(visible, 50.0),
        percentile(visible, 99.0),
        hidden.len(),
        percentile(hidden, 50.0),
        percentile(hidden, 99.0),
    );
}

/// The event-stream tab's errors reached relive; then its proxy lets WebSockets through and
/// the stream drops (as proxies cut long responses): the tab must take the WebSocket again.
async fn allow_websockets(session: &mut Session, relive: &Relive) {
    let tab = &session.tabs[EVENT_STREAM];
    let transport = session.browser.eval_in(tab, "__relive.transport").await;
    assert_eq!(transport, "event-stream");
    let mut reported = 0;
    while let Ok(line) = relive.lines.try_recv() {
        if line.contains("day-error-") {
            reported += 1;
        }
    }
    assert!(
        reported > 0,
        "no page error from the event-stream tab reached relive's output"
    );
    session
        .browser
        .eval_in(
            tab,
            "sessionStorage.setItem('relive-test-ws', 'open'); __relive.debugDrop(); true",
        )
        .await;
    // Back on the WebSocket, or the tab stayed on the event stream after WebSockets worked.
    session
        .browser
        .wait_until_in(
            tab,
            "__relive.transport === 'websocket' && __relive.status === 'connected'",
            PATIENCE,
        )
        .await;
    eprintln!("event-stream tab: {reported} page errors reported; back on the WebSocket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_save_of_a_day_of_editing_reaches_every_tab_in_static_mode() {
    a_day_of_editing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_save_of_a_day_of_editing_reaches_every_tab_in_proxy_mode() {
    a_day_of_editing(true).await;
}
