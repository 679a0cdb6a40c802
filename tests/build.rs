//! `--build CMD`: the event sequences a tab sees for a successful build, a failing one and
//! changes made during a build, and the error overlay in Chromium.

mod common;

use common::browser::Browser;
use common::{Relive, Socket, connect_and_hello, next_event};

fn site() -> tempfile::TempDir {
    common::one_page_site()
}

/// The types of events up to and including the first of `until`, with build lines.
async fn events_until(socket: &mut Socket, until: &[&str]) -> Vec<(String, serde_json::Value)> {
    let mut seen = Vec::new();
    loop {
        let event = next_event(socket).await;
        let kind = event["type"].as_str().unwrap().to_owned();
        let done = until.contains(&kind.as_str());
        seen.push((kind, event["data"].clone()));
        if done {
            return seen;
        }
    }
}

fn kinds(events: &[(String, serde_json::Value)]) -> Vec<&str> {
    let mut kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
    kinds.dedup();
    kinds
}

#[tokio::test]
async fn a_successful_build_streams_its_output_then_updates_the_tabs() {
    let dir = site();
    let relive = Relive::start(
        &[
            ".",
            "--build",
            "echo compiling; echo done >&2",
            "--ignore",
            "out/",
        ],
        dir.path(),
    );
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::write(dir.path().join("index.html"), "<p>v2</p>").unwrap();
    let events = events_until(&mut socket, &["morph", "build_error"]).await;
    assert_eq!(
        kinds(&events),
        vec!["build_progress", "build_completed", "morph"],
        "{events:?}"
    );
    let lines: Vec<&str> = events
        .iter()
        .filter(|(k, _)| k == "build_progress")
        .map(|(_, d)| d["line"].as_str().unwrap())
        .collect();
    assert!(
        lines.contains(&"compiling") && lines.contains(&"done"),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_failing_build_sends_its_last_lines_and_no_reload() {
    let dir = site();
    let relive = Relive::start(
        &[
            ".",
            "--build",
            "for i in $(seq 1 30); do echo line $i; done; exit 3",
        ],
        dir.path(),
    );
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::write(dir.path().join("index.html"), "<p>v2</p>").unwrap();
    let events = events_until(&mut socket, &["morph", "build_error"]).await;
    let (kind, data) = events.last().unwrap();
    assert_eq!(kind, "build_error", "{events:?}");
    assert_eq!(data["code"], 3);
    let lines = data["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 20);
    assert_eq!(lines[0], "line 11");
    assert_eq!(lines[19], "line 30");

    // The tab was not reloaded: the next event is the next build, not a reload.
    std::fs::write(dir.path().join("index.html"), "<p>v3</p>").unwrap();
    let next = next_event(&mut socket).await;
    assert_eq!(next["type"], "build_progress", "{next}");
}

#[tokio::test]
async fn changes_during_a_build_cause_exactly_one_more_run() {
    let dir = site();
    // Each run counts itself, then waits until the test drops a `go` file.
    let build = "n=$(cat count 2>/dev/null || echo 0); echo $((n+1)) > count; echo run $((n+1)); \
                 while [ ! -e go ]; do sleep 0.01; done; rm go";
    let relive = Relive::start(
        &[".", "--build", build, "--ignore", "count", "--ignore", "go"],
        dir.path(),
    );
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::write(dir.path().join("a.html"), "1").unwrap();
    wait_for_line(&mut socket, "run 1").await;
    // Three changes while the first build runs.
    for name in ["b.html", "c.html", "d.html"] {
        std::fs::write(dir.path().join(name), "1").unwrap();
    }
    relive.wait_for_line("d.html");
    std::fs::write(dir.path().join("go"), "").unwrap();
    let first = events_until(&mut socket, &["morph"]).await;
    assert_eq!(kinds(&first), vec!["build_completed", "morph"]);
    wait_for_line(&mut socket, "run 2").await;
    std::fs::write(dir.path().join("go"), "").unwrap();
    let second = events_until(&mut socket, &["morph"]).await;
    assert_eq!(kinds(&second), vec!["build_completed", "morph"]);
    // The one extra run covered all three changes.
    let (_, reload) = second.last().unwrap();
    let mut paths: Vec<&str> = reload["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    paths.sort();
    assert_eq!(paths, vec!["/b.html", "/c.html", "/d.html"], "{reload}");
    // No third run: a later plain change starts run 3, not a leftover.
    std::fs::write(dir.path().join("e.html"), "1").unwrap();
    wait_for_line(&mut socket, "run 3").await;
    assert_eq!(
        std::fs::read_to_string(dir.path().join("count"))
            .unwrap()
            .trim(),
        "3"
    );
}

async fn wait_for_line(socket: &mut Socket, wanted: &str) {
    loop {
        let event = next_event(socket).await;
        assert_ne!(event["type"], "build_error", "{event}");
        if event["type"] == "build_progress" && event["data"]["line"] == wanted {
            return;
        }
    }
}

#[tokio::test]
async fn the_error_overlay_shows_output_as_text_and_leaves_on_success() {
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let dir = site();
    // Fails while a `broken` file exists, printing markup and an ANSI colour.
    let build = "if [ -e broken ]; then printf '\\033[31merror\\033[0m: <img src=x onerror=alert(1)>\\n'; exit 1; fi";
    let relive = Relive::start(&[".", "--build", build], dir.path());
    browser.open(&relive.url("/")).await;
    browser.eval("window.marker = 'kept'").await;
    std::fs::write(dir.path().join("broken"), "").unwrap();
    let text = browser.shown_as_text(".overlay").await;
    assert!(
        text.ends_with("error: <img src=x onerror=alert(1)>\n"),
        "{text}"
    );
    assert_eq!(
        browser
            .badge("root.querySelector('.overlay pre .fg-31').textContent")
            .await,
        "error"
    );
    assert_eq!(
        browser.eval("window.marker").await,
        "kept",
        "a failed build must not reload"
    );

    std::fs::remove_file(dir.path().join("broken")).unwrap();
    // Success: the overlay goes and the page is brought up to date (in place: its HTML is the
    // same, so nothing in it changes).
    browser.wait_until("__relive.morphs === 1").await;
    assert_eq!(
        browser.eval("document.querySelector('relive-badge')?.shadowRoot.querySelector('.overlay').hidden ?? true").await,
        true
    );
    assert_eq!(browser.eval("window.marker").await, "kept");
}

#[tokio::test]
async fn stopping_relive_stops_a_running_build() {
    let dir = site();
    let marker = format!(
        "{}.{}",
        40 + std::process::id() % 50,
        std::process::id() % 1000
    );
    let build = format!("echo started; sleep {marker}");
    let mut relive = Relive::start(&[".", "--build", &build], dir.path());
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::write(dir.path().join("index.html"), "<p>v2</p>").unwrap();
    wait_for_line(&mut socket, "started").await;
    let running = |marker: &str| {
        let wanted = format!("sleep\0{marker}");
        std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
            std::fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&wanted))
        })
    };
    // `echo` ran; the shell starts `sleep` right after it.
    let deadline = std::time::Instant::now() + common::PATIENCE;
    while !running(&marker) {
        assert!(
            std::time::Instant::now() < deadline,
            "the build never started sleep"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(relive.interrupt().code(), Some(130));
    assert!(!running(&marker), "the build outlived relive");
}

#[tokio::test]
async fn a_build_that_writes_into_the_watched_folder_stops_rebuilding_for_its_own_output() {
    let dir = site();
    // The build writes its output into the folder relive watches: each run would start the next.
    let relive = Relive::start(&[".", "--build", "date +%s%N > built.txt"], dir.path());
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::write(dir.path().join("index.html"), "<p>v2</p>").unwrap();
    let events = events_until(&mut socket, &["loop_stopped"]).await;
    let builds = events
        .iter()
        .filter(|(kind, _)| kind == "build_completed")
        .count();
    assert_eq!(
        builds,
        relive::triggers::loop_guard::LOOP_CYCLES as usize,
        "{events:?}"
    );
    let (_, stopped) = events.last().unwrap();
    assert_eq!(stopped["paths"], serde_json::json!(["/built.txt"]));
    assert_eq!(stopped["cause"], "build");
    assert_eq!(stopped["fix"], "--ignore 'built.txt'");
    let said = relive.wait_for_line("\"event\":\"loop\"");
    assert!(said.contains("the build writes built.txt"), "{said}");

    // A person's save still builds and reloads, once; the build's output no longer rebuilds.
    std::fs::write(dir.path().join("index.html"), "<p>v3</p>").unwrap();
    let events = events_until(&mut socket, &["morph"]).await;
    assert_eq!(
        kinds(&events),
        vec!["build_progress", "build_completed", "morph"]
    );
    relive.wait_for_line("held back /built.txt");
    let (status, said) = common::run_to_exit_with(
        &["notify", "message", "synced"],
        dir.path(),
        relive.runtime_dir.path(),
    );
    assert!(status.success(), "{said}");
    let events = events_until(&mut socket, &["message"]).await;
    assert_eq!(kinds(&events), vec!["message"], "no build after the loop");
}

#[tokio::test]
async fn a_build_printing_invalid_utf8_then_a_megabyte_finishes_and_shows_its_last_lines() {
    let dir = site();
    let relive = Relive::start(
        &[
            ".",
            "--build",
            "printf 'bad \\377\\376 bytes\\n'; head -c 1048576 /dev/zero | tr '\\0' x; echo; \
             echo the last line; exit 2",
        ],
        dir.path(),
    );
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::write(dir.path().join("index.html"), "<p>v2</p>").unwrap();
    let events = events_until(&mut socket, &["morph", "build_error"]).await;
    let progress: Vec<&str> = events
        .iter()
        .filter(|(k, _)| k == "build_progress")
        .map(|(_, d)| d["line"].as_str().unwrap())
        .collect();
    assert_eq!(
        progress.get(1),
        Some(&"bad \u{fffd}\u{fffd} bytes"),
        "after the command itself, the line that is not UTF-8 is shown, lossily"
    );
    assert!(
        progress[2].starts_with("xxxx") && progress[2].ends_with(" …"),
        "the megabyte on one line is shown once, cut: {}…",
        &progress[2][..40]
    );
    assert_eq!(progress[3..], ["the last line"], "and read to its end");
    let (kind, data) = events.last().unwrap();
    assert_eq!(kind, "build_error", "{:?}", kinds(&events));
    assert_eq!(data["code"], 2);
    let lines = data["lines"].as_array().unwrap();
    assert_eq!(lines.last().unwrap(), "the last line", "{:?}", lines.last());
    assert!(
        lines
            .iter()
            .all(|line| line.as_str().unwrap().len() <= relive::child::MAX_LINE),
        "long lines are cut"
    );
}
