//! Real headless Chromium, driven over the DevTools protocol (a WebSocket, so no extra crate).
//! `Browser::launch()` returns `None` (with a loud message) when Chromium is missing locally,
//! and panics under `CI=true`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::{PATIENCE, Socket, require_tool};

const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    child: Child,
    socket: Socket,
    next_id: u64,
    session: Option<String>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts Chromium and opens one blank tab.
    pub async fn launch() -> Option<Browser> {
        if !require_tool("chromium", std::path::Path::new(CHROMIUM).exists()) {
            return None;
        }
        let profile = tempfile::tempdir().expect("temp profile");
        let mut child = Command::new(CHROMIUM)
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
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        let stderr = child.stderr.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = sender.send(url.trim().to_owned());
                }
            }
        });
        let url = receiver
            .recv_timeout(PATIENCE)
            .expect("chromium prints its DevTools address");
        let (socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("DevTools socket connects");
        let mut browser = Browser {
            child,
            socket,
            next_id: 0,
            session: None,
            _profile: profile,
        };
        let target = browser
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        browser.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        browser.call("Page.enable", json!({})).await;
        browser.call("Runtime.enable", json!({})).await;
        Some(browser)
    }

    /// Sends a DevTools command (to the tab once attached) and returns its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params).await {
            Ok(result) => result,
            Err(error) => panic!("{method} failed: {error}"),
        }
    }

    /// Like `call`, returning DevTools' error instead of failing the test.
    pub async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .expect("DevTools command is sent");
        loop {
            let frame = tokio::time::timeout(PATIENCE, self.socket.next())
                .await
                .expect("DevTools answers in time")
                .expect("DevTools socket open")
                .expect("valid frame");
            let Message::Text(text) = frame else { continue };
            let reply: Value = serde_json::from_str(&text).unwrap();
            if reply["id"] == id {
                if let Some(error) = reply.get("error") {
                    return Err(error.clone());
                }
                return Ok(reply["result"].clone());
            }
        }
    }

    pub async fn navigate(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
    }

    /// Evaluates `expression` in the page and returns its value (`null` while the page is
    /// between documents, when there is no context to evaluate in).
    pub async fn eval(&mut self, expression: &str) -> Value {
        let params = json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
        match self.try_call("Runtime.evaluate", params).await {
            Ok(result) => result["result"]["value"].clone(),
            Err(_) => Value::Null,
        }
    }

    /// Polls `expression` until it is `true`. Reaching the patience limit fails the test.
    pub async fn wait_until(&mut self, expression: &str) {
        self.wait_until_within(expression, PATIENCE).await;
    }

    /// Like `wait_until`, for behaviours that take long by design (backoff schedules).
    pub async fn wait_until_within(&mut self, expression: &str, patience: Duration) {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if self.eval(expression).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let status = self
            .eval("JSON.stringify(globalThis.__relive ?? null) + ' ' + location.href")
            .await;
        panic!("the page never satisfied `{expression}` (client: {status})");
    }

    /// Types `text` into the focused element, as a user would.
    pub async fn type_text(&mut self, text: &str) {
        self.call("Input.insertText", json!({"text": text})).await;
    }

    /// Runs `source` in every new document before its own scripts.
    pub async fn before_every_page(&mut self, source: &str) {
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": source}),
        )
        .await;
    }

    /// Evaluates `expression` inside relive's badge shadow root (`root` is bound to it).
    pub async fn badge(&mut self, expression: &str) -> Value {
        self.eval(&format!(
            "(() => {{ const root = document.querySelector('relive-badge')?.shadowRoot; \
             return root ? ({expression}) : null; }})()"
        ))
        .await
    }

    /// Waits until `selector` inside relive's badge shadow root is shown, checks that no
    /// element from the shown text became markup, and returns the text.
    pub async fn shown_as_text(&mut self, selector: &str) -> String {
        self.wait_until(&format!(
            "document.querySelector('relive-badge')?.shadowRoot.querySelector('{selector}')?.hidden === false"
        ))
        .await;
        let markup = self
            .badge(&format!(
                "root.querySelector('{selector}').querySelectorAll('img, b, script, a').length"
            ))
            .await;
        assert_eq!(markup, 0, "text became markup in {selector}");
        self.badge(&format!("root.querySelector('{selector}').textContent"))
            .await
            .as_str()
            .expect("text")
            .to_owned()
    }

    /// Navigates to `url` and waits until relive's client there is connected.
    pub async fn open(&mut self, url: &str) {
        self.navigate(url).await;
        self.wait_connected().await;
    }

    /// Waits until the page is loaded and relive's client is connected.
    pub async fn wait_connected(&mut self) {
        self.wait_until(
            "document.readyState === 'complete' && globalThis.__relive?.status === 'connected'",
        )
        .await;
    }
}
