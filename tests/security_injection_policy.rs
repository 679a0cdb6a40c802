//! SECURITY.md §6, which responses get the client, through the real binary with raw bytes: a
//! canned upstream answers each path exactly as written here, and each case checks what the
//! browser got — the tag or the untouched bytes, and the headers that would lie about a
//! rewritten body. Every case is followed by a canary on the same connection. The static-mode
//! cases check the same rules on relive's own folder responses.

mod common;

use std::net::SocketAddr;

use common::Relive;
use common::keepalive::{Answer, Conn};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>t</title></head><body><p>page</p></body></html>";

/// The canned answer for `path`: status line, headers, body.
fn canned(path: &str) -> (&'static str, Vec<(&'static str, String)>, Vec<u8>) {
    let html = || ("Content-Type", "text/html; charset=utf-8".to_owned());
    match path {
        "/page" => (
            "200 OK",
            vec![
                html(),
                ("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT".into()),
                ("ETag", "\"v1\"".into()),
            ],
            PAGE.into(),
        ),
        "/attachment" => (
            "200 OK",
            vec![html(), ("Content-Disposition", "attachment; filename=\"x.html\"".into())],
            PAGE.into(),
        ),
        "/no-content" => ("204 No Content", vec![html()], Vec::new()),
        "/partial" => (
            "206 Partial Content",
            vec![html(), ("Content-Range", format!("bytes 0-9/{}", PAGE.len()))],
            PAGE.as_bytes()[..10].to_vec(),
        ),
        "/redirect" => (
            "302 Found",
            vec![html(), ("Location", "/page".into())],
            PAGE.into(),
        ),
        "/text" => ("200 OK", vec![("Content-Type", "text/plain".into())], PAGE.into()),
        "/gzip" => (
            "200 OK",
            vec![html(), ("Content-Encoding", "gzip".into())],
            common::upstream::gzip(PAGE.as_bytes()),
        ),
        "/unknown-coding" => (
            "200 OK",
            vec![html(), ("Content-Encoding", "x-custom".into())],
            b"\x00\x01not really html".to_vec(),
        ),
        "/nonce" => (
            "200 OK",
            vec![
                html(),
                (
                    "Content-Security-Policy",
                    "script-src 'nonce-r4nd0m'; connect-src 'self'".into(),
                ),
            ],
            PAGE.into(),
        ),
        "/already" => (
            "200 OK",
            vec![html()],
            // Where relive puts its tag: a page that came through another relive.
            PAGE.replace(
                "<title>",
                "<script type=\"module\" src=\"/__relive/client.js\" data-relive></script><title>",
            )
            .into_bytes(),
        ),
        "/late-charset" => (
            "200 OK",
            vec![("Content-Type", "text/html".into())],
            // "café" in windows-1252: the é is the single byte 0xE9.
            format!(
                "<!doctype html><html><head><meta charset=\"windows-1252\">{}</head><body>caf\u{e9}</body></html>",
                "<!-- padding -->".repeat(100)
            )
            .chars()
            .map(|c| c as u32 as u8)
            .collect(),
        ),
        _ => ("404 Not Found", vec![("Content-Type", "text/plain".into())], b"nope".to_vec()),
    }
}

/// An upstream that answers every request with `canned(path)`, keeping connections alive.
async fn canned_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    buf.drain(..end + 4);
                    let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    let (status, headers, body) = canned(&path);
                    let mut out = format!("HTTP/1.1 {status}\r\n");
                    if !status.starts_with("204") {
                        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
                    }
                    for (name, value) in headers {
                        out.push_str(&format!("{name}: {value}\r\n"));
                    }
                    out.push_str("\r\n");
                    let mut bytes = out.into_bytes();
                    if !head.starts_with("HEAD ") {
                        bytes.extend_from_slice(&body);
                    }
                    if stream.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// `METHOD target` as a browser asks for a page (plus `extra` header lines), on `conn`.
async fn ask(conn: &mut Conn, method: &str, target: &str, extra: &str) -> Answer {
    let extra = format!("Accept: text/html,*/*;q=0.8\r\n{extra}");
    conn.request(method, target, &extra)
        .await
        .unwrap_or_else(|| panic!("{method} {target} {extra:?}: no complete answer"))
}

/// The canary: a page, injected once, on the same connection.
async fn canary(conn: &mut Conn, after: &str) {
    let answer = ask(conn, "GET", "/page", "").await;
    assert_eq!(answer.status, 200, "canary after {after}");
    assert_eq!(answer.tags(), 1, "canary after {after}");
}

