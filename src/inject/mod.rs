//! inject: adds relive's one `<script>` tag to an HTML page while it streams through.
//!
//! Bytes in, bytes out, synchronously, chunk by chunk. The tag goes in as early as is safe, and
//! every byte after it passes through unparsed:
//! - before the first element in the `<head>` that is not a `<meta>` (where Vite puts its own
//!   client), else before `</head>`, else before the first element in the `<body>`;
//! - but only once the page's charset cannot move: the response header named it, a
//!   `<meta charset>` (or `http-equiv="content-type"`) came first, or the first 1,024 bytes —
//!   where browsers look for one — are behind us. A page that declares a CSP in a `<meta>` and
//!   gave no nonce in its header waits for its own scripts' nonce: it gets the late place.
//! - When none of these comes, the late place: before the first `</body>` that is not inside a
//!   `<template>`, or at the end of the document when there is none.
//!
//! Never inside a comment, script, title, template or attribute (lol_html tokenizes: the places
//! are element boundaries, never found by searching raw bytes), and never twice: a relive tag
//! seen before the place leaves the page as it is (one seen after it cannot be, as those bytes
//! are not parsed; the browser evaluates a module script once however many tags load it).
//!
//! Uses: hub; pure: no tokio, pingora or hyper.
//!
//! Must never: buffer a whole body, change any byte of the page other than adding the tag.

pub mod decode;
mod html;
pub mod policy;

pub use html::escape_html;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use std::borrow::Cow;
use std::sync::LazyLock;

use lol_html::html_content::{ContentType, EndTag};
use lol_html::send::{Element, ElementContentHandlers, HtmlRewriter, Settings};
use lol_html::{AsciiCompatibleEncoding, HandlerResult, MemorySettings, Selector, end, end_tag};

use crate::hub::routes;

/// lol_html's own buffers (an unterminated tag or attribute) may grow to this before the
/// rewriter gives up and the rest of the page passes through untouched.
const REWRITER_MEMORY_LIMIT: usize = 4 * 1024 * 1024;

/// Where browsers look for a `<meta charset>`: the tag may not push one out of this.
const CHARSET_PRESCAN: usize = 1024;

/// While an early place may still come, the page is parsed this much at a time, so that the
/// bytes after the place are not parsed (lol_html takes a whole slice before it returns).
const EARLY_SLICE: usize = 256;

/// Past this, no early place is expected: the rest is parsed a whole chunk at a time.
const EARLY_WINDOW: usize = 64 * 1024;

/// The `<script>` tag relive adds to pages, and the client settings it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientTag {
    /// Authorises the page's WebSocket; random per relive process.
    pub token: String,
    /// Show the status badge (`data-badge="off"` when not).
    pub badge: bool,
    /// Outline what a morph changed (`data-highlight="off"` when not).
    pub highlight: bool,
    /// Log every message in the browser console (`data-debug="1"`).
    pub debug: bool,
    /// The relive process that served the page (`data-session`), so the page can tell a
    /// restarted relive from the one it came from, even before its socket ever opened.
    pub session: String,
    /// The newest event id when the response started (`data-last-id`): the page's first
    /// connection asks for every event after it.
    pub last_id: u64,
}

impl ClientTag {
    /// A tag with the default settings: badge on, debug logging off.
    pub fn new(token: impl Into<String>) -> ClientTag {
        ClientTag {
            token: token.into(),
            badge: true,
            highlight: true,
            debug: false,
            session: String::new(),
            last_id: 0,
        }
    }

    /// This tag for a response that starts when the newest event is `last_id`.
    pub fn at(&self, last_id: u64) -> ClientTag {
        ClientTag {
            last_id,
            ..self.clone()
        }
    }

