//! front_door: a pingora `ProxyHttp`, the only listener a user sees.
//!
//! Per request: `/__relive/…` (and, in static mode, everything) goes to the internal origin,
//! the rest to the upstream dev server; page responses are rewritten on the way back to carry
//! the client. The request rules live in `rules`, the answers relive gives itself in `answers`,
//! a page's rewrite in `rewrite`, upgrades in `tunnel`, the Host allow-list in `hosts`; which
//! response is a page is `inject::policy`'s one decision. This file only wires them into
//! pingora's hooks.
//!
//! Uses: config, hub, inject, origin, tls, triggers, upstream.
//!
//! Must never: change a response it does not inject (bytes and framing pass as they came),
//! rewrite the request target, or panic in a request path.

mod answers;
pub mod hosts;
mod rewrite;
mod rules;
pub mod tunnel;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Version, header};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::Peer;
use pingora::{Error, ErrorSource, ErrorType, Result};

use answers::{Answer, Failed, internal_error};
use rewrite::{PageRewrite, PageServe};

use crate::hub::{Hub, routes};
use crate::inject::ClientTag;
use crate::inject::policy::{self, Decision, Page};
use crate::origin::static_files::StaticFiles;
use crate::triggers::PageLoads;
use crate::upstream::Upstream;

/// The front door's shared state.
pub struct FrontDoor {
    /// `None` in static mode, where relive's own origin serves the folder.
    pub upstream: Option<Arc<Upstream>>,
    /// The folder, in static mode: small files are answered here, without the hop to the
    /// origin (which answers the rest: folders, ranges, large files, 404 pages).
    pub files: Option<Arc<StaticFiles>>,
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
    /// Small files' pages as rewritten, for the next navigation to the same page.
    pub rewritten: rewrite::RewrittenPages,
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
    /// A small file's page, rewritten whole (see `answer_file`).
    rewritten: Option<Bytes>,
    /// Set for a page that a reload of relive's brought; ends the page's serve in `PageLoads`
    /// when the request is done, however it ends.
    page_serve: Option<PageServe>,
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

#[async_trait]
impl ProxyHttp for FrontDoor {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            arrived: std::time::Instant::now(),
            to_origin: false,
            connect_failures: 0,
            rewrite: None,
            rewritten: None,
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
        if let Some(refusal) = rules::refusal(session.req_header(), &self.allowed_hosts) {
            if refusal.close {
                // The body was not read: the connection cannot carry another request.
                session.set_keepalive(None);
            }
            answers::respond(session, Answer::text(refusal.status, refusal.message)).await?;
            return Ok(true);
        }
        ctx.to_origin =
            self.upstream.is_none() || session.req_header().uri.path().starts_with(routes::PREFIX);
        if let Some(upstream) = self.upstream_for(ctx) {
            upstream.saw_path(session.req_header().uri.path());
        }
        if let Some(upstream) = self.upstream_for(ctx)
            && !upstream.has_address()
        {
            // The dev server has not said where it listens yet: nothing to connect to.
            let request = session.req_header();
            let page = policy::wants_page(&request.method, &request.headers);
            let answer = answers::not_answering(upstream, page, &self.tag.at(self.hub.last_id()));
            answers::respond(session, answer).await?;
            return Ok(true);
        }
        if rules::is_tunnelable_upgrade(session.req_header()) {
            self.tunnel(session, ctx).await?;
            return Ok(true);
        }
        if let Some(files) = &self.files
            && !session.req_header().uri.path().starts_with(routes::PREFIX)
        {
            ask_for_fresh_copies(session.req_header_mut())?;
            let request = session.req_header();
            if let Some(file) =
                files.small_answer(&request.method, request.uri.path(), &request.headers)
            {
                self.answer_file(session, ctx, file).await?;
                return Ok(true);
            }
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
        let mut peer = match upstream.location().filter(|url| url.tls) {
            Some(url) => {
                let mut peer = HttpPeer::new(addr, true, url.host.clone());
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
        ask_for_fresh_copies(request)?;
        if rules::upgrade_is(&request.headers, "h2c") {
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
            rules::revalidate_by_default(response)?;
        }
        self.decide(request, response, ctx, None)
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
        let out = rewrite.write(body.take(), end_of_stream)?;
        if !out.is_empty() {
            *body = Some(out);
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
        let (failed, code) = answers::classify(e);
        let done = |error_code| FailToProxy {
            error_code,
            can_reuse_downstream: false,
        };
        if failed == Failed::ClientGone {
            return done(0);
        }
        if session.response_written().is_some() {
            // The answer had begun: writing anything now would pad it or close it like a
            // complete one. Closing the connection is how the browser learns it was cut off.
            tracing::debug!("response cut off: {e}");
            return done(code);
        }
        let request = session.req_header();
        let page = policy::wants_page(&request.method, &request.headers);
        let answer = match (self.upstream_for(ctx), failed) {
            (Some(upstream), Failed::TlsRefused) => self.tls_refused(upstream, e, page),
            (Some(upstream), Failed::Unreachable) => {
                if upstream.mark_down() {
                    tracing::warn!(
                        "upstream {} is not answering ({}); pages show a waiting page until it is back",
                        upstream.display(),
                        e.etype().as_str()
                    );
                }
                answers::not_answering(upstream, page, &self.tag.at(self.hub.last_id()))
            }
            (Some(upstream), Failed::TimedOut) => {
                let secs = self.upstream_timeout.as_secs();
                tracing::warn!(
                    "{} sent nothing for {secs} s on {}; gave up on that request \
                     (server.upstream_timeout_secs)",
                    upstream.display(),
                    request.uri.path()
                );
                answers::timed_out(upstream, secs, page)
            }
            _ => {
                tracing::debug!("request failed: {e}");
                answers::other(code, e)
            }
        };
        let code = answer.status.as_u16();
        if let Err(write_error) = answers::respond(session, answer).await {
            tracing::debug!("could not send the error response: {write_error}");
        }
        done(code)
    }

    /// Keeps pingora from logging every refused upstream connection as an error: relive says it
    /// once, in words, when the upstream goes down.
    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, error: &Error) -> bool {
        self.upstream_for(ctx).is_some() && error.esource() == &ErrorSource::Upstream
            || error.esource() == &ErrorSource::Downstream
    }
}

/// Points a redirect to the upstream's own address back at relive (see
/// [`rules::rewritten_location`]).
fn rewrite_location(
    upstream: &Upstream,
    request: &RequestHeader,
    response: &mut ResponseHeader,
    https: bool,
) -> Result<()> {
    let location = response
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok());
    let front = request
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok());
    if let (Some(location), Some(front), Some(url)) = (location, front, upstream.location())
        && let Some(rewritten) = rules::rewritten_location(location, front, &url, https)
    {
        response.insert_header(header::LOCATION, rewritten)?;
    }
    Ok(())
}

/// The request edits that keep a reload from showing an old copy, for every request relive
/// answers or forwards. A page asks for an uncompressed, whole body: its tag is made for each
/// response (token, session, newest event), and a `304` would bring back the browser's copy with
/// an old tag, which after a restart is refused and reloads again. `Last-Modified` counts whole
/// seconds: a stylesheet saved twice within one would look unchanged, so only entity tags
/// revalidate.
fn ask_for_fresh_copies(request: &mut RequestHeader) -> Result<()> {
    if policy::wants_page(&request.method, &request.headers) {
        request.insert_header(header::ACCEPT_ENCODING, "identity")?;
        request.remove_header(&header::IF_NONE_MATCH);
    }
    request.remove_header(&header::IF_MODIFIED_SINCE);
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

impl FrontDoor {
    /// Forwards an upgrade request through relive's own tunnel (see `tunnel`).
    async fn tunnel(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let mut request = session.req_header().clone();
        set_forwarded(session, &mut request, self.https)?;
        match self.upstream_for(ctx) {
            Some(upstream) => {
                // The one that answered last first, then the others.
                let addrs: Vec<_> = (0..)
                    .map_while(|attempt| upstream.addr_for_attempt(attempt))
                    .collect();
                let tls = match upstream.location().filter(|url| url.tls) {
                    Some(url) => Some(tunnel::PeerTls {
                        name: crate::tls::server_name(&url.host)
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

    /// The answer when the HTTPS upstream's certificate was refused (or its TLS failed), said
    /// once in the terminal too.
    fn tls_refused(&self, upstream: &Upstream, e: &Error, page: bool) -> Answer {
        let cause = rules::tls_cause(&e.to_string());
        let cause = if cause.is_empty() {
            e.etype().as_str()
        } else {
            &cause
        };
        let detail = answers::tls_refused_detail(upstream, cause, self.upstream_insecure);
        if !self
            .tls_reported
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!("{detail}");
        }
        answers::tls_refused(&detail, page)
    }

    /// Writes a small file's answer from the folder, a page with the tag in it (the same
    /// decision and rewrite as a proxied page, over a body that is already whole).
    async fn answer_file(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        file: http::Response<Bytes>,
    ) -> Result<()> {
        let (parts, mut body) = file.into_parts();
        let mut head = ResponseHeader::build(parts.status, Some(parts.headers.len() + 2))?;
        for (name, value) in &parts.headers {
            head.append_header(name.clone(), value.clone())?;
        }
        let request = session.req_header();
        let is_head = request.method == http::Method::HEAD;
        self.decide(request, &mut head, ctx, Some(&body))?;
        if let Some(rewritten) = ctx.rewritten.take() {
            body = rewritten;
            // The rewritten page is whole here: its exact length lets the head and the body
            // leave in one write, where chunks took several.
            head.remove_header(&header::TRANSFER_ENCODING);
            head.insert_header(header::CONTENT_LENGTH, body.len().to_string())?;
        }
        let empty = is_head || body.is_empty();
        let mut written = session.write_response_header(Box::new(head), empty).await;
        if written.is_ok() && !empty {
            written = session.write_response_body(Some(body), true).await;
        }
        if let Err(e) = written {
            // Only the browser is written to here: it left (a tab closed, a reload started),
            // and there is nothing to say about it.
            tracing::debug!("a file's answer was cut short: {e}");
            session.set_keepalive(None);
        }
        Ok(())
    }

    /// Takes the one decision for a response on its way to the browser (proxied, or a file
    /// answered here) and edits its head for it; a page to inject gets its rewrite started in
    /// `ctx.rewrite`, or, when its `whole` body is known (a small file), rewritten at once into
    /// `ctx.rewritten`.
    fn decide(
        &self,
        request: &RequestHeader,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
        whole: Option<&Bytes>,
    ) -> Result<()> {
        let decision = policy::for_response(
            &request.method,
            request.uri.path(),
            &request.headers,
            response.status,
            &response.headers,
        );
        match decision {
            Decision::Pass => {
                // A tab fetching its page to morph it in place: a page load like a reload's,
                // so that the loop guard sees a page that rewrites files as it is served.
                if request.headers.contains_key(policy::MORPH_FETCH) {
                    self.begin_page_serve(ctx);
                }
                Ok(())
            }
            Decision::HeadOfPage => {
                response.remove_header(&header::CONTENT_LENGTH);
                Ok(())
            }
            Decision::Inject(page) => {
                self.report_csp(request, response);
                let client_http11 = request.version == Version::HTTP_11;
                match whole {
                    Some(body) => self.rewrite_whole(page, body, response, ctx, client_http11),
                    None => self.start_rewrite(page, response, ctx, client_http11),
                }
            }
        }
    }

    /// Starts rewriting a page: its head now, its body chunk by chunk in
    /// `response_body_filter`.
    fn start_rewrite(
        &self,
        page: Page,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
        client_http11: bool,
    ) -> Result<()> {
        // The tag names the newest event now: the page's socket asks for everything after it,
        // so a change published while the page is still arriving is not lost.
        let tag = self.tag.at(self.hub.last_id());
        let rewrite = PageRewrite::start(page, &tag, response, client_http11)?;
        ctx.rewrite = Some(Mutex::new(rewrite));
        self.begin_page_serve(ctx);
        Ok(())
    }

    /// Rewrites a page whose whole body is here, or takes the same page as rewritten before
    /// (same bytes, same tag).
    fn rewrite_whole(
        &self,
        page: Page,
        body: &Bytes,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
        client_http11: bool,
    ) -> Result<()> {
        let last_id = self.hub.last_id();
        let out = match self.rewritten.get(body, last_id, &page) {
            Some(out) => {
                rewrite::edit_head(response, page.coding.is_some(), client_http11)?;
                out
            }
            None => {
                let tag = self.tag.at(last_id);
                let mut rewrite = PageRewrite::start(page.clone(), &tag, response, client_http11)?;
                let out = rewrite.write(Some(body.clone()), true)?;
                self.rewritten
                    .keep(body.clone(), last_id, page, out.clone());
                out
            }
        };
        ctx.rewritten = Some(out);
        self.begin_page_serve(ctx);
        Ok(())
    }

    /// Records that a page is being served (it ends when the response does), when a reload or
    /// a morph of relive's brought it.
    fn begin_page_serve(&self, ctx: &mut RequestCtx) {
        ctx.page_serve = self.page_loads.begin(ctx.arrived).map(|id| PageServe {
            loads: self.page_loads.clone(),
            id,
        });
    }
}
