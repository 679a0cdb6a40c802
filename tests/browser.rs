//! The browser client in real headless Chromium: reload, CSS swap without reload, recovery
//! after relive restarts, and proxy mode in front of a real Python server.

mod common;

use common::Relive;
use common::browser::Browser;
use common::file_server::FileServer;

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("css")).unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><html><head><link rel=stylesheet href=/css/site.css></head>\
         <body><h1>first</h1><div style='height:5000px'></div></body></html>",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("css/site.css"),
        "h1 { color: rgb(255, 0, 0); }\n",
    )
    .unwrap();
    dir
}

const H1_COLOR: &str = "getComputedStyle(document.querySelector('h1')).color";

#[tokio::test]
async fn html_change_updates_the_page_in_place_and_keeps_scroll() {
    let dir = site();
    let Some((mut browser, _relive)) = Browser::showing(dir.path(), "/").await else {
        return;
    };
    browser
        .eval("scrollTo(0, 1200); window.marker = 'before';")
        .await;

    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><html><head><link rel=stylesheet href=/css/site.css></head>\
         <body><h1>second</h1><div style='height:5000px'></div></body></html>",
    )
    .unwrap();
    browser
        .wait_until("document.querySelector('h1')?.textContent === 'second'")
        .await;
    assert_eq!(
        browser.eval("window.marker").await,
        "before",
        "updated in place, not reloaded"
    );
    assert_eq!(browser.eval("scrollY").await, 1200);
}

#[tokio::test]
async fn css_change_swaps_stylesheet_without_reload() {
    let dir = site();
    let Some((mut browser, _relive)) = Browser::showing(dir.path(), "/").await else {
        return;
    };
    assert_eq!(browser.eval(H1_COLOR).await, "rgb(255, 0, 0)");
    browser.eval("window.marker = 'kept';").await;

    std::fs::write(
        dir.path().join("css/site.css"),
        "h1 { color: rgb(0, 0, 255); }\n",
    )
    .unwrap();
    browser
        .wait_until(&format!("{H1_COLOR} === 'rgb(0, 0, 255)'"))
        .await;
    assert_eq!(
        browser.eval("window.marker").await,
        "kept",
        "the page must not reload"
    );
    browser
        .wait_until("document.querySelectorAll('link[rel=stylesheet]').length === 1")
        .await;
}

#[tokio::test]
async fn page_reloads_once_relive_is_back_after_a_restart() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let dir = site();
    let port = common::unused_port().to_string();
    let relive = Relive::start(&[".", "--port", &port, "--strict-port"], dir.path());
    browser.open(&relive.url("/")).await;
    browser.eval("window.marker = 'before restart';").await;

    drop(relive);
    browser
        .wait_until("globalThis.__relive.status === 'reconnecting'")
        .await;
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><html><body><h1>after restart</h1></body></html>",
    )
    .unwrap();
    let _relive = Relive::start(&[".", "--port", &port, "--strict-port"], dir.path());
    browser
        .wait_until("document.querySelector('h1')?.textContent === 'after restart'")
        .await;
    assert_eq!(browser.eval("window.marker === undefined").await, true);
}

#[tokio::test]
async fn proxy_mode_in_front_of_python_http_server_updates_on_change() {
    if !FileServer::available() {
        return;
    }
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let dir = site();
    let port = common::unused_port();
    let _server = FileServer::spawn(dir.path(), port);
    let relive = Relive::start(
        &[
            "--proxy",
            &format!("http://127.0.0.1:{port}"),
            "--watch",
            ".",
        ],
        dir.path(),
    );
    // The upstream may still be starting: relive's waiting page reloads by itself.
    browser.navigate(&relive.url("/")).await;
    browser
        .wait_until("document.querySelector('h1')?.textContent === 'first'")
        .await;
    browser.wait_connected().await;
    browser.eval("window.marker = 1;").await;
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><html><body><h1>edited</h1></body></html>",
    )
    .unwrap();
    browser
        .wait_until("document.querySelector('h1')?.textContent === 'edited'")
        .await;
    assert_eq!(browser.eval("window.marker").await, 1, "updated in place");
}
