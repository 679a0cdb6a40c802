//! Save → navigation beside the peers, in one run: the same page served by relive (static
//! mode), live-server and browser-sync (`--server`), each with its default settings, and one
//! headless Chromium tab on it. 30 saves each at the same cadence (the next save 0.8 s after the
//! tab showed the previous one); for each save, the time from the write to the navigation start
//! of the document that shows it, and the saves that never reloaded within 5 s. Reported,
//! never asserted; loopback only; bounded in count and time.
//!
//! Needs Chromium (`/usr/bin/chromium`) and npm: the peers are installed once, pinned, under
//! `~/.cache/relive/peers`, as `benches/load.py --peers` does.
//!
//! `cargo bench --bench saves`

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use relive::check::chromium::Chromium;
use serde_json::json;

const SAVES: usize = 30;
const CADENCE: Duration = Duration::from_millis(800);
const LOST_AFTER: Duration = Duration::from_secs(5);
const PEERS: &[&str] = &["live-server@1.2.2", "browser-sync@3.0.4"];

struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(program: &Path, args: &[String], port: u16) -> Server {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} never listened",
            program.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { child }
}

fn install_peers() -> Option<PathBuf> {
    let prefix = PathBuf::from(std::env::var_os("HOME")?).join(".cache/relive/peers");
    let bin = prefix.join("node_modules/.bin");
    if !bin.join("live-server").exists() || !bin.join("browser-sync").exists() {
        std::fs::create_dir_all(&prefix).ok()?;
        let installed = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .args(PEERS)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            return None;
        }
    }
    Some(bin)
}

fn page(version: usize) -> String {
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>saves</title></head>\
         <body><p id=v data-v={version}>version {version}</p></body></html>"
    )
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

async fn eval(browser: &mut Chromium, expression: &str) -> serde_json::Value {
    let params = json!({"expression": expression, "returnByValue": true});
    match browser.call("Runtime.evaluate", params).await {
        Ok(result) => result["result"]["value"].clone(),
        Err(_) => serde_json::Value::Null,
    }
}

/// Waits until the tab shows `version`; returns its document's navigation start.
async fn shown(browser: &mut Chromium, version: usize, patience: Duration) -> Option<f64> {
    let check = format!(
        "document.getElementById('v')?.dataset.v === '{version}' ? performance.timeOrigin : null"
    );
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if let Some(origin) = eval(browser, &check).await.as_f64() {
            return Some(origin);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

struct Outcome {
    name: &'static str,
    latencies: Vec<f64>,
    lost: usize,
}

async fn measure(name: &'static str, url: &str, site: &Path, browser: &mut Chromium) -> Outcome {
    std::fs::write(site.join("index.html"), page(0)).unwrap();
    browser
        .call("Page.navigate", json!({"url": url}))
        .await
        .expect("navigates");
    shown(browser, 0, Duration::from_secs(30))
        .await
        .expect("the page loads");
    // One unmeasured save: it proves the tool's client is connected.
    std::fs::write(site.join("index.html"), page(1)).unwrap();
    if shown(browser, 1, Duration::from_secs(30)).await.is_none() {
        panic!("{name} never reloaded at all");
    }
    tokio::time::sleep(CADENCE).await;
    let mut latencies = Vec::new();
    let mut lost = 0;
    for version in 2..SAVES + 2 {
        let saved_at = now_ms();
        std::fs::write(site.join("index.html"), page(version)).unwrap();
        match shown(browser, version, LOST_AFTER).await {
            Some(origin) => latencies.push(origin - saved_at),
            None => {
                lost += 1;
                browser
                    .call("Page.navigate", json!({"url": url}))
                    .await
                    .expect("navigates");
                shown(browser, version, Duration::from_secs(30))
                    .await
                    .expect("the page loads by hand");
            }
        }
        tokio::time::sleep(CADENCE).await;
    }
    Outcome {
        name,
        latencies,
        lost,
    }
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[((p / 100.0) * (samples.len() - 1) as f64).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let chromium = Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        eprintln!("saves: skipped: /usr/bin/chromium is missing (apt-get install -y chromium)");
        return;
    }
    let Some(peers) = install_peers() else {
        eprintln!("saves: skipped: npm could not install {PEERS:?}");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), page(0)).unwrap();
    let site_arg = site.display().to_string();
    let mut browser = Chromium::launch(chromium).await.expect("chromium starts");
    let mut outcomes = Vec::new();

    let port = free_port();
    let relive = start(
        Path::new(env!("CARGO_BIN_EXE_relive")),
        &[
            site_arg.clone(),
            "--port".into(),
            port.to_string(),
            "--strict-port".into(),
            "--quiet".into(),
        ],
        port,
    );
    let url = format!("http://127.0.0.1:{port}/");
    outcomes.push(measure("relive (static)", &url, &site, &mut browser).await);
    drop(relive);

    let port = free_port();
    let live_server = start(
        &peers.join("live-server"),
        &[
            format!("--port={port}"),
            "--host=127.0.0.1".into(),
            "--no-browser".into(),
            "--quiet".into(),
            site_arg.clone(),
        ],
        port,
    );
    let url = format!("http://127.0.0.1:{port}/");
    outcomes.push(measure("live-server 1.2.2", &url, &site, &mut browser).await);
    drop(live_server);

    let port = free_port();
    let browser_sync = start(
        &peers.join("browser-sync"),
        &[
            "start".into(),
            "--server".into(),
            site_arg.clone(),
            "--files".into(),
            site_arg.clone(),
            "--port".into(),
            port.to_string(),
            "--listen".into(),
            "127.0.0.1".into(),
            "--no-open".into(),
            "--no-ui".into(),
            "--no-notify".into(),
            "--logLevel".into(),
            "silent".into(),
        ],
        port,
    );
    let url = format!("http://127.0.0.1:{port}/");
    outcomes.push(measure("browser-sync 3.0.4", &url, &site, &mut browser).await);
    drop(browser_sync);

    println!(
        "save → navigation, {SAVES} saves each, next save {} ms after the page showed, one headless Chromium tab",
        CADENCE.as_millis()
    );
    println!(
        "  {:<22} {:>9} {:>9} {:>7}",
        "tool", "median ms", "p99 ms", "lost"
    );
    for outcome in &mut outcomes {
        let (median, p99) = (
            percentile(&mut outcome.latencies, 50.0),
            percentile(&mut outcome.latencies, 99.0),
        );
        println!(
            "  {:<22} {median:>9.0} {p99:>9.0} {:>4} of {SAVES}",
            outcome.name, outcome.lost
        );
    }
}
