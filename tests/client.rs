//! The browser client's behaviours, each proven in real headless Chromium against the real
//! binary: state kept across reloads, image and @import swaps, catching up after a dropped
//! connection, the badge's states, the event-stream fallback (and its way back to the
//! WebSocket), runtime errors in relive's output, heartbeat round trips, iframes and the
//! back/forward cache.

mod common;

use std::path::Path;
use std::time::Duration;

use common::Relive;
use common::browser::Browser;

const SVG_10: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>"#;
const SVG_20: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><rect width="20" height="20" fill="blue"/></svg>"#;

fn write(root: &Path, name: &str, content: &str) {
    let path = root.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, content).unwrap();
}

fn page(body: &str) -> String {
    format!(
        "<!doctype html><html><head><link rel=stylesheet href=/css/site.css></head><body>{body}</body></html>"
    )
}

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "css/site.css",
        "@import url(\"/css/colors.css\");\n.bg { background-image: url(/img/bg.svg); width: 20px; height: 20px; }\n",
    );
    write(root, "css/colors.css", "h1 { color: rgb(255, 0, 0); }\n");
    write(root, "img/logo.svg", SVG_10);
    write(root, "img/bg.svg", SVG_10);
    write(
        root,
        "index.html",
        &page(
            "<h1>v0</h1><img id=logo src=/img/logo.svg><div class=bg></div>\
             <input id=name><textarea name=notes></textarea>\
             <div id=pane style='height:100px;overflow:auto'><div style='height:2000px'></div></div>\
             <div style='height:4000px'></div>",
        ),
    );
    dir
}

/// Chromium showing `path` of a fresh site that relive serves; `None` (skipped) without
/// Chromium.
async fn setup(path: &str) -> Option<(Browser, tempfile::TempDir, Relive)> {
    let dir = site();
    let (browser, relive) = Browser::showing(dir.path(), path).await?;
    Some((browser, dir, relive))
}

const H1_COLOR: &str = "getComputedStyle(document.querySelector('h1')).color";

#[tokio::test]
async fn typed_values_and_scroll_positions_survive_a_reload() {
    let Some((mut browser, dir, _relive)) = setup("/").await else {
        return;
    };
    browser
        .eval("document.querySelector('#name').focus()")
        .await;
    browser.type_text("Ada Lovelace").await;
    browser
        .eval("document.querySelector('textarea').focus()")
        .await;
    browser.type_text("notes typed by hand").await;
    browser
        .eval(
            "scrollTo(0, 900); document.querySelector('#pane').scrollTop = 700; window.marker = 1;",
        )
        .await;

    // A new script: a page that relive reloads rather than morphs.
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    let html = html
        .replace("v0", "v1")
        .replace("</body>", "<script>1</script></body>");
    write(dir.path(), "index.html", &html);
    browser
        .wait_until("document.querySelector('h1')?.textContent === 'v1'")
        .await;
    browser.wait_connected().await;
    assert_eq!(browser.eval("window.marker === undefined").await, true);
    browser
        .wait_until("document.querySelector('#name').value === 'Ada Lovelace'")
        .await;
    browser
        .wait_until("document.querySelector('textarea').value === 'notes typed by hand'")
        .await;
    browser.wait_until("scrollY === 900").await;
    browser
        .wait_until("document.querySelector('#pane').scrollTop === 700")
        .await;
}

#[tokio::test]
async fn image_changes_refresh_images_without_a_reload() {
    let Some((mut browser, dir, _relive)) = setup("/").await else {
        return;
    };
    browser
        .wait_until("document.querySelector('#logo').naturalWidth === 10")
        .await;
    browser.eval("window.marker = 'kept'").await;

    write(dir.path(), "img/logo.svg", SVG_20);
    browser
        .wait_until("document.querySelector('#logo').naturalWidth === 20")
        .await;
    write(dir.path(), "img/bg.svg", SVG_20);
    browser
        .wait_until(
            "getComputedStyle(document.querySelector('.bg')).backgroundImage.includes('relive=')",
        )
        .await;
    assert_eq!(browser.eval("window.marker").await, "kept");
}

