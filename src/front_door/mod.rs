//! proxy: the front door, a pingora `ProxyHttp` and the only listener a user sees.
//!
//! Per request: `/__relive/…` (and, in static mode, everything) goes to the internal origin,
//! the rest to the upstream dev server; page responses are rewritten on the way back to carry
//! the client. Decisions live in `policy`, rewriting in `inject` and `decode`; this file only
//! wires them into pingora's hooks.
//!
//! Must never: change a response it does not inject (bytes and framing pass as they came),
//! rewrite the request target, or panic in a request path.

pub mod hosts;
pub mod tunnel;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, StatusCode, Version, header};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::Peer;
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::hub::Hub;
use crate::inject::decode::{ContentCoding, Decoder};
use crate::inject::policy::{self, Injection};
use crate::inject::{ClientTag, Injector};
use crate::origin::control;
use crate::origin::pages;
use crate::triggers::loop_guard::PageLoads;
use crate::upstream::Upstream;

/// The reserved prefix for relive's own endpoints.
pub const RESERVED_PREFIX: &str = "/__relive/";

/// The front door's shared state.
pub struct FrontDoor {
    /// `None` in static mode, where relive's own origin serves the folder.
    pub upstream: Option<Arc<Upstream>>,
    /// The internal origin (loopback, ephemeral port).
    pub origin: SocketAddr,
    /// The tag injected into pages (it carries the per-run token).
    pub tag: ClientTag,
    /// The event hub: each page's tag names the newest event as of its response.
    pub hub: Arc<Hub>,
    /// Pages being served and served lately, to tell a reload loop from a person saving.
    pub page_loads: Arc<PageLoads>,
    /// Host names allowed besides localhost and IP literals.
    pub allowed_hosts: Vec<String>,
    /// Whether a page's CSP blocking the client was reported (once is enough).
    pub csp_reported: std::sync::atomic::AtomicBool,
    /// How long the upstream may stay silent during a request.
    pub upstream_timeout: std::time::Duration,
    /// The front door speaks HTTPS.
    pub https: bool,
    /// Accept any certificate from an HTTPS upstream (`--upstream-insecure`).
    pub upstream_insecure: bool,
    /// Whether a refused upstream certificate was reported (once is enough).
    pub tls_reported: std::sync::atomic::AtomicBool,
    /// TLS for tunnels to an HTTPS upstream (pingora's own connector does the rest), made on
    /// first use: loading the system's roots costs start-up time most runs never need.
    pub upstream_tls: std::sync::OnceLock<Arc<rustls::ClientConfig>>,
}

/// A page being rewritten as it streams.
struct PageRewrite {
    decoder: Option<Decoder>,
    injector: Injector,
}

/// Per-request state.
pub struct RequestCtx {
    /// When the request arrived (a page's serve starts here: the upstream may write files
    /// while it handles the request).
    arrived: std::time::Instant,
    to_origin: bool,
    connect_failures: usize,
    /// Present while a page response is being rewritten. Behind a `Mutex` only because pingora
    /// needs the context to be `Sync`; it is reached through `get_mut`, which never locks.
    rewrite: Option<Mutex<PageRewrite>>,
    /// Set for a page that a reload of relive's brought; ends the page's serve in `PageLoads`
    /// when the request is done, however it ends.
    page_serve: Option<PageServe>,
}

/// A page being served, recorded in [`PageLoads`] until dropped.
struct PageServe {
    loads: Arc<PageLoads>,
    id: u64,
}

impl Drop for PageServe {
    fn drop(&mut self) {
        self.loads.end(self.id, std::time::Instant::now());
    }
}

impl FrontDoor {
    fn upstream_for(&self, ctx: &RequestCtx) -> Option<&Arc<Upstream>> {
        if ctx.to_origin {
            None
        } else {
            self.upstream.as_ref()
        }
    }
}

fn internal_error(context: &'static str, cause: impl std::fmt::Display) -> Box<Error> {
    Error::explain(ErrorType::InternalError, format!("{context}: {cause}"))
}

