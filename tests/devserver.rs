//! `relive -- CMD`: relive runs the dev server, finds its address, shows a starting page that
//! switches to the app by itself, shows a crash with its last lines, restarts it with
//! `--restart`, and stops its whole process group on the way out. The dev servers here are
//! `tests/fixtures/fake_dev_server.py` (driven by files, so nothing sleeps), Python's own
//! `http.server`, and an npm script.

mod common;

use std::path::Path;

use common::browser::Browser;
use common::*;

const FAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/fake_dev_server.py"
);

const PAGE: [(&str, &str); 1] = [("Accept", "text/html")];

/// A folder for the fake's control files, and relive running the fake in it.
fn start_fake(extra: &[&str], setup: impl FnOnce(&Path)) -> (tempfile::TempDir, Relive) {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let folder = dir.path().to_str().unwrap().to_owned();
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(["--", "python3", FAKE, "serve", &folder]);
    let relive = Relive::start(&args, dir.path());
    (dir, relive)
}

/// Waits for an event of type `kind`, returning it (other events are skipped).
async fn event_of(socket: &mut Socket, kind: &str) -> serde_json::Value {
    loop {
        let event = next_event(socket).await;
        if event["type"] == kind {
            return event;
        }
    }
}

#[tokio::test]
async fn the_starting_page_shows_output_then_the_app_takes_over() {
    let (dir, relive) = start_fake(&[], |_| {});
    relive.wait_for_line("fake: compiling");
    let (mut socket, hello) = connect_and_hello(relive.addr).await;
    assert_eq!(hello["data"]["upstream"], "pending", "{hello}");

    let waiting = get(relive.addr, "/", &PAGE).await;
    assert_eq!(waiting.status, 503);
    let text = waiting.text();
    assert!(text.contains("Starting <code>python3"), "{text}");
    assert!(text.contains("data-state=\"pending\""), "{text}");
    assert!(text.contains("fake: compiling\n</pre>"), "{text}");
    assert_eq!(
        text.matches("data-relive").count(),
        1,
        "the client is on it"
    );
    let asset = get(relive.addr, "/app.js", &[]).await;
    assert_eq!(asset.status, 503, "not a page: a short text");
    assert!(asset.text().starts_with("relive: "), "{}", asset.text());

    std::fs::write(dir.path().join("go"), "").unwrap();
    let printed = event_of(&mut socket, "upstream_status").await;
    assert_eq!(printed["data"]["status"], "starting", "{printed}");
    let url = printed["data"]["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let ready = event_of(&mut socket, "preview_ready").await;
    assert_eq!(ready["data"]["url"], url.as_str());

    let app = get(relive.addr, "/", &PAGE).await;
    assert_eq!(app.status, 200);
    assert!(app.text().contains("run 1"), "{}", app.text());
    assert_eq!(app.text().matches("data-relive").count(), 1, "injected");
    let status = get(relive.addr, "/__relive/status", &[]).await;
    let status: serde_json::Value = serde_json::from_str(&status.text()).unwrap();
    assert_eq!(status["upstream"]["status"], "ready", "{status}");
    assert_eq!(status["upstream"]["url"], url.as_str());
}

#[tokio::test]
async fn a_crash_shows_the_last_lines_escaped() {
    let (dir, relive) = start_fake(&[], |dir| {
        std::fs::write(dir.join("go"), "").unwrap();
    });
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    if hello_state(&relive).await != "ready" {
        event_of(&mut socket, "preview_ready").await;
    }
    let answer = get(relive.addr, "/crash", &PAGE).await;
    assert_eq!(answer.status, 200);
    let exited = event_of(&mut socket, "upstream_exited").await;
    assert_eq!(exited["data"]["detail"], "exited with code 3", "{exited}");
    assert_eq!(exited["data"]["restart_in_ms"], serde_json::Value::Null);
    let lines = exited["data"]["lines"].as_array().unwrap();
    assert_eq!(
        lines.last().unwrap(),
        "\u{1b}[31merror\u{1b}[39m: <img src=x onerror=alert(1)> broke"
    );

    let page = get(relive.addr, "/", &PAGE).await;
    assert_eq!(page.status, 502);
    let text = page.text();
    assert!(text.contains("exited with code 3"), "{text}");
    assert!(
        text.contains("error: &lt;img src=x onerror=alert(1)&gt; broke"),
        "{text}"
    );
    assert!(!text.contains("<img"), "output is text, never markup");
    drop(dir);
}

/// The upstream state a new tab's `hello` reports.
async fn hello_state(relive: &Relive) -> String {
    let (_, hello) = connect_and_hello(relive.addr).await;
    hello["data"]["upstream"].as_str().unwrap_or("").to_owned()
}

#[tokio::test]
async fn with_restart_it_comes_back_and_every_tab_reloads() {
    let (dir, relive) = start_fake(&["--restart"], |dir| {
        std::fs::write(dir.join("go"), "").unwrap();
    });
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    if hello_state(&relive).await != "ready" {
        event_of(&mut socket, "preview_ready").await;
    }
    assert!(get(relive.addr, "/", &PAGE).await.text().contains("run 1"));

    get(relive.addr, "/exit", &PAGE).await;
    let exited = event_of(&mut socket, "upstream_exited").await;
    assert_eq!(exited["data"]["detail"], "exited with code 1", "{exited}");
    assert_eq!(exited["data"]["restart_in_ms"], 500);
    let reload = event_of(&mut socket, "reload").await;
    assert_eq!(reload["data"]["reason"], "the dev server is back");
    let page = get(relive.addr, "/", &PAGE).await;
    assert!(page.text().contains("run 2"), "{}", page.text());
    drop(dir);
}

#[tokio::test]
async fn stopping_relive_stops_the_dev_server_and_what_it_started() {
    let (dir, mut relive) = start_fake(&[], |dir| {
        std::fs::write(dir.join("go"), "").unwrap();
        std::fs::write(dir.join("family"), "").unwrap();
    });
    relive.wait_for_line("dev server is ready");
    let pids = std::fs::read_to_string(dir.path().join("pids")).unwrap();
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|pid| alive(pid)));
    let status = relive.interrupt();
    assert_eq!(status.code(), Some(130));
    for pid in pids {
        wait_gone(pid);
    }
}

