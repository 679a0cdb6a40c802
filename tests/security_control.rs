//! SECURITY.md §3, the control endpoint: `POST /__relive/notify` and `relive notify` (signals
//! from outside reach every tab; refused ones produce nothing and leave the connection usable).

mod common;

use common::browser::Browser;
use common::{Relive, connect_and_hello, next_event, raw, statuses};

fn site() -> tempfile::TempDir {
    common::one_page_site()
}

fn post(addr: std::net::SocketAddr, headers: &str, body: &str) -> String {
    format!(
        "POST /__relive/notify HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// A well-formed signal with the control token, on a connection of its own.
fn signal(addr: std::net::SocketAddr, token: &str, body: &str) -> String {
    post(
        addr,
        &format!(
            "Authorization: Bearer {token}\r\nContent-Type: application/json\r\nConnection: close\r\n"
        ),
        body,
    )
}

#[tokio::test]
async fn a_signal_with_the_token_reaches_every_tab() {
    let dir = site();
    let relive = Relive::start(&["."], dir.path());
    let token = relive.control_token();
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    let request = signal(
        relive.addr,
        &token,
        r#"{"type":"css","paths":["/css/site.css"]}"#,
    );
    let response = raw(relive.addr, request.as_bytes()).await;
    assert_eq!(
        statuses(&response),
        vec![202],
        "{}",
        String::from_utf8_lossy(&response)
    );
    let event = next_event(&mut socket).await;
    assert_eq!(event["type"], "css");
    assert_eq!(event["data"]["paths"], serde_json::json!(["/css/site.css"]));
}

#[tokio::test]
async fn an_outside_build_can_show_and_clear_the_error_overlay() {
    let dir = site();
    let relive = Relive::start(&["."], dir.path());
    let token = relive.control_token();
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    let send = |body: &str| signal(relive.addr, &token, body);
    for (body, kind) in [
        (
            r#"{"type":"build_progress","line":"compiling"}"#,
            "build_progress",
        ),
        (
            r#"{"type":"build_error","code":2,"lines":["src/a.ts:1 <b>bad</b>"]}"#,
            "build_error",
        ),
        (
            r#"{"type":"build_completed","duration_ms":42}"#,
            "build_completed",
        ),
    ] {
        let response = raw(relive.addr, send(body).as_bytes()).await;
        assert_eq!(
            statuses(&response),
            vec![202],
            "{}",
            String::from_utf8_lossy(&response)
        );
        let event = next_event(&mut socket).await;
        assert_eq!(event["type"], kind, "{event}");
        if kind == "build_error" {
            assert_eq!(event["data"]["code"], 2);
            assert_eq!(
                event["data"]["lines"],
                serde_json::json!(["src/a.ts:1 <b>bad</b>"])
            );
        }
    }
    let unknown = raw(relive.addr, send(r#"{"type":"build_error"}"#).as_bytes()).await;
    assert_eq!(statuses(&unknown), vec![400], "lines are required");
}

#[tokio::test]
async fn refused_signals_produce_no_event_and_do_not_desync_the_connection() {
    let dir = site();
    let relive = Relive::start(&["."], dir.path());
    let token = relive.control_token();
    let page_token = common::page_token(relive.addr).await;
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    let json = "Content-Type: application/json\r\n";
    let good = format!("Authorization: Bearer {token}\r\n");
    let cases = [
        (String::new() + json, r#"{"type":"reload"}"#.to_owned(), 401),
        (
            format!("Authorization: Bearer {page_token}\r\n{json}"),
            r#"{"type":"reload"}"#.to_owned(),
            401,
        ),
        (
            format!("Authorization: Bearer wrong\r\n{json}"),
            r#"{"type":"reload"}"#.to_owned(),
            401,
        ),
        (
            format!("{good}Content-Type: text/plain\r\n"),
            r#"{"type":"reload"}"#.to_owned(),
            415,
        ),
        (format!("{good}{json}"), "not json".to_owned(), 400),
        (
            format!("{good}{json}"),
            r#"{"type":"explode"}"#.to_owned(),
            400,
        ),
        (
            format!("{good}{json}"),
            format!(r#"{{"type":"message","text":"{}"}}"#, "x".repeat(70_000)),
            413,
        ),
    ];
    for (headers, body, expected) in &cases {
        // The refused request, then a canary on the same connection.
        let mut bytes = post(relive.addr, headers, body).into_bytes();
        bytes.extend_from_slice(
            format!(
                "GET /__relive/status HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                relive.addr
            )
            .as_bytes(),
        );
        let response = raw(relive.addr, &bytes).await;
        let got = statuses(&response);
        assert_eq!(
            got.first(),
            Some(expected),
            "{headers:?}: {}",
            String::from_utf8_lossy(&response)
        );
        if let Some(canary) = got.get(1) {
            assert_eq!(*canary, 200, "the canary was misread");
        }
    }
    let chunked = format!(
        "POST /__relive/notify HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n11\r\n{{\"type\":\"reload\"}}\r\n0\r\n\r\n",
        relive.addr
    );
    assert_eq!(
        statuses(&raw(relive.addr, chunked.as_bytes()).await),
        vec![411]
    );
    let get = format!(
        "GET /__relive/notify HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n",
        relive.addr
    );
    assert_eq!(statuses(&raw(relive.addr, get.as_bytes()).await), vec![405]);

    // Only now a valid signal: it must be the first event the tab sees.
    let ok = post(
        relive.addr,
        &format!("{good}{json}Connection: close\r\n"),
        r#"{"type":"reload","reason":"canary"}"#,
    );
    assert_eq!(statuses(&raw(relive.addr, ok.as_bytes()).await), vec![202]);
    let event = next_event(&mut socket).await;
    assert_eq!(
        event["data"]["reason"], "canary",
        "a refused request produced {event}"
    );
}

#[tokio::test]
async fn relive_notify_finds_the_running_instance() {
    let dir = site();
    let relive = Relive::start(&["."], dir.path());
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    let (status, stderr) = common::run_to_exit_with(
        &["notify", "css", "/a.css"],
        dir.path(),
        relive.runtime_dir.path(),
    );
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("sent css"), "{stderr}");
    let event = next_event(&mut socket).await;
    assert_eq!(event["type"], "css");
    assert_eq!(event["data"]["paths"], serde_json::json!(["/a.css"]));

    let (status, _) = common::run_to_exit_with(&["notify"], dir.path(), relive.runtime_dir.path());
    assert!(status.success());
    assert_eq!(next_event(&mut socket).await["type"], "reload");

    let url = format!("http://{}", relive.addr);
    let (status, stderr) =
        common::run_to_exit(&["notify", "--url", &url, "--token", "wrong"], dir.path());
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("refused the signal (401)"), "{stderr}");
}

#[tokio::test]
async fn relive_notify_without_a_running_relive_fails_clearly() {
    let dir = site();
    let (status, stderr) = common::run_to_exit(&["notify"], dir.path());
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("no running relive found"), "{stderr}");
}

#[tokio::test]
async fn the_state_file_is_private_and_removed_on_exit() {
    use std::os::unix::fs::PermissionsExt;
    let dir = site();
    let mut relive = Relive::start(&["."], dir.path());
    let path = relive
        .runtime_dir
        .path()
        .join(format!("relive/{}.json", relive.addr.port()));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let status = relive.interrupt();
    assert_eq!(status.code(), Some(130));
    assert!(!path.exists(), "the state file outlived relive");
}

#[tokio::test]
async fn messages_are_shown_as_text() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let dir = site();
    let relive = Relive::start(&["."], dir.path());
    browser.open(&relive.url("/")).await;
    let (status, stderr) = common::run_to_exit_with(
        &[
            "notify",
            "message",
            "<b>build</b> finished <img src=x onerror=alert(1)>",
        ],
        dir.path(),
        relive.runtime_dir.path(),
    );
    assert!(status.success(), "{stderr}");
    let text = browser.shown_as_text(".toast").await;
    assert_eq!(text, "<b>build</b> finished <img src=x onerror=alert(1)>");
}

#[tokio::test]
async fn an_oversized_signal_is_refused_before_its_body_and_no_preflight_is_approved() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = site();
    let relive = Relive::start(&["."], dir.path());
    let token = relive.control_token();

    // Only the head of a 10 MB signal: the 413 must come without relive waiting for the body.
    let mut stream = tokio::net::TcpStream::connect(relive.addr).await.unwrap();
    let head = format!(
        "POST /__relive/notify HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
        relive.addr
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(common::PATIENCE, stream.read(&mut answer))
        .await
        .expect("the refusal arrives while the body is still unsent")
        .unwrap();
    assert_eq!(
        statuses(&answer[..n]),
        vec![413],
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );

    // A browser's preflight for a cross-site JSON POST is never approved, and nothing relive
    // answers carries CORS permission.
    for request in [
        format!(
            "OPTIONS /__relive/notify HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\n\
             Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization, content-type\r\n\
             Access-Control-Request-Private-Network: true\r\nConnection: close\r\n\r\n",
            relive.addr
        ),
        format!(
            "GET /__relive/status HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n",
            relive.addr
        ),
        format!(
            "GET /__relive/client.js HTTP/1.1\r\nHost: {}\r\nOrigin: https://evil.example\r\nConnection: close\r\n\r\n",
            relive.addr
        ),
    ] {
        let bytes = raw(relive.addr, request.as_bytes()).await;
        let status = statuses(&bytes);
        let response = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        assert!(
            !response.contains("access-control-allow"),
            "relive granted CORS: {response}"
        );
        assert!(
            status
                .first()
                .is_some_and(|s| *s != 204 && (*s >= 400 || !request.starts_with("OPTIONS"))),
            "a preflight must not succeed: {response}"
        );
    }
}

#[tokio::test]
async fn a_tabs_error_report_needs_the_page_token_the_same_origin_and_a_small_body() {
    let dir = site();
    let relive = Relive::start(&["."], dir.path());
    let control = relive.control_token();
    let page_token = common::page_token(relive.addr).await;
    let report =
        r#"{"type":"error","kind":"error","message":"reported-9931","url":"http://localhost/"}"#;
    let send = |headers: String, body: &str| {
        format!(
            "POST /__relive/errors HTTP/1.1\r\nHost: {}\r\n{headers}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
            relive.addr,
            body.len()
        )
    };
    let json = "Content-Type: application/json\r\n";
    let bearer = |token: &str| format!("Authorization: Bearer {token}\r\n");
    let big = format!(
        r#"{{"type":"error","kind":"error","message":"{}","url":"x"}}"#,
        "a".repeat(5000)
    );
    let cases = [
        (json.to_owned(), report.to_owned(), 401),
        (
            format!("{json}{}", bearer(&control)),
            report.to_owned(),
            401,
        ),
        (
            format!(
                "{json}{}Origin: http://evil.example\r\n",
                bearer(&page_token)
            ),
            report.to_owned(),
            403,
        ),
        (
            format!(
                "{json}{}Sec-Fetch-Site: cross-site\r\n",
                bearer(&page_token)
            ),
            report.to_owned(),
            403,
        ),
        (
            format!("Content-Type: text/plain\r\n{}", bearer(&page_token)),
            report.to_owned(),
            415,
        ),
        (format!("{json}{}", bearer(&page_token)), big, 413),
        (
            format!("{json}{}", bearer(&page_token)),
            r#"{"type":"pong","sent":1}"#.to_owned(),
            400,
        ),
    ];
    for (headers, body, expected) in cases {
        let response = raw(relive.addr, send(headers.clone(), &body).as_bytes()).await;
        assert_eq!(
            statuses(&response),
            vec![expected],
            "{headers}: {}",
            String::from_utf8_lossy(&response)
        );
    }
    let accepted = raw(
        relive.addr,
        send(format!("{json}{}", bearer(&page_token)), report).as_bytes(),
    )
    .await;
    assert_eq!(statuses(&accepted), vec![204]);
    let line = relive.wait_for_line("reported-9931");
    assert!(line.contains("browser error on"), "{line}");
}
