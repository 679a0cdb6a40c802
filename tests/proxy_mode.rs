//! Proxy mode: the real binary in front of an in-test upstream.

mod common;

use common::upstream::{PAGE, SCRIPT, Upstream, binary, gzip};
use common::{NAVIGATION, Relive, get, next_event, request};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn start(upstream: &str) -> (tempfile::TempDir, Relive) {
    let dir = tempfile::tempdir().unwrap();
    let relive = Relive::start(&["--proxy", upstream], dir.path());
    (dir, relive)
}

fn injected(page: &str) -> String {
    let start = page.find("<script type=\"module\"").expect("tag present");
    let end = start + page[start..].find("</script>").unwrap() + "</script>".len();
    format!("{}{}", &page[..start], &page[end..])
}

#[tokio::test]
async fn plain_chunked_gzip_and_http10_pages_get_one_tag() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    for path in ["/plain", "/chunked", "/gzip", "/http10"] {
        let page = get(relive.addr, path, NAVIGATION).await;
        assert_eq!(page.status, 200, "{path}");
        let text = page.text();
        assert_eq!(text.matches("data-relive").count(), 1, "{path}: {text}");
        assert_eq!(page.header("content-length"), None, "{path}");
        assert_eq!(page.header("content-encoding"), None, "{path}");
        let original = if path == "/chunked" {
            "<html><body><p>chunked</p></body></html>".to_owned()
        } else {
            PAGE.to_owned()
        };
        assert_eq!(injected(&text), original, "{path}: nothing else may change");
    }
    let etag = get(relive.addr, "/plain", NAVIGATION).await;
    assert_eq!(etag.header("etag"), Some("W/\"v1\""));
}

#[tokio::test]
async fn page_requests_ask_the_upstream_for_identity() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    get(relive.addr, "/plain", NAVIGATION).await;
    let heads = upstream.heads.lock().unwrap().clone();
    let head = heads.iter().find(|h| h.starts_with("GET /plain")).unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("accept-encoding: identity"),
        "{head}"
    );
    assert!(head.contains("x-forwarded-proto: http"), "{head}");
}

#[tokio::test]
async fn pages_are_asked_for_whole_and_assets_revalidate_by_tag_only() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let conditional = [
        ("If-None-Match", "\"v1\""),
        ("If-Modified-Since", "Thu, 03 Dec 2026 10:00:00 GMT"),
    ];
    let page: Vec<(&str, &str)> = NAVIGATION.iter().chain(&conditional).copied().collect();
    get(relive.addr, "/plain", &page).await;
    get(relive.addr, "/app.js", &conditional).await;
    let heads = upstream.heads.lock().unwrap().clone();
    let page = heads.iter().find(|h| h.starts_with("GET /plain")).unwrap();
    let page = page.to_ascii_lowercase();
    assert!(
        !page.contains("if-none-match") && !page.contains("if-modified-since"),
        "a page's tag is made per response: {page}"
    );
    let asset = heads.iter().find(|h| h.starts_with("GET /app.js")).unwrap();
    let asset = asset.to_ascii_lowercase();
    assert!(asset.contains("if-none-match: \"v1\""), "{asset}");
    assert!(
        !asset.contains("if-modified-since"),
        "whole seconds cannot tell two saves apart: {asset}"
    );
}

#[tokio::test]
async fn non_html_responses_are_byte_identical() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let js = get(relive.addr, "/app.js", NAVIGATION).await;
    assert_eq!(js.body, SCRIPT.as_bytes());
    let gz = get(relive.addr, "/gzip.js", &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.body, gzip(SCRIPT.as_bytes()));
    let bin = get(relive.addr, "/data.bin", &[]).await;
    assert_eq!(bin.body, binary());
    assert_eq!(bin.header("content-length"), Some("70000"));
}

#[tokio::test]
async fn script_requests_for_html_are_not_injected() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    for headers in [
        &[("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Dest", "empty")][..],
        &[("HX-Request", "true")][..],
        &[("X-Requested-With", "XMLHttpRequest")][..],
        &[("RSC", "1")][..],
    ] {
        let fragment = get(relive.addr, "/fragment", headers).await;
        assert_eq!(fragment.text(), "<li>partial</li>", "{headers:?}");
    }
}

#[tokio::test]
async fn request_target_reaches_the_upstream_byte_exact() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let targets = [
        "/a/%2e%2e/b%2Fc?x=1&y=%20z",
        "/caf%C3%A9/./page?q=a+b",
        "/double//slash?",
    ];
    for target in targets {
        let response = get(relive.addr, target, &[]).await;
        assert_eq!(
            response.text(),
            target,
            "the upstream saw a different target"
        );
    }
}

