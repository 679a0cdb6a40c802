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
    },
    /// Reload the page. `reason` is for people; `paths` are the files behind it, if any.
    Reload { reason: String, paths: Vec<String> },
    /// Only stylesheets changed: swap these (URL paths, relative to the watched root).
    Css { paths: Vec<String> },
    /// Heartbeat; the client answers with `pong`.
    Ping {},
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
    /// Answer to a `ping`.
    Pong {},
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
        let pong: ClientMessage = serde_json::from_str(r#"{"type":"pong"}"#).unwrap();
        assert_eq!(pong, ClientMessage::Pong {});
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"reload"}"#).is_err());
    }
}
