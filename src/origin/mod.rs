//! origin: relive's own small HTTP app on a loopback ephemeral port, reached only through the
//! front door. Serves the client script, the WebSocket, the status JSON and, in static mode,
//! the folder, so static and proxy modes share one injection path.
//!
//! Uses: config, hub, inject, log, upstream.
//!
//! Must never: listen on anything but loopback, or answer a request the front door did not
//! forward (it is not advertised anywhere).

mod access;
pub mod control;
mod file_cache;
pub mod pages;
pub mod sse;
pub mod static_files;
mod sync;
pub mod ws;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::origin::static_files::{Served, StaticFiles};
use ws::SocketContext;

use crate::hub::routes;

/// The browser client, compiled into the binary.
pub const CLIENT_JS: &str = concat!(
    include_str!("../../client/relive.js"),
    include_str!("../../client/morph.js"),
    include_str!("../../client/sync.js")
);
/// The dashboard's script, compiled into the binary.
pub const DASHBOARD_JS: &str = include_str!("../../client/dashboard.js");
/// How many recent events the status shows.
const STATUS_EVENTS: usize = 50;

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// What the origin serves.
pub struct Origin {
    pub socket: Arc<SocketContext>,
    /// The tag relive's own pages carry.
    pub tag: crate::inject::ClientTag,
    /// Bearer token for `POST /__relive/notify`.
    pub control_token: String,
    /// The folder, in static mode (the front door answers small files from it itself).
    pub files: Option<Arc<StaticFiles>>,
    /// For `/__relive/status`: what relive is in front of.
    pub serving: String,
    /// For `/__relive/status`: what is watched (`null` when nothing is).
    pub watching: serde_json::Value,
    pub started: Instant,
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(pages::CSP),
        );
    }
    response
}

/// The refusal for a live-update connection (WebSocket or event stream) from another origin
/// or without the right token.
fn forbidden() -> Response<Body> {
    response(
        StatusCode::FORBIDDEN,
        "text/plain; charset=utf-8",
        "relive: forbidden (another origin, or a missing or wrong token)\n",
    )
}

impl Origin {
    /// Routes one request.
    async fn handle(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        let path = request.uri().path();
        match path {
            routes::CLIENT_JS => self.client_js(request.method()),
            routes::SOCKET => match ws::upgrade(request, self.socket.clone()) {
                Ok(switching) => switching.map(|()| full(Bytes::new())),
                Err(ws::UpgradeRefused::NotAnUpgrade) => response(
                    StatusCode::BAD_REQUEST,
                    "text/plain; charset=utf-8",
                    "relive: this endpoint only speaks WebSocket\n",
                ),
                Err(ws::UpgradeRefused::Forbidden) => forbidden(),
            },
            routes::EVENTS => {
                let query = ws::Query::parse(request.uri().query());
                match sse::respond(request.headers(), query, self.socket.clone()) {
                    Ok(stream) => stream,
                    Err(_) => forbidden(),
                }
            }
            routes::ERRORS => {
                let status = sse::report_error(request, &self.socket).await;
                response(status, "text/plain; charset=utf-8", Bytes::new())
            }
            routes::STATUS => self.status(),
            // `response` gives every HTML page relive's CSP.
            routes::PREFIX | routes::DASHBOARD => response(
                StatusCode::OK,
                "text/html; charset=utf-8",
                pages::dashboard(&self.socket.token),
            ),
            routes::DASHBOARD_JS => response(
                StatusCode::OK,
                "text/javascript; charset=utf-8",
                DASHBOARD_JS,
            ),
            routes::NOTIFY => {
                let (status, body) =
                    control::handle(request, &self.control_token, &self.socket.hub).await;
                response(status, "application/json", body)
            }
            _ if path.starts_with(routes::PREFIX) => response(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "relive: no such endpoint\n",
            ),
            _ => self.static_file(request).await,
        }
    }

    fn client_js(&self, method: &Method) -> Response<Body> {
        let body = if method == Method::HEAD {
            ""
        } else {
            CLIENT_JS
        };
        let mut js = response(StatusCode::OK, "text/javascript; charset=utf-8", body);
        js.headers_mut().insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("same-origin"),
        );
        js
    }

    fn status(&self) -> Response<Body> {
        let hub = &self.socket.hub;
        let (events, counters) = hub.recent(STATUS_EVENTS);
        let events: Vec<&crate::hub::protocol::Envelope> =
            events.iter().map(|e| &e.envelope).collect();
        let status = serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": crate::hub::protocol::PROTOCOL_VERSION,
            "session_id": hub.session_id(),
            "serving": self.serving,
            "clients": hub.subscribers(),
            "tabs": self.socket.clients.list(),
            "last_event_id": hub.last_id(),
            "uptime_ms": self.started.elapsed().as_millis() as u64,
            "counters": counters,
            "sync": self.socket.sync.load(std::sync::atomic::Ordering::Relaxed),
            "events": events,
            "watching": self.watching,
            "file_cache": self.files.as_ref().map(|files| files.cache_figures()),
            "upstream": self.socket.upstream.as_ref().map(|upstream| {
                let snapshot = upstream.snapshot();
                serde_json::json!({
                    "status": snapshot.state,
                    "url": snapshot.url,
                    "command": snapshot.command,
                    "exit": snapshot.exit,
                    "output": snapshot.output,
                })
            }),
        });
        response(StatusCode::OK, "application/json", status.to_string())
    }

    async fn static_file(&self, request: Request<Incoming>) -> Response<Body> {
        let Some(files) = &self.files else {
            return response(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "not found\n",
            );
        };
        let path = request.uri().path().to_owned();
        match files.serve(request).await {
            Served::Response(served) => served,
            Served::Redirect(location) => {
                let mut redirect = response(
                    StatusCode::TEMPORARY_REDIRECT,
                    "text/plain; charset=utf-8",
                    "",
                );
                if let Ok(location) = HeaderValue::from_str(&location) {
                    redirect.headers_mut().insert(header::LOCATION, location);
                }
                redirect
            }
            Served::NotFound => response(
                StatusCode::NOT_FOUND,
                "text/html; charset=utf-8",
                pages::not_found(&path, &self.tag.at(self.socket.hub.last_id())),
            ),
            Served::BadRequest => response(
                StatusCode::BAD_REQUEST,
                "text/html; charset=utf-8",
                pages::error("Bad request", "The path is malformed."),
            ),
        }
    }
}

/// Binds the origin on an ephemeral loopback port.
pub async fn bind() -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await
}

/// Serves connections until `shutdown`.
pub async fn serve(listener: TcpListener, origin: Arc<Origin>, shutdown: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::debug!("origin accept failed: {error}");
                    continue;
                }
            },
        };
        // Responses go out in several writes (head, body, end); without this, Nagle's algorithm
        // holds the last small write back until the front door acknowledges the first.
        let _ = stream.set_nodelay(true);
        let origin = origin.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let origin = origin.clone();
                async move { Ok::<_, Infallible>(origin.handle(request).await) }
            });
            let connection = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::select! {
                result = connection => if let Err(error) = result {
                    tracing::debug!("origin connection ended: {error}");
                },
                _ = shutdown.cancelled() => {}
            }
        });
    }
}
