//! SECURITY.md §5, proxy framing, with raw bytes: ambiguous framing is refused, hop-by-hop
//! headers do not cross, `X-Forwarded-*` are relive's own, oversized heads are refused, and
//! after each refusal a canary on a fresh connection is served. A recording upstream shows what
//! it did (and did not) receive.

mod common;

use common::upstream::{Upstream, relive_in_front};
use common::{NAVIGATION, get, raw, status_of};

/// What the upstream saw of requests whose target starts with `prefix`.
fn seen(upstream: &Upstream, prefix: &str) -> Vec<String> {
    let targets = upstream.targets.lock().unwrap().clone();
    let heads = upstream.heads.lock().unwrap().clone();
    targets
        .into_iter()
        .zip(heads)
        .filter(|(t, _)| t.starts_with(prefix))
        .map(|(_, h)| h)
        .collect()
}

#[tokio::test]
async fn ambiguous_framing_is_refused_and_never_forwarded() {
    let (upstream, _dir, relive) = relive_in_front().await;
    let host = relive.addr;
    let cases = [
        (
            "two lengths",
            format!(
                "POST /smuggle-2 HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde"
            ),
        ),
        (
            "bad length",
            format!("POST /smuggle-3 HTTP/1.1\r\nHost: {host}\r\nContent-Length: 4x\r\n\r\nabcd"),
        ),
        (
            "obfuscated chunked",
            format!(
                "POST /smuggle-4 HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"
            ),
        ),
        (
            "space before colon",
            format!("GET /smuggle-5 HTTP/1.1\r\nHost: {host}\r\nContent-Length : 0\r\n\r\n"),
        ),
    ];
    for (what, request) in cases {
        let answer = raw(relive.addr, request.as_bytes()).await;
        let status = status_of(&answer);
        assert!(
            (400..500).contains(&status) || answer.is_empty() || status == 501,
            "{what}: answered {status}: {}",
            String::from_utf8_lossy(&answer)
        );
        assert_eq!(
            get(relive.addr, "/plain", NAVIGATION).await.status,
            200,
            "{what}: canary"
        );
    }
    assert!(
        seen(&upstream, "/smuggle").is_empty(),
        "ambiguous requests reached the upstream: {:?}",
        seen(&upstream, "/smuggle")
    );
}

#[tokio::test]
async fn a_length_and_chunked_together_are_never_both_forwarded() {
    // pingora resolves this as RFC 9112 §6.3 requires of an intermediary: the chunked framing
    // wins and Content-Length is removed, so relive and the upstream read the same body.
    let (upstream, _dir, relive) = relive_in_front().await;
    let request = format!(
        "POST /both HTTP/1.1\r\nHost: {}\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        relive.addr
    );
    let answer = raw(relive.addr, request.as_bytes()).await;
    let status = status_of(&answer);
    let heads = seen(&upstream, "/both");
    if (400..500).contains(&status) {
        assert!(heads.is_empty(), "refused, yet forwarded");
    } else {
        assert_eq!(heads.len(), 1, "answered {status} without forwarding once");
        let head = heads[0].to_ascii_lowercase();
        assert!(
            !head.contains("content-length"),
            "both framings forwarded:\n{head}"
        );
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
    }
    assert_eq!(
        get(relive.addr, "/plain", NAVIGATION).await.status,
        200,
        "canary"
    );
}

#[tokio::test]
async fn hop_by_hop_headers_do_not_cross_and_forwarded_headers_are_relives() {
    let (upstream, _dir, relive) = relive_in_front().await;
    let request = format!(
        "GET /hop HTTP/1.1\r\nHost: {}\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\nTE: trailers\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\nForwarded: for=6.6.6.6\r\n\r\n",
        relive.addr
    );
    let answer = raw(relive.addr, request.as_bytes()).await;
    assert_eq!(status_of(&answer), 200);
    let heads = seen(&upstream, "/hop");
    assert_eq!(heads.len(), 1);
    let head = heads[0].to_ascii_lowercase();
    for gone in [
        "x-secret",
        "keep-alive",
        "proxy-authorization",
        "6.6.6.6",
        "evil.example",
        "forwarded: for",
    ] {
        assert!(!head.contains(gone), "{gone} reached the upstream:\n{head}");
    }
    assert!(head.contains("x-forwarded-for: 127.0.0.1"), "{head}");
    assert!(
        head.contains(&format!("x-forwarded-host: {}", relive.addr)),
        "{head}"
    );
    assert!(head.contains("x-forwarded-proto: http"), "{head}");
}

