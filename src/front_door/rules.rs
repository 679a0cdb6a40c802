//! rules: the front door's pure request rules — what is refused before anything is forwarded
//! (CONNECT, ambiguous framing, oversized heads, hosts outside the allow-list, control bodies
//! over their limit), which upgrades relive tunnels itself, how an upstream's redirect to its
//! own address is pointed back at relive, and what a refused TLS handshake was about.
//!
//! Plain functions over request and response heads, table-tested without sockets.
//!
//! Must never: read a body, or let a request through whose length two servers could read
//! differently (request smuggling).

use http::{HeaderMap, Method, StatusCode, Version, header};
use pingora::http::{RequestHeader, ResponseHeader};

use super::hosts;
use crate::config::UpstreamUrl;
use crate::hub::routes;

/// The longest request target relive forwards.
const MAX_TARGET: usize = 8 * 1024;
/// The most header bytes (names and values) a request may carry.
const MAX_HEADER_BYTES: usize = 32 * 1024;

/// A request the front door answers itself, without forwarding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
    /// Close the connection afterwards (the request's body was left unread).
    pub close: bool,
}

/// Why a request must not be forwarded, if it must not: CONNECT (relive is no open proxy),
/// ambiguous framing, a host outside the allow-list, an unacceptable control body.
pub fn refusal(request: &RequestHeader, allowed_hosts: &[String]) -> Option<Refused> {
    let refuse = |(status, message), close| Refused {
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
    if let Err(refused) = check_host(request, allowed_hosts) {
        return Some(refuse(refused, false));
    }
    check_control_body(request)
        .err()
        .map(|refused| refuse(refused, true))
}

/// Refuses requests whose length is ambiguous (request smuggling: a front end and a back end
/// reading different bodies) and heads larger than any browser sends.
fn check_framing(request: &RequestHeader) -> Result<(), (StatusCode, String)> {
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

/// Applies the `Host` allow-list to the `Host` header and to an absolute-form target.
fn check_host(
    request: &RequestHeader,
    allowed_hosts: &[String],
) -> Result<(), (StatusCode, String)> {
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
        if !hosts::allowed(&host, allowed_hosts) {
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

/// Bodies posted to relive's own routes ([`routes::body_limit`]) must declare their length,
/// within the limit; anything else is refused here, before a byte of it is read.
fn check_control_body(request: &RequestHeader) -> Result<(), (StatusCode, String)> {
    let Some(limit) = routes::body_limit(request.uri.path()) else {
        return Ok(());
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
    match routes::declared_length(&request.headers) {
        Some(length) if length > limit => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("relive: {}\n", routes::too_large(limit)),
        )),
        _ => Ok(()),
    }
}

/// Whether the request's `Upgrade` header names `protocol`.
pub fn upgrade_is(headers: &HeaderMap, protocol: &str) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case(protocol))
        })
}

/// Upgrades relive tunnels itself: HTTP/1.1, an `Upgrade` other than `h2c`, and no request
/// body (WebSocket handshakes never have one).
pub fn is_tunnelable_upgrade(request: &RequestHeader) -> bool {
    request.version == Version::HTTP_11
        && request.headers.contains_key(header::UPGRADE)
        && !upgrade_is(&request.headers, "h2c")
        && !request.headers.contains_key(header::CONTENT_LENGTH)
        && !request.headers.contains_key(header::TRANSFER_ENCODING)
}

