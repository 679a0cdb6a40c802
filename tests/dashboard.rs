//! The dashboard at `/__relive/` and the status JSON behind it: connected tabs, recent events
//! with their sources, counters, what is watched.

mod common;

use common::browser::Browser;
use common::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

/// A "tab": a socket that says which page it shows.
async fn tab(relive: &Relive, url: &str) -> Socket {
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    let page =
        serde_json::json!({"type": "page", "url": url, "user_agent": "Mozilla/5.0 Firefox/140.0"});
    socket.send(Message::text(page.to_string())).await.unwrap();
    socket
}

async fn status(relive: &Relive) -> serde_json::Value {
    serde_json::from_str(&get(relive.addr, "/__relive/status", &[]).await.text()).unwrap()
}

#[tokio::test]
async fn status_has_tabs_events_counters_and_watched_paths() {
    let site = one_page_site();
    let relive = Relive::start(&["."], site.path());
    let mut socket = tab(&relive, "http://localhost/about.html").await;
    std::fs::write(site.path().join("index.html"), "<p>v2</p>").unwrap();
    let morph = next_event(&mut socket).await;
    assert_eq!(morph["type"], "morph");
    // How the tabs took it: one updated in place, one reloaded (each said in the terminal).
    for (said, line) in [
        (
            serde_json::json!({"type": "updated", "path": "/about.html", "outcome": "morphed", "changes": 3, "ms": 12.4}),
            "morphed /about.html, 3 changes (12 ms)",
        ),
        (
            serde_json::json!({"type": "updated", "path": "/about.html", "outcome": "reloaded", "reason": "a script changed"}),
            "reloaded /about.html: a script changed",
        ),
    ] {
        socket.send(Message::text(said.to_string())).await.unwrap();
        relive.wait_for_line(line);
    }
    let status = status(&relive).await;
    assert_eq!(status["counters"]["morphs"], 1, "{status}");
    assert_eq!(status["counters"]["pages_morphed"], 1, "{status}");
    assert_eq!(status["counters"]["morph_fallbacks"], 1, "{status}");
    assert_eq!(status["counters"]["reloads"], 0, "{status}");
    assert_eq!(status["counters"]["css_swaps"], 0);
    let last = status["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "morph");
    assert_eq!(last["data"]["paths"], serde_json::json!(["/index.html"]));
    assert!(last["timestamp"].is_u64());
    assert_eq!(
        status["tabs"][0]["url"], "http://localhost/about.html",
        "{status}"
    );
    let root = site.path().canonicalize().unwrap();
    let watched = std::path::PathBuf::from(status["watching"]["paths"][0].as_str().unwrap());
    assert_eq!(watched.canonicalize().unwrap(), root);
    assert!(
        status["watching"]["builtin_ignore"]
            .as_array()
            .unwrap()
            .contains(&"node_modules/".into())
    );
    assert_eq!(status["upstream"], serde_json::Value::Null, "static mode");
}

#[tokio::test]
async fn the_dashboard_shows_tabs_and_events_live() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let site = one_page_site();
    let relive = Relive::start(&["."], site.path());
    let page = get(relive.addr, "/__relive/", &[("Accept", "text/html")]).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-security-policy").is_some());
    assert!(
        !page.text().contains("data-relive"),
        "the dashboard never gets the page client"
    );

    browser.navigate(&relive.url("/__relive/")).await;
    browser
        .wait_until("document.getElementById('connection')?.textContent === 'live'")
        .await;
    let _tab = tab(&relive, "http://localhost/about.html").await;
    browser
        .wait_until("document.getElementById('tabs').textContent.includes('/about.html')")
        .await;
    assert!(
        browser
            .eval("document.getElementById('tabs').textContent")
            .await
            .as_str()
            .unwrap()
            .contains("Firefox 140")
    );
    browser.eval("window.marker = 'kept'").await;
    std::fs::write(site.path().join("index.html"), "<p>v2</p>").unwrap();
    browser
        .wait_until(
            "document.querySelector('#events tr[data-type=morph]')?.textContent.includes('/index.html') \
             && document.querySelector('[data-counter=morphs] b').textContent === '1'",
        )
        .await;
    assert_eq!(
        browser.eval("window.marker").await,
        "kept",
        "the dashboard does not reload"
    );
}