#[tokio::test]
async fn oversized_heads_are_refused() {
    let (upstream, _dir, relive) = relive_in_front().await;
    let long_target = format!("/long-{}", "a".repeat(70_000));
    let request = format!(
        "GET {long_target} HTTP/1.1\r\nHost: {}\r\n\r\n",
        relive.addr
    );
    let answer = raw(relive.addr, request.as_bytes()).await;
    let status = status_of(&answer);
    assert!(
        status >= 400 || answer.is_empty(),
        "a 70 KB target answered {status}"
    );
    let huge_header = format!(
        "GET /huge-header HTTP/1.1\r\nHost: {}\r\nX-Big: {}\r\n\r\n",
        relive.addr,
        "b".repeat(100_000)
    );
    let answer = raw(relive.addr, huge_header.as_bytes()).await;
    let status = status_of(&answer);
    assert!(
        status >= 400 || answer.is_empty(),
        "a 100 KB header answered {status}"
    );
    assert!(seen(&upstream, "/long-").is_empty());
    assert!(seen(&upstream, "/huge-header").is_empty());
    assert_eq!(
        get(relive.addr, "/plain", NAVIGATION).await.status,
        200,
        "canary"
    );
}

#[tokio::test]
async fn an_h2c_upgrade_is_never_forwarded() {
    let (upstream, _dir, relive) = relive_in_front().await;
    // As a client sends it, and without `Connection` naming the headers (so the hop-by-hop
    // rule alone would not remove them).
    for connection in ["close, Upgrade, HTTP2-Settings", "close"] {
        let request = format!(
            "GET /h2c HTTP/1.1\r\nHost: {}\r\nConnection: {connection}\r\nUpgrade: h2c\r\n\
             HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
            relive.addr
        );
        let answer = raw(relive.addr, request.as_bytes()).await;
        assert_ne!(
            status_of(&answer),
            101,
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }
    for head in seen(&upstream, "/h2c") {
        let head = head.to_ascii_lowercase();
        assert!(
            !head.contains("upgrade: h2c") && !head.contains("http2-settings"),
            "the h2c upgrade reached the upstream:\n{head}"
        );
    }
    assert_eq!(
        get(relive.addr, "/plain", NAVIGATION).await.status,
        200,
        "canary"
    );
}

#[tokio::test]
async fn a_request_hidden_in_a_body_is_never_parsed_out_of_it() {
    let (upstream, _dir, relive) = relive_in_front().await;
    let hidden = format!("GET /smuggled HTTP/1.1\r\nHost: {}\r\n\r\n", relive.addr);
    for (what, request) in [
        (
            "inside a length",
            format!(
                "POST /carrier-1 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{hidden}",
                relive.addr,
                hidden.len()
            ),
        ),
        (
            "after a terminating chunk inside a chunk",
            format!(
                "POST /carrier-2 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n0\r\n\r\n{hidden}\r\n0\r\n\r\n",
                relive.addr,
                hidden.len() + 5
            ),
        ),
        (
            "behind a malformed chunk size",
            format!(
                "POST /carrier-3 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{hidden}\r\n0\r\n\r\n",
                relive.addr
            ),
        ),
    ] {
        let _ = raw(relive.addr, request.as_bytes()).await;
        assert!(
            seen(&upstream, "/smuggled").is_empty(),
            "{what}: a request was parsed out of a body"
        );
        assert_eq!(
            get(relive.addr, "/plain", NAVIGATION).await.status,
            200,
            "canary after {what}"
        );
    }
}

#[tokio::test]
async fn idle_and_half_sent_requests_do_not_hold_a_connection_forever() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_upstream, _dir, relive) = relive_in_front().await;
    // pingora gives a connection 60 s per read of a request head; wait a little longer.
    let bound = std::time::Duration::from_secs(90);
    let closed_within = |prefix: &'static [u8]| {
        let addr = relive.addr;
        async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(prefix).await.unwrap();
            let mut buf = [0u8; 1024];
            loop {
                match tokio::time::timeout(bound, stream.read(&mut buf)).await {
                    Err(_) => return false,
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    Ok(Ok(_)) => {} // an error answer before the close is fine
                }
            }
        }
    };
    let (idle, half) = tokio::join!(
        closed_within(b""),
        closed_within(b"GET /plain HTTP/1.1\r\nHost: localhost\r\n")
    );
    assert!(idle, "a connection that never sent a byte was kept open");
    assert!(half, "a connection that sent half a head was kept open");
    assert_eq!(
        get(relive.addr, "/plain", NAVIGATION).await.status,
        200,
        "canary"
    );
}