#[tokio::test]
async fn only_page_navigations_get_the_client_and_rewritten_pages_do_not_lie() {
    let upstream = canned_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let relive = Relive::start(
        &[
            "--proxy",
            &format!("http://127.0.0.1:{}", upstream.port()),
            "--no-watch",
        ],
        dir.path(),
    );
    let mut conn = Conn::open(relive.addr).await;

    // A page: one tag, and no header that describes the upstream's bytes.
    let page = ask(&mut conn, "GET", "/page", "").await;
    assert_eq!(page.tags(), 1);
    assert_eq!(page.header("content-length"), None, "{}", page.head);
    assert_eq!(page.header("last-modified"), None, "{}", page.head);
    assert_eq!(page.header("etag").as_deref(), Some("W/\"v1\""));
    let text = String::from_utf8_lossy(&page.body).into_owned();
    assert_eq!(
        {
            let tag = text.find("<script").unwrap();
            let end = tag + text[tag..].find("</script>").unwrap() + "</script>".len();
            text.replacen(&text[tag..end], "", 1)
        },
        PAGE,
        "nothing but the tag was added"
    );
    canary(&mut conn, "a page").await;

    // Passed exactly as they came: not pages, not navigations, or not safely decodable.
    let untouched: &[(&str, &str, &str)] = &[
        ("GET", "/attachment", ""),
        ("GET", "/partial", ""),
        ("GET", "/redirect", ""),
        ("GET", "/text", ""),
        ("GET", "/unknown-coding", ""),
        (
            "GET",
            "/page",
            "Sec-Fetch-Mode: cors\r\nSec-Fetch-Dest: empty\r\n",
        ),
        (
            "GET",
            "/page",
            "Sec-Fetch-Mode: navigate\r\nSec-Fetch-Dest: script\r\n",
        ),
        ("GET", "/page", "X-Requested-With: XMLHttpRequest\r\n"),
        ("GET", "/page", "HX-Request: true\r\n"),
        ("GET", "/page", "Turbo-Frame: main\r\n"),
    ];
    for (method, path, extra) in untouched {
        let answer = ask(&mut conn, method, path, extra).await;
        let (_, _, body) = canned(path);
        assert_eq!(answer.tags(), 0, "{path} {extra:?}");
        assert_eq!(answer.body, body, "{path} {extra:?}: bytes changed");
        if *path == "/unknown-coding" {
            assert_eq!(
                answer.header("content-encoding").as_deref(),
                Some("x-custom")
            );
        }
        if *path == "/page" {
            assert_eq!(
                answer.header("etag").as_deref(),
                Some("\"v1\""),
                "untouched ETag"
            );
        }
        canary(&mut conn, &format!("{path} {extra:?}")).await;
    }

    // 204 and HEAD carry no body, so no tag; HEAD drops the length it cannot know.
    let answer = ask(&mut conn, "GET", "/no-content", "").await;
    assert_eq!(answer.status, 204);
    canary(&mut conn, "a 204").await;
    let answer = ask(&mut conn, "HEAD", "/page", "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("content-length"), None, "{}", answer.head);
    canary(&mut conn, "a HEAD").await;

    // Compressed pages are decoded once and injected; the coding header goes with the bytes.
    let answer = ask(&mut conn, "GET", "/gzip", "").await;
    assert_eq!(answer.tags(), 1);
    assert_eq!(answer.header("content-encoding"), None);
    assert!(String::from_utf8_lossy(&answer.body).starts_with("<!doctype html>"));
    canary(&mut conn, "a gzip page").await;

    // A CSP nonce is copied onto the tag; the policy is never loosened.
    let answer = ask(&mut conn, "GET", "/nonce", "").await;
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    let tag = &body[body.find("<script").unwrap()..body.find("</script>").unwrap()];
    assert!(
        tag.contains("data-relive") && tag.contains("nonce=\"r4nd0m\""),
        "{body}"
    );
    assert_eq!(
        answer.header("content-security-policy").as_deref(),
        Some("script-src 'nonce-r4nd0m'; connect-src 'self'")
    );
    canary(&mut conn, "a nonce page").await;

    // A page that already has relive's tag is not given a second.
    let answer = ask(&mut conn, "GET", "/already", "").await;
    assert_eq!(answer.tags(), 1);
    canary(&mut conn, "an injected page").await;

    // A legacy-charset page keeps its bytes and its early <meta charset>.
    let answer = ask(&mut conn, "GET", "/late-charset", "").await;
    let (_, _, original) = canned("/late-charset");
    let meta = b"<meta charset=\"windows-1252\">";
    let at = |bytes: &[u8]| bytes.windows(meta.len()).position(|w| w == meta);
    assert_eq!(at(&answer.body), at(&original), "the meta moved");
    assert!(at(&answer.body).unwrap() < 1024);
    assert!(
        answer.body.windows(4).any(|w| w == b"caf\xe9"),
        "the page's own bytes were re-encoded"
    );
    assert_eq!(answer.tags(), 1);
    canary(&mut conn, "a windows-1252 page").await;
}

#[tokio::test]
async fn the_same_rules_hold_for_the_folder_relive_serves() {
    let site = common::one_page_site();
    let relive = Relive::start(&[site.path().to_str().unwrap(), "--no-watch"], site.path());
    let mut conn = Conn::open(relive.addr).await;
    let page = ask(&mut conn, "GET", "/index.html", "").await;
    assert_eq!(page.tags(), 1);
    assert_eq!(page.header("last-modified"), None, "{}", page.head);
    let etag = page.header("etag");
    assert!(
        etag.as_deref().is_none_or(|e| e.starts_with("W/")),
        "{etag:?}"
    );

    for extra in [
        "Sec-Fetch-Mode: cors\r\nSec-Fetch-Dest: empty\r\n",
        "X-Requested-With: XMLHttpRequest\r\n",
        "Range: bytes=0-20\r\n",
    ] {
        let answer = ask(&mut conn, "GET", "/index.html", extra).await;
        assert_eq!(answer.tags(), 0, "{extra:?}");
        let file = std::fs::read(site.path().join("index.html")).unwrap();
        assert!(file.starts_with(&answer.body), "{extra:?}: bytes changed");
        let page = ask(&mut conn, "GET", "/index.html", "").await;
        assert_eq!(page.tags(), 1, "canary after {extra:?}");
    }
    let head = ask(&mut conn, "HEAD", "/index.html", "").await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), None, "{}", head.head);
    let page = ask(&mut conn, "GET", "/index.html", "").await;
    assert_eq!(page.tags(), 1, "canary after HEAD");
}