    /// The markup. `nonce`, when the page's CSP uses one, lets the script run under it.
    pub fn render(&self, nonce: Option<&str>) -> String {
        let mut tag = format!(
            r#"<script type="module" src="{}" data-relive data-token="{}""#,
            routes::CLIENT_JS,
            escape_html(&self.token)
        );
        if !self.session.is_empty() {
            tag.push_str(&format!(
                r#" data-session="{}" data-last-id="{}""#,
                escape_html(&self.session),
                self.last_id
            ));
        }
        if !self.badge {
            tag.push_str(r#" data-badge="off""#);
        }
        if !self.highlight {
            tag.push_str(r#" data-highlight="off""#);
        }
        if self.debug {
            tag.push_str(r#" data-debug="1""#);
        }
        if let Some(nonce) = nonce {
            tag.push_str(&format!(r#" nonce="{}""#, escape_html(nonce)));
        }
        tag.push_str("></script>");
        tag
    }
}

/// What the handlers learn about the page as it streams past.
#[derive(Default)]
struct PageState {
    /// The tag has been written.
    injected: AtomicBool,
    /// The page already carries a relive tag (it passed through relive before).
    already_present: AtomicBool,
    /// How many `<template>` elements are open around the current position.
    template_depth: AtomicUsize,
    /// A nonce seen on one of the page's own scripts, used when the CSP header had none.
    page_nonce: Mutex<Option<String>>,
    /// The response header names the charset, or a `<meta>` declaring it has gone by.
    charset_settled: AtomicBool,
    /// The bytes being parsed now start past the charset prescan window.
    past_prescan: AtomicBool,
    /// A `<meta>` CSP came with no nonce in the header: the tag needs the page's own nonce.
    csp_needs_page_nonce: AtomicBool,
}

impl PageState {
    /// Claims the single injection, returning false when it already happened or is unwanted.
    fn claim(&self) -> bool {
        !self.already_present.load(Ordering::Relaxed)
            && !self.injected.swap(true, Ordering::Relaxed)
    }

    /// Whether an early place may take the tag now.
    fn early_allowed(&self) -> bool {
        self.template_depth.load(Ordering::Relaxed) == 0
            && !self.csp_needs_page_nonce.load(Ordering::Relaxed)
            && (self.charset_settled.load(Ordering::Relaxed)
                || self.past_prescan.load(Ordering::Relaxed))
    }

    /// Learns from an element of the head or body before an early place takes it; returns
    /// whether the tag may go before this element.
    fn may_precede(&self, el: &Element, header_nonce: bool) -> bool {
        let name = el.tag_name();
        if name == "script" && el.has_attribute("data-relive") {
            self.already_present.store(true, Ordering::Relaxed);
            return false;
        }
        if name != "meta" {
            return true;
        }
        if el.has_attribute("charset") {
            self.charset_settled.store(true, Ordering::Relaxed);
        }
        let http_equiv = el.get_attribute("http-equiv").unwrap_or_default();
        if http_equiv.eq_ignore_ascii_case("content-type") {
            self.charset_settled.store(true, Ordering::Relaxed);
        } else if http_equiv.eq_ignore_ascii_case("content-security-policy") && !header_nonce {
            self.csp_needs_page_nonce.store(true, Ordering::Relaxed);
        }
        // Never before a `<meta>`: a charset after the tag could move out of the prescan.
        false
    }
}

/// The rewriter writes into this; each `write` call drains it into the chunk handed on.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl lol_html::OutputSink for Sink {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(chunk);
    }
}

/// A streaming injector for one HTML response.
pub struct Injector {
    /// `None` once the rewriter gave up (its memory limit) or finished: bytes then pass through.
    rewriter: Option<HtmlRewriter<'static, Sink>>,
    sink: Sink,
    state: Arc<PageState>,
    /// How many bytes of the page the rewriter has been given.
    parsed: usize,
}

impl Injector {
    /// Creates an injector for a page in `encoding` (an ASCII-compatible charset label such as
    /// `utf-8`; unknown labels fall back to UTF-8, which preserves bytes it does not touch).
    /// `tag` is what gets added; `header_nonce` is a nonce from the response's CSP header.
    pub fn new(tag: &ClientTag, header_nonce: Option<String>, encoding: Option<&str>) -> Self {
        let state = Arc::new(PageState {
            charset_settled: AtomicBool::new(encoding.is_some()),
            ..PageState::default()
        });
        let sink = Sink::default();
        let settings = settings(tag.clone(), header_nonce, state.clone())
            .with_encoding(ascii_compatible(encoding))
            .with_memory_settings(
                MemorySettings::new()
                    .with_max_allowed_memory_usage(REWRITER_MEMORY_LIMIT)
                    .with_graceful_bail_out_on_memory_limit_exceeded(true),
            );
        Injector {
            rewriter: Some(HtmlRewriter::new(settings, sink.clone())),
            sink,
            state,
            parsed: 0,
        }
    }

    /// Feeds the next piece of the page; returns the bytes that are ready to send on.
    pub fn write(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut rest = chunk;
        while !rest.is_empty()
            && let Some(rewriter) = self.rewriter.as_mut()
        {
            let size = if self.parsed < EARLY_WINDOW {
                EARLY_SLICE.min(rest.len())
            } else {
                rest.len()
            };
            let (slice, tail) = rest.split_at(size);
            self.state
                .past_prescan
                .store(self.parsed >= CHARSET_PRESCAN, Ordering::Relaxed);
            self.parsed += size;
            rest = tail;
            if rewriter.write(slice).is_err() {
                // lol_html flushed what it held as-is (graceful bail-out); the rest of the
                // page passes through untouched rather than being cut off.
                self.rewriter = None;
            } else if self.injected()
                && let Some(rewriter) = self.rewriter.take()
            {
                // The tag is placed: flush what the parser holds and pass the rest of the
                // page through without parsing it.
                let _ = rewriter.end();
            }
        }
        let mut out = self.sink.take();
        out.extend_from_slice(rest);
        out
    }

    /// Whether every further byte passes through as it is (the tag is placed, or the rewriter
    /// gave up), so a caller may send its chunks on without calling [`Injector::write`].
    pub fn passing_through(&self) -> bool {
        self.rewriter.is_none()
    }

    /// Ends the page; returns the last bytes (which hold the tag when there was no `</body>`).
    pub fn finish(&mut self) -> Vec<u8> {
        if let Some(rewriter) = self.rewriter.take() {
            // An error here is the memory bail-out, which has already flushed the input.
            let _ = rewriter.end();
        }
        self.sink.take()
    }

    /// Whether the tag has been written so far.
    pub fn injected(&self) -> bool {
        self.state.injected.load(Ordering::Relaxed)
    }
}

fn ascii_compatible(label: Option<&str>) -> AsciiCompatibleEncoding {
    label
        .and_then(|label| encoding_rs::Encoding::for_label(label.trim().as_bytes()))
        .and_then(AsciiCompatibleEncoding::new)
        .unwrap_or_else(AsciiCompatibleEncoding::utf_8)
}

/// Whether a page in this charset can be rewritten at all (UTF-16 pages cannot).
pub fn charset_supported(label: Option<&str>) -> bool {
    match label.and_then(|l| encoding_rs::Encoding::for_label(l.trim().as_bytes())) {
        Some(encoding) => AsciiCompatibleEncoding::new(encoding).is_some(),
        None => true,
    }
}

/// The selectors the injector matches, parsed once: parsing them for every page was a
/// measurable part of serving one.
struct Selectors {
    head_child: Selector,
    body_child: Selector,
    head: Selector,
    present: Selector,
    nonce: Selector,
    template: Selector,
    body: Selector,
}

static SELECTORS: LazyLock<Selectors> = LazyLock::new(|| {
    let parse = |selector: &str| selector.parse().expect("relive's selectors are valid");
    Selectors {
        head_child: parse("head > *"),
        body_child: parse("body > *"),
        head: parse("head"),
        present: parse("script[data-relive]"),
        nonce: parse("script[nonce]"),
        template: parse("template"),
        body: parse("body"),
    }
});

/// An element handler for one of the parsed [`SELECTORS`].
fn on<'h>(
    selector: &'static Selector,
    handler: impl FnMut(&mut Element<'_, '_>) -> HandlerResult + Send + 'h,
) -> (Cow<'static, Selector>, ElementContentHandlers<'h>) {
    (
        Cow::Borrowed(selector),
        ElementContentHandlers::default().element(handler),
    )
}

fn settings(
    tag: ClientTag,
    header_nonce: Option<String>,
    state: Arc<PageState>,
) -> Settings<'static, 'static> {
    let has_header_nonce = header_nonce.is_some();
    let tag_for = {
        let state = state.clone();
        move || {
            let page_nonce = state
                .page_nonce
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            tag.render(header_nonce.as_deref().or(page_nonce.as_deref()))
        }
    };
    let tag_for_end = tag_for.clone();
    let early_child = |state: Arc<PageState>, tag_for: Arc<dyn Fn() -> String + Send + Sync>| {
        move |el: &mut Element| {
            if state.may_precede(el, has_header_nonce) && state.early_allowed() && state.claim() {
                el.before(&tag_for(), ContentType::Html);
            }
            Ok(())
        }
    };
    let tag_for: Arc<dyn Fn() -> String + Send + Sync> = Arc::new(tag_for);
    let (head_child, head_end, body_child) = (
        early_child(state.clone(), tag_for.clone()),
        (state.clone(), tag_for.clone()),
        early_child(state.clone(), tag_for.clone()),
    );
    let (present, nonce, templates, body, doc) = (
        state.clone(),
        state.clone(),
        state.clone(),
        state.clone(),
        state,
    );

    // Registered first: lol_html runs an element's handlers in this order, so an early place
    // sees the element before the template depth counts it.
    Settings::new_send()
        .append_element_content_handler(on(&SELECTORS.head_child, head_child))
        .append_element_content_handler(on(&SELECTORS.body_child, body_child))
        .append_element_content_handler(on(&SELECTORS.head, move |el: &mut Element| {
            let (state, tag_for) = head_end.clone();
            el.on_end_tag(end_tag!(move |end: &mut EndTag| {
                if end.name().eq_ignore_ascii_case("head") && state.early_allowed() && state.claim()
                {
                    end.before(&tag_for(), ContentType::Html);
                }
                Ok(())
            }))
        }))
        .append_element_content_handler(on(&SELECTORS.present, move |_el| {
            present.already_present.store(true, Ordering::Relaxed);
            Ok(())
        }))
        .append_element_content_handler(on(&SELECTORS.nonce, move |el: &mut Element| {
            let mut slot = nonce
                .page_nonce
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if slot.is_none() {
                *slot = el.get_attribute("nonce").filter(|n| !n.is_empty());
            }
            Ok(())
        }))
        .append_element_content_handler(on(&SELECTORS.template, move |el: &mut Element| {
            templates.template_depth.fetch_add(1, Ordering::Relaxed);
            let templates = templates.clone();
            el.on_end_tag(end_tag!(move |end: &mut EndTag| {
                // lol_html also ends a template when a stray `</body>` inside it closes
                // everything up to the body; in the source the template is still open then.
                if end.name().eq_ignore_ascii_case("template") {
                    templates.template_depth.fetch_sub(1, Ordering::Relaxed);
                }
                Ok(())
            }))
        }))
        .append_element_content_handler(on(&SELECTORS.body, move |el: &mut Element| {
            let body = body.clone();
            let tag_for = tag_for.clone();
            el.on_end_tag(end_tag!(move |end: &mut EndTag| {
                if body.template_depth.load(Ordering::Relaxed) == 0 && body.claim() {
                    end.before(&tag_for(), ContentType::Html);
                }
                Ok(())
            }))
        }))
        .append_document_content_handler(end!(move |end| {
            if doc.claim() {
                end.append(&tag_for_end(), ContentType::Html);
            }
            Ok(())
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "t0k3n";

    fn tag() -> String {
        ClientTag::new(TOKEN).render(None)
    }

    fn run(chunks: &[&[u8]]) -> String {
        let mut injector = Injector::new(&ClientTag::new(TOKEN), None, None);
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend(injector.write(chunk));
        }
        out.extend(injector.finish());
        String::from_utf8(out).expect("test pages are UTF-8")
    }

    fn inject(page: &str) -> String {
        run(&[page.as_bytes()])
    }

    #[test]
    fn a_stray_body_end_inside_a_template_is_not_the_body_end() {
        // Found by tests/security_injection.rs: lol_html closes the template at the stray tag.
        let page = "<body><template><div></div></body></template></body>";
        assert_eq!(inject(page), format!("{page}{}", tag()));
    }

    #[test]
    fn the_tag_names_the_session_and_the_newest_event() {
        let tag = ClientTag {
            session: "s1".into(),
            ..ClientTag::new("t")
        };
        assert!(
            tag.at(42)
                .render(None)
                .contains(r#"data-token="t" data-session="s1" data-last-id="42">"#)
        );
    }

    #[test]
    fn after_the_tag_the_rest_passes_unparsed() {
        let mut injector = Injector::new(&ClientTag::new(TOKEN), None, None);
        let mut out = injector.write(b"<html><body><p>a</p></body></ht");
        assert!(injector.injected());
        assert!(
            injector.rewriter.is_none(),
            "the parser is done once the tag is in"
        );
        // Whatever follows, even markup that would match a handler, is passed as it is.
        out.extend(injector.write(b"ml><script data-relive></script></body>"));
        out.extend(injector.finish());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "<html><body><p>a</p>{}</body></html><script data-relive></script></body>",
                tag()
            )
        );
    }

    #[test]
    fn tag_goes_before_closing_body() {
        let page = "<!doctype html><html><body><p>hi</p></body></html>";
        assert_eq!(
            inject(page),
            format!(
                "<!doctype html><html><body><p>hi</p>{}</body></html>",
                tag()
            )
        );
    }

    #[test]
    fn marker_split_at_every_offset_gives_the_same_output() {
        let page = "<html><head><title>x</title></head><body><p>text</p></body></html>\n";
        let expected = same_at_every_cut(page);
        assert!(expected.contains(&format!("{}</body>", tag())));
    }

    /// The page injected whole, after checking that split in two at every offset, and one byte
    /// at a time, gives the same.
    fn same_at_every_cut(page: &str) -> String {
        let expected = inject(page);
        let bytes = page.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(
                run(&[&bytes[..cut], &bytes[cut..]]),
                expected,
                "cut at {cut}"
            );
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(run(&singles), expected, "one byte at a time");
        expected
    }

    #[test]
    fn page_without_body_gets_tag_at_the_end() {
        assert_eq!(inject("<h1>bare</h1>"), format!("<h1>bare</h1>{}", tag()));
        assert_eq!(inject(""), tag());
    }

    #[test]
    fn closing_body_inside_script_or_comment_is_not_the_marker() {
        let page = "<body><script>let s = '</body>';</script><!-- </body> --><p>x</p></body>";
        assert_eq!(
            inject(page),
            format!(
                "<body><script>let s = '</body>';</script><!-- </body> --><p>x</p>{}</body>",
                tag()
            )
        );
    }

    #[test]
    fn closing_body_inside_template_is_not_the_marker() {
        let page = "<body><template><body></body></template><p>x</p></body>";
        assert_eq!(
            inject(page),
            format!(
                "<body><template><body></body></template><p>x</p>{}</body>",
                tag()
            )
        );
    }

    #[test]
    fn uppercase_tags_are_recognised_and_kept() {
        let page = "<HTML><BODY><P>x</P></BODY></HTML>";
        assert_eq!(
            inject(page),
            format!("<HTML><BODY><P>x</P>{}</BODY></HTML>", tag())
        );
    }

    #[test]
    fn page_that_already_has_the_tag_is_unchanged() {
        let page = format!("<html><body><p>x</p>{}</body></html>", tag());
        assert_eq!(inject(&page), page);
    }

    #[test]
    fn tag_is_written_once_even_with_two_bodies() {
        let page = "<body>a</body><body>b</body>";
        assert_eq!(inject(page).matches("data-relive").count(), 1);
    }

    #[test]
    fn page_nonce_is_copied_and_header_nonce_wins() {
        let page = r#"<body><script nonce="abc">1</script></body>"#;
        assert!(inject(page).contains(r#"data-relive data-token="t0k3n" nonce="abc""#));

        let mut injector = Injector::new(&ClientTag::new(TOKEN), Some("fromheader".into()), None);
        let mut out = injector.write(page.as_bytes());
        out.extend(injector.finish());
        assert!(
            String::from_utf8(out)
                .unwrap()
                .contains(r#"nonce="fromheader""#)
        );
    }

    #[test]
    fn non_utf8_bytes_pass_through_unchanged() {
        let mut page = b"<html><head><meta charset=\"windows-1252\"></head><body>caf".to_vec();
        page.push(0xE9);
        page.extend_from_slice(b"</body></html>");
        let mut injector = Injector::new(&ClientTag::new(TOKEN), None, Some("windows-1252"));
        let mut out = injector.write(&page);
        out.extend(injector.finish());
        let head_end = b"<html><head><meta charset=\"windows-1252\">".len();
        let mut expected = page[..head_end].to_vec();
        expected.extend_from_slice(tag().as_bytes());
        expected.extend_from_slice(&page[head_end..]);
        assert_eq!(out, expected);
    }

    /// The page with the tag where `%TAG%` is, and without it.
    fn placed(page_with_marker: &str, header_charset: Option<&str>) -> (String, String) {
        let page = page_with_marker.replace("%TAG%", "");
        let mut injector = Injector::new(&ClientTag::new(TOKEN), None, header_charset);
        let mut out = injector.write(page.as_bytes());
        out.extend(injector.finish());
        (
            String::from_utf8(out).unwrap(),
            page_with_marker.replace("%TAG%", &tag()),
        )
    }

    #[test]
    fn the_tag_goes_early_in_the_head_once_the_charset_is_settled() {
        let cases = [
            // The charset meta first, as most pages have it: the tag right after it.
            (
                "<!doctype html><html><head><meta charset=\"utf-8\">%TAG%<title>t</title></head><body><p>x</p></body></html>",
                None,
            ),
            (
                "<head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\n  %TAG%<link rel=stylesheet href=a.css></head>",
                None,
            ),
            // The header named the charset: before the first element that is not a meta.
            (
                "<HTML><HEAD><meta name=viewport content=\"width=device-width\">%TAG%<SCRIPT type=module src=/@vite/client></SCRIPT></HEAD><BODY></BODY>",
                Some("utf-8"),
            ),
            // A head with only metas: before its end.
            (
                "<head><meta charset=utf-8>%TAG%</head><body><p>x</p></body>",
                None,
            ),
            // No end tag for the head: before the element that ends it.
            (
                "<html><head><meta charset=utf-8>%TAG%<body>text <div>x</div></body>",
                None,
            ),
            // No head: the first element in the body.
            ("<html><body>text %TAG%<div>x</div></body>", Some("utf-8")),
            // No head at all.
            (
                "<!doctype html><body>%TAG%<main>x</main></body>",
                Some("utf-8"),
            ),
            // A template in the head: before it, never inside.
            (
                "<head><meta charset=utf-8>%TAG%<template><p>x</p></template></head>",
                None,
            ),
        ];
        for (page, charset) in cases {
            let (out, expected) = placed(page, charset);
            assert_eq!(out, expected, "{page}");
        }
    }

    #[test]
    fn a_charset_meta_in_the_first_kilobyte_is_never_pushed_out_of_it() {
        // No charset in the header; the meta comes after a title and 900 bytes of comment: the
        // tag may not go before the title (the meta would move past byte 1,024).
        let padding = format!("<!--{}-->", "x".repeat(900));
        let page = format!(
            "<head><title>t</title>{padding}<meta charset=\"utf-8\">%TAG%</head><body><p>x</p></body>"
        );
        let (out, expected) = placed(&page, None);
        assert_eq!(out, expected);
        let meta = page.find("<meta").unwrap();
        assert!(meta < CHARSET_PRESCAN && out.find("<meta") == Some(meta));
    }

    #[test]
    fn with_no_charset_anywhere_an_early_place_waits_for_the_first_kilobyte() {
        // Small pages with nothing to settle the charset get the late place...
        let (out, expected) = placed(
            "<head><title>t</title></head><body><p>x</p>%TAG%</body>",
            None,
        );
        assert_eq!(out, expected);
        // ... long ones the first element boundary after their first kilobyte.
        let paragraphs = "<p>paragraph</p>".repeat(200);
        let mut injector = Injector::new(&ClientTag::new(TOKEN), None, None);
        let page = format!("<head><title>t</title></head><body>{paragraphs}</body>");
        let mut out = injector.write(page.as_bytes());
        out.extend(injector.finish());
        let out = String::from_utf8(out).unwrap();
        let at = out.find(&tag()).unwrap();
        assert!(
            (CHARSET_PRESCAN..CHARSET_PRESCAN + 2 * EARLY_SLICE).contains(&at),
            "{at}"
        );
        assert!(out[at + tag().len()..].starts_with("<p>"));
        assert_eq!(out.replace(&tag(), ""), page);
    }

    #[test]
    fn a_csp_meta_without_a_header_nonce_waits_for_the_pages_nonce() {
        let page = concat!(
            "<head><meta charset=utf-8><meta http-equiv=\"Content-Security-Policy\" ",
            "content=\"script-src 'nonce-n1'\"><script nonce=\"n1\">1</script></head>",
            "<body><p>x</p></body>"
        );
        let out = inject(page);
        assert!(out.contains(r#"nonce="n1"></script></body>"#), "{out}");
    }

    #[test]
    fn an_early_tag_leaves_the_rest_of_the_page_unparsed() {
        let head = "<!doctype html><html><head><meta charset=\"utf-8\"><title>t</title>";
        let rest = format!(
            "</head><body>{}</body></html>",
            "<p>a paragraph</p>".repeat(10_000)
        );
        let mut injector = Injector::new(&ClientTag::new(TOKEN), None, None);
        let mut out = injector.write(format!("{head}{rest}").as_bytes());
        assert!(injector.passing_through(), "parsing stopped at the tag");
        // Markup that would have matched a handler is passed on as it is.
        out.extend(injector.write(b"<script data-relive></script>"));
        out.extend(injector.finish());
        let title = head.find("<title>").unwrap();
        let expected = format!(
            "{}{}{}{rest}<script data-relive></script>",
            &head[..title],
            tag(),
            &head[title..]
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn an_early_place_split_at_every_offset_gives_the_same_output() {
        let page = "<html><head><meta charset=utf-8><!-- <title> --><title>x</title></head><body><p>t</p></body></html>";
        let expected = same_at_every_cut(page);
        assert!(expected.contains(&format!("-->{}<title>", tag())));
    }

    #[test]
    fn a_relive_tag_before_the_early_place_leaves_the_page_as_it_is() {
        let page = format!("<head><meta charset=utf-8>{}<title>x</title></head>", tag());
        assert_eq!(inject(&page), page);
    }

    #[test]
    fn attribute_values_are_escaped() {
        assert_eq!(
            ClientTag::new("a\"b").render(Some("<n>")),
            r#"<script type="module" src="/__relive/client.js" data-relive data-token="a&quot;b" nonce="&lt;n&gt;"></script>"#
        );
    }

    #[test]
    fn client_settings_show_only_when_not_default() {
        let tag = ClientTag {
            badge: false,
            debug: true,
            ..ClientTag::new("t")
        };
        assert!(
            tag.render(None)
                .contains(r#"data-token="t" data-badge="off" data-debug="1">"#)
        );
        assert!(!ClientTag::new("t").render(None).contains("data-badge"));
    }

    #[test]
    fn utf16_pages_are_not_rewritable() {
        assert!(!charset_supported(Some("utf-16le")));
        assert!(charset_supported(Some("UTF-8")));
        assert!(charset_supported(Some("no-such-charset")));
        assert!(charset_supported(None));
    }
}
