//! answers: what the front door says itself when it does not forward — a refusal, relive's
//! waiting page while the dev server is not answering, and the page or text for a request that
//! failed (refused TLS, a silent upstream, anything else) — and how it writes them.
//!
//! Pages get relive's own HTML (a person is looking); everything else a short `relive: …` text.
//!
//! Must never: write after a response has begun (that would pad or end it like a complete one).

use bytes::Bytes;
use http::{Method, StatusCode, header};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

use crate::inject::ClientTag;
use crate::origin::pages;
use crate::upstream::Upstream;

/// An internal error with what relive was doing.
pub fn internal_error(context: &'static str, cause: impl std::fmt::Display) -> Box<Error> {
    Error::explain(ErrorType::InternalError, format!("{context}: {cause}"))
}

/// A complete small response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    pub fn text(status: StatusCode, body: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }

    fn html(status: StatusCode, body: String) -> Answer {
        Answer {
            status,
            content_type: "text/html; charset=utf-8",
            body,
        }
    }

    /// For a page, relive's error page titled `title`; otherwise `relive: detail`.
    fn page_or_text(page: bool, status: StatusCode, title: &str, detail: &str) -> Answer {
        if page {
            Answer::html(status, pages::error(title, detail))
        } else {
            Answer::text(status, format!("relive: {detail}\n"))
        }
    }
}

/// How a request failed, as far as the answer is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    /// The browser went away: nothing to answer.
    ClientGone,
    /// Connecting to the upstream failed.
    Unreachable,
    /// The upstream's TLS handshake or certificate was refused.
    TlsRefused,
    /// The upstream accepted the request and then sent nothing.
    TimedOut,
    /// Anything else.
    Other,
}

/// Reads pingora's error: how it failed, and the status code that stands for it.
pub fn classify(e: &Error) -> (Failed, u16) {
    let code = match (e.esource(), e.etype()) {
        (_, ErrorType::HTTPStatus(code)) => *code,
        (ErrorSource::Upstream, _) => 502,
        (
            ErrorSource::Downstream,
            ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed,
        ) => return (Failed::ClientGone, 0),
        (ErrorSource::Downstream, _) => 400,
        _ => 500,
    };
    let failed = match e.etype() {
        ErrorType::ConnectRefused
        | ErrorType::ConnectTimedout
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
            if e.esource() == &ErrorSource::Upstream =>
        {
            Failed::Unreachable
        }
        ErrorType::TLSHandshakeFailure | ErrorType::InvalidCert => Failed::TlsRefused,
        ErrorType::ReadTimedout => Failed::TimedOut,
        _ => Failed::Other,
    };
    (failed, code)
}

/// The answer while the upstream cannot be reached: for a page, relive's waiting page
/// (starting, down or exited, with the command's last lines), which switches to the app by
/// itself; for anything else a short text.
pub fn not_answering(upstream: &Upstream, page: bool, tag: &ClientTag) -> Answer {
    let snapshot = upstream.snapshot();
    let status = pages::waiting_status(&snapshot);
    if page {
        Answer::html(status, pages::waiting(&snapshot, tag))
    } else {
        Answer::text(
            status,
            format!("relive: {} is not answering\n", upstream.display()),
        )
    }
}

/// The words for a refused TLS connection to the upstream: what happened (`cause`, from
/// [`super::rules::tls_cause`]) and, unless it is already on, the flag that accepts a
/// self-signed certificate.
pub fn tls_refused_detail(upstream: &Upstream, cause: &str, insecure: bool) -> String {
    let hint = if insecure {
        ""
    } else {
        " If it uses a self-signed certificate (the usual case for a local dev server), start \
         relive with --upstream-insecure (or server.upstream_insecure = true)."
    };
    format!(
        "relive could not make a TLS connection to {}: {cause}.{hint}",
        upstream.display(),
    )
}

pub fn tls_refused(detail: &str, page: bool) -> Answer {
    Answer::page_or_text(
        page,
        StatusCode::BAD_GATEWAY,
        "relive cannot reach the dev server over HTTPS",
        detail,
    )
}

/// The answer when the upstream sent nothing for `secs` seconds.
pub fn timed_out(upstream: &Upstream, secs: u64, page: bool) -> Answer {
    let detail = format!(
        "{} accepted the request but sent nothing for {secs} seconds. Reload to try again; the \
         limit is server.upstream_timeout_secs in relive.toml.",
        upstream.display()
    );
    Answer::page_or_text(
        page,
        StatusCode::GATEWAY_TIMEOUT,
        "The dev server did not answer",
        &detail,
    )
}

/// Any other failure: its status and pingora's name for it.
pub fn other(code: u16, e: &Error) -> Answer {
    Answer::text(
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY),
        format!("relive: {}\n", e.etype().as_str()),
    )
}

/// Writes a complete small response from the front door itself.
pub async fn respond(session: &mut Session, answer: Answer) -> pingora::Result<()> {
    let mut head = ResponseHeader::build(answer.status, Some(4))?;
    head.insert_header(header::CONTENT_TYPE, answer.content_type)?;
    head.insert_header(header::CONTENT_LENGTH, answer.body.len().to_string())?;
    head.insert_header(header::CACHE_CONTROL, "no-store")?;
    if answer.content_type.starts_with("text/html") {
        head.insert_header(header::CONTENT_SECURITY_POLICY, pages::CSP)?;
    }
    let is_head = session.req_header().method == Method::HEAD;
    session
        .write_response_header(Box::new(head), is_head)
        .await?;
    if !is_head {
        session
            .write_response_body(Some(Bytes::from(answer.body)), true)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified_with_their_status() {
        let cases = [
            (
                ErrorType::ConnectRefused,
                ErrorSource::Upstream,
                Failed::Unreachable,
                502,
            ),
            (
                ErrorType::ConnectTimedout,
                ErrorSource::Upstream,
                Failed::Unreachable,
                502,
            ),
            (
                ErrorType::ConnectRefused,
                ErrorSource::Internal,
                Failed::Other,
                500,
            ),
            (
                ErrorType::TLSHandshakeFailure,
                ErrorSource::Upstream,
                Failed::TlsRefused,
                502,
            ),
            (
                ErrorType::InvalidCert,
                ErrorSource::Upstream,
                Failed::TlsRefused,
                502,
            ),
            (
                ErrorType::ReadTimedout,
                ErrorSource::Upstream,
                Failed::TimedOut,
                502,
            ),
            (
                ErrorType::WriteError,
                ErrorSource::Downstream,
                Failed::ClientGone,
                0,
            ),
            (
                ErrorType::ConnectionClosed,
                ErrorSource::Downstream,
                Failed::ClientGone,
                0,
            ),
            (
                ErrorType::InvalidHTTPHeader,
                ErrorSource::Downstream,
                Failed::Other,
                400,
            ),
            (
                ErrorType::HTTPStatus(413),
                ErrorSource::Downstream,
                Failed::Other,
                413,
            ),
        ];
        for (etype, source, failed, code) in cases {
            let mut e = Error::new(etype.clone());
            e.esource = source.clone();
            assert_eq!(classify(&e), (failed, code), "{etype:?} from {source:?}");
        }
    }

    #[test]
    fn pages_get_html_and_everything_else_text() {
        let page = Answer::page_or_text(true, StatusCode::BAD_GATEWAY, "Title", "a < b");
        assert_eq!(page.content_type, "text/html; charset=utf-8");
        assert!(page.body.contains("a &lt; b"), "{}", page.body);
        let text = Answer::page_or_text(false, StatusCode::BAD_GATEWAY, "Title", "a < b");
        assert_eq!(text.body, "relive: a < b\n");
    }
}
