//! Pages updated in place: a change to a page or a template morphs every tab showing it, in
//! real headless Chromium, keeping what a person had on screen; and the cases where relive
//! reloads instead, and says why.

mod common;

use std::path::Path;
use std::time::Duration;

use common::browser::Browser;
use common::{PATIENCE, Relive};

/// A page with everything a person could have done to it: focus and caret in a field with
/// typed text, an open <details>, a scrolled page.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Morph</title></head>
<body>
<h1>Morph</h1>
<p id="text">old text</p>
<p>A paragraph without an id</p>
<input id="name" value="">
<details id="more"><summary>More</summary><p>inside</p></details>
<div id="from"><span id="moving">moving</span></div>
<div id="to"></div>
<div style="height: 3000px">tall</div>
</body></html>
"#;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Chromium showing [`PAGE`] as `/page.html` of relive serving a temp folder.
async fn showing_page() -> Option<(Browser, Relive, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "page.html", PAGE);
    let (browser, relive) = Browser::showing(dir.path(), "/page.html").await?;
    Some((browser, relive, dir))
}

/// Waits until the page has taken `count` morphs in place.
async fn wait_morphed(browser: &mut Browser, count: u32) {
    browser
        .wait_until(&format!("globalThis.__relive?.morphs === {count}"))
        .await;
}

#[tokio::test]
async fn a_changed_paragraph_is_morphed_in_and_everything_else_stays() {
    let Some((mut browser, relive, dir)) = showing_page().await else {
        return;
    };
    // What a person did: typed into a field and left the caret inside it, opened the
    // details, scrolled down; and what a script of the page did: a node of its own.
    browser
        .eval(
            "window.marker = 1; \
             const input = document.getElementById('name'); input.focus(); true",
        )
        .await;
    browser.type_text("hello").await;
    browser
        .eval(
            "document.getElementById('name').setSelectionRange(2, 3); \
             document.getElementById('more').open = true; \
             const added = document.createElement('aside'); added.id = 'by-script'; \
             document.body.append(added); \
             scrollTo(0, 500); true",
        )
        .await;
    browser.wait_until("scrollY === 500").await;

    write(
        dir.path(),
        "page.html",
        &PAGE.replace("old text", "new text, longer"),
    );
    relive.wait_for_line("morphed /page.html, 1 change");
    wait_morphed(&mut browser, 1).await;
    let text = "document.getElementById('text')";
    assert_eq!(
        browser.eval(&format!("{text}.textContent")).await,
        "new text, longer"
    );
    // Highlighted, then clean: no attribute, class or element left behind.
    let highlighted = browser
        .eval(&format!("{text}.getAnimations().length"))
        .await;
    assert_eq!(highlighted, 1, "the changed paragraph pulses");
    browser
        .wait_until(&format!("{text}.getAnimations().length === 0"))
        .await;
    assert_eq!(
        browser
            .eval(&format!(
                "{text}.attributes.length + ':' + {text}.outerHTML"
            ))
            .await,
        "1:<p id=\"text\">new text, longer</p>"
    );
    let kept = browser
        .eval(
            "[window.marker, document.activeElement.id, \
              document.getElementById('name').value, \
              document.getElementById('name').selectionStart, \
              document.getElementById('name').selectionEnd, \
              document.getElementById('more').open, scrollY, \
              Boolean(document.getElementById('by-script'))]",
        )
        .await;
    assert_eq!(
        kept,
        serde_json::json!([1, "name", "hello", 2, 3, true, 500, true]),
        "marker, focus, value, caret, details, scroll, the script's node"
    );
}

#[tokio::test]
async fn an_element_with_an_id_is_moved_not_recreated() {
    let Some((mut browser, _relive, dir)) = showing_page().await else {
        return;
    };
    browser
        .eval("window.marker = 1; document.getElementById('moving').mine = 42; true")
        .await;
    let moved = PAGE
        .replace(
            r#"<div id="from"><span id="moving">moving</span></div>"#,
            r#"<div id="from"></div>"#,
        )
        .replace(
            r#"<div id="to"></div>"#,
            r#"<div id="to"><b>first</b><span id="moving">moving</span></div>"#,
        );
    write(dir.path(), "page.html", &moved);
    wait_morphed(&mut browser, 1).await;
    let after = browser
        .eval(
            "[window.marker, document.getElementById('moving').mine, \
              document.getElementById('moving').parentElement.id, \
              document.getElementById('to').innerHTML, document.getElementById('from').innerHTML]",
        )
        .await;
    assert_eq!(
        after,
        serde_json::json!([
            1,
            42,
            "to",
            r#"<b>first</b><span id="moving">moving</span>"#,
            ""
        ])
    );
}

