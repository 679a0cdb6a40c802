//! pages: the few HTML pages relive writes itself (waiting for the dev server, not found).
//!
//! Must never: put unescaped input into markup; every page carries a strict CSP that still
//! lets relive's own client run.

use http::StatusCode;

use crate::hub::protocol::UpstreamState;
use crate::hub::routes;
use crate::inject::{ClientTag, escape_html};
use crate::log::strip_ansi;
use crate::upstream::Snapshot;

/// CSP for relive's own pages: nothing but its own script and socket.
pub const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:";

/// Every page relive writes: one shell, its own style, the body. `client` (relive's tag, or
/// nothing) goes where the injector would put it, so the front door sees it there and adds none.
fn document(title: &str, style: &str, body: &str, client: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{client}<title>{title}</title>
<style>
{style}</style>
</head>
<body>
{body}
</body>
</html>
"#
    )
}

const PAGE_STYLE: &str = r#"  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 15vh auto; padding: 0 1rem; color: #1f2328; }
  h1 { font-size: 1.25rem; }
  code { background: #f0f2f4; padding: .1em .3em; border-radius: 4px; }
  .muted { color: #656d76; font-size: .9rem; }
  pre { background: #f6f8fa; padding: .75rem; border-radius: 6px; overflow: auto; max-height: 50vh; font-size: .8rem; white-space: pre-wrap; }
  @media (prefers-color-scheme: dark) { body { background: #0d1117; color: #e6edf3; } code, pre { background: #262c36; } .muted { color: #8d96a0; } }
"#;

/// A message page, with relive's client when it should reload by itself.
fn page(title: &str, body: &str, tag: Option<&ClientTag>) -> String {
    let client = tag.map(|t| t.render(None)).unwrap_or_default();
    document(title, PAGE_STYLE, body, &client)
}

/// The HTTP status of the waiting page: 503 while the dev server starts, 502 when it is down or
/// has exited.
pub fn waiting_status(upstream: &Snapshot) -> StatusCode {
    match shown_state(upstream) {
        UpstreamState::Pending | UpstreamState::Starting => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_GATEWAY,
    }
}

/// Shown while the dev server cannot be reached: starting (with its output so far, which the
/// client keeps appending to), down, or exited (with its last lines). The client on it
/// switches to the app as soon as the dev server answers.
pub fn waiting(upstream: &Snapshot, tag: &ClientTag) -> String {
    let what = match (&upstream.command, &upstream.url) {
        (Some(command), _) => format!("<code>{}</code>", escape_html(command)),
        (None, Some(url)) => format!("<code>{}</code>", escape_html(url)),
        (None, None) => "the dev server".to_owned(),
    };
    let at = upstream
        .url
        .as_ref()
        .filter(|_| upstream.command.is_some())
        .map(|url| format!(" at <code>{}</code>", escape_html(url)))
        .unwrap_or_default();
    let state = shown_state(upstream);
    let (title, heading, explanation) = match state {
        UpstreamState::Pending => (
            "Starting the dev server",
            format!("Starting {what}…"),
            "Waiting for it to print the address it listens on. This page switches to your app \
             by itself as soon as it answers."
                .to_owned(),
        ),
        UpstreamState::Starting | UpstreamState::Ready => (
            "Starting the dev server",
            format!("Starting {what}{at}…"),
            "This page switches to your app by itself as soon as it answers.".to_owned(),
        ),
        UpstreamState::Down => (
            "Waiting for the dev server",
            format!("Waiting for {what}{at}…"),
            if upstream.command.is_some() {
                "It stopped answering. This page reloads by itself as soon as it is back."
            } else {
                "relive cannot reach the dev server. Start it (or check the address), and this \
                 page reloads by itself as soon as it answers."
            }
            .to_owned(),
        ),
        UpstreamState::Exited => (
            "The dev server stopped",
            format!(
                "{what} {}",
                escape_html(upstream.exit.as_deref().unwrap_or("exited"))
            ),
            "Fix the problem and it is started again (with <code>--restart</code>), or restart \
             relive. This page reloads by itself as soon as the dev server answers."
                .to_owned(),
        ),
    };
    let output = if upstream.command.is_some() {
        let lines: String = upstream
            .output
            .iter()
            .map(|line| escape_html(&strip_ansi(line)) + "\n")
            .collect();
        format!("<pre id=\"relive-output\" aria-live=\"polite\">{lines}</pre>\n")
    } else {
        String::new()
    };
    page(
        title,
        &format!(
            "<main id=\"relive-waiting\" data-state=\"{}\">\n<h1>{heading}</h1>\n<p>{explanation}</p>\n{output}\
             <p class=\"muted\">relive</p>\n</main>",
            state_name(state)
        ),
        Some(tag),
    )
}

/// A dev server relive does not run is not "starting": it is down until it answers.
fn shown_state(upstream: &Snapshot) -> UpstreamState {
    match (upstream.state, &upstream.command) {
        (UpstreamState::Pending | UpstreamState::Starting | UpstreamState::Ready, None) => {
            UpstreamState::Down
        }
        (state, _) => state,
    }
}

fn state_name(state: UpstreamState) -> &'static str {
    match state {
        UpstreamState::Pending => "pending",
        UpstreamState::Starting => "starting",
        UpstreamState::Ready => "ready",
        UpstreamState::Down => "down",
        UpstreamState::Exited => "exited",
    }
}

/// A missing file in static mode. The client on it reloads the page once the file appears.
pub fn not_found(path: &str, tag: &ClientTag) -> String {
    let path = escape_html(path);
    page(
        "Not found",
        &format!(
            "<h1>Not found: <code>{path}</code></h1>\n\
             <p>There is no such file in the folder relive serves. Create it and this page \
             reloads by itself.</p>\n<p class=\"muted\">relive</p>"
        ),
        Some(tag),
    )
}

/// The dashboard at `/__relive/`: a shell that `dashboard.js` fills from `/__relive/status` and
/// keeps live over relive's socket (with the token, as pages carry it). It does not load the
/// page client: the dashboard never reloads itself.
pub fn dashboard(token: &str) -> String {
    let body = format!(
        r#"<header><h1>relive</h1><span id="serving" class="muted"></span><span id="connection" class="state pending">connecting…</span></header>
<main>
<section id="upstream-section"><h2>Dev server</h2><div id="upstream" class="muted">none (static mode)</div><pre id="output" hidden></pre></section>
<section><h2>Devices</h2><div class="controls"><button id="sync" type="button" aria-pressed="false">sync off</button><button id="reload-all" type="button">Reload all</button><form id="navigate-all"><input id="navigate-url" name="url" value="/" aria-label="path to open on every device"><button type="submit">Open on all</button></form></div><table><thead><tr><th>page</th><th>browser</th><th>viewport</th><th>latency</th></tr></thead><tbody id="tabs"></tbody></table><p id="no-tabs" class="muted">no tabs connected</p></section>
<section><h2>Counters</h2><div id="counters"></div></section>
<section><h2>Recent events</h2><table><thead><tr><th>time</th><th>event</th><th>source</th></tr></thead><tbody id="events"></tbody></table></section>
<section><h2>Watching</h2><div id="watching" class="muted">nothing</div></section>
</main>
<script type="module" src="{}" data-token="{}"></script>"#,
        routes::DASHBOARD_JS,
        escape_html(token)
    );
    document("relive dashboard", DASHBOARD_STYLE, &body, "")
}

const DASHBOARD_STYLE: &str = r#"  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
  header { padding: .8rem 1.2rem; background: #24292f; color: #fff; display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 1rem; margin: 0; }
  main { display: grid; gap: 1rem; padding: 1rem; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); }
  section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .6rem .9rem; overflow: auto; }
  h2 { font-size: .9rem; margin: .2rem 0 .5rem; text-transform: uppercase; letter-spacing: .04em; color: #57606a; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: .2rem .4rem; border-bottom: 1px solid #eaeef2; vertical-align: top; }
  th { font-weight: 600; color: #57606a; font-size: .8rem; }
  pre { background: #f6f8fa; padding: .5rem; border-radius: 4px; white-space: pre-wrap; max-height: 16rem; overflow: auto; font-size: .8rem; margin: .4rem 0 0; }
  code { font-size: .85em; }
  .muted { color: #57606a; }
  .controls { display: flex; gap: .4rem; flex-wrap: wrap; margin-bottom: .5rem; }
  .controls form { display: flex; gap: .3rem; }
  .controls input { width: 10rem; font: inherit; padding: .1rem .3rem; }
  button { font: inherit; padding: .1rem .6rem; border: 1px solid #d0d7de; border-radius: 4px; background: #f6f8fa; cursor: pointer; }
  #sync[aria-pressed="true"] { background: #0969da; border-color: #0969da; color: #fff; }
  .state { font-weight: 600; }
  .ready, .live { color: #1a7f37; } .down, .exited, .offline { color: #cf222e; } .pending, .starting { color: #9a6700; }
  #counters { display: grid; grid-template-columns: repeat(auto-fit, minmax(7rem, 1fr)); gap: .5rem; }
  #counters div { background: #f6f8fa; border-radius: 4px; padding: .4rem .6rem; }
  #counters b { display: block; font-size: 1.3rem; }
"#;

/// A plain error page without the client (bad requests, refused paths).
pub fn error(title: &str, detail: &str) -> String {
    page(
        &escape_html(title),
        &format!(
            "<h1>{}</h1>\n<p>{}</p>",
            escape_html(title),
            escape_html(detail)
        ),
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiting_page_shows_the_output_escaped() {
        let snapshot = Snapshot {
            command: Some("npm run <dev>".into()),
            url: None,
            state: UpstreamState::Exited,
            exit: Some("exited with code 3".into()),
            output: vec!["\u{1b}[31merror\u{1b}[39m <img src=x onerror=alert(1)>".into()],
        };
        let page = waiting(&snapshot, &ClientTag::new("tok"));
        assert!(page.contains("npm run &lt;dev&gt;"));
        assert!(page.contains("exited with code 3"));
        assert!(page.contains("error &lt;img src=x onerror=alert(1)&gt;"));
        assert!(!page.contains("<img"));
        assert!(page.contains("data-state=\"exited\""));
        assert_eq!(waiting_status(&snapshot), StatusCode::BAD_GATEWAY);
        let starting = Snapshot {
            state: UpstreamState::Pending,
            ..snapshot
        };
        assert_eq!(waiting_status(&starting), StatusCode::SERVICE_UNAVAILABLE);
        let not_run = Snapshot {
            command: None,
            ..starting
        };
        assert_eq!(waiting_status(&not_run), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn input_is_escaped() {
        let page = not_found("/<script>alert(1)</script>", &ClientTag::new("tok"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<script>alert"));
        assert_eq!(page.matches("data-relive").count(), 1);
    }
}
