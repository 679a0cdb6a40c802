//! relive's own figures, measured on the real binary over loopback and reported (never
//! asserted): start-up, idle memory, wake-ups while idle (no tab, then one tab open), memory
//! while streaming a 50 MB page 20 times, memory after 10,000 requests, file-write → `reload`
//! latency, a 500-file burst, and fan-out to 1,000 WebSocket clients. Bounded in count and time;
//! stops by itself.
//!
//! `cargo bench --bench live`

#[path = "http1.rs"]
mod http1;
#[path = "process.rs"]
mod process;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const PATIENCE: Duration = Duration::from_secs(30);

struct Relive {
    child: Child,
    addr: SocketAddr,
    started: Duration,
    /// The control token (`--print-token`).
    token: String,
    /// Where its state file goes, away from the watched folder.
    _runtime_dir: tempfile::TempDir,
}

impl Drop for Relive {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(root: &Path) -> Relive {
    let runtime_dir = tempfile::tempdir().unwrap();
    let begun = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args([".", "--port", "0", "--log-format", "json", "--print-token"])
        .current_dir(root)
        .env("XDG_RUNTIME_DIR", runtime_dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relive runs");
    let port = process::wait_listening(&mut child);
    let started = begun.elapsed();
    let mut token = String::new();
    let stdout = child.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut token).unwrap();
    Relive {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        started,
        token: token.trim().to_owned(),
        _runtime_dir: runtime_dir,
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><html><head><title>bench</title></head><body><p>hello</p></body></html>",
    )
    .unwrap();
    dir
}

/// GET over one keep-alive connection, reading each response to its end (chunked or sized).
async fn get_keepalive(stream: &mut TcpStream, path: &str, buf: &mut Vec<u8>) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    buf.clear();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed early");
        buf.extend_from_slice(&chunk[..n]);
        if http1::complete_response(buf).is_some() {
            return;
        }
    }
}

/// Streams `path` and discards it, returning the byte count.
async fn drain(addr: SocketAddr, path: &str) -> usize {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut total = 0;
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
    }
}

async fn socket(
    addr: SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    get_keepalive(&mut stream, "/", &mut buf).await;
    let page = String::from_utf8_lossy(&buf);
    let start = page.find("data-token=\"").unwrap() + 12;
    let token = &page[start..start + 32];
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{addr}/__relive/ws?token={token}"))
            .await
            .expect("socket opens");
    next_type(&mut ws).await; // hello
    ws
}

async fn next_type(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
) -> String {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("event in time")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            if json["type"] != "ping" {
                return json["type"].as_str().unwrap().to_owned();
            }
        }
    }
}

async fn startup_and_idle() {
    let dir = site();
    let mut times = Vec::new();
    let mut idle = 0;
    for _ in 0..20 {
        let relive = start(dir.path());
        times.push(relive.started.as_secs_f64() * 1000.0);
        // One request so the lazily built parts exist, then let it settle.
        drain(relive.addr, "/").await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        idle = status_kib(relive.child.id(), "VmRSS:");
    }
    times.sort_by(f64::total_cmp);
    println!(
        "start-up (spawn → accepting, 20 runs)   median {:.1} ms, max {:.1} ms",
        percentile(&times, 0.5),
        times[times.len() - 1]
    );
    println!("idle RSS                                 {}", mib(idle));
}

/// How many times each thread of `pid` has been switched to so far (each is a wake-up: the
/// thread slept and ran again), by thread id.
fn switches(pid: u32) -> std::collections::HashMap<String, u64> {
    let mut counts = std::collections::HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return counts;
    };
    for task in tasks.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue; // the thread ended meanwhile
        };
        let count: u64 = status
            .lines()
            .filter_map(|l| {
                l.strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            })
            .filter_map(|v| v.trim().parse::<u64>().ok())
            .sum();
        counts.insert(task.file_name().to_string_lossy().into_owned(), count);
    }
    counts
}

/// Wake-ups of every thread of `pid` over `span` (threads that started meanwhile count whole).
async fn wakeups_over(pid: u32, span: Duration) -> u64 {
    let before = switches(pid);
    tokio::time::sleep(span).await;
    switches(pid)
        .iter()
        .map(|(tid, after)| after - before.get(tid).copied().unwrap_or(0).min(*after))
        .sum()
}