#[tokio::test]
async fn a_new_script_reloads_and_the_terminal_says_why() {
    let Some((mut browser, relive, dir)) = showing_page().await else {
        return;
    };
    browser.eval("window.marker = 1; true").await;
    write(
        dir.path(),
        "page.html",
        &PAGE.replace("</body>", "<script>window.added = 1;</script></body>"),
    );
    relive.wait_for_line("reloaded /page.html: a script changed");
    browser.wait_reloaded().await;
    assert_eq!(browser.eval("window.added").await, 1, "the new script ran");
}

#[tokio::test]
async fn pages_that_ask_for_reloads_get_them() {
    let dir = tempfile::tempdir().unwrap();
    let opted_out = PAGE.replace("<title>", r#"<meta name="relive" content="reload"><title>"#);
    write(dir.path(), "meta.html", &opted_out);
    write(dir.path(), "query.html", PAGE);
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let relive = Relive::start(&["."], dir.path());
    for (path, file, text, why) in [
        (
            "/meta.html",
            "meta.html",
            opted_out.as_str(),
            "asks for reloads",
        ),
        (
            "/query.html?relive-morph=off",
            "query.html",
            PAGE,
            "?relive-morph=off",
        ),
    ] {
        browser.open(&relive.url(path)).await;
        browser.eval("window.marker = 1; true").await;
        write(dir.path(), file, &text.replace("old text", "new text"));
        relive.wait_for_line(why);
        browser.wait_reloaded().await;
        assert_eq!(
            browser
                .eval("document.getElementById('text').textContent")
                .await,
            "new text"
        );
    }

    // And with `--no-morph`, relive sends a plain reload.
    drop(relive);
    let relive = Relive::start(&[".", "--no-morph"], dir.path());
    browser.open(&relive.url("/query.html")).await;
    browser.eval("window.marker = 1; true").await;
    write(dir.path(), "query.html", PAGE);
    relive.wait_for_line("reload  query.html changed");
    browser.wait_reloaded().await;
}

/// Counts every change to the body's subtree from now on, in `window.mutations`.
const COUNT_MUTATIONS: &str = "window.mutations = 0; \
     new MutationObserver((records) => { window.mutations += records.length; })\
     .observe(document.documentElement, \
      { subtree: true, childList: true, attributes: true, characterData: true }); true";

#[tokio::test]
async fn one_item_of_a_thousand_is_one_node_touched() {
    let dir = tempfile::tempdir().unwrap();
    let list = |changed: usize| {
        let items: String = (0..1000)
            .map(|i| {
                if i == changed {
                    format!("<li>item {i} changed</li>\n")
                } else {
                    format!("<li>item {i}</li>\n")
                }
            })
            .collect();
        format!(
            "<!doctype html><html><head><title>List</title></head><body><ul id=\"list\">\n{items}</ul></body></html>"
        )
    };
    write(dir.path(), "list.html", &list(usize::MAX));
    let Some((mut browser, _relive)) = Browser::showing(dir.path(), "/list.html").await else {
        return;
    };
    browser.eval(COUNT_MUTATIONS).await;
    write(dir.path(), "list.html", &list(500));
    wait_morphed(&mut browser, 1).await;
    let after = browser
        .eval(
            "[window.mutations, __relive.lastMorph.changes, \
              document.querySelectorAll('li')[500].textContent]",
        )
        .await;
    assert_eq!(after, serde_json::json!([1, 1, "item 500 changed"]));
    eprintln!(
        "morph of a 1,000-item list: {}",
        browser.eval("JSON.stringify(__relive.lastMorph)").await
    );
}

/// A dev server that renders pages from a shared layout on every request, as a server-side
/// template engine does: `/one` and `/two` use `layout.html`, `/plain` does not.
const RENDERER: &str = r#"
import http.server, os, sys
root = sys.argv[2]
def read(name):
    with open(os.path.join(root, name), encoding="utf-8") as f:
        return f.read()
class Pages(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path in ("/one", "/two"):
            body = read("layout.html").replace("{content}", "page " + self.path[1:])
        elif self.path == "/plain":
            body = read("plain.html")
        else:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Pages).serve_forever()
"#;

struct Renderer(std::process::Child);

impl Drop for Renderer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_template_change_morphs_every_tab_and_leaves_other_pages_untouched() {
    if !common::file_server::FileServer::available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let layout = "<!doctype html><html><head><title>Site</title></head><body>\
                  <nav>Home · About</nav><main>{content}</main><footer>v1</footer></body></html>";
    write(dir.path(), "layout.html", layout);
    write(
        dir.path(),
        "plain.html",
        "<!doctype html><html><head><title>Plain</title></head><body><p>plain</p></body></html>",
    );
    let port = common::unused_port();
    let server = Renderer(
        std::process::Command::new("python3")
            .args(["-c", RENDERER, &port.to_string()])
            .arg(dir.path())
            .spawn()
            .expect("python3 runs"),
    );
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the renderer listens");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Some(mut browser) = Browser::launch().await else {
        return;
    };
    let upstream = format!("http://127.0.0.1:{port}");
    let watched = dir.path().to_str().unwrap();
    let relive = Relive::start(&["--proxy", &upstream, "--watch", watched], dir.path());
    let mut tabs = Vec::new();
    for path in ["/one", "/one", "/two", "/plain"] {
        let tab = browser.open_tab(false).await;
        browser.open_in(&tab, &relive.url(path)).await;
        browser
            .eval_in(&tab, &format!("window.marker = 1; {COUNT_MUTATIONS}"))
            .await;
        tabs.push(tab);
    }

    write(
        dir.path(),
        "layout.html",
        &layout.replace("<footer>v1</footer>", "<footer>v2</footer>"),
    );
    for (tab, page) in tabs.iter().zip(["one", "one", "two", "plain"]) {
        browser
            .wait_until_in(tab, "globalThis.__relive?.morphs === 1", PATIENCE)
            .await;
        let shown = browser
            .eval_in(
                tab,
                "[window.marker, document.querySelector('footer')?.textContent ?? null, \
                  document.querySelector('main')?.textContent ?? null, window.mutations]",
            )
            .await;
        let expected = if page == "plain" {
            // Fetched and compared, and nothing touched.
            serde_json::json!([1, null, null, 0])
        } else {
            serde_json::json!([1, "v2", format!("page {page}"), 1])
        };
        assert_eq!(shown, expected, "the tab on /{page}");
    }
    drop(server);
}