#[async_trait]
impl ProxyHttp for FrontDoor {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            arrived: std::time::Instant::now(),
            to_origin: false,
            connect_failures: 0,
            rewrite: None,
            page_serve: None,
        }
    }

    /// Runs first for every request. Refuses CONNECT (relive is no open proxy) and decides
    /// whether the request is relive's own. Returns `Ok(true)` when it answered itself.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if session.req_header().version == Version::HTTP_2 {
            // HTTP/2 names the host in `:authority`; the rest of relive (and HTTP/1.1 peers)
            // read `Host`.
            let request = session.req_header_mut();
            if !request.headers.contains_key(header::HOST)
                && let Some(authority) = request.uri.authority().map(|a| a.as_str().to_owned())
            {
                request.insert_header(header::HOST, authority)?;
            }
        }
        if let Some(refusal) = self.refusal(session.req_header()) {
            if refusal.close {
                // The body was not read: the connection cannot carry another request.
                session.set_keepalive(None);
            }
            let body = Bytes::from(refusal.message);
            respond(session, refusal.status, "text/plain; charset=utf-8", body).await?;
            return Ok(true);
        }
        ctx.to_origin =
            self.upstream.is_none() || session.req_header().uri.path().starts_with(RESERVED_PREFIX);
        if let Some(upstream) = self.upstream_for(ctx) {
            upstream.saw_path(session.req_header().uri.path());
        }
        if let Some(upstream) = self.upstream_for(ctx)
            && !upstream.has_address()
        {
            // The dev server has not said where it listens yet: nothing to connect to.
            let request = session.req_header();
            let (status, content_type, body) = self.not_answering(
                upstream,
                policy::wants_page(&request.method, &request.headers),
            );
            respond(session, status, content_type, Bytes::from(body)).await?;
            return Ok(true);
        }
        if is_tunnelable_upgrade(session.req_header()) {
            self.tunnel(session, ctx).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Picks the peer: the internal origin or the upstream's current address.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let Some(upstream) = self.upstream_for(ctx) else {
            return Ok(Box::new(HttpPeer::new(self.origin, false, String::new())));
        };
        let addr = upstream
            .addr_for_attempt(ctx.connect_failures)
            .ok_or_else(|| Error::new_up(ErrorType::ConnectNoRoute))?;
        let mut peer = match upstream.tls_host() {
            Some(host) => {
                let mut peer = HttpPeer::new(addr, true, host);
                peer.options.verify_cert = !self.upstream_insecure;
                peer.options.verify_hostname = !self.upstream_insecure;
                peer
            }
            None => HttpPeer::new(addr, false, String::new()),
        };
        peer.options.read_timeout = Some(self.upstream_timeout);
        Ok(Box::new(peer))
    }

    /// Called when connecting failed. A host name with several addresses (`localhost` as
    /// `::1` and `127.0.0.1`) is retried on the next one before giving up.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        if let Some(upstream) = self.upstream_for(ctx) {
            ctx.connect_failures += 1;
            if upstream.has_another(ctx.connect_failures) {
                e.set_retry(true);
            }
        }
        e
    }

    /// Called once connected; records that the upstream answers again.
    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        _reused: bool,
        peer: &HttpPeer,
        _fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let (Some(upstream), Some(addr)) = (self.upstream_for(ctx), peer.address().as_inet()) {
            upstream.answered(*addr);
        }
        Ok(())
    }

    /// Edits the request sent upstream: asks for an uncompressed, unconditional body when a
    /// page is likely, drops `If-Modified-Since` (see below), sets `X-Forwarded-*` itself, and never forwards an `h2c` upgrade. The target and every
    /// other header pass unchanged.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        request: &mut RequestHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        if policy::wants_page(&request.method, &request.headers) {
            request.insert_header(header::ACCEPT_ENCODING, "identity")?;
            // A page's tag is made for each response (token, session, newest event): a `304`
            // would bring back the browser's copy with an old tag, which after a restart is
            // refused and reloads again. Pages are always sent whole.
            request.remove_header(&header::IF_NONE_MATCH);
        }
        // `Last-Modified` counts whole seconds: a stylesheet saved twice within one would look
        // unchanged and the reload would show the old one. Only entity tags revalidate.
        request.remove_header(&header::IF_MODIFIED_SINCE);
        if upgrade_is(request, "h2c") {
            request.remove_header(&header::UPGRADE);
            request.remove_header("http2-settings");
            request.remove_header(&header::CONNECTION);
        }
        set_forwarded(session, request, self.https)
    }

    /// Edits the response head on its way to the browser. For a page: decides how to decode,
    /// drops the headers that would lie about the rewritten body, and starts the injector.
    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let request = session.req_header();
        if let Some(upstream) = self.upstream_for(ctx) {
            rewrite_location(upstream, request, response, self.https)?;
            revalidate_by_default(response)?;
        }
        let decision = policy::decide(
            &request.method,
            &request.headers,
            response.status,
            &response.headers,
        );
        // relive's own pages (the dashboard) carry what they need and never reload.
        let decision = if request.uri.path().starts_with(RESERVED_PREFIX) {
            Injection::Pass
        } else {
            decision
        };
        if decision == Injection::Inject {
            self.report_csp(request, response);
        }
        match decision {
            Injection::Pass => Ok(()),
            Injection::HeadOfPage => {
                response.remove_header(&header::CONTENT_LENGTH);
                Ok(())
            }
            Injection::Inject => {
                let client_http11 = request.version == Version::HTTP_11;
                self.start_rewrite(response, ctx, client_http11)
            }
        }
    }

    /// Rewrites each body chunk of a page; passes every other body untouched.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        let Some(rewrite) = ctx.rewrite.as_mut() else {
            return Ok(None);
        };
        let rewrite = rewrite.get_mut().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::new();
        if let Some(chunk) = body.take() {
            match rewrite.decoder.as_mut() {
                Some(decoder) => {
                    let decoded = decoder
                        .write(&chunk)
                        .map_err(|e| internal_error("decoding the upstream page", e))?;
                    out = rewrite.injector.write(&decoded);
                }
                None => out = rewrite.injector.write(&chunk),
            }
        }
        if end_of_stream {
            if let Some(decoder) = rewrite.decoder.as_mut() {
                let decoded = decoder
                    .finish()
                    .map_err(|e| internal_error("decoding the upstream page", e))?;
                out.extend(rewrite.injector.write(&decoded));
            }
            out.extend(rewrite.injector.finish());
        }
        if !out.is_empty() {
            *body = Some(Bytes::from(out));
        }
        Ok(None)
    }

    /// Called when a request failed for good. An upstream that cannot be reached gets
    /// relive's waiting page (which reloads by itself once the upstream is back); anything
    /// else a short error.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let upstream = self.upstream_for(ctx).cloned();
        let unreachable = e.esource() == &ErrorSource::Upstream
            && matches!(
                e.etype(),
                ErrorType::ConnectRefused
                    | ErrorType::ConnectTimedout
                    | ErrorType::ConnectNoRoute
                    | ErrorType::ConnectError
            );
        let code = match (e.esource(), e.etype()) {
            (_, ErrorType::HTTPStatus(code)) => *code,
            (ErrorSource::Upstream, _) => 502,
            (
                ErrorSource::Downstream,
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed,
            ) => 0,
            (ErrorSource::Downstream, _) => 400,
            _ => 500,
        };
        if code == 0 {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        if session.response_written().is_some() {
            // The answer had begun: writing anything now would pad it or close it like a
            // complete one. Closing the connection is how the browser learns it was cut off.
            tracing::debug!("response cut off: {e}");
            return FailToProxy {
                error_code: code,
                can_reuse_downstream: false,
            };
        }
        let request = session.req_header();
        let page = policy::wants_page(&request.method, &request.headers);
        let tls_refused = matches!(
            e.etype(),
            ErrorType::TLSHandshakeFailure | ErrorType::InvalidCert
        );
        let (status, content_type, body) = match (&upstream, unreachable) {
            (Some(upstream), false) if tls_refused => self.tls_refused(upstream, e, page),
            (Some(upstream), true) => {
                if upstream.mark_down() {
                    tracing::warn!(
                        "upstream {} is not answering ({}); pages show a waiting page until it is back",
                        upstream.display(),
                        e.etype().as_str()
                    );
                }
                self.not_answering(upstream, page)
            }
            (Some(upstream), false) if e.etype() == &ErrorType::ReadTimedout => {
                let secs = self.upstream_timeout.as_secs();
                tracing::warn!(
                    "{} sent nothing for {secs} s on {}; gave up on that request \
                     (server.upstream_timeout_secs)",
                    upstream.display(),
                    session.req_header().uri.path()
                );
                let detail = format!(
                    "{} accepted the request but sent nothing for {secs} seconds. Reload to try \
                     again; the limit is server.upstream_timeout_secs in relive.toml.",
                    upstream.display()
                );
                if page {
                    (
                        StatusCode::GATEWAY_TIMEOUT,
                        "text/html; charset=utf-8",
                        pages::error("The dev server did not answer", &detail),
                    )
                } else {
                    (
                        StatusCode::GATEWAY_TIMEOUT,
                        "text/plain; charset=utf-8",
                        format!("relive: {detail}\n"),
                    )
                }
            }
            _ => {
                tracing::debug!("request failed: {e}");
                (
                    StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY),
                    "text/plain; charset=utf-8",
                    format!("relive: {}\n", e.etype().as_str()),
                )
            }
        };
        let code = status.as_u16();
        if let Err(write_error) = respond(session, status, content_type, Bytes::from(body)).await {
            tracing::debug!("could not send the error response: {write_error}");
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// Keeps pingora from logging every refused upstream connection as an error: relive says it
    /// once, in words, when the upstream goes down.
    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, error: &Error) -> bool {
        self.upstream_for(ctx).is_some() && error.esource() == &ErrorSource::Upstream
            || error.esource() == &ErrorSource::Downstream
    }
}

