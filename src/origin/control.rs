//! control: `POST /__relive/notify`, how build tools, scripts and `relive notify` tell relive
//! that something changed.
//!
//! The request must carry `Authorization: Bearer TOKEN` (the control token from the state
//! file, never the one in pages) and a JSON body of at most 64 KiB; a browser cannot send that
//! cross-site without a CORS preflight, which relive never approves.
//!
//! Must never: let a request without the right token produce an event, or read an oversized
//! body before refusing it.

use http::{HeaderMap, Method, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;

use super::access::token_matches;
use crate::hub::protocol::Event;
use crate::hub::{Hub, routes};

/// A signal, as posted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Signal {
    /// Reload every tab.
    Reload {
        #[serde(default)]
        reason: Option<String>,
    },
    /// Swap these stylesheets (URL paths).
    Css { paths: Vec<String> },
    /// Refresh these images (URL paths).
    Image { paths: Vec<String> },
    /// Show a short message in every tab (as text, never as HTML).
    Message { text: String },
    /// An outside build started or printed a line: the badge says "building…".
    BuildProgress {
        #[serde(default)]
        line: String,
    },
    /// An outside build succeeded: the error overlay goes (send `reload` to reload).
    BuildCompleted {
        #[serde(default)]
        duration_ms: u64,
    },
    /// An outside build failed: every tab shows these lines in the error overlay.
    BuildError {
        #[serde(default)]
        code: Option<i32>,
        lines: Vec<String>,
        #[serde(default)]
        duration_ms: u64,
    },
}

/// How many lines a build error sent from outside may show, and how long each may be.
const MAX_ERROR_LINES: usize = 200;
const MAX_LINE_CHARS: usize = 2000;

fn cut(text: String) -> String {
    if text.chars().count() > MAX_LINE_CHARS {
        text.chars().take(MAX_LINE_CHARS).collect()
    } else {
        text
    }
}

impl Signal {
    /// The hub event this signal becomes.
    pub fn into_event(self) -> Event {
        match self {
            Signal::Reload { reason } => Event::Reload {
                reason: reason.unwrap_or_else(|| "notified".into()),
                paths: vec![],
            },
            Signal::Css { paths } => Event::Css { paths },
            Signal::Image { paths } => Event::Image { paths },
            Signal::Message { text } => Event::Message { text: cut(text) },
            Signal::BuildProgress { line } => Event::BuildProgress { line: cut(line) },
            Signal::BuildCompleted { duration_ms } => Event::BuildCompleted { duration_ms },
            Signal::BuildError {
                code,
                lines,
                duration_ms,
            } => {
                let skip = lines.len().saturating_sub(MAX_ERROR_LINES);
                Event::BuildError {
                    code,
                    lines: lines.into_iter().skip(skip).map(cut).collect(),
                    duration_ms,
                }
            }
        }
    }

    /// Progress lines are sent to whoever listens now, never replayed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Signal::BuildProgress { .. })
    }
}

/// Why a notify request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRefused {
    pub status: StatusCode,
    pub message: String,
}

fn refuse(status: StatusCode, message: impl Into<String>) -> PostRefused {
    PostRefused {
        status,
        message: message.into(),
    }
}

/// Checks everything but the body: method, token, content type, declared length.
pub fn check_head(method: &Method, headers: &HeaderMap, token: &str) -> Result<(), PostRefused> {
    check_post(method, headers, token, routes::MAX_SIGNAL)
}

/// The checks every authenticated JSON POST to relive passes, with a body of at most `limit`
/// bytes.
pub fn check_post(
    method: &Method,
    headers: &HeaderMap,
    token: &str,
    limit: usize,
) -> Result<(), PostRefused> {
    if method != Method::POST {
        return Err(refuse(StatusCode::METHOD_NOT_ALLOWED, "use POST"));
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !token_matches(bearer.map(str::trim), token) {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token (see `relive --print-token`, or use `relive notify`)",
        ));
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"));
    if !json {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send Content-Type: application/json",
        ));
    }
    if routes::declared_length(headers).is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    Ok(())
}

fn too_large(limit: usize) -> PostRefused {
    refuse(StatusCode::PAYLOAD_TOO_LARGE, routes::too_large(limit))
}

