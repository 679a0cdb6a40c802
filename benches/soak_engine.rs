//! The soak: relive (the real binary) in front of an upstream that restarts every few seconds,
//! with WebSocket tabs connecting and leaving all the time, a watched file changing, and steady
//! HTTP load, for a bounded time. Shared by the one-minute CI soak (`tests/soak.rs`, which
//! asserts) and the long soak (`cargo bench --bench soak`, which reports).
//!
//! Loopback only; every task stops at the end of the run.

#[path = "http1.rs"]
mod http1;
#[path = "process.rs"]
mod process;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// How the soak runs.
pub struct Plan {
    pub duration: Duration,
    pub sample_every: Duration,
    /// The upstream is stopped and started again this often.
    pub upstream_restart_every: Duration,
    /// The watched file is written this often (apart enough never to be debounced together).
    pub write_every: Duration,
    pub observers: usize,
    pub churners: usize,
    pub load_workers: usize,
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at_s: u64,
    pub rss_kib: u64,
    pub fds: usize,
    pub threads: u64,
    pub tabs: u64,
    pub requests: u64,
    pub failed_requests: u64,
    pub p99_ms: f64,
    pub reloads_sent: u64,
}

/// What the run showed.
pub struct Outcome {
    pub idle_rss_kib: u64,
    pub idle_fds: usize,
    pub end_rss_kib: u64,
    pub end_fds: usize,
    pub samples: Vec<Sample>,
    /// File writes during the run, and for each observer tab how many of their reloads it got.
    pub writes: u64,
    pub delivered: Vec<u64>,
    pub socket_sessions: u64,
    pub upstream_restarts: u64,
    /// After the run: how many of `final_tabs` fresh and long-lived tabs got the next reload.
    pub final_tabs: usize,
    pub final_reloaded: usize,
    pub alive: bool,
}

struct Relive {
    child: Child,
    addr: SocketAddr,
    _runtime: tempfile::TempDir,
}

impl Drop for Relive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_relive(binary: &str, upstream: u16, watched: &Path) -> Relive {
    let runtime = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary)
        .args([
            "--proxy",
            &format!("http://127.0.0.1:{upstream}"),
            "--watch",
        ])
        .arg(watched)
        .args(["--port", "0", "--log-format", "json"])
        .env("XDG_RUNTIME_DIR", runtime.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relive runs");
    let port = process::wait_listening(&mut child);
    Relive {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _runtime: runtime,
    }
}

