//! The command line as a user meets it: ports, config errors, shutdown.

mod common;

use common::{Relive, run_to_exit};

fn folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<p>hi</p>").unwrap();
    dir
}

/// A port that is busy for as long as the returned listener lives.
fn busy_port() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

#[test]
fn a_busy_port_falls_through_to_the_next_and_says_so() {
    let dir = folder();
    let (_held, port) = busy_port();
    let relive = Relive::start(&[".", "--port", &port.to_string()], dir.path());
    assert_ne!(relive.addr.port(), port);
    assert!(relive.addr.port() > port && relive.addr.port() <= port + 100);
}

#[test]
fn the_port_change_is_announced() {
    let dir = folder();
    let (_held, port) = busy_port();
    let runtime_dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_relive"))
        .args([".", "--port", &port.to_string()])
        .current_dir(dir.path())
        .env("XDG_RUNTIME_DIR", runtime_dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = output;
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
    let first = lines.next().unwrap().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        first.contains(&format!("port {port} is in use; using")),
        "{first}"
    );
}

#[test]
fn strict_port_on_a_busy_port_fails_naming_the_port() {
    let dir = folder();
    let (_held, port) = busy_port();
    let (status, stderr) = run_to_exit(
        &[".", "--port", &port.to_string(), "--strict-port"],
        dir.path(),
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("port {port} is in use")) && stderr.contains("--strict-port"),
        "{stderr}"
    );
}

#[test]
fn a_bad_config_names_file_line_and_key() {
    let dir = folder();
    std::fs::write(
        dir.path().join("relive.toml"),
        "[server]\nport = 4000\nprot = 4001\n",
    )
    .unwrap();
    let (status, stderr) = run_to_exit(&[], dir.path());
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("relive.toml, line 3, key `server.prot`"),
        "{stderr}"
    );

    std::fs::write(
        dir.path().join("relive.toml"),
        "[watch]\ndebounce_ms = \"fast\"\n",
    )
    .unwrap();
    let (status, stderr) = run_to_exit(&[], dir.path());
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 2, key `watch.debounce_ms`"),
        "{stderr}"
    );
}

#[test]
fn a_missing_folder_or_config_file_is_a_clear_error() {
    let dir = folder();
    let (status, stderr) = run_to_exit(&["no-such-folder"], dir.path());
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("no-such-folder is not a folder"),
        "{stderr}"
    );
    let (status, stderr) = run_to_exit(&["--config", "missing.toml"], dir.path());
    assert_eq!(status.code(), Some(2));
    assert!(
        stderr.contains("cannot read config file") && stderr.contains("missing.toml"),
        "{stderr}"
    );
}

#[test]
fn config_file_settings_are_used_and_flags_win() {
    let dir = folder();
    std::fs::create_dir(dir.path().join("public")).unwrap();
    std::fs::write(
        dir.path().join("public/index.html"),
        "<p>from config root</p>",
    )
    .unwrap();
    std::fs::write(dir.path().join("relive.toml"), "root = \"public\"\n").unwrap();
    let relive = Relive::start(&[], dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let page = runtime.block_on(common::get(relive.addr, "/", common::NAVIGATION));
    assert!(page.text().contains("from config root"));
    drop(relive);
    let relive = Relive::start(&["."], dir.path());
    let page = runtime.block_on(common::get(relive.addr, "/", common::NAVIGATION));
    assert!(
        page.text().contains("<p>hi</p>"),
        "the DIR flag overrides root"
    );
}

#[test]
fn ctrl_c_stops_relive_with_exit_code_130() {
    let dir = folder();
    let mut relive = Relive::start(&["."], dir.path());
    let addr = relive.addr;
    let status = relive.interrupt();
    assert_eq!(status.code(), Some(130));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "nothing listens after exit"
    );
}

/// `relive ARGS…`'s standard output, checked to have succeeded.
fn printed(args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "relive {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Whether `program` is on PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// Parses `script` with `shell -n` (read, not run).
fn parses(shell: &str, script: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), script).unwrap();
    let output = std::process::Command::new(shell)
        .arg("-n")
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{shell} -n: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn completions_parse_in_their_shells_and_name_the_subcommands_and_flags() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = printed(&["completions", shell]);
        for word in ["check", "notify", "proxy", "watch", "upstream-insecure"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    // Each shell that can read its script without running it does (PowerShell and Elvish are
    // not packaged for this system; their scripts are only checked for content above).
    for shell in ["bash", "zsh", "fish"] {
        if common::require_tool(shell, on_path(shell)) {
            parses(shell, &printed(&["completions", shell]));
        }
    }
}

#[test]
fn the_manual_page_is_roff_that_man_formats_without_warnings() {
    let page = printed(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH relive 1"),
        "{page}"
    );
    for section in ["NAME", "SYNOPSIS", "OPTIONS", "SUBCOMMANDS"] {
        assert!(page.contains(&format!(".SH {section}")), "no {section}");
    }
    if !common::require_tool("groff", on_path("groff")) {
        return;
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &page).unwrap();
    let output = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "groff: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