#[tokio::test]
async fn an_imported_stylesheet_is_swapped_without_a_reload() {
    let Some((mut browser, dir, _relive)) = setup("/").await else {
        return;
    };
    assert_eq!(browser.eval(H1_COLOR).await, "rgb(255, 0, 0)");
    browser.eval("window.marker = 'kept'").await;
    write(
        dir.path(),
        "css/colors.css",
        "h1 { color: rgb(0, 128, 0); }\n",
    );
    browser
        .wait_until(&format!("{H1_COLOR} === 'rgb(0, 128, 0)'"))
        .await;
    assert_eq!(browser.eval("window.marker").await, "kept");
}

#[tokio::test]
async fn an_event_sent_while_disconnected_arrives_after_reconnecting() {
    let Some((mut browser, dir, relive)) = setup("/").await else {
        return;
    };
    browser
        .eval("__relive.debugHold = true; __relive.debugDrop(); window.marker = 'kept';")
        .await;
    browser
        .wait_until("__relive.status === 'reconnecting'")
        .await;
    write(
        dir.path(),
        "css/colors.css",
        "h1 { color: rgb(0, 0, 255); }\n",
    );
    relive.wait_for_line("/css/colors.css");
    assert_eq!(
        browser.eval(H1_COLOR).await,
        "rgb(255, 0, 0)",
        "still offline"
    );
    browser.eval("__relive.debugHold = false").await;
    browser
        .wait_until(&format!("{H1_COLOR} === 'rgb(0, 0, 255)'"))
        .await;
    assert_eq!(browser.eval("window.marker").await, "kept");
}

#[tokio::test]
async fn the_badge_shows_each_state_and_retries_on_request() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let dir = site();
    let port = common::unused_port().to_string();
    let relive = Relive::start(&[".", "--port", &port, "--strict-port"], dir.path());
    browser.open(&relive.url("/")).await;
    assert_eq!(
        browser
            .badge("root.querySelector('.label').textContent")
            .await,
        "live"
    );
    assert_eq!(
        browser.badge("root.querySelector('.retry').hidden").await,
        true
    );

    drop(relive);
    browser
        .wait_until("document.querySelector('relive-badge').shadowRoot.querySelector('.label').textContent === 'reconnecting…'")
        .await;
    browser
        .wait_until_within(
            "document.querySelector('relive-badge').shadowRoot.querySelector('.label').textContent === 'disconnected'",
            Duration::from_secs(60),
        )
        .await;
    assert_eq!(
        browser.badge("root.querySelector('.retry').hidden").await,
        false
    );

    let _relive = Relive::start(&[".", "--port", &port, "--strict-port"], dir.path());
    browser.eval("window.marker = 1").await;
    browser.badge("root.querySelector('.retry').click()").await;
    // The restarted relive is a new session: the page reloads and is live again.
    browser.wait_reloaded().await;
}

#[tokio::test]
async fn the_badge_can_be_turned_off_per_page() {
    let Some((mut browser, _dir, _relive)) = setup("/?relive-badge=off").await else {
        return;
    };
    assert_eq!(
        browser
            .eval("document.querySelector('relive-badge') === null")
            .await,
        true
    );
}

/// A proxy that blocks WebSockets while the page's `blockWebSockets` is true.
const BLOCKABLE_WEBSOCKET: &str = "(() => {
  const Real = window.WebSocket;
  window.blockWebSockets = true;
  function Blockable(url, protocols) {
    if (window.blockWebSockets) throw new Error('blocked by test');
    return new Real(url, protocols);
  }
  Blockable.prototype = Real.prototype;
  for (const name of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Blockable[name] = Real[name];
  window.WebSocket = Blockable;
})();";