fn proc_status(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// An upstream that serves a page and a script, and is stopped (listener and every connection
/// closed) and started again every `every`.
async fn flaky_upstream(
    port: u16,
    every: Duration,
    stop: Arc<AtomicBool>,
    restarts: Arc<AtomicU64>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut connections = tokio::task::JoinSet::new();
        let until = tokio::time::sleep(every);
        tokio::pin!(until);
        loop {
            tokio::select! {
                _ = &mut until => break,
                accepted = listener.accept() => if let Ok((stream, _)) = accepted {
                    connections.spawn(serve_upstream(stream));
                },
            }
        }
        drop(listener);
        connections.abort_all();
        restarts.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn serve_upstream(mut stream: TcpStream) {
    let page =
        "<!doctype html><html><head><title>soak</title></head><body><p>soak</p></body></html>";
    let script = "console.log('soak');".repeat(50);
    let mut buf = vec![0u8; 8192];
    let mut pending = Vec::new();
    loop {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_string();
            pending.drain(..end + 4);
            let (kind, body) = if head.starts_with("GET /app.js") {
                ("text/javascript", script.as_str())
            } else {
                ("text/html; charset=utf-8", page)
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if stream.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// One keep-alive GET; returns the status (0 when the connection failed).
async fn get(stream: &mut Option<TcpStream>, addr: SocketAddr, path: &str) -> u16 {
    if stream.is_none() {
        *stream = TcpStream::connect(addr).await.ok();
    }
    let Some(conn) = stream.as_mut() else {
        return 0;
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\n\r\n");
    if conn.write_all(request.as_bytes()).await.is_err() {
        *stream = None;
        return 0;
    }
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = match tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => {
                *stream = None;
                return 0;
            }
        };
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head) = http1::complete_response(&buf) {
            let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            if head.contains("connection: close") {
                *stream = None;
            }
            return status;
        }
    }
}

/// The token pages carry (the waiting page has it too).
async fn token(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(addr).await.ok()?;
    let request =
        "GET / HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut page = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut page))
        .await
        .ok()?
        .ok()?;
    let page = String::from_utf8_lossy(&page);
    let start = page.find("data-token=\"")? + 12;
    Some(page.get(start..start + 32)?.to_owned())
}

async fn open_socket(addr: SocketAddr, token: &str, resume: Option<(&str, u64)>) -> Option<Socket> {
    let mut url = format!("ws://{addr}/__relive/ws?token={token}");
    if let Some((session, last_id)) = resume {
        url.push_str(&format!("&session={session}&last_id={last_id}"));
    }
    tokio_tungstenite::connect_async(url)
        .await
        .ok()
        .map(|(s, _)| s)
}

/// A tab for the whole run: answers heartbeats, counts reloads caused by the watched file,
/// and resumes where it left off if its connection drops.
async fn observer(
    addr: SocketAddr,
    token: String,
    stop: Arc<AtomicBool>,
    ready: tokio::sync::mpsc::Sender<()>,
) -> u64 {
    let mut delivered = 0;
    let mut resume: Option<(String, u64)> = None;
    let mut announced = false;
    while !stop.load(Ordering::Relaxed) {
        let Some(mut socket) = open_socket(
            addr,
            &token,
            resume.as_ref().map(|(s, id)| (s.as_str(), *id)),
        )
        .await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        loop {
            let message = tokio::select! {
                m = socket.next() => m,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    if stop.load(Ordering::Relaxed) { return delivered; }
                    continue;
                }
            };
            let Some(Ok(Message::Text(text))) = message else {
                break;
            };
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            match event["type"].as_str().unwrap_or("") {
                "hello" => {
                    let session = event["session_id"].as_str().unwrap_or("").to_owned();
                    let last = resume
                        .as_ref()
                        .map_or(event["data"]["last_id"].as_u64().unwrap_or(0), |r| r.1);
                    resume = Some((session, last));
                    if !announced {
                        announced = true;
                        let _ = ready.send(()).await;
                    }
                }
                "ping" => {
                    let pong = serde_json::json!({"type": "pong", "sent": event["data"]["sent"]});
                    let _ = socket.send(Message::text(pong.to_string())).await;
                }
                kind => {
                    if let (Some(r), Some(id)) = (resume.as_mut(), event["id"].as_u64()) {
                        r.1 = r.1.max(id);
                    }
                    // A page saved: `morph` (the tab updates it in place) or `reload`.
                    if (kind == "reload" || kind == "morph")
                        && event["data"]["paths"]
                            .as_array()
                            .is_some_and(|p| p.iter().any(|p| p == "/index.html"))
                    {
                        delivered += 1;
                    }
                }
            }
        }
    }
    delivered
}

/// Tabs that come and go: connect, stay a moment, leave.
async fn churner(
    addr: SocketAddr,
    token: String,
    stop: Arc<AtomicBool>,
    sessions: Arc<AtomicU64>,
    seed: u64,
) {
    let mut n = seed;
    while !stop.load(Ordering::Relaxed) {
        if let Some(mut socket) = open_socket(addr, &token, None).await {
            sessions.fetch_add(1, Ordering::Relaxed);
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let stay = Duration::from_millis(100 + (n >> 33) % 900);
            let _ =
                tokio::time::timeout(stay, async { while socket.next().await.is_some() {} }).await;
            // Half leave politely, half just vanish.
            if n.is_multiple_of(2) {
                let _ = socket.close(None).await;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

struct Load {
    requests: AtomicU64,
    failed: AtomicU64,
    latencies: std::sync::Mutex<Vec<f64>>,
}

async fn load_worker(addr: SocketAddr, stop: Arc<AtomicBool>, load: Arc<Load>) {
    let mut stream = None;
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let path = if i.is_multiple_of(2) { "/" } else { "/app.js" };
        let begun = Instant::now();
        let status = get(&mut stream, addr, path).await;
        let ms = begun.elapsed().as_secs_f64() * 1000.0;
        load.requests.fetch_add(1, Ordering::Relaxed);
        if status == 200 {
            load.latencies.lock().unwrap().push(ms);
        } else {
            // 502 (the upstream is restarting) or a dropped connection.
            load.failed.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs the soak against the relive binary at `binary`.
pub async fn run(binary: &str, plan: Plan, mut on_sample: impl FnMut(&Sample)) -> Outcome {
    let watched = tempfile::tempdir().unwrap();
    let file = watched.path().join("index.html");
    std::fs::write(&file, "0").unwrap();
    let upstream_port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let restarts = Arc::new(AtomicU64::new(0));
    let upstream = tokio::spawn(flaky_upstream(
        upstream_port,
        plan.upstream_restart_every,
        stop.clone(),
        restarts.clone(),
    ));
    let relive = start_relive(binary, upstream_port, watched.path());
    let pid = relive.child.id();
    let addr = relive.addr;
    let token = loop {
        if let Some(token) = token(addr).await {
            break token;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = proc_status(pid, "VmRSS:");
    let idle_fds = fds(pid);

    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(plan.observers.max(1));
    let observers: Vec<_> = (0..plan.observers)
        .map(|_| {
            tokio::spawn(observer(
                addr,
                token.clone(),
                stop.clone(),
                ready_tx.clone(),
            ))
        })
        .collect();
    for _ in 0..plan.observers {
        ready_rx.recv().await;
    }
    let sessions = Arc::new(AtomicU64::new(0));
    let churners: Vec<_> = (0..plan.churners)
        .map(|i| {
            tokio::spawn(churner(
                addr,
                token.clone(),
                stop.clone(),
                sessions.clone(),
                i as u64,
            ))
        })
        .collect();
    let load = Arc::new(Load {
        requests: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        latencies: Default::default(),
    });
    let workers: Vec<_> = (0..plan.load_workers)
        .map(|_| tokio::spawn(load_worker(addr, stop.clone(), load.clone())))
        .collect();

    let begun = Instant::now();
    let mut writes = 0u64;
    let mut samples = Vec::new();
    let mut next_write = begun + plan.write_every;
    let mut next_sample = begun + plan.sample_every;
    while begun.elapsed() < plan.duration {
        let now = Instant::now();
        if now >= next_write {
            writes += 1;
            std::fs::write(&file, writes.to_string()).unwrap();
            next_write += plan.write_every;
        }
        if now >= next_sample {
            next_sample += plan.sample_every;
            let mut latencies = std::mem::take(&mut *load.latencies.lock().unwrap());
            latencies.sort_by(|a, b| a.total_cmp(b));
            let p99 = latencies
                .get(((latencies.len() as f64 - 1.0) * 0.99).round().max(0.0) as usize)
                .copied()
                .unwrap_or(0.0);
            let status: serde_json::Value =
                serde_json::from_str(&status_text(addr).await).unwrap_or_default();
            let sample = Sample {
                at_s: begun.elapsed().as_secs(),
                rss_kib: proc_status(pid, "VmRSS:"),
                fds: fds(pid),
                threads: proc_status(pid, "Threads:"),
                tabs: status["clients"].as_u64().unwrap_or(0),
                requests: load.requests.load(Ordering::Relaxed),
                failed_requests: load.failed.load(Ordering::Relaxed),
                p99_ms: p99,
                reloads_sent: status["counters"]["reloads"].as_u64().unwrap_or(0)
                    + status["counters"]["morphs"].as_u64().unwrap_or(0),
            };
            on_sample(&sample);
            samples.push(sample);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Stop the load and the churn; let the last write's reload arrive before the observers stop.
    stop.store(true, Ordering::Relaxed);
    for task in workers.into_iter().chain(churners) {
        let _ = task.await;
    }
    let _ = upstream.await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut delivered = Vec::new();
    for task in observers {
        delivered.push(task.await.unwrap_or(0));
    }
    // Back to rest: every connection relive had for the load is gone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let end_rss_kib = proc_status(pid, "VmRSS:");
    let end_fds = fds(pid);

    // The next reload reaches every tab connected now.
    let final_tabs = 10;
    let mut sockets = Vec::new();
    for _ in 0..final_tabs {
        if let Some(mut socket) = open_socket(addr, &token, None).await {
            let _ = socket.next().await; // hello
            sockets.push(socket);
        }
    }
    std::fs::write(&file, "final").unwrap();
    let mut final_reloaded = 0;
    for socket in &mut sockets {
        let got = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(Ok(Message::Text(text))) = socket.next().await {
                let update =
                    text.contains("\"type\":\"reload\"") || text.contains("\"type\":\"morph\"");
                if update && text.contains("/index.html") {
                    return true;
                }
            }
            false
        })
        .await;
        if got == Ok(true) {
            final_reloaded += 1;
        }
    }
    let mut relive = relive;
    let alive = matches!(relive.child.try_wait(), Ok(None));
    Outcome {
        idle_rss_kib,
        idle_fds,
        end_rss_kib,
        end_fds,
        samples,
        writes,
        delivered,
        socket_sessions: sessions.load(Ordering::Relaxed),
        upstream_restarts: restarts.load(Ordering::Relaxed),
        final_tabs,
        final_reloaded,
        alive,
    }
}

async fn status_text(addr: SocketAddr) -> String {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return String::new();
    };
    let request = "GET /__relive/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default()
}