/// A redirect to the upstream's own address (`http://localhost:5173/login`, as a dev server
/// configured with its own URL writes it) goes to relive's address instead, so the browser
/// stays behind relive. Relative and foreign locations pass unchanged.
fn rewrite_location(
    upstream: &Upstream,
    request: &RequestHeader,
    response: &mut ResponseHeader,
    https: bool,
) -> Result<()> {
    let Some(location) = response
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let Some(front) = request
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let Some(url) = upstream.location() else {
        return Ok(());
    };
    let scheme = if url.tls { "https" } else { "http" };
    let host = if url.host.contains(':') {
        format!("[{}]", url.host)
    } else {
        url.host.clone()
    };
    let rest = [host.as_str(), "localhost", "127.0.0.1", "[::1]"]
        .iter()
        .find_map(|h| {
            let origin = format!("{scheme}://{h}:{}", url.port);
            location
                .strip_prefix(origin.as_str())
                .filter(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
        });
    if let Some(rest) = rest {
        let front_scheme = if https { "https" } else { "http" };
        let rewritten = format!("{front_scheme}://{front}{rest}");
        response.insert_header(header::LOCATION, rewritten)?;
    }
    Ok(())
}

/// The longest request target relive forwards.
const MAX_TARGET: usize = 8 * 1024;
/// The most header bytes (names and values) a request may carry.
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses requests whose length is ambiguous (request smuggling: a front end and a back end
/// reading different bodies) and heads larger than any browser sends.
fn check_framing(request: &RequestHeader) -> std::result::Result<(), (StatusCode, String)> {
    let bad = |what: &str| {
        Err((
            StatusCode::BAD_REQUEST,
            format!("relive: {what}; refused as ambiguous\n"),
        ))
    };
    if request.raw_path().len() > MAX_TARGET {
        return Err((
            StatusCode::URI_TOO_LONG,
            format!("relive: the request target is over {MAX_TARGET} bytes\n"),
        ));
    }
    let header_bytes: usize = request
        .headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err((
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("relive: the request's headers are over {MAX_HEADER_BYTES} bytes\n"),
        ));
    }
    let lengths: Vec<&[u8]> = request
        .headers
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let encodings: Vec<&[u8]> = request
        .headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    if !lengths.is_empty() && !encodings.is_empty() {
        return bad("Content-Length together with Transfer-Encoding");
    }
    if lengths.len() > 1 {
        return bad("more than one Content-Length");
    }
    if let Some(length) = lengths.first()
        && (length.is_empty() || !length.iter().all(u8::is_ascii_digit))
    {
        return bad("a Content-Length that is not a number");
    }
    if encodings.len() > 1
        || encodings
            .first()
            .is_some_and(|e| !e.eq_ignore_ascii_case(b"chunked"))
    {
        return bad("a Transfer-Encoding other than a single `chunked`");
    }
    Ok(())
}

/// Bodies sent to relive's control endpoint (and a tab's error reports) must declare a length
/// of at most [`control::MAX_BODY`] (and [`crate::origin::ws::MAX_CLIENT_MESSAGE`]); anything else is
/// refused here, before a byte of it is read.
fn check_control_body(request: &RequestHeader) -> std::result::Result<(), (StatusCode, String)> {
    let limit = match request.uri.path() {
        "/__relive/notify" => control::MAX_BODY,
        "/__relive/errors" => crate::origin::ws::MAX_CLIENT_MESSAGE,
        _ => return Ok(()),
    };
    if request.method != Method::POST {
        return Ok(());
    }
    if request.headers.contains_key(header::TRANSFER_ENCODING) {
        return Err((
            StatusCode::LENGTH_REQUIRED,
            "relive: send the signal with a Content-Length\n".into(),
        ));
    }
    let declared = request
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    match declared {
        Some(length) if length > limit => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("relive: the body is over {} KiB\n", limit / 1024),
        )),
        _ => Ok(()),
    }
}