/// Where a redirect should point: a `location` on the upstream's own address
/// (`http://localhost:5173/login`, as a dev server configured with its own URL writes it) moves
/// to relive's address (`front_host`, with relive's scheme), so the browser stays behind relive.
/// `None` for relative and foreign locations, which pass unchanged.
pub fn rewritten_location(
    location: &str,
    front_host: &str,
    upstream: &UpstreamUrl,
    https: bool,
) -> Option<String> {
    let scheme = if upstream.tls { "https" } else { "http" };
    let host = if upstream.host.contains(':') {
        format!("[{}]", upstream.host)
    } else {
        upstream.host.clone()
    };
    let rest = [host.as_str(), "localhost", "127.0.0.1", "[::1]"]
        .iter()
        .find_map(|h| {
            let origin = format!("{scheme}://{h}:{}", upstream.port);
            location
                .strip_prefix(origin.as_str())
                .filter(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']))
        })?;
    let front_scheme = if https { "https" } else { "http" };
    Some(format!("{front_scheme}://{front_host}{rest}"))
}

/// A response that says nothing about caching would be cached by the browser's heuristic
/// (a fraction of its age), so a reload right after a save could show the old file: relive
/// asks for revalidation instead. Caching the upstream asks for is left as it is.
pub fn revalidate_by_default(response: &mut ResponseHeader) -> pingora::Result<()> {
    let silent = !response.headers.contains_key(header::CACHE_CONTROL)
        && !response.headers.contains_key(header::EXPIRES);
    if silent && response.status.as_u16() >= 200 {
        response.insert_header(header::CACHE_CONTROL, "no-cache")?;
    }
    Ok(())
}

/// The TLS part of pingora's text for a failed handshake, which nests contexts ("… context: tls
/// connect error cause: invalid peer certificate: UnknownIssuer, SNI: localhost cause: local
/// address …"). Empty when the text names no cause.
pub fn tls_cause(full: &str) -> String {
    let cause = match full.find("cause: ") {
        Some(at) => &full[at + "cause: ".len()..],
        None => full.rsplit("context: ").next().unwrap_or(full),
    };
    cause
        .split(", SNI")
        .next()
        .unwrap_or(cause)
        .trim_start_matches("tls connect error")
        .trim_start_matches([':', ' '])
        .trim()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request head: method, target, then `name: value` lines.
    fn request(method: &str, target: &str, headers: &[(&str, &str)]) -> RequestHeader {
        let mut head = RequestHeader::build(method, target.as_bytes(), None).unwrap();
        // An absolute-form target, as a proxy client sends it.
        head.set_uri(target.parse().unwrap());
        for (name, value) in headers {
            head.append_header(name.to_string(), *value).unwrap();
        }
        head
    }

    fn refused_status(head: &RequestHeader) -> Option<(u16, bool)> {
        refusal(head, &["dev.test".into()]).map(|r| (r.status.as_u16(), r.close))
    }

    #[test]
    fn refusals_before_forwarding() {
        let long_target = format!("/{}", "a".repeat(MAX_TARGET));
        let big_header = "x".repeat(MAX_HEADER_BYTES);
        let host = ("host", "localhost:4500");
        // method, target, headers, (status, close) when refused.
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            Option<(u16, bool)>,
        );
        let cases: &[Case] = &[
            ("GET", "/", &[host], None),
            ("GET", "/", &[("host", "dev.test")], None),
            ("CONNECT", "/", &[host], Some((405, false))),
            ("GET", &long_target, &[host], Some((414, true))),
            (
                "GET",
                "/",
                &[host, ("x-big", &big_header)],
                Some((431, true)),
            ),
            (
                "POST",
                "/",
                &[
                    host,
                    ("content-length", "3"),
                    ("transfer-encoding", "chunked"),
                ],
                Some((400, true)),
            ),
            (
                "POST",
                "/",
                &[host, ("content-length", "3"), ("content-length", "3")],
                Some((400, true)),
            ),
            (
                "POST",
                "/",
                &[host, ("content-length", "+3")],
                Some((400, true)),
            ),
            (
                "POST",
                "/",
                &[host, ("content-length", "")],
                Some((400, true)),
            ),
            (
                "POST",
                "/",
                &[host, ("transfer-encoding", "gzip")],
                Some((400, true)),
            ),
            (
                "POST",
                "/",
                &[
                    host,
                    ("transfer-encoding", "chunked"),
                    ("transfer-encoding", "chunked"),
                ],
                Some((400, true)),
            ),
            ("POST", "/", &[host, ("transfer-encoding", "Chunked")], None),
            ("GET", "/", &[], Some((400, false))),
            ("GET", "/", &[host, host], Some((400, false))),
            ("GET", "/", &[("host", "evil.example")], Some((403, false))),
            ("GET", "/", &[("host", "bad host")], Some((400, false))),
            ("GET", "http://evil.example/", &[host], Some((403, false))),
            (
                "POST",
                routes::NOTIFY,
                &[host, ("content-length", "10")],
                None,
            ),
            (
                "POST",
                routes::NOTIFY,
                &[host, ("content-length", "70000")],
                Some((413, true)),
            ),
            (
                "POST",
                routes::ERRORS,
                &[host, ("content-length", "5000")],
                Some((413, true)),
            ),
            (
                "POST",
                routes::NOTIFY,
                &[host, ("transfer-encoding", "chunked")],
                Some((411, true)),
            ),
            (
                "GET",
                routes::NOTIFY,
                &[host, ("content-length", "70000")],
                None,
            ),
            (
                "POST",
                "/upload",
                &[host, ("content-length", "70000")],
                None,
            ),
        ];
        for (method, target, headers, want) in cases {
            let head = request(method, target, headers);
            assert_eq!(
                refused_status(&head),
                *want,
                "{method} {} {headers:?}",
                &target[..target.len().min(40)]
            );
        }
    }

    #[test]
    fn only_plain_http11_upgrades_are_tunnelled() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[("upgrade", "websocket")], true),
            (&[("upgrade", "h2c")], false),
            (&[("upgrade", "websocket, h2c")], false),
            (&[("upgrade", "websocket"), ("content-length", "0")], false),
            (
                &[("upgrade", "websocket"), ("transfer-encoding", "chunked")],
                false,
            ),
            (&[], false),
        ];
        for (headers, want) in cases {
            let head = request("GET", "/", headers);
            assert_eq!(is_tunnelable_upgrade(&head), *want, "{headers:?}");
        }
        let mut http10 = request("GET", "/", &[("upgrade", "websocket")]);
        http10.set_version(Version::HTTP_10);
        assert!(!is_tunnelable_upgrade(&http10));
    }

    #[test]
    fn redirects_to_the_upstream_come_back_to_relive() {
        let vite = UpstreamUrl::parse("http://localhost:5173").unwrap();
        let v6 = UpstreamUrl::parse("http://[::1]:3000").unwrap();
        let tls = UpstreamUrl::parse("https://dev.test:8443").unwrap();
        let front = "localhost:4500";
        let cases: &[(&str, &UpstreamUrl, bool, Option<&str>)] = &[
            (
                "http://localhost:5173/login",
                &vite,
                false,
                Some("http://localhost:4500/login"),
            ),
            (
                "http://127.0.0.1:5173/?a=1",
                &vite,
                false,
                Some("http://localhost:4500/?a=1"),
            ),
            (
                "http://[::1]:5173#top",
                &vite,
                false,
                Some("http://localhost:4500#top"),
            ),
            (
                "http://localhost:5173",
                &vite,
                true,
                Some("https://localhost:4500"),
            ),
            (
                "http://[::1]:3000/x",
                &v6,
                false,
                Some("http://localhost:4500/x"),
            ),
            (
                "https://dev.test:8443/x",
                &tls,
                false,
                Some("http://localhost:4500/x"),
            ),
            ("http://dev.test:8443/x", &tls, false, None),
            ("http://localhost:51730/x", &vite, false, None),
            ("http://localhost:5173evil.example/", &vite, false, None),
            ("/login", &vite, false, None),
            ("https://example.com/", &vite, false, None),
        ];
        for (location, upstream, https, want) in cases {
            assert_eq!(
                rewritten_location(location, front, upstream, *https).as_deref(),
                *want,
                "{location} via {upstream}"
            );
        }
    }

    #[test]
    fn tls_causes_are_read_from_pingoras_text() {
        let cases = [
            (
                " TLSHandshakeFailure context: tls connect error cause: invalid peer certificate: UnknownIssuer, SNI: localhost cause: local address 127.0.0.1:5555",
                "invalid peer certificate: UnknownIssuer",
            ),
            (
                "InvalidCert context: peer sent no certificates",
                "peer sent no certificates",
            ),
            ("TLSHandshakeFailure", "TLSHandshakeFailure"),
            ("context: tls connect error", ""),
        ];
        for (text, want) in cases {
            assert_eq!(tls_cause(text), want, "{text}");
        }
    }

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