#[tokio::test]
async fn python_http_server_is_found_from_what_it_prints() {
    let site = one_page_site();
    let port = unused_port().to_string();
    let relive = Relive::start(
        &[
            "--",
            "python3",
            "-m",
            "http.server",
            &port,
            "--bind",
            "127.0.0.1",
        ],
        site.path(),
    );
    let (mut socket, hello) = connect_and_hello(relive.addr).await;
    if hello["data"]["upstream"] != "ready" {
        event_of(&mut socket, "preview_ready").await;
    }
    let page = get(relive.addr, "/", &PAGE).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.text().matches("data-relive").count(), 1);
    assert!(page.header("server").unwrap_or("").contains("SimpleHTTP"));
}

#[tokio::test]
async fn an_npm_script_runs_and_stops_with_relive() {
    if !require_tool("npm", which("npm")) {
        return;
    }
    let site = one_page_site();
    let port = unused_port();
    std::fs::write(
        site.path().join("package.json"),
        format!(
            r#"{{"name": "site", "private": true,
                "scripts": {{"dev": "python3 -m http.server {port} --bind 127.0.0.1"}}}}"#
        ),
    )
    .unwrap();
    let mut relive = Relive::start(&["--", "npm", "run", "dev"], site.path());
    relive.wait_for_line("dev server is ready");
    let page = get(relive.addr, "/", &PAGE).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.text().matches("data-relive").count(), 1);
    relive.interrupt();
    // The server npm started is gone with relive: its port is free again.
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the npm script's server outlived relive"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn which(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test]
async fn the_starting_page_switches_to_the_app_in_a_browser_and_a_crash_shows_an_overlay() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let (dir, relive) = start_fake(&[], |_| {});
    relive.wait_for_line("fake: compiling");
    browser.open(&relive.url("/")).await;
    assert_eq!(
        browser.eval("document.title").await,
        "Starting the dev server"
    );
    std::fs::write(dir.path().join("go"), "").unwrap();
    browser
        .wait_until("document.title === 'fake app' && globalThis.__relive?.status === 'connected'")
        .await;
    assert_eq!(
        browser
            .eval("document.getElementById('run').textContent")
            .await,
        "run 1"
    );

    get(relive.addr, "/crash", &PAGE).await;
    let text = browser.shown_as_text(".overlay").await;
    assert!(text.contains("The dev server exited with code 3"), "{text}");
    assert!(
        text.ends_with("error: <img src=x onerror=alert(1)> broke\n"),
        "{text}"
    );
    assert_eq!(
        browser
            .badge("root.querySelectorAll('.overlay img').length")
            .await,
        0
    );
}