/// Whether the request's `Upgrade` header names `protocol`.
fn upgrade_is(request: &RequestHeader, protocol: &str) -> bool {
    request
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case(protocol))
        })
}

/// Upgrades relive tunnels itself: HTTP/1.1, an `Upgrade` other than `h2c`, and no request
/// body (WebSocket handshakes never have one).
fn is_tunnelable_upgrade(request: &RequestHeader) -> bool {
    request.version == Version::HTTP_11
        && request.headers.contains_key(header::UPGRADE)
        && !upgrade_is(request, "h2c")
        && !request.headers.contains_key(header::CONTENT_LENGTH)
        && !request.headers.contains_key(header::TRANSFER_ENCODING)
}

/// A response that says nothing about caching would be cached by the browser's heuristic
/// (a fraction of its age), so a reload right after a save could show the old file: relive
/// asks for revalidation instead. Caching the upstream asks for is left as it is.
fn revalidate_by_default(response: &mut ResponseHeader) -> Result<()> {
    let silent = !response.headers.contains_key(header::CACHE_CONTROL)
        && !response.headers.contains_key(header::EXPIRES);
    if silent && response.status.as_u16() >= 200 {
        response.insert_header(header::CACHE_CONTROL, "no-cache")?;
    }
    Ok(())
}

