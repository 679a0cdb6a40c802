//! policy: decides from the request and response heads whether a response is a page
//! navigation that should carry relive's client.
//!
//! A pure function over plain header maps, so it is table-tested without sockets.
//! Must never: look at a body, or say yes to anything a script fetched (fetch/XHR, htmx,
//! Turbo, React Server Components), to a download, or to a stream.

use http::{HeaderMap, Method, StatusCode, header};

use super::charset_supported;
use super::decode::{Coding, ContentCoding};
use crate::hub::routes;

/// How the front door treats one response: the one decision it acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Leave the response exactly as it came.
    Pass,
    /// A HEAD request for a page: drop the upstream's `Content-Length` (see [`Injection`]).
    HeadOfPage,
    /// A page that relive can rewrite: how to read it.
    Inject(Page),
}

/// What the injector needs to know about a page it rewrites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The body's content coding, when it must be decoded first.
    pub coding: Option<Coding>,
    /// The `charset` the response names.
    pub charset: Option<String>,
    /// The script nonce the page's Content-Security-Policy allows, copied onto the tag.
    pub nonce: Option<String>,
}

/// Decides how the response to a request for `path` is treated: relive's own pages (the
/// dashboard) carry what they need and pass; a page navigation ([`decide`]) is rewritten when
/// relive can read its coding and charset, and passes untouched when it cannot.
pub fn for_response(
    method: &Method,
    path: &str,
    request: &HeaderMap,
    status: StatusCode,
    response: &HeaderMap,
) -> Decision {
    if path.starts_with(routes::PREFIX) {
        return Decision::Pass;
    }
    match decide(method, request, status, response) {
        Injection::Pass => Decision::Pass,
        Injection::HeadOfPage => Decision::HeadOfPage,
        Injection::Inject => {
            let encoding = response
                .get(header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok());
            let coding = match ContentCoding::parse(encoding) {
                ContentCoding::Identity => None,
                ContentCoding::Decodable(coding) => Some(coding),
                ContentCoding::Unsupported => return Decision::Pass,
            };
            let charset = charset(response);
            if !charset_supported(charset.as_deref()) {
                return Decision::Pass;
            }
            Decision::Inject(Page {
                coding,
                charset,
                nonce: csp_nonce(response),
            })
        }
    }
}

/// The header relive's client sends when it fetches its page again to morph it in place: never
/// injected (the live page has its client), but a page load all the same.
pub const MORPH_FETCH: &str = "x-relive-morph";

/// What to do with a response on its way to the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// A page navigation: rewrite the body to add the client.
    Inject,
    /// A HEAD request for a page that a GET would rewrite: the head must not promise the
    /// upstream's `Content-Length`, since the rewritten body would differ.
    HeadOfPage,
    /// Leave the response exactly as the upstream sent it.
    Pass,
}

/// Decides how a response is treated, from the request's method and headers and the
/// response's status and headers.
pub fn decide(
    method: &Method,
    request: &HeaderMap,
    status: StatusCode,
    response: &HeaderMap,
) -> Injection {
    let page = is_page_status(status)
        && is_html(response)
        && !is_attachment(response)
        && !is_script_request(request);
    match (page, method) {
        (false, _) => Injection::Pass,
        (true, &Method::HEAD) => Injection::HeadOfPage,
        // A form submission answered with a page is a navigation like any other.
        (true, _) => Injection::Inject,
    }
}

/// 2xx pages (but not 204 No Content or 206 partial content), 404 and server errors: a dev
/// server's error page should reload itself once the error is fixed.
fn is_page_status(status: StatusCode) -> bool {
    match status.as_u16() {
        204 | 206 => false,
        200..=299 | 404 | 500..=599 => true,
        _ => false,
    }
}

/// The MIME type's essence (no parameters), lower-cased.
fn essence(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next()?.trim().to_ascii_lowercase())
}

fn is_html(headers: &HeaderMap) -> bool {
    essence(headers).as_deref() == Some("text/html")
}

/// The `charset` parameter of the response's `Content-Type`, if any.
pub fn charset(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    value.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

fn is_attachment(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("attachment"))
        })
}

