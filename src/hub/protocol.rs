//! protocol: the messages relive and the browser client exchange over `/__relive/ws`.
//!
//! One serde enum per direction, shared by every producer, the WebSocket and the tests.
//! Must never: carry a secret (the socket's token travels in the page, not in events).

use serde::{Deserialize, Serialize};

/// Bumped whenever a message changes shape; the client checks it in `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// What happened, as sent to every connected tab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum Event {
    /// First frame on every connection. `last_id` is the newest event id the server holds, so
    /// a client knows what it has seen; `session_id` tells it whether relive restarted.
    Hello {
        protocol: u32,
        version: String,
        last_id: u64,
        heartbeat_ms: u64,
        /// How the dev server is doing (absent in static mode), so a waiting page that missed
        /// `preview_ready` still switches to the app.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        upstream: Option<UpstreamState>,
        /// Whether tabs mirror each other (`--sync`).
        #[serde(default)]
        sync: bool,
    },
    /// Reload the page. `reason` is for people; `paths` are the files behind it, if any.
    Reload { reason: String, paths: Vec<String> },
    /// A page or template changed: update the page in place (fetch it again and morph the
    /// live document), or reload when that cannot be faithful. Same fields as `reload`.
    Morph { reason: String, paths: Vec<String> },
    /// Only stylesheets changed: swap these (URL paths, relative to the watched root).
    Css { paths: Vec<String> },
    /// Only images changed: refresh these where the page shows them, without a reload.
    Image { paths: Vec<String> },
    /// What a person did in one tab, for every other tab to do too (`--sync`; relayed, never
    /// kept). `device` is the sending tab's own random id, so it can ignore its own actions.
    Sync {
        device: String,
        action: serde_json::Value,
    },
    /// Mirroring was turned on or off, or the number of mirrored devices changed (not kept).
    SyncState { on: bool, devices: usize },
    /// Go to this same-origin URL (the dashboard's "navigate all devices"; not kept).
    Navigate { url: String },
    /// A line of output from the build command (not kept for replay).
    BuildProgress { line: String },
    /// The build command succeeded; the changes it built follow.
    BuildCompleted { duration_ms: u64 },
    /// The build command failed: its exit code (none when killed) and its last output lines.
    BuildError {
        code: Option<i32>,
        lines: Vec<String>,
        duration_ms: u64,
    },
    /// A short note for the person looking at the page (from `relive notify message`), shown
    /// as text.
    Message { text: String },
    /// The dev server's status changed. `detail` says how a supervised command ended.
    UpstreamStatus {
        status: UpstreamState,
        url: Option<String>,
        detail: String,
    },
    /// The dev server answers: pages waiting for it switch to the app.
    PreviewReady { url: String },
    /// A line the supervised dev server printed (not kept for replay).
    UpstreamOutput { line: String },
    /// The supervised dev server exited: how, its last output lines, and when relive starts it
    /// again (`--restart`), if it does.
    UpstreamExited {
        detail: String,
        lines: Vec<String>,
        restart_in_ms: Option<u64>,
    },
    /// relive found a reload loop and holds back the changes that keep it going: `paths` changed
    /// each time a page loaded (or each time the build ran), `fix` is the flag that stops them
    /// reaching relive. Other changes still reload.
    LoopStopped {
        paths: Vec<String>,
        cause: LoopCause,
        fix: String,
    },
    /// Heartbeat; the client answers with `pong` echoing `sent`. `rtt_ms` is the round trip
    /// the previous heartbeat measured for this connection, if any.
    Ping { sent: u64, rtt_ms: Option<u64> },
}

/// What kept changing the files of a reload loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoopCause {
    /// Loading a page (the server writes a log, a cache, a generated file).
    PageLoad,
    /// Running the build command (it writes into a watched folder).
    Build,
}

/// Where the dev server behind relive is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// Its address is not known yet (the command has not printed its URL).
    Pending,
    /// Its address is known; it does not answer yet.
    Starting,
    /// It answers.
    Ready,
    /// It answered before and does not now.
    Down,
    /// The supervised command ended.
    Exited,
}

/// An [`Event`] with what every frame carries: `{ id, type, data, timestamp, session_id }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Increases by one with each event the hub keeps; `hello` and `ping` repeat the newest.
    pub id: u64,
    #[serde(flatten)]
    pub event: Event,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Random per relive process.
    pub session_id: String,
}

/// What a browser may send. Anything else is ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Answer to a `ping`, echoing its `sent`.
    Pong { sent: u64 },
    /// Which page this connection belongs to (sent once after `hello`), and the tab's
    /// viewport (`1280×800`).
    Page {
        url: String,
        user_agent: String,
        #[serde(default)]
        viewport: Option<String>,
    },
    /// What a person did, to be mirrored by every other tab (see [`Event::Sync`]).
    Sync {
        device: String,
        action: serde_json::Value,
    },
    /// Turn mirroring on or off for every tab (the badge's toggle, the dashboard).
    SyncToggle { on: bool },
    /// From the dashboard: `reload` every tab, or `navigate` every tab to `url`.
    Command {
        command: String,
        #[serde(default)]
        url: Option<String>,
    },
    /// How a tab took a `morph`: `morphed` (with how many nodes changed and how long the fetch
    /// and morph took) or `reloaded` (with why it could not morph).
    Updated {
        path: String,
        outcome: UpdateOutcome,
        #[serde(default)]
        changes: Option<u64>,
        #[serde(default)]
        ms: Option<f64>,
        #[serde(default)]
        reason: Option<String>,
    },
    /// A runtime error on the page: `kind` is `error`, `unhandledrejection` or `console`.
    Error {
        kind: String,
        message: String,
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        line: Option<u64>,
        #[serde(default)]
        column: Option<u64>,
        url: String,
    },
}

/// How a tab took a `morph` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateOutcome {
    Morphed,
    Reloaded,
}

/// Milliseconds since the Unix epoch, for `timestamp`.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_the_documented_shape() {
        let envelope = Envelope {
            id: 7,
            event: Event::Css {
                paths: vec!["/style.css".into()],
            },
            timestamp: 1,
            session_id: "s".into(),
        };
        let json = serde_json::to_value(&envelope).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": 7, "type": "css", "data": {"paths": ["/style.css"]},
                               "timestamp": 1, "session_id": "s"})
        );
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back, envelope);
    }

    #[test]
    fn client_messages_parse() {
        let pong: ClientMessage = serde_json::from_str(r#"{"type":"pong","sent":5}"#).unwrap();
        assert_eq!(pong, ClientMessage::Pong { sent: 5 });
        let error: ClientMessage = serde_json::from_str(
            r#"{"type":"error","kind":"error","message":"boom","line":3,"url":"http://x/"}"#,
        )
        .unwrap();
        assert!(matches!(error, ClientMessage::Error { line: Some(3), .. }));
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"reload"}"#).is_err());
    }
}