/// Sets `X-Forwarded-For/Host/Proto` from what relive saw, replacing any the client sent.
fn set_forwarded(session: &Session, request: &mut RequestHeader, https: bool) -> Result<()> {
    let client_ip = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip().to_string());
    let host = request
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    request.remove_header("forwarded");
    request.remove_header("x-forwarded-for");
    request.remove_header("x-forwarded-host");
    request.insert_header("x-forwarded-proto", if https { "https" } else { "http" })?;
    if let Some(ip) = client_ip {
        request.insert_header("x-forwarded-for", ip)?;
    }
    if let Some(host) = host {
        request.insert_header("x-forwarded-host", host)?;
    }
    Ok(())
}

/// A request the front door answers itself, without forwarding it.
struct Refusal {
    status: StatusCode,
    message: String,
    /// Close the connection afterwards (the request's body was left unread).
    close: bool,
}

impl FrontDoor {
    /// Why a request must not be forwarded, if it must not: CONNECT (relive is no open proxy),
    /// a host outside the allow-list, an unacceptable control body.
    fn refusal(&self, request: &RequestHeader) -> Option<Refusal> {
        let refuse = |(status, message), close| Refusal {
            status,
            message,
            close,
        };
        if request.method == Method::CONNECT {
            let message = "relive is not a forward proxy; CONNECT is refused.\n".to_owned();
            return Some(refuse((StatusCode::METHOD_NOT_ALLOWED, message), false));
        }
        if let Err(refused) = check_framing(request) {
            return Some(refuse(refused, true));
        }
        if let Err(refused) = self.check_host(request) {
            return Some(refuse(refused, false));
        }
        check_control_body(request)
            .err()
            .map(|refused| refuse(refused, true))
    }

