//! ws: relive's WebSocket, `/__relive/ws`, which pushes hub events to each tab.
//!
//! The upgrade is accepted only from the same origin and with the per-run token that the
//! injected tag carries. Each connection gets `hello`, then what it missed (when it names the
//! session and last id it saw), then every new event, and a `ping` every heartbeat.
//!
//! Must never: let a client block the hub (a client that lags is dropped), accept a message
//! bigger than a small limit, or act on anything a client sends but `pong`, `page` (which
//! page the tab shows) and `error` (a runtime error, printed within a per-window limit).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::sync::broadcast::error::RecvError;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::access::{origin_matches_host, token_matches};
use crate::hub::protocol::{ClientMessage, Event, PROTOCOL_VERSION, UpdateOutcome};
use crate::hub::{Backlog, Hub, Published, routes};

/// What the socket endpoint needs.
pub struct SocketContext {
    pub hub: Arc<Hub>,
    pub clients: Clients,
    pub token: String,
    pub heartbeat: Duration,
    pub shutdown: CancellationToken,
    /// The dev server, in proxy mode (its status goes into `hello`).
    pub upstream: Option<Arc<crate::upstream::Upstream>>,
    /// Runtime errors posted by tabs on the event stream, which have no socket to send them on.
    pub posted_errors: std::sync::Mutex<ErrorReporter>,
    /// Tabs mirror each other (`--sync`, the badge's switch, the dashboard).
    pub sync: std::sync::atomic::AtomicBool,
}

/// Why an upgrade was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeRefused {
    /// Not a valid WebSocket upgrade request.
    NotAnUpgrade,
    /// Another origin, or a wrong or missing token.
    Forbidden,
}

/// The query parameters a client sends.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub token: Option<String>,
    /// The session and last event id the client saw before it reconnected.
    pub session: Option<String>,
    pub last_id: Option<u64>,
}

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let mut parsed = Query::default();
        for pair in query.unwrap_or("").split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "token" => parsed.token = Some(value.to_owned()),
                "session" => parsed.session = Some(value.to_owned()),
                "last_id" => parsed.last_id = value.parse().ok(),
                _ => {}
            }
        }
        parsed
    }
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Checks an upgrade request; returns the client's accept key on success.
pub fn check_upgrade(
    headers: &HeaderMap,
    query: &Query,
    token: &str,
) -> Result<String, UpgradeRefused> {
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .and_then(|k| k.to_str().ok())
        .filter(|_| {
            header_has_token(headers, header::UPGRADE, "websocket")
                && header_has_token(headers, header::CONNECTION, "upgrade")
                && headers
                    .get(header::SEC_WEBSOCKET_VERSION)
                    .is_some_and(|v| v == "13")
        })
        .ok_or(UpgradeRefused::NotAnUpgrade)?;
    if !origin_matches_host(headers) || !token_matches(query.token.as_deref(), token) {
        return Err(UpgradeRefused::Forbidden);
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// Answers an upgrade request: `101` and a task that runs the socket, or a refusal.
pub fn upgrade<B>(
    mut request: Request<B>,
    context: Arc<SocketContext>,
) -> Result<Response<()>, UpgradeRefused>
where
    B: hyper::body::Body + Send + 'static,
{
    let query = Query::parse(request.uri().query());
    let accept = check_upgrade(request.headers(), &query, &context.token)?;
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let config = WebSocketConfig::default()
                    .max_message_size(Some(routes::MAX_CLIENT_MESSAGE))
                    .max_frame_size(Some(routes::MAX_CLIENT_MESSAGE));
                let socket = WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                run(socket, query, context).await;
            }
            Err(error) => tracing::debug!("websocket upgrade failed: {error}"),
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(())
        .expect("static response parts are valid"))
}

fn frame(event: &Published) -> Message {
    let text = Utf8Bytes::try_from(event.json.clone()).expect("serde_json writes UTF-8");
    Message::Text(text)
}

