//! `relive check`: smoke checks for CI, in headless Chromium and over HTTP, with table, JSON and
//! JUnit reports, and a dev server that never gets ready (a timeout that leaves nothing behind).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::require_tool;

const CHROMIUM: &str = "/usr/bin/chromium";
const FAKE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/fake_dev_server.py"
);

fn check(args: &[&str], cwd: &Path) -> Output {
    let runtime = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_relive"))
        .arg("check")
        .args(args)
        .current_dir(cwd)
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .expect("relive runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn chromium() -> bool {
    require_tool("chromium", Path::new(CHROMIUM).exists())
}

/// A site with a good page and one with a JS error, an unhandled rejection, a console error
/// and a missing image.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><html><head><title>ok</title><link rel=stylesheet href=style.css></head>\
         <body><p>fine</p></body></html>",
    )
    .unwrap();
    std::fs::write(dir.path().join("style.css"), "p { color: green }").unwrap();
    std::fs::write(
        dir.path().join("broken.html"),
        "<!doctype html><html><head><title>broken</title><script>boom();</script></head><body>\n\
         <img src=\"/missing.png\"><script>console.error('bad thing', 42); \
         Promise.reject(new Error('nope'));</script></body></html>",
    )
    .unwrap();
    dir
}

fn kinds(report: &serde_json::Value, page: usize) -> Vec<(String, String)> {
    report["pages"][page]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_owned(),
                p["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_example_site_given_as_an_absolute_folder_passes_in_a_browser() {
    if !chromium() {
        return;
    }
    // As CI gives it (`"$PWD/examples/site"`), from another folder.
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/site");
    let elsewhere = tempfile::tempdir().unwrap();
    let folder = examples.to_str().unwrap();
    let output = check(
        &["--browser", CHROMIUM, folder, "/", "/about.html"],
        elsewhere.path(),
    );
    let text = stdout(&output);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        text.starts_with(&format!("relive check: 2 pages in {CHROMIUM}, all passed")),
        "{text}"
    );
    assert!(text.contains("✓ /about.html  200"), "{text}");
}

#[test]
fn errors_and_missing_images_fail_with_their_reasons_in_a_browser() {
    if !chromium() {
        return;
    }
    let dir = site();
    let output = check(
        &[
            "--browser",
            CHROMIUM,
            "--format",
            "json",
            ".",
            "/",
            "/broken.html",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["mode"], "browser");
    assert_eq!(report["pages"][0]["ok"], true, "{report}");
    assert_eq!(report["pages"][0]["status"], 200);
    assert!(report["pages"][0]["load_ms"].is_u64());
    let problems = kinds(&report, 1);
    for expected in [
        (
            "js-error",
            "ReferenceError: boom is not defined (/broken.html:1 (inline script))",
        ),
        (
            "unhandled-rejection",
            "Error: nope (/broken.html:2 (inline script))",
        ),
        ("console-error", "bad thing 42"),
        ("resource", "/missing.png (404)"),
    ] {
        assert!(
            problems.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} not in {problems:?}"
        );
    }
}

#[test]
fn without_a_browser_the_page_and_what_it_references_are_fetched() {
    let dir = site();
    let output = check(
        &[
            "--no-browser",
            "--format",
            "json",
            ".",
            "/",
            "/broken.html",
            "/gone.html",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["mode"], "http");
    assert_eq!(
        report["pages"][0]["ok"], true,
        "the stylesheet was found: {report}"
    );
    assert_eq!(
        kinds(&report, 1),
        [("resource".to_owned(), "/missing.png (404)".to_owned())]
    );
    assert_eq!(report["pages"][2]["status"], 404);
    assert_eq!(kinds(&report, 2)[0].0, "status");
}

#[test]
fn junit_output_has_a_case_per_page() {
    let dir = site();
    let output = check(
        &[
            "--no-browser",
            "--format",
            "junit",
            ".",
            "/",
            "/broken.html",
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1));
    let xml = stdout(&output);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"relive check\" tests=\"2\" failures=\"1\""), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 2);
    assert!(
        xml.contains("<failure message=\"resource: /missing.png (404)\">"),
        "{xml}"
    );
    assert!(xml.trim_end().ends_with("</testsuite>"));
}

#[test]
fn a_dev_server_that_never_gets_ready_fails_on_timeout_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    // The fake prints a line, starts a grandchild and waits for a `go` file that never comes.
    std::fs::write(dir.path().join("family"), "").unwrap();
    let folder = dir.path().to_str().unwrap();
    let output = check(
        &[
            "--no-browser",
            "--timeout",
            "2",
            "--",
            "python3",
            FAKE,
            "serve",
            folder,
        ],
        dir.path(),
    );
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("not-ready: the site was not ready within 2 s"),
        "{text}"
    );
    assert!(
        text.contains("fake: compiling"),
        "the dev server's last lines: {text}"
    );
    let pids = std::fs::read_to_string(dir.path().join("pids")).unwrap();
    let pids: Vec<&str> = pids.split_whitespace().collect();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        common::wait_gone(pid);
    }
}