/// Reads a body of at most `limit` bytes, refusing a longer one as soon as it is over.
pub async fn read_body(
    request: http::Request<hyper::body::Incoming>,
    limit: usize,
) -> Result<bytes::Bytes, PostRefused> {
    Ok(Limited::new(request.into_body(), limit)
        .collect()
        .await
        .map_err(|_| too_large(limit))?
        .to_bytes())
}

/// Parses a signal body.
pub fn parse(body: &[u8]) -> Result<Signal, PostRefused> {
    serde_json::from_slice(body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "bad signal: {e}; send {{\"type\":\"reload\"}}, {{\"type\":\"css\",\"paths\":[…]}}, \
                 {{\"type\":\"image\",\"paths\":[…]}}, {{\"type\":\"message\",\"text\":…}}, \
                 {{\"type\":\"build_error\",\"lines\":[…]}} or {{\"type\":\"build_completed\"}}"
            ),
        )
    })
}

/// Handles one notify request; returns the status and a JSON body.
pub async fn handle(
    request: http::Request<hyper::body::Incoming>,
    token: &str,
    hub: &Hub,
) -> (StatusCode, String) {
    let outcome = async {
        check_head(request.method(), request.headers(), token)?;
        let body = read_body(request, routes::MAX_SIGNAL).await?;
        let signal = parse(&body)?;
        tracing::info!("notify  {}", describe(&signal));
        if signal.is_transient() {
            hub.broadcast(signal.into_event());
            return Ok::<u64, PostRefused>(hub.last_id());
        }
        Ok(hub.publish(signal.into_event()))
    }
    .await;
    match outcome {
        Ok(id) => (
            StatusCode::ACCEPTED,
            serde_json::json!({ "id": id }).to_string(),
        ),
        Err(refusal) => (
            refusal.status,
            serde_json::json!({ "error": refusal.message }).to_string(),
        ),
    }
}

fn describe(signal: &Signal) -> String {
    match signal {
        Signal::Reload { reason } => {
            format!("reload ({})", reason.as_deref().unwrap_or("notified"))
        }
        Signal::Css { paths } => format!("css {}", paths.join(", ")),
        Signal::Image { paths } => format!("image {}", paths.join(", ")),
        Signal::Message { text } => format!("message {text:?}"),
        Signal::BuildProgress { line } => format!("build │ {line}"),
        Signal::BuildCompleted { .. } => "build completed".to_owned(),
        Signal::BuildError { lines, code, .. } => format!(
            "build failed{}: {}",
            code.map(|c| format!(" (exit {c})")).unwrap_or_default(),
            lines.last().map(String::as_str).unwrap_or("")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in pairs {
            map.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    const GOOD: &[(&str, &str)] = &[
        ("authorization", "Bearer secret"),
        ("content-type", "application/json; charset=utf-8"),
    ];

    #[test]
    fn head_checks_table() {
        let ok = check_head(&Method::POST, &headers(GOOD), "secret");
        assert_eq!(ok, Ok(()));
        let status = |method: Method, pairs: &[(&str, &str)]| {
            check_head(&method, &headers(pairs), "secret")
                .unwrap_err()
                .status
        };
        assert_eq!(status(Method::GET, GOOD), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            status(Method::POST, &[("content-type", "application/json")]),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(
                Method::POST,
                &[
                    ("authorization", "Bearer wrong"),
                    ("content-type", "application/json")
                ]
            ),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status(
                Method::POST,
                &[
                    ("authorization", "Bearer secret"),
                    ("content-type", "text/plain")
                ]
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let mut big = GOOD.to_vec();
        big.push(("content-length", "70000"));
        assert_eq!(status(Method::POST, &big), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn signals_parse_and_become_events() {
        assert_eq!(
            parse(br#"{"type":"reload"}"#).unwrap().into_event(),
            Event::Reload {
                reason: "notified".into(),
                paths: vec![]
            }
        );
        assert_eq!(
            parse(br#"{"type":"css","paths":["/a.css"]}"#).unwrap(),
            Signal::Css {
                paths: vec!["/a.css".into()]
            }
        );
        assert!(parse(br#"{"type":"explode"}"#).is_err());
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"type":"reload","extra":1}"#).is_err());
    }
}