#[tokio::test]
async fn a_blocked_websocket_falls_back_to_an_event_stream_and_comes_back() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    browser.before_every_page(BLOCKABLE_WEBSOCKET).await;
    let dir = site();
    let relive = Relive::start(&["."], dir.path());
    browser.navigate(&relive.url("/")).await;
    browser
        .wait_until(
            "globalThis.__relive?.status === 'connected' && __relive.transport === 'event-stream'",
        )
        .await;
    browser.eval("window.marker = 'kept'").await;
    write(
        dir.path(),
        "css/colors.css",
        "h1 { color: rgb(1, 2, 3); }\n",
    );
    browser
        .wait_until(&format!("{H1_COLOR} === 'rgb(1, 2, 3)'"))
        .await;
    assert_eq!(browser.eval("window.marker").await, "kept");

    // The stream is one-way: page errors still reach relive's output.
    browser
        .eval("setTimeout(() => { throw new Error('over-the-stream-4712'); }); 0")
        .await;
    let line = relive.wait_for_line("over-the-stream-4712");
    assert!(line.contains("browser error on"), "{line}");

    // WebSockets work again and the stream drops: the tab takes the WebSocket back.
    browser
        .eval("window.blockWebSockets = false; __relive.debugDrop(); 0")
        .await;
    browser
        .wait_until("__relive.status === 'connected' && __relive.transport === 'websocket'")
        .await;
    assert_eq!(browser.eval("window.marker").await, "kept", "no reload");
    write(dir.path(), "index.html", &page("<h1>over the socket</h1>"));
    browser
        .wait_until("document.querySelector('h1')?.textContent === 'over the socket'")
        .await;
}

#[tokio::test]
async fn runtime_errors_appear_in_relives_output() {
    let Some((mut browser, _dir, relive)) = setup("/").await else {
        return;
    };
    browser
        .eval("setTimeout(() => { throw new Error('boom-4711'); }); 0")
        .await;
    let line = relive.wait_for_line("boom-4711");
    assert!(line.contains("browser error on"), "{line}");
    browser
        .eval("Promise.reject(new Error('rejected-815')); 0")
        .await;
    relive.wait_for_line("rejected-815");
    browser.eval("console.error('logged-42', {a: 1}); 0").await;
    let line = relive.wait_for_line("logged-42");
    assert!(line.contains("browser console"), "{line}");
    // A long message in a script of many bytes per character is shortened to fit relive's
    // 4 KiB limit rather than closing the socket.
    browser
        .eval("console.error('wide-77 ' + 'ü'.repeat(1990)); 0")
        .await;
    relive.wait_for_line("wide-77 üü");
    browser.eval("console.error('after-wide-78'); 0").await;
    relive.wait_for_line("after-wide-78");
    // A reconnect asks for the status first: there was none.
    let status_fetches = browser
        .eval(
            "performance.getEntriesByName(new URL('/__relive/status', location.href).href).length",
        )
        .await;
    assert_eq!(status_fetches, 0, "the socket was never closed");
}

#[tokio::test]
async fn heartbeats_measure_the_round_trip() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let dir = site();
    write(dir.path(), "relive.toml", "[client]\nheartbeat_secs = 1\n");
    let relive = Relive::start(&["."], dir.path());
    browser.open(&relive.url("/")).await;
    browser
        .wait_until("typeof __relive.rttMs === 'number'")
        .await;
    let title = browser.badge("root.querySelector('.badge').title").await;
    assert!(title.as_str().unwrap().contains("round trip"), "{title}");
    let status = common::get(relive.addr, "/__relive/status", &[]).await;
    let json: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    let tab = &json["tabs"][0];
    assert!(tab["rtt_ms"].is_u64(), "{json}");
    assert!(tab["url"].as_str().unwrap().ends_with('/'), "{json}");
}

