//! Static mode: the real binary serving a temp folder.

mod common;

use std::path::Path;

use common::{NAVIGATION, Relive, connect_and_hello, get, next_event, request};

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("css")).unwrap();
    std::fs::write(
        root.join("index.html"),
        "<!doctype html><html><head><link rel=stylesheet href=/css/site.css></head><body><h1>hi</h1></body></html>",
    )
    .unwrap();
    std::fs::write(root.join("css/site.css"), "h1 { color: red; }\n").unwrap();
    std::fs::write(root.join("app.js"), "console.log('</body>');\n").unwrap();
    std::fs::write(root.join("logo.bin"), common::upstream::binary()).unwrap();
    std::fs::write(root.join(".env"), "SECRET=1\n").unwrap();
    dir
}

fn start(root: &Path) -> Relive {
    Relive::start(&[root.to_str().unwrap()], root)
}

#[tokio::test]
async fn page_gets_exactly_one_client_tag() {
    let dir = site();
    std::fs::write(
        dir.path().join("early.html"),
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>t</title></head><body><h1>hi</h1></body></html>",
    )
    .unwrap();
    let relive = start(dir.path());
    // A page that declares no charset, small: the tag before `</body>`. One with a
    // `<meta charset>`: right after it, in the head.
    for (path, before) in [("/", "</body></html>"), ("/early.html", "<title>t</title>")] {
        let page = get(relive.addr, path, NAVIGATION).await;
        assert_eq!(page.status, 200);
        let text = page.text();
        assert_eq!(text.matches("data-relive").count(), 1, "{text}");
        assert!(
            text.contains(r#"src="/__relive/client.js" data-relive data-token=""#),
            "{text}"
        );
        assert!(text.contains(&format!("</script>{before}")), "{text}");
        // A small page is rewritten whole, so its answer says its exact (new) length.
        let length = page.body.len().to_string();
        assert_eq!(page.header("content-length"), Some(length.as_str()));
        assert_eq!(page.header("transfer-encoding"), None);
    }
}

#[tokio::test]
async fn a_saved_file_is_never_served_stale() {
    // Every save is seen by the very next request, by navigation and by fetch alike: the same
    // size each time and saved many times a second, so that neither the size nor the second
    // of the modification time tells the versions apart; and the previous answer's entity tag
    // never gets a 304.
    let dir = site();
    let relive = start(dir.path());
    let mut etag: Option<String> = None;
    for version in 0..200 {
        let text = format!("<p>version {version:04}</p>");
        std::fs::write(dir.path().join("page.html"), &text).unwrap();
        std::fs::write(dir.path().join("note.txt"), &text).unwrap();
        let page = get(relive.addr, "/page.html", NAVIGATION).await;
        assert_eq!(page.status, 200);
        assert!(
            page.text().contains(&text),
            "version {version}: {}",
            page.text()
        );
        if version % 50 == 0 {
            // A page is always sent whole, even to a navigation that names its current tag:
            // the browser's copy carries an old tag (token, session, newest event).
            let tag = page.header("etag").expect("an etag").to_owned();
            let mut headers = NAVIGATION.to_vec();
            headers.push(("If-None-Match", tag.as_str()));
            let again = get(relive.addr, "/page.html", &headers).await;
            assert_eq!(again.status, 200, "version {version}: a page answered 304");
        }
        let conditional = etag.as_ref().map(|tag| ("If-None-Match", tag.as_str()));
        let note = get(relive.addr, "/note.txt", conditional.as_slice()).await;
        assert_eq!(
            note.status, 200,
            "version {version}: a 304 for a changed file"
        );
        assert_eq!(note.text(), text, "version {version}");
        etag = note.header("etag").map(str::to_owned);
    }
}

#[tokio::test]
async fn assets_are_byte_identical_to_the_files() {
    let dir = site();
    let relive = start(dir.path());
    for (path, file) in [
        ("/css/site.css", "css/site.css"),
        ("/app.js", "app.js"),
        ("/logo.bin", "logo.bin"),
    ] {
        let response = get(relive.addr, path, &[]).await;
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(
            response.body,
            std::fs::read(dir.path().join(file)).unwrap(),
            "{path}"
        );
        assert_eq!(
            response.header("content-length"),
            Some(response.body.len().to_string().as_str())
        );
        // Revalidated every time: a heuristically cached copy would survive a reload.
        assert_eq!(response.header("cache-control"), Some("no-cache"), "{path}");
    }
}

#[tokio::test]
async fn missing_files_and_dotfiles_get_the_not_found_page() {
    let dir = site();
    let relive = start(dir.path());
    for path in ["/missing.html", "/.env"] {
        let response = get(relive.addr, path, NAVIGATION).await;
        assert_eq!(response.status, 404, "{path}");
        assert!(!response.text().contains("SECRET"));
        assert_eq!(response.text().matches("data-relive").count(), 1);
    }
}

#[tokio::test]
async fn client_script_is_served_with_safe_headers() {
    let dir = site();
    let relive = start(dir.path());
    let js = get(relive.addr, "/__relive/client.js", &[]).await;
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(
        js.header("cross-origin-resource-policy"),
        Some("same-origin")
    );
    assert_eq!(js.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(js.header("cache-control"), Some("no-store"));
    assert!(js.text().contains("/__relive/ws"));
    let head = request(relive.addr, "HEAD", "/", NAVIGATION).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        None,
        "HEAD must not promise the old length"
    );
}

#[tokio::test]
async fn html_write_sends_morph_and_css_write_sends_css() {
    let dir = site();
    let relive = start(dir.path());
    let (mut socket, hello) = connect_and_hello(relive.addr).await;
    assert_eq!(hello["data"]["protocol"], 1);

    std::fs::write(dir.path().join("index.html"), "<p>changed</p>").unwrap();
    let event = next_event(&mut socket).await;
    assert_eq!(event["type"], "morph", "{event}");
    assert_eq!(event["data"]["paths"], serde_json::json!(["/index.html"]));

    std::fs::write(dir.path().join("css/site.css"), "h1 { color: blue; }\n").unwrap();
    let event = next_event(&mut socket).await;
    assert_eq!(event["type"], "css", "{event}");
    assert_eq!(event["data"]["paths"], serde_json::json!(["/css/site.css"]));
    assert!(event["id"].as_u64() > hello["id"].as_u64());
}

#[tokio::test]
async fn every_tab_gets_every_event() {
    let dir = site();
    let relive = start(dir.path());
    let mut tabs = Vec::new();
    for _ in 0..5 {
        tabs.push(connect_and_hello(relive.addr).await.0);
    }
    std::fs::write(dir.path().join("index.html"), "<p>again</p>").unwrap();
    let mut ids = Vec::new();
    for tab in &mut tabs {
        let event = next_event(tab).await;
        assert_eq!(event["type"], "morph", "{event}");
        ids.push(event["id"].as_u64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every tab got the same event");
}

#[tokio::test]
async fn a_burst_of_writes_gives_one_update() {
    let dir = site();
    let relive = start(dir.path());
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::create_dir(dir.path().join("gen")).unwrap();
    for i in 0..500 {
        std::fs::write(dir.path().join(format!("gen/page{i}.html")), "x").unwrap();
    }
    let first = next_event(&mut socket).await;
    assert_eq!(first["type"], "morph", "{first}");
    // Had the burst been split, its rest would be sent next (or merge with this write into an
    // update). A lone css event proves the burst was one update.
    std::fs::write(dir.path().join("css/site.css"), "h1 { color: green; }\n").unwrap();
    let second = next_event(&mut socket).await;
    assert_eq!(
        second["type"], "css",
        "the burst produced more than one update: {second}"
    );
}

#[tokio::test]
async fn polling_detects_changes_too() {
    let dir = site();
    let relive = Relive::start(&[dir.path().to_str().unwrap(), "--poll"], dir.path());
    relive.wait_for_line("(polling)");
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::write(dir.path().join("index.html"), "<p>polled</p>").unwrap();
    let event = next_event(&mut socket).await;
    assert_eq!(event["type"], "morph", "{event}");
    assert_eq!(event["data"]["paths"], serde_json::json!(["/index.html"]));
}

#[tokio::test]
async fn new_folders_are_watched_as_they_appear() {
    let dir = site();
    let relive = start(dir.path());
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::create_dir(dir.path().join("blog")).unwrap();
    let first = next_event(&mut socket).await;
    assert_eq!(first["type"], "morph", "{first}");
    std::fs::write(dir.path().join("blog/post.html"), "<p>new</p>").unwrap();
    let event = next_event(&mut socket).await;
    assert_eq!(
        event["data"]["paths"],
        serde_json::json!(["/blog/post.html"]),
        "{event}"
    );
}

#[tokio::test]
async fn ignored_files_do_not_reload() {
    let dir = site();
    let relive = Relive::start(
        &[dir.path().to_str().unwrap(), "--ignore", "drafts/"],
        dir.path(),
    );
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::create_dir_all(dir.path().join("node_modules/pkg")).unwrap();
    std::fs::write(dir.path().join("node_modules/pkg/index.js"), "x").unwrap();
    std::fs::create_dir(dir.path().join("drafts")).unwrap();
    std::fs::write(dir.path().join("drafts/post.html"), "x").unwrap();
    std::fs::write(dir.path().join(".index.html.swp"), "x").unwrap();
    std::fs::write(dir.path().join("index.html~"), "x").unwrap();
    // Then a real change: it must be the first event, with nothing ignored in it.
    std::fs::write(dir.path().join("css/site.css"), "h1 { color: teal; }\n").unwrap();
    let event = next_event(&mut socket).await;
    assert_eq!(event["type"], "css", "an ignored file caused {event}");
}

#[tokio::test]
async fn reconnecting_client_gets_missed_events_and_restart_gets_reload() {
    let dir = site();
    let relive = start(dir.path());
    let (mut socket, hello) = connect_and_hello(relive.addr).await;
    let session = hello["session_id"].as_str().unwrap().to_owned();
    let seen = hello["id"].as_u64().unwrap();
    drop(socket.close(None).await);
    std::fs::write(dir.path().join("index.html"), "<p>while away</p>").unwrap();
    relive.wait_for_line("update  index.html changed");

    let mut back =
        common::connect_socket(relive.addr, &format!("&session={session}&last_id={seen}")).await;
    assert_eq!(next_event(&mut back).await["type"], "hello");
    let missed = next_event(&mut back).await;
    assert_eq!(missed["type"], "morph", "{missed}");
    assert_eq!(missed["data"]["paths"], serde_json::json!(["/index.html"]));

    let mut other = common::connect_socket(relive.addr, "&session=old-session&last_id=3").await;
    assert_eq!(next_event(&mut other).await["type"], "hello");
    let restart = next_event(&mut other).await;
    assert_eq!(restart["type"], "reload", "{restart}");
}

#[tokio::test]
async fn websocket_refuses_other_origins_and_wrong_tokens() {
    let dir = site();
    let relive = start(dir.path());
    let page = get(relive.addr, "/", NAVIGATION).await.text();
    let token = common::token_of(&page);
    let upgrade = |origin: &str, token: &str| {
        format!(
            "GET /__relive/ws?token={token} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: {origin}\r\n\r\n",
            relive.addr
        )
    };
    let evil = common::raw_head(
        relive.addr,
        upgrade("http://evil.example", &token).as_bytes(),
    )
    .await;
    assert!(evil.starts_with("HTTP/1.1 403"), "{evil}");
    let own = format!("http://{}", relive.addr);
    let wrong = common::raw_head(relive.addr, upgrade(&own, "nope").as_bytes()).await;
    assert!(wrong.starts_with("HTTP/1.1 403"), "{wrong}");
    let right = common::raw_head(relive.addr, upgrade(&own, &token).as_bytes()).await;
    assert!(right.starts_with("HTTP/1.1 101"), "{right}");
}

#[tokio::test]
async fn status_reports_the_session_and_clients() {
    let dir = site();
    let relive = start(dir.path());
    let (_socket, hello) = connect_and_hello(relive.addr).await;
    let status = get(relive.addr, "/__relive/status", &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(json["session_id"], hello["session_id"]);
    assert_eq!(json["clients"], 1);
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_large_page_streams_without_memory_growing_with_it() {
    fn peak_rss_kib(pid: u32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
    fn tag_len(page: &str) -> usize {
        let start = page.rfind("<script type=\"module\"").expect("tag present");
        page[start..].find("</script>").unwrap() + "</script>".len()
    }
    let dir = site();
    let line = format!("<p>{}</p>\n", "x".repeat(1017));
    let mut page = String::from("<html><body>\n");
    while page.len() < 64 * 1024 * 1024 {
        page.push_str(&line);
    }
    page.push_str("</body></html>");
    std::fs::write(dir.path().join("big.html"), &page).unwrap();
    let relive = start(dir.path());
    // Warm up (first request allocates the runtime's buffers), then measure the peak.
    let small = get(relive.addr, "/", NAVIGATION).await;
    assert_eq!(small.status, 200);
    let before = peak_rss_kib(relive.pid());
    let big = get(relive.addr, "/big.html", NAVIGATION).await;
    assert_eq!(big.status, 200);
    let text = big.text();
    assert_eq!(text.matches("data-relive").count(), 1);
    assert_eq!(big.body.len(), page.len() + tag_len(&text));
    let after = peak_rss_kib(relive.pid());
    let growth_mib = (after.saturating_sub(before)) / 1024;
    eprintln!("peak RSS {before} KiB before, {after} KiB after streaming a 64 MiB page");
    // Buffering the page whole would add at least 64 MiB; streaming adds a few chunks.
    assert!(
        growth_mib < 32,
        "peak RSS grew by {growth_mib} MiB for a 64 MiB page"
    );
}

#[tokio::test]
async fn a_tab_that_stops_answering_pings_is_dropped() {
    let dir = site();
    std::fs::write(
        dir.path().join("relive.toml"),
        "[client]\nheartbeat_secs = 1\n",
    )
    .unwrap();
    let relive = start(dir.path());
    let (mut socket, hello) = connect_and_hello(relive.addr).await;
    assert_eq!(hello["data"]["heartbeat_ms"], 1000);
    // Read pings but never answer them: relive must give up on this tab and close it.
    let closed = tokio::time::timeout(common::PATIENCE, async {
        loop {
            match futures_util::StreamExt::next(&mut socket).await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                    assert_eq!(json["type"], "ping", "{json}");
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "relive kept a silent tab");
    let status = common::get(relive.addr, "/__relive/status", &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(json["tabs"], serde_json::json!([]), "{json}");
}

/// One GET on its own connection, blocking (for threads), returning the whole answer.
fn fetch_blocking(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_swapped_for_a_symlink_to_a_secret_never_serves_the_secret() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-VALUE").unwrap();
    let site = common::one_page_site();
    let target = site.path().join("page.txt");
    std::fs::write(&target, "public").unwrap();
    let relive = Relive::start(&[".", "--no-watch"], site.path());
    let addr = relive.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Swappers: the file becomes a symlink to the secret and back, as fast as they can.
    let swappers: Vec<_> = (0..2)
        .map(|n| {
            let (stop, target, secret) = (stop.clone(), target.clone(), secret.clone());
            std::thread::spawn(move || {
                let temp = target.with_file_name(format!(".swap{n}"));
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::remove_file(&temp);
                    let _ = std::os::unix::fs::symlink(&secret, &temp);
                    let _ = std::fs::rename(&temp, &target);
                    let _ = std::fs::write(&temp, "public");
                    let _ = std::fs::rename(&temp, &target);
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                let mut served = 0;
                for _ in 0..500 {
                    let answer = fetch_blocking(addr, "/page.txt");
                    assert!(
                        !answer.contains("TOP-SECRET"),
                        "the secret leaked: {answer}"
                    );
                    if answer.ends_with("public") {
                        served += 1;
                    }
                }
                served
            })
        })
        .collect();
    let served: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for swapper in swappers {
        swapper.join().unwrap();
    }
    assert!(served > 0, "the public file was served while it was there");
}

#[tokio::test]
async fn ranges_conditional_requests_and_folder_redirects() {
    let site = common::one_page_site();
    std::fs::write(site.path().join("data.txt"), "0123456789").unwrap();
    std::fs::create_dir(site.path().join("docs")).unwrap();
    std::fs::write(site.path().join("docs/index.html"), "<p>docs</p>").unwrap();
    std::fs::write(site.path().join(".env"), "SECRET=1").unwrap();
    std::os::unix::fs::symlink(".env", site.path().join("env.txt")).unwrap();
    let relive = Relive::start(&[".", "--no-watch"], site.path());

    let part = get(relive.addr, "/data.txt", &[("Range", "bytes=2-4")]).await;
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "234");
    let whole = get(relive.addr, "/data.txt", &[]).await;
    assert_eq!(whole.header("content-type"), Some("text/plain"));
    let modified = whole.header("last-modified").unwrap().to_owned();
    // Whole seconds cannot tell two saves apart: only the entity tag revalidates.
    let again = get(
        relive.addr,
        "/data.txt",
        &[("If-Modified-Since", &modified)],
    )
    .await;
    assert_eq!(again.status, 200);
    let etag = whole.header("etag").expect("an etag").to_owned();
    let same = get(relive.addr, "/data.txt", &[("If-None-Match", &etag)]).await;
    assert_eq!(same.status, 304);
    // Saved again within the same second: Last-Modified cannot tell, the tag can.
    std::fs::write(site.path().join("data.txt"), "0123456789 and more").unwrap();
    let changed = get(
        relive.addr,
        "/data.txt",
        &[("If-None-Match", &etag), ("If-Modified-Since", &modified)],
    )
    .await;
    assert_eq!(changed.status, 200);
    assert_eq!(changed.text(), "0123456789 and more");

    let folder = get(relive.addr, "/docs?x=1", &[]).await;
    assert_eq!(folder.status, 307);
    assert_eq!(folder.header("location"), Some("/docs/?x=1"));
    let index = get(relive.addr, "/docs/", NAVIGATION).await;
    assert!(index.text().contains("<p>docs</p>"));

    let hidden = get(relive.addr, "/env.txt", &[]).await;
    assert_eq!(hidden.status, 404, "a symlink to a dotfile is the dotfile");
    assert!(!hidden.text().contains("SECRET"));
}

/// The file cache's figures from `/__relive/status`.
async fn cache_figures(relive: &Relive) -> serde_json::Value {
    let status = get(relive.addr, "/__relive/status", &[]).await;
    let status: serde_json::Value = serde_json::from_str(&status.text()).unwrap();
    status["file_cache"].clone()
}

/// Asks for `paths` until the file cache keeps all of them (it keeps a file only once its last
/// change is a few seconds old), then returns the answers served from it.
async fn kept(relive: &Relive, paths: &[&str]) -> Vec<common::Response> {
    let deadline = std::time::Instant::now() + common::PATIENCE;
    loop {
        let before = cache_figures(relive).await;
        let mut answers = Vec::new();
        for path in paths {
            answers.push(get(relive.addr, path, &[]).await);
        }
        let after = cache_figures(relive).await;
        let hits = after["hits"].as_u64().unwrap() - before["hits"].as_u64().unwrap();
        if hits == paths.len() as u64 {
            return answers;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cache never kept {paths:?}: {after}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_kept_file_is_never_served_stale() {
    // Every way a file changes under a kept copy, without the watcher's help (`--no-watch`):
    // each change is seen by the very next request.
    let dir = site();
    let root = dir.path();
    std::fs::create_dir(root.join("docs")).unwrap();
    let files = [
        "in-place.txt",
        "old-mtime.txt",
        "renamed.txt",
        "deleted.txt",
        "symlinked.txt",
        "docs/index.html",
    ];
    for name in files {
        std::fs::write(root.join(name), "version A").unwrap();
    }
    std::fs::write(root.join("other.txt"), "version B").unwrap();
    let paths = [
        "/in-place.txt",
        "/old-mtime.txt",
        "/renamed.txt",
        "/deleted.txt",
        "/symlinked.txt",
        "/docs/",
    ];
    let relive = Relive::start(&[".", "--no-watch"], root);

    let answers = kept(&relive, &paths).await;
    for answer in &answers {
        assert_eq!(answer.status, 200);
        assert!(answer.text().contains("version A"), "{}", answer.text());
    }
    // A kept file still answers a conditional request, and HEAD, as a read one does.
    let etag = answers[0].header("etag").unwrap().to_owned();
    let again = get(relive.addr, "/in-place.txt", &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 304);
    let head = request(relive.addr, "HEAD", "/in-place.txt", &[]).await;
    assert_eq!(head.header("content-length"), Some("9"));
    // A page from the cache is injected as a read one is: one tag, every time.
    for _ in 0..2 {
        let page = get(relive.addr, "/docs/", NAVIGATION).await;
        assert_eq!(
            page.text().matches("data-relive").count(),
            1,
            "{}",
            page.text()
        );
    }

    // The same size each time, so that only the file's identity tells the versions apart.
    std::fs::write(root.join("in-place.txt"), "version B").unwrap();
    let old = std::fs::metadata(root.join("old-mtime.txt"))
        .unwrap()
        .modified()
        .unwrap();
    std::fs::write(root.join("old-mtime.txt"), "version B").unwrap();
    std::fs::File::options()
        .write(true)
        .open(root.join("old-mtime.txt"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    std::fs::write(root.join("renamed.tmp"), "version B").unwrap();
    std::fs::rename(root.join("renamed.tmp"), root.join("renamed.txt")).unwrap();
    std::fs::remove_file(root.join("deleted.txt")).unwrap();
    std::fs::remove_file(root.join("symlinked.txt")).unwrap();
    std::os::unix::fs::symlink("other.txt", root.join("symlinked.txt")).unwrap();
    std::fs::write(root.join("docs/index.html"), "version B").unwrap();

    for path in paths {
        let answer = get(relive.addr, path, &[]).await;
        if path == "/deleted.txt" {
            assert_eq!(answer.status, 404, "{path}");
        } else {
            // (The folder's page gets the client tag after its text.)
            assert!(answer.text().starts_with("version B"), "{path}");
        }
    }
    let again = get(relive.addr, "/in-place.txt", &[("If-None-Match", &etag)]).await;
    assert_eq!(again.status, 200, "the old tag of a changed file");

    // Kept again with the new content (a file reached through a symlink is not kept: what the
    // symlink names can change while both files stay the same).
    let kept_paths = ["/in-place.txt", "/old-mtime.txt", "/renamed.txt", "/docs/"];
    for answer in kept(&relive, &kept_paths).await {
        assert!(answer.text().starts_with("version B"));
    }
    let figures = cache_figures(&relive).await;
    assert_eq!(figures["files"], kept_paths.len(), "{figures}");
}

#[tokio::test]
async fn the_watcher_empties_the_cache_at_a_change() {
    let dir = site();
    std::fs::write(dir.path().join("a.txt"), "a").unwrap();
    let relive = start(dir.path());
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    kept(&relive, &["/a.txt", "/app.js"]).await;
    assert_eq!(cache_figures(&relive).await["files"], 2);
    std::fs::write(dir.path().join("other.txt"), "changed").unwrap();
    // The change reached the tabs, so the watcher has seen it.
    assert_eq!(next_event(&mut socket).await["type"], "morph");
    assert_eq!(cache_figures(&relive).await["files"], 0);
}

#[tokio::test]
async fn a_page_rewritten_once_still_names_the_newest_event() {
    // The same file's page is rewritten once and then reused: it must still carry the newest
    // event id as events are published, and its new bytes once it changes.
    let dir = site();
    let relive = start(dir.path());
    let last_id = |page: &common::Response| -> String {
        let text = page.text();
        let at = text.find("data-last-id=\"").expect("a tag") + "data-last-id=\"".len();
        text[at..at + text[at..].find('"').unwrap()].to_owned()
    };
    // Kept in memory, so the same bytes come back each time.
    kept(&relive, &["/"]).await;
    let first = get(relive.addr, "/", NAVIGATION).await;
    let again = get(relive.addr, "/", NAVIGATION).await;
    assert_eq!(first.body, again.body, "the same page, the same answer");
    assert_eq!(last_id(&again), "0");
    let (status, said) = common::run_to_exit_with(
        &["notify", "message", "hello"],
        dir.path(),
        relive.runtime_dir.path(),
    );
    assert!(status.success(), "{said}");
    let after = get(relive.addr, "/", NAVIGATION).await;
    assert_eq!(last_id(&after), "1", "{}", after.text());
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><html><head></head><body><h1>new</h1></body></html>",
    )
    .unwrap();
    let changed = get(relive.addr, "/", NAVIGATION).await;
    assert!(
        changed.text().contains("<h1>new</h1>"),
        "{}",
        changed.text()
    );
    assert_eq!(changed.text().matches("data-relive").count(), 1);
}
