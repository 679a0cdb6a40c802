//! SECURITY.md §1: who may talk to relive. Raw bytes over TCP, in both modes, with a
//! recording upstream proving what it never received.

mod common;

use common::upstream::relive_in_front;
use common::{Relive, raw, raw_head, status_of};

#[tokio::test]
async fn foreign_host_names_are_refused_before_reaching_the_upstream() {
    let (upstream, _dir, relive) = relive_in_front().await;
    for host in [
        "evil.example",
        "localhost.evil.example",
        "evillocalhost",
        "attacker.test:4500",
    ] {
        let request = format!("GET /plain HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let response = raw(relive.addr, request.as_bytes()).await;
        assert_eq!(status_of(&response), 403, "{host}");
        assert!(String::from_utf8_lossy(&response).contains("--allowed-host"));
    }
    for host in [
        "localhost:1",
        "LOCALHOST",
        "app.localhost",
        "127.0.0.1",
        "[::1]:9",
    ] {
        let request = format!("GET /plain HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let response = raw(relive.addr, request.as_bytes()).await;
        assert_eq!(status_of(&response), 200, "{host}");
    }
    let seen = upstream.heads.lock().unwrap().clone();
    assert!(
        seen.iter()
            .all(|h| !h.to_ascii_lowercase().contains("evil") && !h.contains("attacker")),
        "the upstream saw a refused request: {seen:?}"
    );
}

#[tokio::test]
async fn a_refusal_does_not_desync_the_connection() {
    let (_upstream, _dir, relive) = relive_in_front().await;
    let pipelined = b"GET /plain HTTP/1.1\r\nHost: evil.example\r\n\r\nGET /plain HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let response = String::from_utf8_lossy(&raw(relive.addr, pipelined).await).into_owned();
    let first = response.find("HTTP/1.1 403").expect("refusal first");
    // Either the canary is answered on the same connection, or the connection was closed
    // after the refusal; never is the canary's answer anything but the upstream page.
    if let Some(second) = response.find("HTTP/1.1 200") {
        assert!(second > first);
        assert!(response.contains("upstream page"));
    }
}

#[tokio::test]
async fn absolute_form_targets_to_other_hosts_are_refused() {
    let (upstream, _dir, relive) = relive_in_front().await;
    let response = raw(
        relive.addr,
        b"GET http://evil.example/plain HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    // pingora itself answers 400 when the target's authority and Host disagree; either way
    // the request goes nowhere.
    let status = status_of(&response);
    assert!(status == 403 || status == 400, "{status}");
    assert!(upstream.targets.lock().unwrap().is_empty());
}

#[tokio::test]
async fn missing_or_duplicate_host_is_a_bad_request() {
    let (upstream, _dir, relive) = relive_in_front().await;
    let duplicate = raw(
        relive.addr,
        b"GET /plain HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&duplicate), 400);
    let missing = raw(
        relive.addr,
        b"GET /plain HTTP/1.1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&missing), 400);
    assert!(upstream.targets.lock().unwrap().is_empty());
}

#[tokio::test]
async fn websocket_upgrades_are_held_to_the_same_list() {
    let (upstream, _dir, relive) = relive_in_front().await;
    let upgrade = "GET /ws/hmr HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    let head = raw_head(relive.addr, upgrade.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(upstream.targets.lock().unwrap().is_empty());
}

#[tokio::test]
async fn configured_names_are_allowed_in_static_mode_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<p>hi</p>").unwrap();
    let relive = Relive::start(&[".", "--allowed-host", ".myapp.test"], dir.path());
    for (host, expected) in [
        ("myapp.test", 200),
        ("www.myapp.test:4500", 200),
        ("notmyapp.test", 403),
        ("evil.example", 403),
    ] {
        let request = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let response = raw(relive.addr, request.as_bytes()).await;
        assert_eq!(status_of(&response), expected, "{host}");
    }
}

#[tokio::test]
async fn connect_is_refused_and_relive_adds_no_cors() {
    let (_upstream, _dir, relive) = relive_in_front().await;
    let response = raw(
        relive.addr,
        b"CONNECT localhost:22 HTTP/1.1\r\nHost: localhost:22\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&response), 405);
    for path in ["/plain", "/__relive/client.js", "/__relive/status"] {
        let response = common::get(relive.addr, path, &[("Origin", "http://evil.example")]).await;
        assert!(
            response
                .headers
                .iter()
                .all(|(n, _)| !n.starts_with("access-control-")),
            "{path}: {:?}",
            response.headers
        );
    }
    // The upstream's own CORS headers pass exactly as it sent them (relive neither adds to
    // them nor drops them).
    let response = common::get(relive.addr, "/cors", &[("Origin", "https://app.example")]).await;
    let cors: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(n, _)| n.starts_with("access-control-"))
        .cloned()
        .collect();
    assert_eq!(
        cors,
        [
            (
                "access-control-allow-origin".to_owned(),
                "https://app.example".to_owned()
            ),
            (
                "access-control-allow-credentials".to_owned(),
                "true".to_owned()
            )
        ],
        "{:?}",
        response.headers
    );
}

#[tokio::test]
async fn a_lan_bind_prints_the_network_urls_and_serves_them() {
    let site = common::one_page_site();
    let relive = Relive::start(&[".", "--host", "0.0.0.0"], site.path());
    // The network URLs come before the warning that the site is open to the network.
    let mut urls = Vec::new();
    loop {
        let line = relive.wait_for_line("\"level\"");
        if line.contains("other machines on your network") {
            break;
        }
        if line.contains("\"event\":\"network_url\"") {
            let event: serde_json::Value = serde_json::from_str(&line).unwrap();
            urls.push(event["url"].as_str().unwrap().to_owned());
        }
    }
    if urls.is_empty() {
        eprintln!("\n!!! SKIPPED: this machine has no network address besides loopback !!!\n");
        return;
    }
    for url in urls {
        let addr: std::net::SocketAddr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap();
        assert_eq!(addr.port(), relive.addr.port());
        // Reached through the machine's own address (Host is that IP): allowed, and injected.
        let page = common::get(addr, "/", common::NAVIGATION).await;
        assert_eq!(page.status, 200, "{url}");
        assert_eq!(page.text().matches("data-relive").count(), 1);
        let (mut socket, _) = common::connect_and_hello(addr).await;
        std::fs::write(site.path().join("index.html"), format!("<p>{url}</p>")).unwrap();
        assert_eq!(common::next_event(&mut socket).await["type"], "morph");
    }
}

#[tokio::test]
async fn relive_is_no_open_proxy_a_spy_listener_sees_no_connection() {
    let (upstream, _dir, relive) = relive_in_front().await;
    // A spy: any connection to it is recorded.
    let spy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let spy_addr = spy.local_addr().unwrap();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while spy.accept().await.is_ok() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let attempts = [
        format!("GET http://{spy_addr}/ HTTP/1.1\r\nHost: {spy_addr}\r\nConnection: close\r\n\r\n"),
        format!(
            "GET http://{spy_addr}/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            relive.addr
        ),
        format!("CONNECT {spy_addr} HTTP/1.1\r\nHost: {spy_addr}\r\n\r\n"),
        format!(
            "GET / HTTP/1.1\r\nHost: {spy_addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        ),
    ];
    for attempt in &attempts {
        let _ = raw(relive.addr, attempt.as_bytes()).await;
    }
    // A canary through relive reaches the real upstream, so the attempts above were handled.
    let canary = common::get(relive.addr, "/plain", common::NAVIGATION).await;
    assert_eq!(canary.status, 200);
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "relive connected to a host it was only named"
    );
    // An absolute-form target naming an allowed (IP) host may still be forwarded, as HTTP/1.1
    // requires servers to accept it, but only ever to the configured upstream.
    drop(upstream);
}