#[tokio::test]
async fn upstream_websockets_pass_through() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let url = format!("ws://{}/ws/hmr?token=abc", relive.addr);
    let (mut socket, response) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade through relive");
    assert_eq!(response.status(), 101);
    socket.send(Message::text("hi")).await.unwrap();
    let reply = socket.next().await.unwrap().unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "echo: hi");
    assert!(
        upstream
            .targets
            .lock()
            .unwrap()
            .contains(&"/ws/hmr?token=abc".to_owned())
    );
}

#[tokio::test]
async fn relive_endpoints_are_not_forwarded() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let js = get(relive.addr, "/__relive/client.js", &[]).await;
    assert!(js.text().contains("__relive/ws"));
    assert!(
        upstream.targets.lock().unwrap().is_empty(),
        "relive's own paths must never reach the upstream"
    );
}

#[tokio::test]
async fn a_20_mb_page_streams_through_intact() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let page = get(relive.addr, "/big?mb=20", NAVIGATION).await;
    assert_eq!(page.status, 200);
    let text = page.text();
    assert!(text.len() > 20 * 1000 * 1000);
    assert_eq!(text.matches("data-relive").count(), 1);
    // No charset anywhere: the tag goes in at the first element after the first kilobyte
    // (where browsers look for a <meta charset>), and the rest is passed on unparsed.
    let at = text.find("<script type=\"module\"").unwrap();
    assert!((1024..4096).contains(&at), "the tag is at byte {at}");
    assert!(text[at..].contains("</script><p>"));
    assert!(text.ends_with("</p>\n</body></html>"));
}

#[tokio::test]
async fn down_upstream_gets_the_waiting_page_until_it_answers() {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], common::unused_port()));
    let (_dir, relive) = start(&format!("http://{addr}"));

    let page = get(relive.addr, "/", NAVIGATION).await;
    assert_eq!(page.status, 502);
    assert!(page.text().contains("Waiting for"), "{}", page.text());
    assert_eq!(page.text().matches("data-relive").count(), 1);
    let asset = get(relive.addr, "/app.js", &[]).await;
    assert_eq!(asset.status, 502);

    let token = common::token_of(&page.text());
    let mut socket = socket_with_token(relive.addr, &token).await;
    assert_eq!(next_event(&mut socket).await["type"], "hello");

    let _back = Upstream::start_on(addr).await;
    let event = next_event(&mut socket).await;
    assert_eq!(event["type"], "upstream_status", "{event}");
    assert_eq!(event["data"]["status"], "ready", "{event}");
    // The waiting page's client reloads on this (checked in Chromium in tests/devserver.rs).
    let event = next_event(&mut socket).await;
    assert_eq!(event["type"], "preview_ready", "{event}");
    let page = get(relive.addr, "/plain", NAVIGATION).await;
    assert_eq!(page.status, 200);
}

async fn socket_with_token(addr: std::net::SocketAddr, token: &str) -> common::Socket {
    let url = format!("ws://{addr}/__relive/ws?token={token}");
    tokio_tungstenite::connect_async(url)
        .await
        .expect("relive socket")
        .0
}

#[tokio::test]
async fn head_and_connect_are_handled() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let head = request(relive.addr, "HEAD", "/plain", NAVIGATION).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), None);
    let connect = common::raw(
        relive.addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\nConnection: close\r\n\r\n",
    )
    .await;
    let connect = String::from_utf8_lossy(&connect);
    assert!(!connect.starts_with("HTTP/1.1 2"), "{connect}");
    assert!(
        !upstream
            .targets
            .lock()
            .unwrap()
            .iter()
            .any(|t| t.contains("example.com")),
        "CONNECT must not reach anything"
    );
}

#[tokio::test]
async fn watched_paths_update_tabs_in_proxy_mode_too() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("templates")).unwrap();
    let relive = Relive::start(
        &["--proxy", &upstream.url(), "--watch", "templates"],
        dir.path(),
    );
    let (mut socket, _) = common::connect_and_hello(relive.addr).await;
    std::fs::write(dir.path().join("templates/base.html"), "x").unwrap();
    // The upstream's own status may be announced first (its readiness probe races the write).
    let event = loop {
        let event = next_event(&mut socket).await;
        if !matches!(
            event["type"].as_str(),
            Some("upstream_status" | "preview_ready")
        ) {
            break event;
        }
    };
    assert_eq!(event["type"], "morph", "{event}");
}

