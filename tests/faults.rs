//! Faults relive must survive: upstreams that reset, stop halfway, never answer or trickle;
//! clients that leave mid-stream, stop reading, or open many tabs. Each test checks what the
//! client got and that relive still serves the next request; the resource tests check that
//! descriptors return to where they were.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PAGE_HEAD: &str = "<!doctype html><html><head><title>fault</title></head><body>";

/// An upstream whose answer depends on the path; counts the connections it accepted.
struct Scripted {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Scripted {
    async fn start() -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(script(stream));
            }
        });
        Scripted { port, accepted }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

async fn script(mut stream: TcpStream) {
    loop {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let half = format!("{PAGE_HEAD}{}", "<p>half</p>".repeat(90));
        match path.as_str() {
            "/reset-page" | "/half-page" => {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n{half}"
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.flush().await;
                if path == "/reset-page" {
                    // RST instead of FIN.
                    let _ = stream.set_zero_linger();
                }
                return;
            }
            "/half-asset" => {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/javascript\r\nContent-Length: 5000\r\n\r\n{}",
                    "x".repeat(1000)
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                return;
            }
            "/silent" => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                return;
            }
            "/two-lengths" => {
                let page = format!("{PAGE_HEAD}<p>ambiguous</p></body></html>");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nContent-Length: {}\r\n\r\n{page}",
                    page.len(),
                    page.len() + 40
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(60)).await;
                return;
            }
            "/bad-chunk" => {
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{}\r\nzz\r\nmore\r\n0\r\n\r\n",
                    &PAGE_HEAD[..16]
                );
                let _ = stream.write_all(answer.as_bytes()).await;
                tokio::time::sleep(Duration::from_secs(60)).await;
                return;
            }
            "/trickle" => {
                let page = format!("{PAGE_HEAD}<p>slow</p></body></html>");
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n",
                    page.len()
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for byte in page.bytes() {
                    if stream.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            "/big" => {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("<p>{}</p>\n", "y".repeat(16 * 1024));
                for _ in 0..2000 {
                    let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
                    if stream.write_all(framed.as_bytes()).await.is_err() {
                        return;
                    }
                }
                let _ = stream.write_all(b"0\r\n\r\n").await;
            }
            _ => {
                let page = format!("{PAGE_HEAD}<p>ok</p></body></html>");
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{page}",
                    page.len()
                );
                if stream.write_all(answer.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn start(upstream: &Scripted, config: &str) -> (tempfile::TempDir, Relive) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("relive.toml"), config).unwrap();
    let relive = Relive::start(&["--proxy", &upstream.url()], dir.path());
    (dir, relive)
}

/// The whole answer to one request on its own connection, up to the close.
async fn whole(addr: std::net::SocketAddr, path: &str) -> String {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\nSec-Fetch-Mode: navigate\r\nConnection: close\r\n\r\n"
    );
    String::from_utf8_lossy(&raw(addr, request.as_bytes()).await).into_owned()
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Waits (bounded) until relive's descriptors are back to at most `limit`; returns the count.
async fn fds_settle(pid: u32, limit: usize) -> usize {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let now = fds(pid);
        if now <= limit || std::time::Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_page_cut_off_by_the_upstream_is_aborted_never_completed() {
    let upstream = Scripted::start().await;
    let (_dir, relive) = start(&upstream, "");
    for path in ["/reset-page", "/half-page"] {
        let answer = whole(relive.addr, path).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        assert!(
            !answer.ends_with("0\r\n\r\n"),
            "{path}: a truncated page must not end like a complete one"
        );
        // The tag may be in already (it goes in early, while the page streams), but nothing is
        // appended after the last byte the upstream sent.
        if let Some(tag) = answer.find("data-relive") {
            let last = answer.rfind("<p>half</p>").unwrap();
            assert!(tag < last, "{path}: the tag was appended to a cut page");
        }
        // relive still serves, on a fresh upstream connection.
        let before = upstream.accepted.load(Ordering::SeqCst);
        let canary = get(relive.addr, "/ok", NAVIGATION).await;
        assert_eq!(canary.status, 200);
        assert_eq!(canary.text().matches("data-relive").count(), 1);
        assert!(
            upstream.accepted.load(Ordering::SeqCst) > before,
            "{path}: the faulty connection was reused"
        );
    }
}

#[tokio::test]
async fn an_upstream_answer_with_conflicting_lengths_or_a_bad_chunk_is_never_passed_as_complete() {
    let upstream = Scripted::start().await;
    let (_dir, relive) = start(&upstream, "");
    for path in ["/two-lengths", "/bad-chunk"] {
        let answer = whole(relive.addr, path).await;
        let complete_200 = answer.starts_with("HTTP/1.1 200")
            && (answer.ends_with("0\r\n\r\n") || answer.contains("Content-Length"));
        assert!(
            !complete_200,
            "{path}: an ambiguous upstream answer was passed on as complete:\n{answer}"
        );
        let before = upstream.accepted.load(Ordering::SeqCst);
        let canary = get(relive.addr, "/ok", NAVIGATION).await;
        assert_eq!(canary.status, 200, "{path}: canary");
        assert!(
            upstream.accepted.load(Ordering::SeqCst) > before,
            "{path}: the faulty upstream connection was reused"
        );
    }
}

#[tokio::test]
async fn an_asset_cut_short_arrives_short_not_padded() {
    let upstream = Scripted::start().await;
    let (_dir, relive) = start(&upstream, "");
    let request = format!(
        "GET /half-asset HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        relive.addr
    );
    let answer = raw(relive.addr, request.as_bytes()).await;
    let text = String::from_utf8_lossy(&answer);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    assert!(text.contains("Content-Length: 5000"), "{text}");
    assert_eq!(
        body.len(),
        1000,
        "exactly what the upstream sent, and then the close"
    );
    assert_eq!(get(relive.addr, "/ok", NAVIGATION).await.status, 200);
}

#[tokio::test]
async fn an_upstream_that_never_answers_times_out_without_holding_up_the_rest() {
    let upstream = Scripted::start().await;
    let (_dir, relive) = start(&upstream, "[server]\nupstream_timeout_secs = 1\n");
    let addr = relive.addr;
    let silent = tokio::spawn(async move { get(addr, "/silent", NAVIGATION).await });
    let other = get(relive.addr, "/ok", NAVIGATION).await;
    assert_eq!(other.status, 200, "served while another request waits");
    let silent = silent.await.unwrap();
    assert_eq!(silent.status, 504);
    assert!(
        silent.text().contains("The dev server did not answer"),
        "{}",
        silent.text()
    );
    assert!(silent.text().contains("upstream_timeout_secs"));
    let line = relive.wait_for_line("sent nothing for 1 s");
    assert!(line.contains("/silent"), "{line}");
    assert_eq!(get(relive.addr, "/ok", NAVIGATION).await.status, 200);
}

#[tokio::test]
async fn a_trickling_upstream_is_passed_through_while_others_are_served() {
    let upstream = Scripted::start().await;
    let (_dir, relive) = start(&upstream, "");
    let addr = relive.addr;
    let slow = tokio::spawn(async move { get(addr, "/trickle", NAVIGATION).await });
    for _ in 0..5 {
        assert_eq!(get(relive.addr, "/ok", NAVIGATION).await.status, 200);
    }
    let slow = slow.await.unwrap();
    assert_eq!(slow.status, 200);
    assert!(slow.text().contains("<p>slow</p>"));
    assert_eq!(slow.text().matches("data-relive").count(), 1);
}

#[tokio::test]
async fn clients_leaving_mid_stream_leave_nothing_behind() {
    let upstream = Scripted::start().await;
    let (_dir, relive) = start(&upstream, "");
    // Warm up: one complete exchange, so pools and sockets of the steady state exist.
    assert_eq!(get(relive.addr, "/ok", NAVIGATION).await.status, 200);
    let at_rest = fds(relive.pid());
    for _ in 0..20 {
        let mut stream = TcpStream::connect(relive.addr).await.unwrap();
        let request = format!(
            "GET /big HTTP/1.1\r\nHost: {}\r\nAccept: text/html\r\nSec-Fetch-Mode: navigate\r\n\r\n",
            relive.addr
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut first = vec![0u8; 64 * 1024];
        let _ = stream.read(&mut first).await.unwrap();
        drop(stream); // gone mid-page
    }
    assert_eq!(get(relive.addr, "/ok", NAVIGATION).await.status, 200);
    let after = fds_settle(relive.pid(), at_rest + 2).await;
    assert!(
        after <= at_rest + 2,
        "descriptors: {at_rest} at rest, {after} after"
    );
}

#[tokio::test]
async fn many_tabs_come_and_go_without_leaking() {
    let site = one_page_site();
    let relive = Relive::start(&["."], site.path());
    let (_warm, _) = connect_and_hello(relive.addr).await;
    let at_rest = fds(relive.pid());
    for _ in 0..3 {
        let mut tabs = Vec::new();
        for _ in 0..100 {
            tabs.push(connect_and_hello(relive.addr).await.0);
        }
        // Half leave politely, half vanish.
        for (i, mut tab) in tabs.into_iter().enumerate() {
            if i % 2 == 0 {
                let _ = tab.close(None).await;
            }
        }
    }
    let after = fds_settle(relive.pid(), at_rest).await;
    assert!(
        after <= at_rest,
        "descriptors: {at_rest} at rest, {after} after 300 tabs"
    );
    let status: serde_json::Value =
        serde_json::from_str(&get(relive.addr, "/__relive/status", &[]).await.text()).unwrap();
    assert_eq!(status["clients"], 1, "only the warm tab is left: {status}");
}

#[tokio::test]
async fn a_tab_that_stops_reading_cannot_slow_the_others() {
    let site = one_page_site();
    let relive = Relive::start(&["."], site.path());
    let token = relive.control_token();
    // The stalled tab: connected, never reads again.
    let _stalled = connect_and_hello(relive.addr).await.0;
    let (mut reader, _) = connect_and_hello(relive.addr).await;
    // 400 events of 60 KB (build errors with 30 long lines): 24 MB, far more than the socket
    // buffers and the per-tab queue hold.
    const EVENTS: usize = 400;
    let lines: Vec<String> = (0..30)
        .map(|i| format!("{i:02}{}", "e".repeat(1990)))
        .collect();
    let body = serde_json::json!({"type": "build_error", "code": 1, "lines": lines}).to_string();
    let mut control = TcpStream::connect(relive.addr).await.unwrap();
    let request = format!(
        "POST /__relive/notify HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        relive.addr,
        body.len()
    );
    let sender = tokio::spawn(async move {
        let mut answer = [0u8; 512];
        for _ in 0..EVENTS {
            control.write_all(request.as_bytes()).await.unwrap();
            let n = control.read(&mut answer).await.unwrap();
            assert!(n > 0 && answer.starts_with(b"HTTP/1.1 202"));
        }
    });
    let mut received = 0;
    while received < EVENTS {
        let event = next_event(&mut reader).await;
        if event["type"] == "build_error" {
            received += 1;
        } else if event["type"] == "reload" {
            // A reader that fell behind is told to reload; this one must keep up.
            panic!("the reading tab fell behind: {}", event["data"]["reason"]);
        }
    }
    sender.await.unwrap();
    // The stalled tab is dropped, not kept with a growing queue.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&get(relive.addr, "/__relive/status", &[]).await.text()).unwrap();
        if status["clients"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stalled tab was never dropped: {} clients",
            status["clients"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = reader.next().await;
}

#[tokio::test]
async fn editing_relive_toml_while_running_is_reported_and_nothing_breaks() {
    let site = one_page_site();
    let config = site.path().join("relive.toml");
    std::fs::write(&config, "[client]\nbadge = true\n").unwrap();
    let relive = Relive::start(&["."], site.path());
    std::fs::write(&config, "[client]\nbadge = true\ncolour = \"red\"\n").unwrap();
    let line = relive.wait_for_line("relive keeps running with the settings it started with");
    assert!(line.contains("line 3"), "{line}");
    assert!(line.contains("client.colour"), "{line}");
    assert_eq!(get(relive.addr, "/", NAVIGATION).await.status, 200);
    std::fs::write(&config, "[client]\nbadge = false\n").unwrap();
    relive.wait_for_line("restart relive to apply it");
    assert_eq!(get(relive.addr, "/", NAVIGATION).await.status, 200);
}

#[tokio::test]
async fn after_a_long_pause_tabs_reconnect_and_catch_up() {
    let Some(mut browser) = common::browser::Browser::launch().await else {
        return;
    };
    let site = one_page_site();
    // Heartbeats every second, so a silent connection is noticed within two.
    std::fs::write(
        site.path().join("relive.toml"),
        "[client]\nheartbeat_secs = 1\n",
    )
    .unwrap();
    let relive = Relive::start(&["."], site.path());
    browser.open(&relive.url("/")).await;
    browser.eval("window.marker = 'kept'").await;
    // The machine "sleeps": relive stops running; the tab hears nothing and starts reconnecting.
    let pid = relive.pid().to_string();
    let signal = |name: &str| {
        std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap();
    };
    signal("-STOP");
    browser
        .wait_until("globalThis.__relive?.status === 'reconnecting'")
        .await;
    // A change made while it slept is delivered when it wakes up.
    std::fs::write(site.path().join("index.html"), "<p>woke up</p>").unwrap();
    signal("-CONT");
    browser
        .wait_until(
            "window.marker === 'kept' && document.body?.textContent.includes('woke up') \
             && globalThis.__relive?.status === 'connected'",
        )
        .await;
}
