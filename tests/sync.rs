//! Many devices, one preview (`--sync`), in real headless Chromium: a desktop-sized and a
//! phone-sized tab, each in a browser context of its own, mirror scrolling, typing, clicks and
//! back; passwords are not mirrored, nothing echoes, and without `--sync` nothing is mirrored.

mod common;

use common::browser::{Browser, Tab};
use common::{PATIENCE, Relive};

fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><html><head><meta name=viewport content='width=device-width'>\
         <title>Home</title></head><body>\
         <h1>Home</h1><a id=about href=/about.html>About</a>\
         <form><input id=name autocomplete=off><input id=secret type=password></form>\
         <div style='height: 6000px'>tall</div></body></html>",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("about.html"),
        "<!doctype html><html><head><meta name=viewport content='width=device-width'>\
         <title>About</title></head><body><h1>About</h1>\
         <a href=/index.html>Home</a></body></html>",
    )
    .unwrap();
    dir
}

/// How far down the page is scrolled, as a fraction of how far it can be.
const SCROLLED: &str = "scrollY / (document.documentElement.scrollHeight - innerHeight)";

/// relive serving [`site`] with `args`, and two devices on its home page: a desktop-sized tab
/// and a phone, each in a browser context of its own. `None` (skipped) without Chromium.
async fn devices(args: &[&str]) -> Option<(Browser, Relive, Tab, Tab, tempfile::TempDir)> {
    let dir = site();
    let mut browser = Browser::launch().await?;
    let relive = Relive::start(&[&["."], args].concat(), dir.path());
    let desktop = browser.open_device(1280, 800, false).await;
    let phone = browser.open_device(390, 844, true).await;
    for tab in [&desktop, &phone] {
        browser.open_in(tab, &relive.url("/index.html")).await;
    }
    Some((browser, relive, desktop, phone, dir))
}

/// Waits until every tab shows `path`, connected.
async fn both_on(browser: &mut Browser, tabs: [&Tab; 2], path: &str) {
    let shown = format!("location.pathname === '{path}' && __relive.status === 'connected'");
    for tab in tabs {
        browser.wait_until_in(tab, &shown, PATIENCE).await;
    }
}

async fn type_in(browser: &mut Browser, tab: &Tab, selector: &str, text: &str) {
    browser
        .eval_in(
            tab,
            &format!("document.querySelector('{selector}').focus(); true"),
        )
        .await;
    browser
        .call_in(tab, "Input.insertText", serde_json::json!({ "text": text }))
        .await;
}

#[tokio::test]
async fn a_desktop_and_a_phone_mirror_each_other() {
    let Some((mut browser, _relive, desktop, phone, _dir)) = devices(&["--sync"]).await else {
        return;
    };
    for tab in [&desktop, &phone] {
        browser
            .wait_until_in(
                tab,
                "__relive.sync.on && __relive.sync.devices === 2",
                PATIENCE,
            )
            .await;
    }
    assert_eq!(
        browser
            .eval_in(&phone, "document.querySelector('relive-badge').shadowRoot.querySelector('.sync').textContent")
            .await,
        "sync · 2",
        "the badge says so"
    );

    // Scrolling the desktop to half way brings the phone to half way of its (longer) page.
    browser
        .eval_in(
            &desktop,
            "scrollTo(0, (document.documentElement.scrollHeight - innerHeight) / 2); true",
        )
        .await;
    browser
        .wait_until_in(
            &phone,
            &format!("Math.abs({SCROLLED} - 0.5) < 0.02"),
            PATIENCE,
        )
        .await;
    // A burst of scrolling, one position a frame: the phone ends where the desktop ended.
    browser
        .eval_in(
            &desktop,
            "(async () => { const max = document.documentElement.scrollHeight - innerHeight; \
             for (const f of [0.1, 0.9, 0.2, 0.8, 0.4, 0.7, 0.3]) { scrollTo(0, f * max); \
             await new Promise(requestAnimationFrame); } return true; })()",
        )
        .await;
    browser
        .wait_until_in(
            &phone,
            &format!("Math.abs({SCROLLED} - 0.3) < 0.02"),
            PATIENCE,
        )
        .await;

    // Typing fills the other device's field; a password never leaves the tab.
    type_in(&mut browser, &desktop, "#secret", "hunter2").await;
    type_in(&mut browser, &desktop, "#name", "Ada").await;
    browser
        .wait_until_in(
            &phone,
            "document.querySelector('#name').value === 'Ada'",
            PATIENCE,
        )
        .await;
    assert_eq!(
        browser
            .eval_in(&phone, "document.querySelector('#secret').value")
            .await,
        "",
        "the password was mirrored"
    );

    // Nothing echoes: the phone did nothing itself, so it sent nothing, and the desktop
    // applied nothing of its own.
    let counts = "[__relive.sync.sent, __relive.sync.applied]";
    let phone_counts = browser.eval_in(&phone, counts).await;
    let desktop_counts = browser.eval_in(&desktop, counts).await;
    assert_eq!(phone_counts[0], 0, "the phone sent {phone_counts}");
    assert_eq!(desktop_counts[1], 0, "the desktop applied {desktop_counts}");
    assert!(
        phone_counts[1].as_u64().unwrap() >= 2,
        "the phone applied a scroll and the name: {phone_counts}"
    );

    // A tap on a link on the phone takes both there; back on the desktop takes both back.
    browser.click_in(&phone, "#about").await;
    both_on(&mut browser, [&desktop, &phone], "/about.html").await;
    browser.eval_in(&desktop, "history.back(); true").await;
    both_on(&mut browser, [&desktop, &phone], "/index.html").await;
    // The phone went back in its own history too, rather than forward to a new entry.
    assert_eq!(browser.eval_in(&phone, "history.length").await, 3);
}