    /// Applies the `Host` allow-list to the `Host` header and to an absolute-form target.
    fn check_host(&self, request: &RequestHeader) -> std::result::Result<(), (StatusCode, String)> {
        let mut hosts = request.headers.get_all(header::HOST).iter();
        let (Some(value), None) = (hosts.next(), hosts.next()) else {
            return Err((
                StatusCode::BAD_REQUEST,
                "relive: a request needs exactly one Host header\n".into(),
            ));
        };
        let names = std::iter::once(value.to_str().ok())
            .chain(request.uri.authority().map(|a| Some(a.as_str())));
        for name in names {
            let Some(host) = name.and_then(hosts::host_of) else {
                return Err((StatusCode::BAD_REQUEST, "relive: malformed Host\n".into()));
            };
            if !hosts::allowed(&host, &self.allowed_hosts) {
                tracing::warn!(
                    "refused a request for host `{host}`; if that is you, start relive with --allowed-host {host}"
                );
                return Err((
                    StatusCode::FORBIDDEN,
                    format!(
                        "relive: the host `{host}` is not allowed (this protects you from DNS \
                         rebinding). To use it, start relive with --allowed-host {host}\n"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Forwards an upgrade request through relive's own tunnel (see `tunnel`).
    async fn tunnel(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let mut request = session.req_header().clone();
        set_forwarded(session, &mut request, self.https)?;
        match self.upstream_for(ctx) {
            Some(upstream) => {
                let addrs = upstream.addrs_current_first();
                let tls = match upstream.tls_host() {
                    Some(host) => Some(tunnel::PeerTls {
                        name: crate::tls::server_name(&host)
                            .map_err(|e| internal_error("the upstream's TLS name", e))?,
                        config: self
                            .upstream_tls
                            .get_or_init(|| crate::tls::upstream_client(self.upstream_insecure))
                            .clone(),
                    }),
                    None => None,
                };
                let answered = tunnel::forward(session, &request, &addrs, tls).await?;
                upstream.answered(answered);
            }
            None => {
                tunnel::forward(session, &request, &[self.origin], None).await?;
            }
        }
        Ok(())
    }

    /// Says once when a page's Content-Security-Policy would stop relive's client, and what
    /// to change.
    fn report_csp(&self, request: &RequestHeader, response: &ResponseHeader) {
        // Said once: after that, pages are not parsed for it again.
        if self.csp_reported.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let conflicts = policy::csp_conflicts(&response.headers);
        if conflicts.is_empty()
            || self
                .csp_reported
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            return;
        }
        let fixes: Vec<&str> = conflicts
            .iter()
            .map(|directive| match *directive {
                "script-src" => "script-src needs 'self' (or a nonce relive can copy onto its tag)",
                _ => "connect-src needs 'self' (or ws:) for relive's socket",
            })
            .collect();
        tracing::warn!(
            "the Content-Security-Policy of {} blocks relive's client, so this page will not \
             reload: {}. Relax it in development.",
            request.uri.path(),
            fixes.join("; ")
        );
    }

    /// The answer while the upstream cannot be reached: for a page, relive's waiting page
    /// (starting, down or exited, with the command's last lines), which switches to the app by
    /// itself; for anything else a short text.
    fn not_answering(&self, upstream: &Upstream, page: bool) -> (StatusCode, &'static str, String) {
        let snapshot = upstream.snapshot();
        let status = pages::waiting_status(&snapshot);
        if page {
            (
                status,
                "text/html; charset=utf-8",
                pages::waiting(&snapshot, &self.tag.at(self.hub.last_id())),
            )
        } else {
            (
                status,
                "text/plain; charset=utf-8",
                format!("relive: {} is not answering\n", upstream.display()),
            )
        }
    }

    /// The answer when the HTTPS upstream's certificate was refused (or its TLS failed): what
    /// happened and the flag that accepts a self-signed certificate. Said once in the terminal.
    fn tls_refused(
        &self,
        upstream: &Upstream,
        e: &Error,
        page: bool,
    ) -> (StatusCode, &'static str, String) {
        // pingora's text nests contexts ("… context: tls connect error cause: invalid peer
        // certificate: UnknownIssuer, SNI: localhost cause: local address …"): keep the TLS part.
        let full = e.to_string();
        let cause = match full.find("cause: ") {
            Some(at) => &full[at + "cause: ".len()..],
            None => full.rsplit("context: ").next().unwrap_or(&full),
        };
        let cause = cause
            .split(", SNI")
            .next()
            .unwrap_or(cause)
            .trim_start_matches("tls connect error")
            .trim_start_matches([':', ' '])
            .trim()
            .to_owned();
        let hint = if self.upstream_insecure {
            String::new()
        } else {
            " If it uses a self-signed certificate (the usual case for a local dev server), start \
             relive with --upstream-insecure (or server.upstream_insecure = true)."
                .to_owned()
        };
        let detail = format!(
            "relive could not make a TLS connection to {}: {}.{hint}",
            upstream.display(),
            if cause.is_empty() {
                e.etype().as_str()
            } else {
                &cause
            }
        );
        if !self
            .tls_reported
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!("{detail}");
        }
        if page {
            (
                StatusCode::BAD_GATEWAY,
                "text/html; charset=utf-8",
                pages::error("relive cannot reach the dev server over HTTPS", &detail),
            )
        } else {
            (
                StatusCode::BAD_GATEWAY,
                "text/plain; charset=utf-8",
                format!("relive: {detail}\n"),
            )
        }
    }

    fn start_rewrite(
        &self,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
        client_http11: bool,
    ) -> Result<()> {
        let encoding = response
            .headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok());
        let decoder = match ContentCoding::parse(encoding) {
            ContentCoding::Identity => None,
            ContentCoding::Decodable(coding) => {
                Some(Decoder::new(coding).map_err(|e| internal_error("starting a decoder", e))?)
            }
            ContentCoding::Unsupported => return Ok(()),
        };
        let charset = policy::charset(&response.headers);
        if !crate::inject::charset_supported(charset.as_deref()) {
            return Ok(());
        }
        let nonce = policy::csp_nonce(&response.headers);
        if decoder.is_some() {
            response.remove_header(&header::CONTENT_ENCODING);
        }
        response.remove_header(&header::CONTENT_LENGTH);
        response.remove_header(&header::LAST_MODIFIED);
        response.remove_header(&header::ACCEPT_RANGES);
        if let Some(etag) = response.headers.get(header::ETAG).cloned()
            && !etag.as_bytes().starts_with(b"W/")
        {
            let mut weak = b"W/".to_vec();
            weak.extend_from_slice(etag.as_bytes());
            response.insert_header(header::ETAG, weak)?;
        }
        if client_http11 {
            // pingora copies the upstream's version (an HTTP/1.0 upstream would make this an
            // HTTP/1.0 response) and ends an unframed body by closing: frame it ourselves.
            response.set_version(Version::HTTP_11);
            response.insert_header(header::TRANSFER_ENCODING, "chunked")?;
        }
        // The tag names the newest event now: the page's socket asks for everything after it,
        // so a change published while the page is still arriving is not lost.
        let tag = self.tag.at(self.hub.last_id());
        ctx.rewrite = Some(Mutex::new(PageRewrite {
            decoder,
            injector: Injector::new(&tag, nonce, charset.as_deref()),
        }));
        ctx.page_serve = self.page_loads.begin(ctx.arrived).map(|id| PageServe {
            loads: self.page_loads.clone(),
            id,
        });
        Ok(())
    }
}

/// Writes a complete small response from the front door itself.
async fn respond(
    session: &mut Session,
    status: StatusCode,
    content_type: &str,
    body: Bytes,
) -> Result<()> {
    let mut head = ResponseHeader::build(status, Some(4))?;
    head.insert_header(header::CONTENT_TYPE, content_type)?;
    head.insert_header(header::CONTENT_LENGTH, body.len().to_string())?;
    head.insert_header(header::CACHE_CONTROL, "no-store")?;
    if content_type.starts_with("text/html") {
        head.insert_header(header::CONTENT_SECURITY_POLICY, pages::CSP)?;
    }
    let is_head = session.req_header().method == Method::HEAD;
    session
        .write_response_header(Box::new(head), is_head)
        .await?;
    if !is_head {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_control(response: &ResponseHeader) -> Option<&str> {
        response
            .headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
    }

    #[test]
    fn responses_silent_about_caching_are_revalidated_and_others_kept() {
        let mut silent = ResponseHeader::build(200, None).unwrap();
        revalidate_by_default(&mut silent).unwrap();
        assert_eq!(cache_control(&silent), Some("no-cache"));

        let mut cached = ResponseHeader::build(200, None).unwrap();
        cached
            .insert_header(header::CACHE_CONTROL, "max-age=60")
            .unwrap();
        revalidate_by_default(&mut cached).unwrap();
        assert_eq!(cache_control(&cached), Some("max-age=60"));

        let mut expires = ResponseHeader::build(200, None).unwrap();
        expires
            .insert_header(header::EXPIRES, "Thu, 01 Dec 2044 16:00:00 GMT")
            .unwrap();
        revalidate_by_default(&mut expires).unwrap();
        assert_eq!(cache_control(&expires), None);

        let mut switching = ResponseHeader::build(101, None).unwrap();
        revalidate_by_default(&mut switching).unwrap();
        assert_eq!(cache_control(&switching), None);
    }
}
