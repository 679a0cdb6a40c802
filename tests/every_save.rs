//! The cases behind "every save reaches every tab", each in real headless Chromium against the
//! real binary: a change made while a page is still arriving, a relive restart between serving
//! a page and its socket opening, and a real reload loop (a server that writes into a watched
//! folder on every page load), which relive stops by cause while a person's saves still reload.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::browser::Browser;
use common::{PATIENCE, Relive};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// Reads a request head; returns its target.
async fn read_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    head.split_whitespace().nth(1).map(str::to_owned)
}

fn html(body: &str) -> String {
    format!("<!doctype html><html><head><title>t</title></head><body>{body}</body></html>")
}

/// A dev server whose page shows `page.txt` from `folder`. What it does on each request for
/// `/` is up to `on_page`.
struct DevServer {
    url: String,
    pages: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DevServer {
    async fn start<F, Fut>(folder: PathBuf, on_page: F) -> DevServer
    where
        F: Fn(usize, PathBuf, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let pages = Arc::new(AtomicUsize::new(0));
        let counter = pages.clone();
        let on_page = Arc::new(on_page);
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (counter, on_page, folder) = (counter.clone(), on_page.clone(), folder.clone());
                tokio::spawn(async move {
                    let Some(target) = read_target(&mut stream).await else {
                        return;
                    };
                    if target != "/" {
                        let _ = stream
                            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                    on_page(n, folder, stream).await;
                });
            }
        });
        DevServer { url, pages, task }
    }

    fn pages(&self) -> usize {
        self.pages.load(Ordering::SeqCst)
    }
}

/// A temp folder with `watched/page.txt` holding "v1".
fn watched_folder() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let watched = dir.path().join("watched");
    std::fs::create_dir(&watched).unwrap();
    std::fs::write(watched.join("page.txt"), "v1").unwrap();
    (dir, watched)
}

fn shown(folder: &Path) -> String {
    std::fs::read_to_string(folder.join("page.txt")).unwrap_or_default()
}

async fn send_page(mut stream: TcpStream, body: &str) {
    let page = html(body);
    let _ = stream
        .write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            )
            .as_bytes(),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_while_the_page_is_still_arriving_updates_it_once() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let (dir, watched) = watched_folder();
    // The first page is sent in two parts; the second waits for the test.
    let (sent_first_part, mut first_part_sent) = mpsc::channel::<oneshot::Sender<()>>(1);
    let upstream = DevServer::start(watched.clone(), move |n, folder, mut stream| {
        let sent_first_part = sent_first_part.clone();
        async move {
            let content = shown(&folder);
            if n > 1 {
                return send_page(stream, &format!("<p id=v>{content}</p>")).await;
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<!doctype html><html><body><p id=v>")
                .await;
            let (go, wait) = oneshot::channel();
            let _ = sent_first_part.send(go).await;
            let _ = wait.await;
            let _ = stream
                .write_all(format!("{content}</p></body></html>").as_bytes())
                .await;
        }
    })
    .await;
    let relive = Relive::start(
        &["--proxy", &upstream.url, "--watch", "watched"],
        dir.path(),
    );
    browser.navigate(&relive.url("/")).await;
    let finish_page = tokio::time::timeout(PATIENCE, first_part_sent.recv())
        .await
        .expect("the page started")
        .expect("a page request");
    // The page is on its way, its socket not open: a save now must still reach it.
    std::fs::write(watched.join("page.txt"), "v2").unwrap();
    relive.wait_for_line("update  page.txt changed");
    finish_page.send(()).unwrap();
    browser
        .wait_until(
            "document.getElementById('v')?.textContent === 'v2' && __relive.status === 'connected'",
        )
        .await;
    // Once and only once: a message sent now arrives with no reload in between.
    let (status, said) = common::run_to_exit_with(
        &["notify", "message", "synced"],
        dir.path(),
        relive.runtime_dir.path(),
    );
    assert!(status.success(), "{said}");
    browser
        .wait_until("document.querySelector('relive-badge')?.shadowRoot.querySelector('.toast')?.textContent === 'synced'")
        .await;
    // The page itself, and its fetch to be morphed.
    assert_eq!(upstream.pages(), 2, "one page, one update");
    assert_eq!(browser.eval("__relive.morphs").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_served_just_before_relive_restarted_reloads_itself() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let site = common::one_page_site();
    let port = common::unused_port().to_string();
    let args = ["--port", &port, "--strict-port", "."];
    let relive = Relive::start(&args, site.path());
    // Hold the client script: the page is served, its socket not yet open.
    browser
        .call(
            "Fetch.enable",
            json!({"patterns": [{"urlPattern": "*/__relive/client.js*", "requestStage": "Request"}]}),
        )
        .await;
    browser.navigate(&relive.url("/")).await;
    let paused = loop {
        let event = browser
            .next_event(PATIENCE)
            .await
            .expect("the client script was requested");
        if event["method"] == "Fetch.requestPaused" {
            break event["params"]["requestId"].clone();
        }
    };
    let served_by = browser
        .eval("document.querySelector('script[data-relive]').dataset.session")
        .await;
    drop(relive);
    let relive = Relive::start(&args, site.path());
    let status = common::get(relive.addr, "/__relive/status", &[]).await;
    let now: serde_json::Value = serde_json::from_str(&status.text()).unwrap();
    assert_ne!(now["session_id"], served_by, "a new relive");
    browser
        .call("Fetch.continueRequest", json!({"requestId": paused}))
        .await;
    browser.call("Fetch.disable", json!({})).await;
    browser
        .wait_until(&format!(
            "__relive.status === 'connected' && __relive.session === {}",
            now["session_id"]
        ))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_load_that_rewrites_a_watched_file_is_stopped_as_a_loop_and_saves_still_reload() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let (dir, watched) = watched_folder();
    // A server that logs every page request into the folder relive watches.
    let upstream = DevServer::start(watched.clone(), |_, folder, stream| async move {
        let content = shown(&folder);
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(folder.join("requests.log"))
            .unwrap();
        std::io::Write::write_all(&mut log, b"GET /\n").unwrap();
        send_page(stream, &format!("<p id=v>{content}</p>")).await;
    })
    .await;
    let relive = Relive::start(
        &["--proxy", &upstream.url, "--watch", "watched"],
        dir.path(),
    );
    browser.navigate(&relive.url("/")).await;
    let banner = browser.shown_as_text(".banner").await;
    assert!(
        banner.contains("requests.log changed each time this page loaded")
            && banner.contains("--ignore 'requests.log'"),
        "{banner}"
    );
    let said = relive.wait_for_line("\"event\":\"loop\"");
    assert!(
        said.contains("requests.log") && said.contains("--ignore 'requests.log'"),
        "{said}"
    );
    let loop_pages = upstream.pages();
    assert_eq!(
        loop_pages,
        relive::triggers::loop_guard::LOOP_CYCLES as usize + 1,
        "the person's first load, then the reloads that proved the loop"
    );

    // A person's saves still reload, and the loop does not start again.
    for version in ["v2", "v3"] {
        std::fs::write(watched.join("page.txt"), version).unwrap();
        browser
            .wait_until(&format!(
                "document.getElementById('v')?.textContent === '{version}' && __relive.status === 'connected'"
            ))
            .await;
        relive.wait_for_line("held back /requests.log");
    }
    assert_eq!(upstream.pages(), loop_pages + 2, "one load per save");
    assert_eq!(browser.eval("__relive.paused").await, false);
}