#[tokio::test]
async fn a_five_megabyte_page_morphs() {
    let dir = tempfile::tempdir().unwrap();
    // 5 MB: 40,000 articles of a long document.
    let page = |changed: usize| {
        let mut html = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Big</title></head><body><main id=\"big\">\n",
        );
        for i in 0..40_000 {
            let note = if i == changed { "changed" } else { "unchanged" };
            html.push_str(&format!(
                "<article><h2>Section {i}</h2><p class=\"note\">{note}</p><p>{:0>50}</p></article>\n",
                i
            ));
        }
        html.push_str("</main></body></html>\n");
        html
    };
    let first = page(usize::MAX);
    assert!(first.len() > 4_900_000, "{} bytes", first.len());
    write(dir.path(), "big.html", &first);
    let Some((mut browser, _relive)) = Browser::showing(dir.path(), "/big.html").await else {
        return;
    };
    browser.eval("window.marker = 1; true").await;
    write(dir.path(), "big.html", &page(25_000));
    wait_morphed(&mut browser, 1).await;
    let after = browser
        .eval(
            "[window.marker, __relive.lastMorph.changes, \
              document.querySelectorAll('article')[25000].querySelector('.note').textContent]",
        )
        .await;
    assert_eq!(after, serde_json::json!([1, 1, "changed"]));
    let morph = browser.eval("__relive.lastMorph").await;
    // The same page loaded whole, for comparison.
    browser.eval("location.reload(); true").await;
    browser.wait_reloaded().await;
    let reload = browser
        .eval(
            "(() => { const n = performance.getEntriesByType('navigation')[0]; \
              return Math.round(n.loadEventEnd - n.startTime); })()",
        )
        .await;
    eprintln!(
        "5 MB page ({} bytes): morph {} ms in all (fetch {} ms, parse {} ms, morph {} ms), \
         full reload {reload} ms",
        first.len(),
        morph["ms"],
        morph["fetch_ms"],
        morph["parse_ms"],
        morph["morph_ms"]
    );
}
