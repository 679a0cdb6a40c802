//! access: who may use relive's own endpoints — the per-run token, compared in constant time,
//! and the checks that a request comes from a page of this site, not from another origin.
//!
//! Must never: accept a request from another origin, or compare a token in a way whose time
//! depends on how much of it was right.

use http::{HeaderMap, header};

/// Same origin: an `Origin` header, when present, must be the front door's scheme plus the
/// `Host` the request was sent to. Browsers always send `Origin` on WebSocket upgrades. The
/// scheme comes from `X-Forwarded-Proto`, which the front door always sets itself (it drops
/// whatever the browser sent).
pub fn origin_matches_host(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(|h| h.to_str()),
    ) else {
        return false;
    };
    let https = headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes() == b"https");
    origin
        .strip_prefix(if https { "https://" } else { "http://" })
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

/// Compares tokens in constant time.
pub fn token_matches(given: Option<&str>, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    given.is_some_and(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes())))
}

/// `EventSource` sends no `Origin` on same-origin requests, but fetch metadata says where the
/// request came from when the browser sends it.
pub fn same_site(headers: &HeaderMap) -> bool {
    let site_ok = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|site| site == "same-origin");
    site_ok && origin_matches_host(headers)
}
