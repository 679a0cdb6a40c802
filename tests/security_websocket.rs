//! SECURITY.md §2, relive's own WebSocket, with raw bytes where the handshake matters: only
//! same-origin upgrades with the page's token are accepted (in static and proxy mode), refused
//! upgrades register no tab, and oversized or binary frames close the socket.

mod common;

use common::upstream::Upstream;
use common::{Relive, connect_and_hello, get, page_token, raw_head};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

fn upgrade(addr: std::net::SocketAddr, query: &str, origin: Option<&str>) -> String {
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    format!(
        "GET /__relive/ws{query} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
    )
}

async fn clients(relive: &Relive) -> u64 {
    let status: serde_json::Value =
        serde_json::from_str(&get(relive.addr, "/__relive/status", &[]).await.text()).unwrap();
    status["clients"].as_u64().unwrap()
}

async fn refusals_in(relive: &Relive) {
    let addr = relive.addr;
    let token = page_token(addr).await;
    let with_token = format!("?token={token}");
    let cases: [(&str, String, Option<String>); 6] = [
        ("no token", String::new(), Some(format!("http://{addr}"))),
        (
            "wrong token",
            "?token=00000000000000000000000000000000".into(),
            Some(format!("http://{addr}")),
        ),
        ("Origin: null", with_token.clone(), Some("null".into())),
        ("file:// origin", with_token.clone(), Some("file://".into())),
        (
            "another port",
            with_token.clone(),
            Some(format!("http://127.0.0.1:{}", addr.port() + 1)),
        ),
        (
            "another site",
            with_token.clone(),
            Some("http://evil.example".into()),
        ),
    ];
    for (what, query, origin) in cases {
        let head = raw_head(addr, upgrade(addr, &query, origin.as_deref()).as_bytes()).await;
        assert!(head.starts_with("HTTP/1.1 403"), "{what}: {head}");
        assert_eq!(
            clients(relive).await,
            0,
            "{what}: a refused upgrade became a tab"
        );
    }
    // The page's own upgrade works (the canary).
    let head = raw_head(
        addr,
        upgrade(addr, &with_token, Some(&format!("http://{addr}"))).as_bytes(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
}

#[tokio::test]
async fn only_same_origin_upgrades_with_the_token_are_accepted_in_both_modes() {
    let site = common::one_page_site();
    let relive = Relive::start(&["."], site.path());
    refusals_in(&relive).await;
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let proxied = Relive::start(&["--proxy", &upstream.url()], dir.path());
    refusals_in(&proxied).await;
    assert!(
        upstream
            .targets
            .lock()
            .unwrap()
            .iter()
            .all(|t| !t.starts_with("/__relive/")),
        "relive's socket is never the upstream's business"
    );
}

#[tokio::test]
async fn oversized_and_binary_frames_close_the_socket() {
    let site = common::one_page_site();
    let relive = Relive::start(&["."], site.path());
    for (what, message, code) in [
        (
            "5 KiB text",
            Message::text("x".repeat(5 * 1024)),
            CloseCode::Size,
        ),
        (
            "binary",
            Message::binary(vec![1u8, 2, 3]),
            CloseCode::Unsupported,
        ),
    ] {
        let (mut socket, _) = connect_and_hello(relive.addr).await;
        socket.send(message).await.unwrap();
        let closed = loop {
            match tokio::time::timeout(common::PATIENCE, socket.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => break frame.map(|f| f.code),
                Ok(Some(Ok(_))) => continue,
                other => panic!("{what}: no close frame: {other:?}"),
            }
        };
        assert_eq!(closed, Some(code), "{what}");
    }
    // Unknown but well-formed messages are ignored: the socket stays and gets the next event.
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    socket
        .send(Message::text(r#"{"type":"reload"}"#))
        .await
        .unwrap();
    std::fs::write(site.path().join("index.html"), "<p>v2</p>").unwrap();
    loop {
        let event = common::next_event(&mut socket).await;
        if event["type"] == "morph" {
            break;
        }
    }
}
