//! Real Vite and Next.js dev servers behind relive (`relive -- npm run dev`), driven in headless
//! Chromium: their own HMR sockets connect through relive's port and hot-update the page without
//! a reload, relive's client is on the page once, and Next's client-side navigation and RSC
//! requests are never injected.
//!
//! Needs the packages of `tests/fixtures/vite` and `tests/fixtures/next` (`.ci/run` installs them,
//! and these tests do when npm is there); without them they skip loudly, and fail under
//! `CI=true`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::browser::Browser;
use common::*;

/// Dev servers compile on first request; on a 2-core machine Next can take a while.
const COMPILE_PATIENCE: Duration = Duration::from_secs(180);

/// The fixture's folder once its packages are installed (`npm install` runs here the first time,
/// when npm is available); `None` (after a loud message) when they cannot be.
fn fixture(name: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let installed = || dir.join("node_modules/.package-lock.json").is_file();
    if !installed() {
        // `install --no-save` keeps the lock file's versions (see .ci/run for why not `ci`).
        eprintln!(
            "installing {name}'s packages: npm install in {}",
            dir.display()
        );
        let ran = std::process::Command::new("npm")
            .args(["install", "--no-save", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status();
        if let Ok(status) = &ran
            && !status.success()
        {
            eprintln!("npm install failed in {}: {status}", dir.display());
        }
    }
    require_tool(
        &format!(
            "npm and the packages of {} (npm install there)",
            dir.display()
        ),
        installed(),
    )
    .then_some(dir)
}

/// Records every WebSocket the page opens, so a test can see the dev server's own socket.
const RECORD_SOCKETS: &str = "(() => { const Native = WebSocket; window.__sockets = []; \
     window.WebSocket = class extends Native { constructor(...args) { super(...args); \
     window.__sockets.push(this); } }; })()";

fn relive_tags() -> &'static str {
    "document.querySelectorAll('script[data-relive]').length"
}

#[tokio::test]
async fn vite_hot_updates_through_relive_and_index_html_reloads() {
    let Some(vite) = fixture("vite") else { return };
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let index = |title: &str| {
        format!(
            "<!doctype html>\n<html><head><title>{title}</title></head>\n<body><h1 id=\"value\">?</h1>\
             <script type=\"module\" src=\"/main.js\"></script></body></html>\n"
        )
    };
    std::fs::write(root.path().join("index.html"), index("vite one")).unwrap();
    std::fs::write(
        root.path().join("main.js"),
        "import { value } from './value.js';\n\
         const show = (v) => { document.getElementById('value').textContent = v; };\n\
         show(value);\n\
         if (import.meta.hot) import.meta.hot.accept('./value.js', (m) => show(m.value));\n",
    )
    .unwrap();
    let value = root.path().join("value.js");
    std::fs::write(&value, "export const value = 'one';\n").unwrap();

    let port = unused_port().to_string();
    // relive watches the same files: it must leave module changes to Vite (no double reload).
    let relive = Relive::start_with_env(
        &[
            "--watch",
            root.path().to_str().unwrap(),
            "--",
            "npm",
            "run",
            "dev",
            "--",
            "--port",
            &port,
            "--strictPort",
        ],
        &vite,
        &[("RELIVE_FIXTURE_ROOT", root.path().to_str().unwrap())],
    );
    relive.wait_for_line("dev server is ready");

    browser.before_every_page(RECORD_SOCKETS).await;
    browser.open(&relive.url("/")).await;
    browser
        .wait_until(
            "document.getElementById('value').textContent === 'one' && \
             window.__sockets.some((s) => s.protocol === 'vite-hmr' && s.readyState === 1)",
        )
        .await;
    assert_eq!(browser.eval(relive_tags()).await, 1);
    browser.eval("window.marker = 'kept'").await;

    // A module change is Vite's: hot-updated in place, no reload.
    std::fs::write(&value, "export const value = 'two';\n").unwrap();
    browser
        .wait_until("document.getElementById('value').textContent === 'two'")
        .await;
    relive.wait_for_line("left 1 change(s) to Vite's hot reloading");
    assert_eq!(
        browser.eval("window.marker").await,
        "kept",
        "no full reload"
    );

    // index.html changes reload the page.
    std::fs::write(root.path().join("index.html"), index("vite two")).unwrap();
    browser
        .wait_until("document.title === 'vite two' && window.marker === undefined")
        .await;
    browser.wait_connected().await;
    assert_eq!(browser.eval(relive_tags()).await, 1);
}

#[tokio::test]
async fn next_hot_updates_through_relive_and_rsc_is_never_injected() {
    let Some(next) = fixture("next") else { return };
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let message = next.join("app/message.js");
    let write_message = |text: &str| {
        std::fs::write(&message, format!("export const message = {text:?};\n")).unwrap();
    };
    write_message("hello one");

    let port = unused_port().to_string();
    let relive = Relive::start(&["--", "npm", "run", "dev", "--", "--port", &port], &next);
    relive.wait_for_line("dev server is ready");

    browser.before_every_page(RECORD_SOCKETS).await;
    // The URL relive prints: Next trusts `localhost` (127.0.0.1 would need allowedDevOrigins).
    let url = format!("http://localhost:{}/", relive.addr.port());
    browser.navigate(&url).await;
    browser
        .wait_until_within(
            "document.getElementById('message')?.textContent === 'hello one' && \
             globalThis.__relive?.status === 'connected'",
            COMPILE_PATIENCE,
        )
        .await;
    browser
        .wait_until(
            // Next 16 calls its socket /_next/hmr (webpack-hmr before).
            "window.__sockets.some((s) => /\\/_next\\/(webpack-)?hmr/.test(s.url) && s.readyState === 1)",
        )
        .await;
    assert_eq!(browser.eval(relive_tags()).await, 1);
    browser.eval("window.marker = 'kept'").await;

    // Editing what the page renders updates it through Next's own socket, without a reload.
    write_message("hello two");
    browser
        .wait_until_within(
            "document.getElementById('message')?.textContent === 'hello two'",
            COMPILE_PATIENCE,
        )
        .await;
    assert_eq!(
        browser.eval("window.marker").await,
        "kept",
        "no full reload"
    );

    // Client-side navigation fetches an RSC payload: no second client, no reload.
    browser
        .eval("document.getElementById('to-other').click()")
        .await;
    browser
        .wait_until_within(
            "document.getElementById('other') !== null",
            COMPILE_PATIENCE,
        )
        .await;
    assert_eq!(browser.eval("window.marker").await, "kept");
    assert_eq!(browser.eval(relive_tags()).await, 1);

    // What the router fetches: `RSC: 1` (and for prefetches `Next-Router-Prefetch: 1`); Next
    // first redirects to the URL with its cache-busting `_rsc` query.
    let prefetch: &[(&str, &str)] = &[
        ("RSC", "1"),
        ("Next-Router-Prefetch", "1"),
        ("Accept", "*/*"),
    ];
    let navigation: &[(&str, &str)] = &[("RSC", "1"), ("Accept", "*/*")];
    for headers in [navigation, prefetch] {
        let mut answer = get(relive.addr, "/other", headers).await;
        if answer.status == 307 {
            let location = answer.header("location").unwrap().to_owned();
            answer = get(relive.addr, &location, headers).await;
        }
        assert_eq!(answer.status, 200, "{headers:?}");
        assert!(
            answer
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/x-component")),
            "{headers:?}: {:?}",
            answer.header("content-type")
        );
        assert!(
            !answer.text().contains("data-relive"),
            "{headers:?} got the client"
        );
    }
    let page = get(relive.addr, "/other", &[("Accept", "text/html")]).await;
    assert_eq!(page.text().matches("data-relive").count(), 1);
}
