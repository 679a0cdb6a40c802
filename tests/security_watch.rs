//! SECURITY.md §7, file watching: editor temp files and atomic saves give one reload, bursts are
//! coalesced, symlink loops and thousands of files never stop watching, a deleted and recreated
//! root is watched again, and a native watcher that fails (out of inotify watches) falls back to
//! polling and says how to raise the limit.

mod common;

use common::*;

/// Waits for the next page update (`reload`, or `morph` for a page), skipping other events;
/// returns its reason.
async fn next_reload(socket: &mut Socket) -> String {
    loop {
        let event = next_event(socket).await;
        if event["type"] == "reload" || event["type"] == "morph" {
            return event["data"]["reason"].as_str().unwrap_or("").to_owned();
        }
    }
}

/// Writes `file` until a reload names it alone: a write that lands in a batch still being
/// gathered (a rescan, a burst) is reported with it, the next one on its own.
async fn own_reload(socket: &mut Socket, file: &std::path::Path, text: &str) {
    let name = file.file_name().unwrap().to_str().unwrap();
    for attempt in 0..10 {
        std::fs::write(file, format!("{text}{attempt}")).unwrap();
        if next_reload(socket).await == format!("{name} changed") {
            return;
        }
    }
    panic!("no reload of its own for {name}");
}

#[tokio::test]
async fn a_watched_folder_deleted_and_recreated_is_watched_again() {
    let outer = tempfile::tempdir().unwrap();
    let site = outer.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), "<p>one</p>").unwrap();
    let relive = Relive::start(&["site"], outer.path());
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::remove_dir_all(&site).unwrap();
    relive.wait_for_line("is gone; relive keeps running");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), "<p>two</p>").unwrap();
    relive.wait_for_line("is back; watching it again");
    // Watching works again: a file written now gets its own reload.
    own_reload(&mut socket, &site.join("other.html"), "<p>three</p>").await;
    let page = get(relive.addr, "/other.html", NAVIGATION).await;
    assert!(page.text().contains("three"), "{}", page.text());
}

#[tokio::test]
async fn symlink_loops_and_bursts_of_thousands_of_files_do_not_stop_watching() {
    let site = one_page_site();
    std::os::unix::fs::symlink(".", site.path().join("loop")).unwrap();
    std::fs::create_dir(site.path().join("gen")).unwrap();
    let relive = Relive::start(&["."], site.path());
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    for i in 0..3000 {
        std::fs::write(site.path().join(format!("gen/f{i}.txt")), "x").unwrap();
    }
    next_reload(&mut socket).await;
    // After the burst, a file written on its own still gives its own reload.
    own_reload(&mut socket, &site.path().join("after.html"), "<p>after</p>").await;
}

#[tokio::test]
async fn an_editors_atomic_save_gives_one_reload_and_its_temp_files_none() {
    let site = one_page_site();
    let relive = Relive::start(&["."], site.path());
    let (mut socket, _) = connect_and_hello(relive.addr).await;

    // Temp and backup files on their own: vim's swap file, emacs' lock and autosave, a `~`
    // backup, JetBrains' safe-write file. None of them is a change to the site.
    for name in [
        ".index.html.swp",
        ".#index.html",
        "#index.html#",
        "index.html~",
        "index.html___jb_tmp___",
        "4913",
    ] {
        std::fs::write(site.path().join(name), "temp").unwrap();
    }
    // An atomic save as editors do it: write a temp file, then rename it over the page.
    let temp = site.path().join("index.html.8842.tmp");
    std::fs::write(&temp, "<p>saved</p>").unwrap();
    std::fs::rename(&temp, site.path().join("index.html")).unwrap();
    let reason = next_reload(&mut socket).await;
    assert!(reason.contains("index.html"), "{reason}");
    // Exactly one: the next reload is the canary's own, not a second one for the save.
    std::fs::write(site.path().join("canary.html"), "<p>canary</p>").unwrap();
    assert_eq!(next_reload(&mut socket).await, "canary.html changed");
}

#[tokio::test]
async fn running_out_of_inotify_watches_falls_back_to_polling_and_says_how_to_fix_it() {
    // A user namespace of the test's own, where inotify allows only 2 watches (the limit is
    // per namespace, so nothing else on the machine is affected).
    let unshare = std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !require_tool("unshare --user (util-linux, user namespaces)", unshare) {
        return;
    }
    let site = one_page_site();
    for dir in ["a", "b", "c", "d"] {
        std::fs::create_dir(site.path().join(dir)).unwrap();
    }
    let relive = Relive::start_wrapped(
        &[
            "unshare",
            "--user",
            "--map-root-user",
            "sh",
            "-c",
            "echo 2 > /proc/sys/user/max_inotify_watches && exec \"$0\" \"$@\"",
        ],
        &["."],
        site.path(),
    );
    // Said while starting, before the `listening` line.
    let said = &relive.before_listening;
    assert!(
        said.contains("native file watching failed")
            && said.contains("polling")
            && said.contains("max_user_watches"),
        "{said}"
    );
    // Polling works: a change deep in the tree still reloads the tab.
    let (mut socket, _) = connect_and_hello(relive.addr).await;
    std::fs::write(site.path().join("d/page.html"), "<p>polled</p>").unwrap();
    assert_eq!(next_reload(&mut socket).await, "d/page.html changed");
}