fn close(code: CloseCode, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// What a new connection is sent first (`hello`, then what it missed) and the subscription
/// that follows; shared by the WebSocket and the event-stream fallback.
pub fn catch_up(
    context: &SocketContext,
    query: &Query,
) -> (crate::hub::Subscription, Vec<Arc<Published>>) {
    let hub = &context.hub;
    let seen = match (&query.session, query.last_id) {
        (Some(session), Some(last_id)) if session == hub.session_id() => Some(last_id),
        // Events from another session (relive restarted) cannot be replayed.
        (Some(_), _) => Some(u64::MAX),
        _ => None,
    };
    let subscription = hub.subscribe(seen);
    let last_id = subscription.last_id;
    let mut first = vec![Published::new(hub.envelope(
        last_id,
        Event::Hello {
            protocol: PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            last_id,
            heartbeat_ms: context.heartbeat.as_millis() as u64,
            upstream: context.upstream.as_ref().map(|u| u.state()),
            sync: context.sync.load(std::sync::atomic::Ordering::Relaxed),
        },
    ))];
    match &subscription.backlog {
        Backlog::Missed(events) => first.extend(events.iter().cloned()),
        Backlog::Gap => first.push(Published::new(hub.envelope(
            last_id,
            Event::Reload {
                reason: "relive restarted or events were missed while disconnected".into(),
                paths: vec![],
            },
        ))),
    }
    (subscription, first)
}

/// How many errors one tab may report per window before the rest are only counted.
const ERRORS_PER_WINDOW: u32 = 10;
const ERROR_WINDOW: Duration = Duration::from_secs(10);

/// Prints a tab's runtime errors in relive's output, at most [`ERRORS_PER_WINDOW`] per window.
pub struct ErrorReporter {
    window_start: std::time::Instant,
    in_window: u32,
    suppressed: u32,
}

impl Default for ErrorReporter {
    fn default() -> ErrorReporter {
        ErrorReporter::new()
    }
}

impl ErrorReporter {
    fn new() -> ErrorReporter {
        ErrorReporter {
            window_start: std::time::Instant::now(),
            in_window: 0,
            suppressed: 0,
        }
    }

    /// Prints `message` if it is an error and the window allows.
    pub fn report(&mut self, message: ClientMessage) {
        let ClientMessage::Error {
            kind,
            message,
            source,
            line,
            column,
            url,
        } = message
        else {
            return;
        };
        if self.window_start.elapsed() > ERROR_WINDOW {
            if self.suppressed > 0 {
                tracing::warn!(
                    "({} more browser errors from {url} were not shown)",
                    self.suppressed
                );
            }
            self.window_start = std::time::Instant::now();
            self.in_window = 0;
            self.suppressed = 0;
        }
        self.in_window += 1;
        if self.in_window > ERRORS_PER_WINDOW {
            self.suppressed += 1;
            return;
        }
        let location = match (source, line, column) {
            (Some(source), Some(line), Some(column)) => format!(" at {source}:{line}:{column}"),
            (Some(source), Some(line), None) => format!(" at {source}:{line}"),
            (Some(source), None, _) => format!(" at {source}"),
            _ => String::new(),
        };
        let message: String = message.chars().take(2000).collect();
        tracing::warn!("browser {kind} on {url}: {message}{location}");
    }
}

/// A tab that does not take a frame within this long has stopped reading: it is dropped, so
/// it holds neither a task nor a queue.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends one frame; false when the tab is gone or stopped reading.
async fn send<S>(socket: &mut WebSocketStream<S>, message: Message) -> bool
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await,
        Ok(Ok(()))
    )
}

