//! sse: `/__relive/events`, the event-stream fallback for browsers whose WebSocket cannot
//! open (a corporate proxy, an extension). Same events, same resume rules as the WebSocket;
//! server to client only. Its way back is `POST /__relive/errors`: the page's runtime errors,
//! with the page token, under the same size limit as the socket's frames.
//!
//! Must never: answer another origin or a request without the token, or keep a task alive
//! after its browser left (a failed write ends it).

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;

use super::access::{same_site, token_matches};
use super::ws::{self, Query, SocketContext, UpgradeRefused};
use crate::hub::Published;
use crate::hub::protocol::{ClientMessage, Event};
use crate::hub::routes;

fn frame(event: &Published) -> Bytes {
    let mut out = format!("id: {}\ndata: ", event.id()).into_bytes();
    out.extend_from_slice(&event.json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Answers `GET /__relive/events?token=…`: an open `text/event-stream`, or a refusal.
pub fn respond(
    headers: &HeaderMap,
    query: Query,
    context: Arc<SocketContext>,
) -> Result<Response<UnsyncBoxBody<Bytes, std::io::Error>>, UpgradeRefused> {
    if !same_site(headers) || !token_matches(query.token.as_deref(), &context.token) {
        return Err(UpgradeRefused::Forbidden);
    }
    let (sender, receiver) = mpsc::channel::<Bytes>(16);
    tokio::spawn(feed(sender, query, context));
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let bytes = receiver.recv().await?;
        Some((Ok(Frame::data(bytes)), receiver))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

/// Answers `POST /__relive/errors` from a tab on the event stream: prints the runtime error it
/// reports (within the same per-window limit as the socket's), `204`; or a refusal.
pub async fn report_error(
    request: http::Request<hyper::body::Incoming>,
    context: &SocketContext,
) -> StatusCode {
    let outcome = async {
        if !same_site(request.headers()) {
            return Err(StatusCode::FORBIDDEN);
        }
        super::control::check_post(
            request.method(),
            request.headers(),
            &context.token,
            routes::MAX_CLIENT_MESSAGE,
        )
        .map_err(|refusal| refusal.status)?;
        let body = super::control::read_body(request, routes::MAX_CLIENT_MESSAGE)
            .await
            .map_err(|refusal| refusal.status)?;
        match serde_json::from_slice(&body) {
            Ok(updated @ ClientMessage::Updated { .. }) => {
                super::ws::tab_updated(&context.hub, updated);
                Ok(())
            }
            Ok(
                message @ (ClientMessage::Sync { .. }
                | ClientMessage::SyncToggle { .. }
                | ClientMessage::Command { .. }),
            ) => {
                context.mirror().heard(message);
                Ok(())
            }
            Ok(error @ ClientMessage::Error { .. }) => {
                context
                    .posted_errors
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .report(error);
                Ok(())
            }
            _ => Err(StatusCode::BAD_REQUEST),
        }
    }
    .await;
    match outcome {
        Ok(()) => StatusCode::NO_CONTENT,
        Err(status) => status,
    }
}

async fn feed(sender: mpsc::Sender<Bytes>, query: Query, context: Arc<SocketContext>) {
    let hub = &context.hub;
    let (mut subscription, first) = ws::catch_up(&context, &query);
    let last_sent = subscription.last_id;
    let client = context.clients.connect_with("event-stream");
    let mut heartbeat = tokio::time::interval(context.heartbeat);
    heartbeat.tick().await;
    let mut ok = true;
    for envelope in &first {
        ok = ok && sender.send(frame(envelope)).await.is_ok();
    }
    while ok {
        let next = tokio::select! {
            _ = context.shutdown.cancelled() => break,
            _ = sender.closed() => break,
            received = subscription.receiver.recv() => match received {
                Ok(event) if event.id() > last_sent || event.transient => frame(&event),
                Ok(_) => continue,
                // Too slow or the hub is gone: the browser reconnects and catches up.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => break,
            },
            _ = heartbeat.tick() => frame(&Published::new(hub.transient(Event::Ping {
                sent: crate::hub::protocol::now_ms(),
                rtt_ms: None,
            }))),
        };
        // A browser that stopped reading fills the stream's buffer: drop it after a while.
        ok = matches!(
            tokio::time::timeout(ws::SEND_TIMEOUT, sender.send(next)).await,
            Ok(Ok(()))
        );
    }
    context.clients.disconnect(client);
}