#[tokio::test]
async fn an_upgrade_the_upstream_refuses_gets_its_complete_answer() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    // The in-test upstream answers this path with a plain 200 and keeps the connection open:
    // relive must still end the browser's response instead of waiting for a close.
    let request = format!(
        "GET /no-upgrade-here HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        relive.addr
    );
    let response =
        common::parse_response(&common::raw(relive.addr, request.as_bytes()).await, false);
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "/no-upgrade-here");
}

#[tokio::test]
async fn a_refused_relive_socket_gets_a_complete_403() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let request = format!(
        "GET /__relive/ws?token=wrong HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        relive.addr
    );
    let response =
        common::parse_response(&common::raw(relive.addr, request.as_bytes()).await, false);
    assert_eq!(response.status, 403);
    assert!(response.text().contains("forbidden"), "{}", response.text());
}

#[tokio::test]
async fn redirects_to_the_upstream_itself_come_back_to_relive() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let host = relive.addr.to_string();
    let answer = get(relive.addr, "/redirect-self", &[]).await;
    assert_eq!(answer.status, 302);
    assert_eq!(
        answer.header("location"),
        Some(format!("http://{host}/plain?from=redirect").as_str())
    );
    let away = get(relive.addr, "/redirect-away", &[]).await;
    assert_eq!(away.header("location"), Some("https://example.com/login"));
}

#[tokio::test]
async fn set_cookie_headers_pass_one_by_one() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let head = common::raw_head(
        relive.addr,
        format!(
            "GET /cookies HTTP/1.1\r\nHost: {}\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
            relive.addr
        )
        .as_bytes(),
    )
    .await;
    let cookies: Vec<&str> = head
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .collect();
    assert_eq!(
        cookies,
        [
            "Set-Cookie: a=1; Path=/; HttpOnly",
            "Set-Cookie: b=2, c=3; Path=/"
        ],
        "{head}"
    );
}

#[tokio::test]
async fn a_csp_that_blocks_the_client_is_reported_once() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let page = get(relive.addr, "/csp", NAVIGATION).await;
    assert_eq!(page.status, 200);
    let line = relive.wait_for_line("Content-Security-Policy");
    assert!(line.contains("script-src needs 'self'"), "{line}");
    assert!(line.contains("connect-src needs 'self'"), "{line}");
}

#[tokio::test]
async fn event_streams_are_not_buffered() {
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let mut stream = tokio::net::TcpStream::connect(relive.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(
            format!(
                "GET /events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
                relive.addr
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // The upstream holds the rest for a minute: the first event arrives only if nothing buffers.
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("data: first") {
        let read = tokio::time::timeout(common::PATIENCE, stream.read(&mut buf))
            .await
            .expect("the first event arrives while the stream is open")
            .unwrap();
        assert!(read > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..read]);
    }
}

#[tokio::test]
async fn not_modified_and_partial_pages_pass_as_they_came() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = Upstream::start().await;
    let (_dir, relive) = start(&upstream.url());
    let host = relive.addr;
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    // Reads one response: its head, then `Content-Length` bytes of body (none without one).
    async fn next_response(stream: &mut tokio::net::TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(common::PATIENCE, stream.read(&mut byte))
                .await
                .expect("a response")
                .unwrap();
            assert_eq!(n, 1, "closed after {}", String::from_utf8_lossy(&head));
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("Content-Length: ")
                    .or_else(|| l.strip_prefix("content-length: "))
            })
            .map_or(0, |v| v.trim().parse().unwrap());
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.unwrap();
        head + &String::from_utf8_lossy(&body)
    }
    let page = format!("Host: {host}\r\nAccept: text/html\r\nSec-Fetch-Mode: navigate\r\n");
    // A 304 has no body: the next answer on the connection must start right after its head.
    stream
        .write_all(
            format!("GET /not-modified HTTP/1.1\r\n{page}If-None-Match: \"v1\"\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let first = next_response(&mut stream).await;
    assert!(first.starts_with("HTTP/1.1 304"), "{first}");
    stream
        .write_all(format!("GET /partial HTTP/1.1\r\n{page}Range: bytes=0-19\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let partial = next_response(&mut stream).await;
    assert!(partial.starts_with("HTTP/1.1 206"), "{partial}");
    assert!(
        partial.ends_with(&PAGE[..20]) && !partial.contains("data-relive"),
        "a partial page is passed as it came, never injected: {partial}"
    );
    stream
        .write_all(format!("GET /app.js HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let canary = next_response(&mut stream).await;
    assert!(
        canary.starts_with("HTTP/1.1 200") && canary.ends_with(SCRIPT),
        "{canary}"
    );
}
