//! chromium: a headless Chromium (or Chrome) driven over the DevTools protocol, for
//! `relive check`. The protocol is JSON over a WebSocket, so no extra crate is needed.
//!
//! Must never: outlive relive (the browser runs in its own process group, killed on drop, and
//! its temporary profile is removed), or wait on the browser without a deadline.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long the browser may take to start and to answer a command.
const START_TIMEOUT: Duration = Duration::from_secs(30);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Names a Chromium goes by on PATH, most specific first.
const NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
];

/// The browser to use: `explicit`, else the first of [`NAMES`] on PATH.
pub fn find(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| NAMES.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A running headless browser with one tab attached.
pub struct Chromium {
    group: Option<i32>,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    /// Events that arrived while waiting for a command's answer.
    pending: VecDeque<Value>,
    profile: PathBuf,
    _child: tokio::process::Child,
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if let Some(group) = self.group {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(group),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Chromium {
    /// Starts the browser at `path` headless with a fresh profile and opens a blank tab with
    /// the page, runtime, network and log events on.
    pub async fn launch(path: &Path) -> anyhow::Result<Chromium> {
        Chromium::launch_with_env(path, &[]).await
    }

    /// Like [`Chromium::launch`], with extra environment variables for the browser (a `HOME`
    /// whose certificate database trusts a test authority, say).
    pub async fn launch_with_env(path: &Path, env: &[(&str, &Path)]) -> anyhow::Result<Chromium> {
        let profile =
            std::env::temp_dir().join(format!("relive-check-{}", crate::app::random_hex(8)));
        std::fs::create_dir_all(&profile)
            .with_context(|| format!("cannot create {}", profile.display()))?;
        let mut child = tokio::process::Command::new(path)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--disable-quic",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .envs(env.iter().copied())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start the browser {}", path.display()))?;
        let group = child.id().and_then(|id| i32::try_from(id).ok());
        let stderr = child.stderr.take().expect("piped");
        let (sender, receiver) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut sender = Some(sender);
            // Read to the end, so the browser never blocks on a full pipe.
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ")
                    && let Some(sender) = sender.take()
                {
                    let _ = sender.send(url.trim().to_owned());
                }
            }
        });
        let url = tokio::time::timeout(START_TIMEOUT, receiver)
            .await
            .map_err(|_| anyhow!("{} did not start within {START_TIMEOUT:?}", path.display()))?
            .map_err(|_| anyhow!("{} exited at start", path.display()))?;
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .with_context(|| format!("cannot connect to the browser's DevTools at {url}"))?;
        let mut browser = Chromium {
            group,
            socket,
            next_id: 0,
            session: None,
            pending: VecDeque::new(),
            profile,
            _child: child,
        };
        let (_, session) = browser.open_tab(false).await?;
        browser.session = Some(session);
        for domain in ["Network", "Log"] {
            browser.call(&format!("{domain}.enable"), json!({})).await?;
        }
        Ok(browser)
    }

    /// Opens another tab (`new_window`: in a window of its own) with the page and runtime
    /// events on; returns its target id and its session id (for [`Chromium::call_in`]).
    pub async fn open_tab(&mut self, new_window: bool) -> anyhow::Result<(String, String)> {
        self.open_tab_in(None, new_window).await
    }

    /// A new browser context: its own cookies, storage and cache, as another device has.
    pub async fn new_context(&mut self) -> anyhow::Result<String> {
        let made = self
            .call_in(None, "Target.createBrowserContext", json!({}))
            .await?;
        Ok(made["browserContextId"]
            .as_str()
            .context("the browser named no context")?
            .to_owned())
    }

    /// Like [`Chromium::open_tab`], in `context` (from [`Chromium::new_context`]) when given.
    pub async fn open_tab_in(
        &mut self,
        context: Option<&str>,
        new_window: bool,
    ) -> anyhow::Result<(String, String)> {
        let mut params = json!({"url": "about:blank", "newWindow": new_window});
        if let Some(context) = context {
            params["browserContextId"] = json!(context);
        }
        let target = self.call_in(None, "Target.createTarget", params).await?;
        let attached = self
            .call_in(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .context("the browser named no session for the new tab")?
            .to_owned();
        for domain in ["Page", "Runtime"] {
            self.call_in(Some(&session), &format!("{domain}.enable"), json!({}))
                .await?;
        }
        let target = target["targetId"]
            .as_str()
            .context("the browser named no target for the new tab")?
            .to_owned();
        Ok((target, session))
    }

    /// Sends a command to the tab (to the browser before one is attached) and returns its
    /// result; events arriving meanwhile are kept for [`Chromium::next_event`].
    pub async fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        let session = self.session.clone();
        self.call_in(session.as_deref(), method, params).await
    }

    /// Sends a command to the tab of `session` (to the browser itself with `None`).
    pub async fn call_in(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .context("the browser closed its DevTools connection")?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let Some(reply) = self.receive(deadline).await? else {
                bail!("the browser did not answer {method} within {COMMAND_TIMEOUT:?}");
            };
            if reply["id"] == id {
                if let Some(error) = reply.get("error") {
                    bail!("{method} failed: {error}");
                }
                return Ok(reply["result"].clone());
            }
            // Events of the first tab are kept; other tabs' events are not read.
            if reply.get("method").is_some()
                && (reply.get("sessionId").is_none()
                    || reply["sessionId"].as_str() == self.session.as_deref())
            {
                self.pending.push_back(reply);
            }
        }
    }

    /// The next event from the tab, or `None` at `deadline`.
    pub async fn next_event(&mut self, deadline: Instant) -> anyhow::Result<Option<Value>> {
        if let Some(event) = self.pending.pop_front() {
            return Ok(Some(event));
        }
        loop {
            let Some(message) = self.receive(deadline).await? else {
                return Ok(None);
            };
            if message.get("method").is_some() {
                return Ok(Some(message));
            }
        }
    }

    async fn receive(&mut self, deadline: Instant) -> anyhow::Result<Option<Value>> {
        loop {
            let frame = match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => bail!("the browser closed its DevTools connection"),
                Ok(Some(frame)) => frame.context("reading from the browser")?,
            };
            if let Message::Text(text) = frame {
                return Ok(Some(serde_json::from_str(&text)?));
            }
        }
    }
}
