//! Shared test helpers: spawning the real relive binary, raw HTTP over TCP, WebSocket clients,
//! in-test upstreams. Written once, used by every integration test.
#![allow(dead_code)]

pub mod browser;
pub mod file_server;
pub mod keepalive;
pub mod upstream;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Upper bound for anything a test awaits; reaching it is a failure, not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running relive process, killed on drop.
pub struct Relive {
    child: Child,
    pub addr: SocketAddr,
    /// `XDG_RUNTIME_DIR` for this relive: its state file is in `relive/` below it.
    pub runtime_dir: tempfile::TempDir,
    /// relive's stderr lines after the `listening` line.
    pub lines: mpsc::Receiver<String>,
    /// What relive logged before it was listening.
    pub before_listening: String,
}

/// What a relive that did not start said, and how it exited.
#[derive(Debug)]
pub struct StartFailure {
    pub status: ExitStatus,
    pub stderr: String,
}

fn command(args: &[&str], cwd: &Path, runtime_dir: &Path) -> Command {
    wrapped_command(&[], args, cwd, runtime_dir)
}

/// `wrapper… relive args…`: relive started by another program that then execs it.
fn wrapped_command(wrapper: &[&str], args: &[&str], cwd: &Path, runtime_dir: &Path) -> Command {
    let binary = env!("CARGO_BIN_EXE_relive");
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(binary);
            command
        }
        None => Command::new(binary),
    };
    command
        .args(args)
        .current_dir(cwd)
        .env("XDG_RUNTIME_DIR", runtime_dir)
        .env_remove("RELIVE_TOKEN")
        .env_remove("RELIVE_PORT")
        .env_remove("RELIVE_HOST")
        .env_remove("RELIVE_PROXY")
        .env_remove("RELIVE_CONFIG")
        .env_remove("RELIVE_LOG")
        .env_remove("RELIVE_LOG_FORMAT")
        .env_remove("RELIVE_HTTPS")
        .env_remove("RELIVE_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

impl Relive {
    /// Starts relive with `args` (plus `--log-format json`, and `--port 0` unless a port is
    /// given) and waits for its `listening` line.
    pub fn start(args: &[&str], cwd: &Path) -> Relive {
        match Relive::try_start(args, cwd) {
            Ok(relive) => relive,
            Err(failure) => panic!("relive did not start: {failure:?}"),
        }
    }

    pub fn try_start(args: &[&str], cwd: &Path) -> Result<Relive, StartFailure> {
        Relive::try_start_with_env(args, cwd, &[])
    }

    /// Like `start`, with extra environment variables (for the dev server relive runs).
    pub fn start_with_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Relive {
        match Relive::try_start_with_env(args, cwd, env) {
            Ok(relive) => relive,
            Err(failure) => panic!("relive did not start: {failure:?}"),
        }
    }

    pub fn try_start_with_env(
        args: &[&str],
        cwd: &Path,
        env: &[(&str, &str)],
    ) -> Result<Relive, StartFailure> {
        Relive::try_start_wrapped(&[], args, cwd, env)
    }

    /// Like `start`, with relive started through `wrapper` (which must exec it, keeping the
    /// process id): `unshare … sh -c '…; exec "$0" "$@"'`.
    pub fn start_wrapped(wrapper: &[&str], args: &[&str], cwd: &Path) -> Relive {
        match Relive::try_start_wrapped(wrapper, args, cwd, &[]) {
            Ok(relive) => relive,
            Err(failure) => panic!("relive did not start: {failure:?}"),
        }
    }

    pub fn try_start_wrapped(
        wrapper: &[&str],
        args: &[&str],
        cwd: &Path,
        env: &[(&str, &str)],
    ) -> Result<Relive, StartFailure> {
        // relive's own flags go before a `--` (what follows is the dev server's command).
        let split = args.iter().position(|a| *a == "--").unwrap_or(args.len());
        let (own, dev_command) = args.split_at(split);
        let mut all: Vec<&str> = own.to_vec();
        all.extend(["--log-format", "json", "-v"]);
        if !own.iter().any(|a| *a == "--port" || *a == "-p") {
            all.extend(["--port", "0"]);
        }
        all.extend(dev_command);
        let runtime_dir = tempfile::tempdir().expect("a temp runtime dir");
        let mut child = wrapped_command(wrapper, &all, cwd, runtime_dir.path())
            .envs(env.iter().copied())
            .spawn()
            .expect("the relive binary runs");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = String::new();
        loop {
            match lines.recv_timeout(PATIENCE) {
                Ok(line) => {
                    if let Ok(json) = serde_json::from_str::<serde_json::Value>(&line)
                        && json["event"] == "listening"
                    {
                        let port = json["port"].as_u64().expect("listening has a port") as u16;
                        return Ok(Relive {
                            child,
                            addr: SocketAddr::from(([127, 0, 0, 1], port)),
                            runtime_dir,
                            lines,
                            before_listening: seen,
                        });
                    }
                    seen.push_str(&line);
                    seen.push('\n');
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().expect("relive exits");
                    return Err(StartFailure {
                        status,
                        stderr: seen,
                    });
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits for a log line containing `needle`; returns it.
    pub fn wait_for_line(&self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => panic!("relive never logged `{needle}`"),
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT and waits for the exit status.
    pub fn interrupt(&mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        self.child.wait().expect("relive exits")
    }
}

impl Drop for Relive {
    /// Stops relive as a user would (SIGTERM), so it stops the dev server it runs; SIGKILL only
    /// if it does not exit in time.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- relive's log after start ---");
            while let Ok(line) = self.lines.try_recv() {
                eprintln!("{line}");
            }
        }
    }
}

/// Runs relive to completion (for commands that should fail fast).
pub fn run_to_exit(args: &[&str], cwd: &Path) -> (ExitStatus, String) {
    let runtime_dir = tempfile::tempdir().expect("a temp runtime dir");
    run_to_exit_with(args, cwd, runtime_dir.path())
}

/// Like `run_to_exit`, with a given `XDG_RUNTIME_DIR` (to reach a running relive's state).
pub fn run_to_exit_with(args: &[&str], cwd: &Path, runtime_dir: &Path) -> (ExitStatus, String) {
    let output = command(args, cwd, runtime_dir)
        .output()
        .expect("the relive binary runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

impl Relive {
    /// The control token from relive's state file.
    pub fn control_token(&self) -> String {
        let path = self
            .runtime_dir
            .path()
            .join(format!("relive/{}.json", self.addr.port()));
        let text = std::fs::read_to_string(&path).expect("relive wrote its state file");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["control_token"].as_str().unwrap().to_owned()
    }
}

/// A temp folder holding one small page, `index.html`.
pub fn one_page_site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp folder");
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><html><body><h1>hi</h1></body></html>",
    )
    .expect("the page is written");
    dir
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends raw request bytes and reads the whole response (the request should say
/// `Connection: close`).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("relive accepts");
    stream.write_all(request).await.expect("request is sent");
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .expect("response arrives")
        .expect("response is readable");
    out
}

/// Sends raw request bytes and reads only the response head (for responses that keep the
/// connection open).
pub async fn raw_head(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("relive accepts");
    stream.write_all(request).await.expect("request is sent");
    let mut out = Vec::new();
    let mut byte = [0u8; 1];
    while !out.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
            .await
            .expect("response arrives")
            .expect("response is readable");
        if n == 0 {
            break;
        }
        out.push(byte[0]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// GET `path` with extra headers; the body is de-chunked.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request(addr, "GET", path, headers).await
}

/// A request with `method`, `Host` and `Connection: close` plus `headers`.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    parse_response(&raw(addr, head.as_bytes()).await, method == "HEAD")
}

/// Headers a browser sends when it navigates to a page.
pub const NAVIGATION: &[(&str, &str)] = &[
    ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-Dest", "document"),
];

pub fn parse_response(bytes: &[u8], head_only: bool) -> Response {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &bytes[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if head_only {
        rest.to_vec()
    } else if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("hex chunk size");
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The status code of the first response in bytes read from a connection (0 when they do not
/// start with one).
pub fn status_of(raw: &[u8]) -> u16 {
    let head = String::from_utf8_lossy(raw.get(..12).unwrap_or(raw));
    head.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// The status codes of every response in bytes read from a connection (several when requests
/// were pipelined on it).
pub fn statuses(raw: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(raw);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// The token a tab gets: the one in the front page's injected tag.
pub async fn page_token(addr: SocketAddr) -> String {
    token_of(&get(addr, "/", NAVIGATION).await.text())
}

/// The token in a page's injected tag.
pub fn token_of(page: &str) -> String {
    let Some(start) = page.find("data-token=\"") else {
        panic!(
            "the page has no relive tag: {:?}",
            &page[..page.len().min(600)]
        );
    };
    let start = start + 12;
    page[start..][..page[start..].find('"').unwrap()].to_owned()
}

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// Opens relive's WebSocket as the page at `/` would (same origin, its token).
pub async fn connect_socket(addr: SocketAddr, query_extra: &str) -> Socket {
    let token = page_token(addr).await;
    let url = format!("ws://{addr}/__relive/ws?token={token}{query_extra}");
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .expect("valid url");
    request
        .headers_mut()
        .insert("origin", format!("http://{addr}").parse().unwrap());
    let (socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("websocket connects");
    socket
}

/// The next event (skipping pings) as JSON.
pub async fn next_event(socket: &mut Socket) -> serde_json::Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("an event arrives in time")
            .expect("socket stays open")
            .expect("frame is valid");
        if let Message::Text(text) = message {
            let json: serde_json::Value = serde_json::from_str(&text).expect("events are JSON");
            if json["type"] != "ping" {
                return json;
            }
        }
    }
}

/// Connects and consumes `hello`, returning the socket and the hello event.
pub async fn connect_and_hello(addr: SocketAddr) -> (Socket, serde_json::Value) {
    let mut socket = connect_socket(addr, "").await;
    let hello = next_event(&mut socket).await;
    assert_eq!(hello["type"], "hello", "{hello}");
    (socket, hello)
}

/// A port that is free now and outside the kernel's ephemeral range (32768 and up), so no
/// `bind(0)` elsewhere in the test run can take it between now and its use.
pub fn unused_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let seed = (std::process::id() % 500) as u16 * 20;
    loop {
        let offset = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10_000;
        let port = 20_000 + (seed + offset) % 10_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Whether a tool that CI must have is missing here: skip loudly locally, fail under CI.
pub fn require_tool(name: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var_os("CI").is_some_and(|v| v == "true") {
        panic!("{name} is required under CI=true but was not found");
    }
    eprintln!("\n!!! SKIPPED: {name} not found; install it to run this test !!!\n");
    false
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits (bounded) for a process that is not ours to go; its end cannot be awaited.
pub fn wait_gone(pid: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while alive(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} outlived relive"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