/// Runs one connection until the client leaves, falls behind, stops answering, or relive
/// shuts down.
async fn run<S>(mut socket: WebSocketStream<S>, query: Query, context: Arc<SocketContext>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let hub = &context.hub;
    let (mut subscription, first) = catch_up(&context, &query);
    let last_sent = subscription.last_id;
    for envelope in first {
        if !send(&mut socket, frame(&envelope)).await {
            return;
        }
    }
    let client = context.clients.connect();
    tracing::debug!("tab connected ({} connected)", hub.subscribers());

    let mut heartbeat = tokio::time::interval(context.heartbeat);
    heartbeat.tick().await;
    let mut tab = Tab {
        client,
        missed_heartbeats: 0,
        rtt_ms: None,
        errors: ErrorReporter::new(),
    };
    loop {
        tokio::select! {
            _ = context.shutdown.cancelled() => {
                let _ = send(&mut socket, close(CloseCode::Away, "relive is shutting down")).await;
                break;
            }
            received = subscription.receiver.recv() => match received {
                Ok(event) if event.id() > last_sent || event.transient => {
                    if !send(&mut socket, frame(&event)).await {
                        break;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => {
                    tracing::debug!("dropping a tab that fell behind");
                    let _ = send(&mut socket, close(CloseCode::Again, "too slow; reconnect")).await;
                    break;
                }
                Err(RecvError::Closed) => break,
            },
            _ = heartbeat.tick() => {
                tab.missed_heartbeats += 1;
                if tab.missed_heartbeats > 2 {
                    tracing::debug!("dropping a tab that stopped answering");
                    break;
                }
                let ping = Event::Ping { sent: crate::hub::protocol::now_ms(), rtt_ms: tab.rtt_ms };
                if !send(&mut socket, frame(&Published::new(hub.transient(ping)))).await {
                    break;
                }
            }
            message = socket.next() => match tab.received(message, &context) {
                Heard::Carry => {}
                Heard::End(goodbye) => {
                    if let Some(goodbye) = goodbye {
                        let _ = send(&mut socket, goodbye).await;
                    }
                    break;
                }
            },
        }
    }
    context.clients.disconnect(client);
    context.mirror().devices_changed();
}

impl SocketContext {
    /// What mirroring between tabs needs: the hub, the switch, how many devices there are.
    pub fn mirror(&self) -> super::sync::Mirror<'_> {
        let devices = self
            .clients
            .list()
            .iter()
            .filter(|tab| {
                tab.url
                    .as_deref()
                    .is_some_and(|url| !url.contains(routes::PREFIX))
            })
            .count();
        super::sync::Mirror {
            hub: &self.hub,
            on: &self.sync,
            devices,
        }
    }
}

/// What a connection knows of its tab.
struct Tab {
    client: u64,
    /// Pings sent since the last pong.
    missed_heartbeats: u32,
    rtt_ms: Option<u64>,
    errors: ErrorReporter,
}

/// What the connection does after a frame from its tab.
/// Says in relive's output how a tab took a `morph` ("morphed /about.html, 3 changes" or
/// "reloaded /about.html: a script changed") and counts it for the dashboard.
pub fn tab_updated(hub: &Hub, message: ClientMessage) {
    let ClientMessage::Updated {
        path,
        outcome,
        changes,
        ms,
        reason,
    } = message
    else {
        return;
    };
    // What a tab says is shown as text, and not at any length.
    let path: String = path.chars().take(200).collect();
    match outcome {
        UpdateOutcome::Morphed => {
            hub.tab_updated(true);
            let changes = match changes.unwrap_or(0) {
                0 => "no changes".to_owned(),
                1 => "1 change".to_owned(),
                n => format!("{n} changes"),
            };
            let ms = ms.map(|ms| format!(" ({ms:.0} ms)")).unwrap_or_default();
            tracing::info!("morphed {path}, {changes}{ms}");
        }
        UpdateOutcome::Reloaded => {
            hub.tab_updated(false);
            let reason: String = reason
                .unwrap_or_else(|| "no reason given".into())
                .chars()
                .take(200)
                .collect();
            tracing::info!("reloaded {path}: {reason}");
        }
    }
}

enum Heard {
    Carry,
    /// Close, with a last frame saying why when there is one to say.
    End(Option<Message>),
}

impl Tab {
    /// Acts on one frame from the tab: a pong, its page, an error it saw, or the end.
    fn received(
        &mut self,
        message: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        context: &SocketContext,
    ) -> Heard {
        let clients = &context.clients;
        match message {
            Some(Ok(Message::Text(text))) => {
                match serde_json::from_str(&text) {
                    Ok(ClientMessage::Pong { sent }) => {
                        self.missed_heartbeats = 0;
                        let rtt = crate::hub::protocol::now_ms().saturating_sub(sent);
                        self.rtt_ms = Some(rtt);
                        clients.update(self.client, |info| info.rtt_ms = Some(rtt));
                    }
                    Ok(ClientMessage::Page {
                        url,
                        user_agent,
                        viewport,
                    }) => {
                        clients.update(self.client, |info| {
                            info.url = Some(url.chars().take(2048).collect());
                            info.user_agent = Some(user_agent.chars().take(512).collect());
                            info.viewport = viewport.map(|v| v.chars().take(32).collect());
                        });
                        context.mirror().devices_changed();
                    }
                    Ok(
                        message @ (ClientMessage::Sync { .. }
                        | ClientMessage::SyncToggle { .. }
                        | ClientMessage::Command { .. }),
                    ) => context.mirror().heard(message),
                    Ok(error @ ClientMessage::Error { .. }) => self.errors.report(error),
                    Ok(updated @ ClientMessage::Updated { .. }) => {
                        tab_updated(&context.hub, updated)
                    }
                    Err(_) => {}
                }
                Heard::Carry
            }
            Some(Ok(Message::Binary(_))) => {
                Heard::End(Some(close(CloseCode::Unsupported, "text only")))
            }
            Some(Ok(Message::Close(_))) | None => Heard::End(None),
            Some(Ok(_)) => Heard::Carry,
            Some(Err(error)) => {
                tracing::debug!("websocket closed: {error}");
                // A frame over the limit: say why before closing (1009).
                let too_big = matches!(error, tokio_tungstenite::tungstenite::Error::Capacity(_));
                Heard::End(too_big.then(|| close(CloseCode::Size, "message too big")))
            }
        }
    }
}

/// One connected tab, as `/__relive/status` shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClientInfo {
    pub url: Option<String>,
    pub user_agent: Option<String>,
    /// The tab's viewport, `1280×800`.
    pub viewport: Option<String>,
    pub rtt_ms: Option<u64>,
    pub transport: &'static str,
}