async fn idle_wakeups() {
    const SPAN: Duration = Duration::from_secs(10);
    let dir = site();
    let relive = start(dir.path());
    let pid = relive.child.id();
    // A person's first page load and a few more, then nothing: the parts a request starts (the
    // proxy's timers, the internal origin) exist when the measuring starts.
    for _ in 0..5 {
        drain(relive.addr, "/").await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let none = wakeups_over(pid, SPAN).await;
    println!(
        "wake-ups while idle, no tab (10 s)       {none} ({:.1}/s)",
        none as f64 / SPAN.as_secs_f64()
    );
    let _tab = socket(relive.addr).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let one = wakeups_over(pid, SPAN).await;
    println!(
        "wake-ups while idle, one tab open (10 s) {one} ({:.1}/s; heartbeat every 30 s)",
        one as f64 / SPAN.as_secs_f64()
    );
}

async fn memory() {
    let dir = site();
    let line = format!("<p>{}</p>\n", "x".repeat(1017));
    let mut page = String::from("<html><body>\n");
    while page.len() < 50 * 1024 * 1024 {
        page.push_str(&line);
    }
    page.push_str("</body></html>\n");
    std::fs::write(dir.path().join("big.html"), &page).unwrap();
    let relive = start(dir.path());
    let pid = relive.child.id();
    drain(relive.addr, "/").await;
    let before = status_kib(pid, "VmHWM:");
    for _ in 0..20 {
        let n = drain(relive.addr, "/big.html").await;
        assert!(n > 50 * 1024 * 1024);
    }
    let after = status_kib(pid, "VmHWM:");
    println!(
        "streaming a 50 MB page 20 times         peak RSS {} → {} (+{})",
        mib(before),
        mib(after),
        mib(after.saturating_sub(before))
    );

    let mut stream = TcpStream::connect(relive.addr).await.unwrap();
    let mut buf = Vec::new();
    let begun = Instant::now();
    for i in 0..10_000 {
        let path = if i % 2 == 0 {
            "/"
        } else {
            "/__relive/client.js"
        };
        get_keepalive(&mut stream, path, &mut buf).await;
    }
    let elapsed = begun.elapsed();
    println!(
        "after 10,000 requests (1 connection)    RSS {} ({:.0} req/s sequential)",
        mib(status_kib(pid, "VmRSS:")),
        10_000.0 / elapsed.as_secs_f64()
    );
}

async fn reload_latency() {
    let dir = site();
    let relive = start(dir.path());
    let mut ws = socket(relive.addr).await;
    let mut samples = Vec::new();
    for i in 0..50 {
        let begun = Instant::now();
        std::fs::write(dir.path().join("index.html"), format!("<p>{i}</p>")).unwrap();
        assert_eq!(next_type(&mut ws).await, "morph");
        samples.push(begun.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "file write → reload frame (50 writes)   median {:.1} ms, p99 {:.1} ms",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );

    let mut samples = Vec::new();
    for _ in 0..50 {
        let body = r#"{"type":"reload"}"#;
        let request = format!(
            "POST /__relive/notify HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            relive.token,
            body.len()
        );
        let begun = Instant::now();
        let mut stream = TcpStream::connect(relive.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        assert_eq!(next_type(&mut ws).await, "reload");
        samples.push(begun.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    println!(
        "POST /__relive/notify → reload frame    median {:.2} ms, p99 {:.2} ms",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );

    std::fs::create_dir(dir.path().join("burst")).unwrap();
    for i in 0..500 {
        std::fs::write(dir.path().join(format!("burst/{i}.html")), "x").unwrap();
    }
    let first = next_type(&mut ws).await;
    std::fs::write(dir.path().join("after.css"), "p{}").unwrap();
    let second = next_type(&mut ws).await;
    println!(
        "500 files written at once               events: {first}, then {second} for the next write (one reload = burst coalesced)"
    );
}

async fn fan_out() {
    let dir = site();
    let relive = start(dir.path());
    let mut clients = Vec::new();
    for _ in 0..1000 {
        clients.push(socket(relive.addr).await);
    }
    let begun = Instant::now();
    std::fs::write(dir.path().join("index.html"), "<p>fan-out</p>").unwrap();
    let arrivals = futures_util::future::join_all(clients.iter_mut().map(|ws| async {
        next_type(ws).await;
        begun.elapsed()
    }))
    .await;
    let first = arrivals.iter().min().unwrap();
    let last = arrivals.iter().max().unwrap();
    println!(
        "1,000 WebSocket clients                 first {:.1} ms, last {:.1} ms after the write (spread {:.1} ms)",
        first.as_secs_f64() * 1000.0,
        last.as_secs_f64() * 1000.0,
        (*last - *first).as_secs_f64() * 1000.0
    );
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        println!(
            "relive {} — live figures (release build, loopback)",
            env!("CARGO_PKG_VERSION")
        );
        startup_and_idle().await;
        idle_wakeups().await;
        memory().await;
        reload_latency().await;
        fan_out().await;
    });
}
