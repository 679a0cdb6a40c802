//! routes: the paths relive answers itself, all under one reserved prefix, and the size of
//! the bodies that may be posted to them. The front door, the origin, the injected tag, relive's
//! pages and `relive check` all read them here.
//!
//! Must never: name a route outside [`PREFIX`]: everything else belongs to the upstream.

use http::{HeaderMap, header};

/// Every path under this prefix is relive's; none reaches the upstream.
pub const PREFIX: &str = "/__relive/";
/// The browser client (`client/relive.js`).
pub const CLIENT_JS: &str = "/__relive/client.js";
/// The WebSocket that pushes events to tabs.
pub const SOCKET: &str = "/__relive/ws";
/// The event stream, for tabs whose WebSocket cannot get through.
pub const EVENTS: &str = "/__relive/events";
/// Error reports from tabs on the event stream.
pub const ERRORS: &str = "/__relive/errors";
/// JSON: what relive serves, watches, and its recent events.
pub const STATUS: &str = "/__relive/status";
/// The dashboard page (also at [`PREFIX`] itself) and its script.
pub const DASHBOARD: &str = "/__relive/dashboard";
pub const DASHBOARD_JS: &str = "/__relive/dashboard.js";
/// Signals from scripts and build tools (`relive notify`).
pub const NOTIFY: &str = "/__relive/notify";

/// The largest signal body, and the largest message a tab may send (on its socket or posted).
pub const MAX_SIGNAL: usize = 64 * 1024;
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

/// The largest body a POST to `path` may carry, for the routes that take one.
pub fn body_limit(path: &str) -> Option<usize> {
    match path {
        NOTIFY => Some(MAX_SIGNAL),
        ERRORS => Some(MAX_CLIENT_MESSAGE),
        _ => None,
    }
}

/// The length a request or response declares, if it declares a readable one.
pub fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
}

/// What relive says when a body is over its limit.
pub fn too_large(limit: usize) -> String {
    format!("the body is over {} KiB", limit / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_under_the_prefix() {
        for route in [
            CLIENT_JS,
            SOCKET,
            EVENTS,
            ERRORS,
            STATUS,
            DASHBOARD,
            DASHBOARD_JS,
            NOTIFY,
        ] {
            assert!(route.starts_with(PREFIX), "{route}");
        }
    }

    #[test]
    fn only_posting_routes_have_a_limit() {
        assert_eq!(body_limit(NOTIFY), Some(64 * 1024));
        assert_eq!(body_limit(ERRORS), Some(4 * 1024));
        assert_eq!(body_limit(STATUS), None);
        assert_eq!(body_limit("/api/notify"), None);
    }

    #[test]
    fn declared_lengths_are_read_or_ignored() {
        let cases: &[(Option<&str>, Option<usize>)] = &[
            (Some("12"), Some(12)),
            (Some(" 7 "), Some(7)),
            (Some("-1"), None),
            (Some("ten"), None),
            (None, None),
        ];
        for (value, want) in cases {
            let mut headers = HeaderMap::new();
            if let Some(value) = value {
                headers.insert(header::CONTENT_LENGTH, value.parse().unwrap());
            }
            assert_eq!(declared_length(&headers), *want, "{value:?}");
        }
    }
}