#[tokio::test]
async fn without_sync_nothing_is_mirrored() {
    let Some((mut browser, relive, desktop, phone, dir)) = devices(&[]).await else {
        return;
    };
    browser.eval_in(&desktop, "scrollTo(0, 1000); true").await;
    type_in(&mut browser, &desktop, "#name", "Ada").await;
    // Everything relayed before this message reaches the phone before it.
    let (status, said) = common::run_to_exit_with(
        &["notify", "message", "barrier"],
        dir.path(),
        relive.runtime_dir.path(),
    );
    assert!(status.success(), "{said}");
    browser
        .wait_until_in(
            &phone,
            "document.querySelector('relive-badge')?.shadowRoot.querySelector('.toast')?.textContent === 'barrier'",
            PATIENCE,
        )
        .await;
    let phone_state = browser
        .eval_in(
            &phone,
            "[scrollY, document.querySelector('#name').value, __relive.sync.on, __relive.sync.applied]",
        )
        .await;
    assert_eq!(phone_state, serde_json::json!([0, "", false, 0]));
    assert_eq!(browser.eval_in(&desktop, "__relive.sync.sent").await, 0);
}

#[tokio::test]
async fn the_dashboard_turns_sync_on_and_opens_a_page_on_every_device() {
    let Some((mut browser, relive, desktop, phone, _dir)) = devices(&[]).await else {
        return;
    };
    browser.navigate(&relive.url("/__relive/")).await;
    browser
        .wait_until(
            "document.getElementById('tabs')?.textContent.includes('390×844') \
             && document.getElementById('tabs').textContent.includes('1280×800')",
        )
        .await;
    browser
        .eval("document.getElementById('sync').click(); true")
        .await;
    for tab in [&desktop, &phone] {
        browser
            .wait_until_in(tab, "__relive.sync.on === true", PATIENCE)
            .await;
    }
    browser
        .wait_until("document.getElementById('sync').textContent === 'sync on · 2 devices'")
        .await;
    browser
        .eval(
            "document.getElementById('navigate-url').value = '/about.html'; \
             document.querySelector('#navigate-all button').click(); true",
        )
        .await;
    both_on(&mut browser, [&desktop, &phone], "/about.html").await;
    // Off again, from the dashboard: the tabs stop mirroring.
    browser
        .eval("document.getElementById('sync').click(); true")
        .await;
    for tab in [&desktop, &phone] {
        browser
            .wait_until_in(tab, "__relive.sync.on === false", PATIENCE)
            .await;
    }
}