#[tokio::test]
async fn a_frame_leaves_the_reload_to_its_top_page() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let dir = site();
    let counter = |key: &str| {
        format!(
            "<script>sessionStorage.{key} = String(Number(sessionStorage.{key} || 0) + 1)</script>"
        )
    };
    write(
        dir.path(),
        "index.html",
        &page(&format!(
            "<h1>top</h1>{}<iframe src=/frame.html></iframe>",
            counter("topLoads")
        )),
    );
    write(
        dir.path(),
        "frame.html",
        &page(&format!("<p>frame</p>{}", counter("frameLoads"))),
    );
    let relive = Relive::start(&["."], dir.path());
    browser.open(&relive.url("/")).await;
    browser
        .wait_until(
            "document.querySelector('iframe').contentWindow.__relive?.status === 'connected'",
        )
        .await;
    assert_eq!(
        browser
            .eval("document.querySelector('iframe').contentWindow.__relive.role")
            .await,
        "frame"
    );
    // Hold the top page's reload (`paused`, a debugging hold) to see what the frame does alone.
    browser
        .eval("__relive.paused = true; window.seen = __relive.lastId; window.frameSeen = document.querySelector('iframe').contentWindow.__relive.lastId;")
        .await;
    write(
        dir.path(),
        "frame.html",
        &page(&format!("<p>frame v2</p>{}", counter("frameLoads"))),
    );
    const FRAME: &str = "document.querySelector('iframe').contentWindow.__relive";
    browser
        .wait_until(&format!(
            "__relive.lastId > window.seen && {FRAME}.lastId > window.frameSeen"
        ))
        .await;
    assert_eq!(
        browser.eval(&format!("{FRAME}.status")).await,
        "connected",
        "the frame must not reload itself"
    );
    assert_eq!(browser.eval("sessionStorage.frameLoads").await, "1");

    browser.eval("__relive.resume()").await;
    browser
        .wait_until(&format!(
            "sessionStorage.topLoads === '2' && {FRAME}?.status === 'connected'"
        ))
        .await;
    assert_eq!(browser.eval("sessionStorage.frameLoads").await, "2");
}

#[tokio::test]
async fn a_page_restored_from_the_back_forward_cache_reconnects() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let dir = site();
    write(dir.path(), "other.html", &page("<h1>other</h1>"));
    let relive = Relive::start(&["."], dir.path());
    browser.open(&relive.url("/")).await;
    browser
        .eval("window.marker = 'from cache'; addEventListener('pageshow', e => { window.restored = e.persisted; });")
        .await;
    browser.open(&relive.url("/other.html")).await;
    browser.eval("history.back()").await;
    browser
        .wait_until("window.marker === 'from cache' && window.restored === true && __relive.status === 'connected'")
        .await;
    write(
        dir.path(),
        "css/colors.css",
        "h1 { color: rgb(9, 9, 9); }\n",
    );
    browser
        .wait_until(&format!("{H1_COLOR} === 'rgb(9, 9, 9)'"))
        .await;
}

#[tokio::test]
async fn a_hidden_tab_retries_slowly_and_reconnects_when_shown() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    // Headless tabs are always visible; let the test decide what the page sees.
    browser
        .before_every_page(
            "window.__hidden = false; Object.defineProperty(document, 'hidden', { get: () => window.__hidden });",
        )
        .await;
    let dir = site();
    let relive = Relive::start(&["."], dir.path());
    browser.open(&relive.url("/")).await;
    browser
        .eval("window.__hidden = true; document.dispatchEvent(new Event('visibilitychange')); __relive.debugDrop();")
        .await;
    browser
        .wait_until("__relive.status === 'reconnecting'")
        .await;
    assert_eq!(browser.eval("__relive.nextRetryMs >= 10000").await, true);
    browser
        .eval("window.__hidden = false; document.dispatchEvent(new Event('visibilitychange'))")
        .await;
    browser.wait_until("__relive.status === 'connected'").await;
    assert_eq!(browser.eval("__relive.attempts").await, 0);
}

#[tokio::test]
async fn debug_logging_shows_every_message_when_enabled() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    browser
        .before_every_page(
            "window.__debugLines = []; const original = console.debug; console.debug = (...args) => { window.__debugLines.push(args.map(a => typeof a === 'string' ? a : JSON.stringify(a)).join(' ')); original(...args); };",
        )
        .await;
    let dir = site();
    let relive = Relive::start(&["."], dir.path());
    browser.open(&relive.url("/")).await;
    assert_eq!(
        browser.eval("window.__debugLines.length").await,
        0,
        "off by default"
    );
    browser
        .eval("localStorage.relive_debug = '1'; location.reload()")
        .await;
    browser
        .wait_until("window.__debugLines?.some(l => l.includes('\"type\":\"hello\"'))")
        .await;
}
