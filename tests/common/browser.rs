//! Real headless Chromium for the browser tests, driven through relive's own DevTools client
//! (`relive::check::chromium`, the one `relive check` uses). `Browser::launch()` returns `None` (with a
//! loud message) when Chromium is missing locally, and panics under `CI=true`.

use std::path::Path;
use std::time::{Duration, Instant};

use relive::check::chromium::Chromium;
use serde_json::{Value, json};

use super::{PATIENCE, require_tool};

const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    chromium: Chromium,
}

/// Another tab of the same browser (see [`Browser::open_tab`]).
pub struct Tab {
    session: String,
}

impl Browser {
    /// Starts Chromium and opens one blank tab.
    pub async fn launch() -> Option<Browser> {
        Browser::launch_with_env(&[]).await
    }

    /// Chromium showing `path` of relive serving the folder `dir`, connected; `None` (skipped)
    /// without Chromium.
    pub async fn showing(dir: &Path, path: &str) -> Option<(Browser, super::Relive)> {
        let mut browser = Browser::launch().await?;
        let relive = super::Relive::start(&["."], dir);
        browser.open(&relive.url(path)).await;
        Some((browser, relive))
    }

    /// Like `launch`, with extra environment variables for the browser.
    pub async fn launch_with_env(env: &[(&str, &Path)]) -> Option<Browser> {
        if !require_tool("chromium", Path::new(CHROMIUM).exists()) {
            return None;
        }
        let chromium = Chromium::launch_with_env(Path::new(CHROMIUM), env)
            .await
            .unwrap_or_else(|error| panic!("chromium starts: {error:#}"));
        Some(Browser { chromium })
    }

    /// Opens another tab in a window of its own, so its page is visible; `hidden`: the window
    /// is minimized, so the page is hidden (`document.visibilityState === 'hidden'`) as a tab
    /// in a background window is.
    pub async fn open_tab(&mut self, hidden: bool) -> Tab {
        let (target, session) = self
            .chromium
            .open_tab(true)
            .await
            .unwrap_or_else(|error| panic!("a new tab opens: {error:#}"));
        if hidden {
            let window = self
                .chromium
                .call_in(
                    None,
                    "Browser.getWindowForTarget",
                    json!({"targetId": target}),
                )
                .await
                .expect("the tab has a window");
            self.chromium
                .call_in(
                    None,
                    "Browser.setWindowBounds",
                    json!({"windowId": window["windowId"], "bounds": {"windowState": "minimized"}}),
                )
                .await
                .expect("the window minimizes");
        }
        Tab { session }
    }

    /// Opens a tab in a browser context of its own (cookies, storage: another device), with a
    /// viewport of `width`×`height`; `mobile` emulates a phone (touch, mobile viewport).
    pub async fn open_device(&mut self, width: u32, height: u32, mobile: bool) -> Tab {
        let context = self
            .chromium
            .new_context()
            .await
            .unwrap_or_else(|error| panic!("a browser context opens: {error:#}"));
        let (_, session) = self
            .chromium
            .open_tab_in(Some(&context), true)
            .await
            .unwrap_or_else(|error| panic!("a new tab opens: {error:#}"));
        let tab = Tab { session };
        self.call_in(
            &tab,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": if mobile { 3 } else { 1 }, "mobile": mobile}),
        )
        .await;
        tab
    }

    /// Clicks the element `selector` names in `tab` as a person does (a trusted click at its
    /// centre, scrolled into view first).
    pub async fn click_in(&mut self, tab: &Tab, selector: &str) {
        let at = self
            .eval_in(
                tab,
                &format!(
                    "(() => {{ const el = document.querySelector({selector:?}); el.scrollIntoView({{block: 'center'}});                      const r = el.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
                ),
            )
            .await;
        let (x, y) = (at[0].as_f64().expect("x"), at[1].as_f64().expect("y"));
        for kind in ["mousePressed", "mouseReleased"] {
            self.call_in(
                tab,
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }

    /// Navigates `tab` to `url` and waits until relive's client there is connected.
    pub async fn open_in(&mut self, tab: &Tab, url: &str) {
        self.call_in(tab, "Page.navigate", json!({ "url": url }))
            .await;
        self.wait_until_in(
            tab,
            "document.readyState === 'complete' && globalThis.__relive?.status === 'connected'",
            PATIENCE,
        )
        .await;
    }

    /// Sends a DevTools command to `tab`.
    pub async fn call_in(&mut self, tab: &Tab, method: &str, params: Value) -> Value {
        match self
            .chromium
            .call_in(Some(&tab.session), method, params)
            .await
        {
            Ok(result) => result,
            Err(error) => panic!("{method} failed: {error:#}"),
        }
    }

    /// Evaluates `expression` in `tab` (`null` while it is between documents).
    pub async fn eval_in(&mut self, tab: &Tab, expression: &str) -> Value {
        let params = json!({"expression": expression, "returnByValue": true, "awaitPromise": true});
        match self
            .chromium
            .call_in(Some(&tab.session), "Runtime.evaluate", params)
            .await
        {
            Ok(result) => result["result"]["value"].clone(),
            Err(_) => Value::Null,
        }
    }

    /// The next DevTools event of the first tab, waiting at most `patience`.
    pub async fn next_event(&mut self, patience: Duration) -> Option<Value> {
        self.chromium
            .next_event(tokio::time::Instant::now() + patience)
            .await
            .unwrap_or_else(|error| panic!("reading browser events: {error:#}"))
    }

    /// Sends a DevTools command to the tab and returns its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params).await {
            Ok(result) => result,
            Err(error) => panic!("{method} failed: {error:#}"),
        }
    }

    /// Like `call`, returning DevTools' error instead of failing the test.
    pub async fn try_call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.chromium.call(method, params).await
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
        self.wait_in(None, expression, patience).await;
    }

    /// Like `wait_until`, in `tab`, with its own patience.
    pub async fn wait_until_in(&mut self, tab: &Tab, expression: &str, patience: Duration) {
        self.wait_in(Some(tab), expression, patience).await;
    }

    async fn wait_in(&mut self, tab: Option<&Tab>, expression: &str, patience: Duration) {
        let deadline = Instant::now() + patience;
        while Instant::now() < deadline {
            if self.eval_somewhere(tab, expression).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let status = self
            .eval_somewhere(
                tab,
                "JSON.stringify(globalThis.__relive ?? null) + ' ' + location.href",
            )
            .await;
        panic!("the page never satisfied `{expression}` (client: {status})");
    }

    async fn eval_somewhere(&mut self, tab: Option<&Tab>, expression: &str) -> Value {
        match tab {
            Some(tab) => self.eval_in(tab, expression).await,
            None => self.eval(expression).await,
        }
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

    /// Waits until the page set `window.marker` on was replaced by a reload (which forgets it)
    /// and relive's client on the new one is connected.
    pub async fn wait_reloaded(&mut self) {
        self.wait_until("window.marker === undefined").await;
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