/// The connected tabs.
#[derive(Default)]
pub struct Clients {
    next: std::sync::atomic::AtomicU64,
    all: std::sync::Mutex<std::collections::BTreeMap<u64, ClientInfo>>,
}

impl Clients {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<u64, ClientInfo>> {
        self.all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn connect_with(&self, transport: &'static str) -> u64 {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().insert(
            id,
            ClientInfo {
                transport,
                ..ClientInfo::default()
            },
        );
        id
    }

    fn connect(&self) -> u64 {
        self.connect_with("websocket")
    }

    fn update(&self, id: u64, change: impl FnOnce(&mut ClientInfo)) {
        if let Some(info) = self.lock().get_mut(&id) {
            change(info);
        }
    }

    pub fn disconnect(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// A snapshot, in connection order.
    pub fn list(&self) -> Vec<ClientInfo> {
        self.lock().values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_headers(origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:4500".parse().unwrap());
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        h.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        h.insert(header::SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        h.insert(
            header::SEC_WEBSOCKET_KEY,
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        if let Some(origin) = origin {
            h.insert(header::ORIGIN, origin.parse().unwrap());
        }
        h
    }

    fn query(token: &str) -> Query {
        Query::parse(Some(&format!("token={token}")))
    }

    #[test]
    fn same_origin_with_token_is_accepted() {
        let accept = check_upgrade(
            &upgrade_headers(Some("http://127.0.0.1:4500")),
            &query("tok"),
            "tok",
        );
        assert_eq!(accept.as_deref(), Ok("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert!(check_upgrade(&upgrade_headers(None), &query("tok"), "tok").is_ok());
    }

    #[test]
    fn other_origins_and_bad_tokens_are_forbidden() {
        for origin in [
            "http://127.0.0.1:4501",
            "http://evil.example",
            "null",
            "file://",
            "https://127.0.0.1:4500",
        ] {
            assert_eq!(
                check_upgrade(&upgrade_headers(Some(origin)), &query("tok"), "tok"),
                Err(UpgradeRefused::Forbidden),
                "{origin}"
            );
        }
        // Behind an HTTPS front door the origin is https://, and http:// is another origin.
        let mut secure = upgrade_headers(Some("https://127.0.0.1:4500"));
        secure.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(check_upgrade(&secure, &query("tok"), "tok").is_ok());
        secure.insert(header::ORIGIN, "http://127.0.0.1:4500".parse().unwrap());
        assert_eq!(
            check_upgrade(&secure, &query("tok"), "tok"),
            Err(UpgradeRefused::Forbidden)
        );
        let same = upgrade_headers(Some("http://127.0.0.1:4500"));
        assert_eq!(
            check_upgrade(&same, &query("wrong"), "tok"),
            Err(UpgradeRefused::Forbidden)
        );
        assert_eq!(
            check_upgrade(&same, &Query::default(), "tok"),
            Err(UpgradeRefused::Forbidden)
        );
    }

    #[test]
    fn non_upgrades_are_refused() {
        let mut h = upgrade_headers(None);
        h.remove(header::SEC_WEBSOCKET_KEY);
        assert_eq!(
            check_upgrade(&h, &query("tok"), "tok"),
            Err(UpgradeRefused::NotAnUpgrade)
        );
    }

    #[test]
    fn query_is_parsed() {
        assert_eq!(
            Query::parse(Some("token=a&session=s1&last_id=42&x=y")),
            Query {
                token: Some("a".into()),
                session: Some("s1".into()),
                last_id: Some(42)
            }
        );
        assert_eq!(Query::parse(None), Query::default());
    }
}