fn header_is(headers: &HeaderMap, name: &str, expected: &str) -> bool {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

/// Requests made by scripts rather than by the browser loading a page.
fn is_script_request(request: &HeaderMap) -> bool {
    // Fetch metadata: browsers mark navigations with mode `navigate` and a document-like
    // destination; everything else (fetch, XHR, subresources) is not a page.
    if let Some(mode) = request.get("sec-fetch-mode").and_then(|v| v.to_str().ok())
        && !mode.trim().eq_ignore_ascii_case("navigate")
    {
        return true;
    }
    if let Some(dest) = request.get("sec-fetch-dest").and_then(|v| v.to_str().ok()) {
        let dest = dest.trim().to_ascii_lowercase();
        if !matches!(
            dest.as_str(),
            "document" | "iframe" | "frame" | "embed" | "object"
        ) {
            return true;
        }
    }
    header_is(request, "x-requested-with", "XMLHttpRequest")
        // relive's own client fetching a page to morph it in place.
        || request.contains_key(MORPH_FETCH)
        || request.contains_key("hx-request")
        || request.contains_key("turbo-frame")
        || request.contains_key("rsc")
        || request.contains_key("next-router-prefetch")
        || request.contains_key("next-router-state-tree")
        || header_is(request, "x-sveltekit-action", "true")
}

/// The nonce a `Content-Security-Policy` header allows scripts with, if any: from
/// `script-src-elem`, else `script-src`, else `default-src` (the directive a browser applies).
pub fn csp_nonce(headers: &HeaderMap) -> Option<String> {
    let policy = headers
        .get(header::CONTENT_SECURITY_POLICY)?
        .to_str()
        .ok()?;
    let directives: Vec<Vec<&str>> = policy
        .split(';')
        .map(|d| d.split_ascii_whitespace().collect())
        .collect();
    ["script-src-elem", "script-src", "default-src"]
        .iter()
        .find_map(|name| {
            directives
                .iter()
                .find(|d| d.first().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        })?
        .iter()
        .find_map(|source| {
            source
                .strip_prefix("'nonce-")
                .and_then(|rest| rest.strip_suffix('\''))
                .map(str::to_owned)
        })
}

/// What in a page's `Content-Security-Policy` headers would stop relive's client: its script
/// (`script-src-elem`/`script-src`/`default-src` without a nonce relive can copy, `'self'` or
/// a wildcard) or its socket (`connect-src`/`default-src` without `'self'`, `ws:` or a
/// wildcard). Empty when nothing does.
pub fn csp_conflicts(headers: &HeaderMap) -> Vec<&'static str> {
    let mut conflicts = Vec::new();
    for policy in headers.get_all(header::CONTENT_SECURITY_POLICY) {
        let Ok(policy) = policy.to_str() else {
            continue;
        };
        let directives: Vec<Vec<&str>> = policy
            .split(';')
            .map(|d| d.split_ascii_whitespace().collect())
            .collect();
        let effective = |names: &[&str]| {
            names.iter().find_map(|name| {
                directives
                    .iter()
                    .find(|d| d.first().is_some_and(|n| n.eq_ignore_ascii_case(name)))
                    .map(|d| d[1..].to_vec())
            })
        };
        let has = |sources: &[&str], wanted: &[&str]| {
            sources
                .iter()
                .any(|s| wanted.iter().any(|w| s.eq_ignore_ascii_case(w)))
        };
        if let Some(sources) = effective(&["script-src-elem", "script-src", "default-src"]) {
            let nonce = sources.iter().any(|s| s.starts_with("'nonce-"));
            // With 'strict-dynamic', only a nonce (or hash) lets a parser-inserted script run.
            let allowed = nonce
                || (!has(&sources, &["'strict-dynamic'"])
                    && has(&sources, &["'self'", "*", "http:", "https:"]));
            if !allowed && !conflicts.contains(&"script-src") {
                conflicts.push("script-src");
            }
        }
        if let Some(sources) = effective(&["connect-src", "default-src"])
            && !has(&sources, &["'self'", "*", "ws:", "wss:"])
            && !conflicts.contains(&"connect-src")
        {
            conflicts.push("connect-src");
        }
    }
    conflicts
}

/// Whether a request is (probably) a page load, for which the upstream is asked not to
/// compress so the page can be rewritten without decoding it.
pub fn wants_page(method: &Method, request: &HeaderMap) -> bool {
    let accepts_html = request
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("text/html"));
    (method == Method::GET || method == Method::HEAD) && accepts_html && !is_script_request(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_that_blocks_the_client_is_named() {
        let csp = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_SECURITY_POLICY, value.parse().unwrap());
            csp_conflicts(&headers)
        };
        assert!(csp("default-src 'self'").is_empty());
        assert!(csp("script-src 'nonce-abc' 'strict-dynamic'; connect-src 'self'").is_empty());
        assert!(
            csp("img-src *").is_empty(),
            "no script or connect rule: allowed"
        );
        assert_eq!(csp("default-src 'none'"), ["script-src", "connect-src"]);
        assert_eq!(
            csp("script-src 'self' 'strict-dynamic'; connect-src ws:"),
            ["script-src"]
        );
        assert_eq!(
            csp("script-src 'self'; connect-src https://api.example.com"),
            ["connect-src"]
        );
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    const HTML: &[(&str, &str)] = &[("content-type", "text/html; charset=utf-8")];
    const NAVIGATION: &[(&str, &str)] = &[
        ("accept", "text/html,application/xhtml+xml"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-dest", "document"),
    ];

    type Case<'a> = (
        &'a str,
        Method,
        &'a [(&'a str, &'a str)],
        u16,
        &'a [(&'a str, &'a str)],
        Injection,
    );

    #[test]
    fn decisions_table() {
        use Injection::*;
        let cases: &[Case] = &[
            ("plain page", Method::GET, NAVIGATION, 200, HTML, Inject),
            (
                "page without fetch metadata",
                Method::GET,
                &[],
                200,
                HTML,
                Inject,
            ),
            (
                "uppercase mime",
                Method::GET,
                &[],
                200,
                &[("content-type", "TEXT/HTML")],
                Inject,
            ),
            ("not found page", Method::GET, NAVIGATION, 404, HTML, Inject),
            (
                "server error page",
                Method::GET,
                NAVIGATION,
                500,
                HTML,
                Inject,
            ),
            (
                "form post answered with a page",
                Method::POST,
                NAVIGATION,
                500,
                HTML,
                Inject,
            ),
            (
                "form post answered with 200",
                Method::POST,
                NAVIGATION,
                200,
                HTML,
                Inject,
            ),
            (
                "head of a page",
                Method::HEAD,
                NAVIGATION,
                200,
                HTML,
                HeadOfPage,
            ),
            ("no content", Method::GET, NAVIGATION, 204, HTML, Pass),
            ("partial content", Method::GET, NAVIGATION, 206, HTML, Pass),
            ("not modified", Method::GET, NAVIGATION, 304, HTML, Pass),
            ("redirect", Method::GET, NAVIGATION, 302, HTML, Pass),
            ("forbidden", Method::GET, NAVIGATION, 403, HTML, Pass),
            (
                "css",
                Method::GET,
                &[],
                200,
                &[("content-type", "text/css")],
                Pass,
            ),
            ("no content type", Method::GET, &[], 200, &[], Pass),
            (
                "xhtml+xml",
                Method::GET,
                &[],
                200,
                &[("content-type", "application/xhtml+xml")],
                Pass,
            ),
            (
                "event stream",
                Method::GET,
                &[],
                200,
                &[("content-type", "text/event-stream")],
                Pass,
            ),
            (
                "attachment",
                Method::GET,
                NAVIGATION,
                200,
                &[
                    ("content-type", "text/html"),
                    ("content-disposition", "Attachment; filename=a.html"),
                ],
                Pass,
            ),
            (
                "inline disposition",
                Method::GET,
                NAVIGATION,
                200,
                &[
                    ("content-type", "text/html"),
                    ("content-disposition", "inline"),
                ],
                Inject,
            ),
            (
                "fetch()",
                Method::GET,
                &[("sec-fetch-mode", "cors"), ("sec-fetch-dest", "empty")],
                200,
                HTML,
                Pass,
            ),
            (
                "iframe",
                Method::GET,
                &[("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "iframe")],
                200,
                HTML,
                Inject,
            ),
            (
                "xhr",
                Method::GET,
                &[("x-requested-with", "XMLHttpRequest")],
                200,
                HTML,
                Pass,
            ),
            (
                "htmx",
                Method::GET,
                &[("hx-request", "true")],
                200,
                HTML,
                Pass,
            ),
            (
                "turbo frame",
                Method::GET,
                &[("turbo-frame", "main")],
                200,
                HTML,
                Pass,
            ),
            (
                "react server components",
                Method::GET,
                &[("rsc", "1")],
                200,
                HTML,
                Pass,
            ),
            (
                "next prefetch",
                Method::GET,
                &[("next-router-prefetch", "1")],
                200,
                HTML,
                Pass,
            ),
        ];
        for (name, method, request, status, response, expected) in cases {
            let got = decide(
                method,
                &headers(request),
                StatusCode::from_u16(*status).unwrap(),
                &headers(response),
            );
            assert_eq!(got, *expected, "{name}");
        }
    }

    #[test]
    fn charset_is_read_from_content_type() {
        assert_eq!(charset(&headers(HTML)).as_deref(), Some("utf-8"));
        let quoted = headers(&[("content-type", "text/html; Charset=\"ISO-8859-1\"")]);
        assert_eq!(charset(&quoted).as_deref(), Some("ISO-8859-1"));
        assert_eq!(charset(&headers(&[("content-type", "text/html")])), None);
    }

    #[test]
    fn csp_nonce_comes_from_the_directive_the_browser_applies() {
        let csp = |v: &str| headers(&[("content-security-policy", v)]);
        assert_eq!(
            csp_nonce(&csp(
                "default-src 'self'; script-src 'nonce-abc123' 'strict-dynamic'"
            )),
            Some("abc123".into())
        );
        assert_eq!(
            csp_nonce(&csp("default-src 'nonce-xyz'")),
            Some("xyz".into())
        );
        assert_eq!(
            csp_nonce(&csp("default-src 'nonce-a'; script-src 'self'")),
            None,
            "script-src overrides default-src"
        );
        assert_eq!(csp_nonce(&headers(&[])), None);
    }

    #[test]
    fn page_loads_are_told_apart_from_script_requests() {
        assert!(wants_page(&Method::GET, &headers(NAVIGATION)));
        assert!(!wants_page(&Method::GET, &headers(&[("accept", "*/*")])));
        assert!(!wants_page(
            &Method::GET,
            &headers(&[("accept", "text/html"), ("hx-request", "true")])
        ));
        assert!(!wants_page(&Method::POST, &headers(NAVIGATION)));
    }

    #[test]
    fn one_decision_per_response() {
        let page_request = headers(&[
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-dest", "document"),
        ]);
        let html = |extra: &[(&'static str, &'static str)]| {
            let mut all = vec![("content-type", "text/html; charset=utf-8")];
            all.extend_from_slice(extra);
            headers(&all)
        };
        let get = Method::GET;
        let ok = StatusCode::OK;
        let plain = Page {
            coding: None,
            charset: Some("utf-8".into()),
            nonce: None,
        };
        let cases: Vec<(&Method, &str, HeaderMap, Decision)> = vec![
            (&get, "/", html(&[]), Decision::Inject(plain.clone())),
            (
                &get,
                "/",
                html(&[("content-encoding", "gzip")]),
                Decision::Inject(Page {
                    coding: Some(Coding::Gzip),
                    ..plain.clone()
                }),
            ),
            (
                &get,
                "/",
                html(&[("content-security-policy", "script-src 'nonce-abc'")]),
                Decision::Inject(Page {
                    nonce: Some("abc".into()),
                    ..plain.clone()
                }),
            ),
            (
                &get,
                "/",
                html(&[("content-encoding", "gzip, br")]),
                Decision::Pass,
            ),
            (
                &get,
                "/",
                headers(&[("content-type", "text/html; charset=utf-16le")]),
                Decision::Pass,
            ),
            (&get, "/__relive/dashboard", html(&[]), Decision::Pass),
            (&Method::HEAD, "/", html(&[]), Decision::HeadOfPage),
            (
                &get,
                "/app.js",
                headers(&[("content-type", "text/javascript")]),
                Decision::Pass,
            ),
        ];
        for (method, path, response, want) in cases {
            assert_eq!(
                for_response(method, path, &page_request, ok, &response),
                want,
                "{method} {path} {response:?}"
            );
        }
    }
}
