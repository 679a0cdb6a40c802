//! pages: the few HTML pages relive writes itself (upstream down, not found).
//!
//! Must never: put unescaped input into markup; every page carries a strict CSP that still
//! lets relive's own client run.

use crate::inject::{ClientTag, escape_html};

/// CSP for relive's own pages: nothing but its own script and socket.
pub const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:";

fn page(title: &str, body: &str, tag: Option<&ClientTag>) -> String {
    let client = tag.map(|t| t.render(None)).unwrap_or_default();
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 15vh auto; padding: 0 1rem; color: #1f2328; }}
  h1 {{ font-size: 1.25rem; }}
  code {{ background: #f0f2f4; padding: .1em .3em; border-radius: 4px; }}
  .muted {{ color: #656d76; font-size: .9rem; }}
  @media (prefers-color-scheme: dark) {{ body {{ background: #0d1117; color: #e6edf3; }} code {{ background: #262c36; }} .muted {{ color: #8d96a0; }} }}
</style>
</head>
<body>
{body}
{client}</body>
</html>
"#
    )
}

/// Shown while the upstream cannot be reached. The client on it reloads the page as soon as
/// relive sees the upstream answer again.
pub fn upstream_down(upstream: &str, tag: &ClientTag) -> String {
    let upstream = escape_html(upstream);
    page(
        "Waiting for the dev server",
        &format!(
            "<h1>Waiting for <code>{upstream}</code>…</h1>\n\
             <p>relive cannot reach the dev server. Start it (or check the address), and this \
             page reloads by itself as soon as it answers.</p>\n\
             <p class=\"muted\">relive</p>"
        ),
        Some(tag),
    )
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
    fn input_is_escaped() {
        let page = not_found("/<script>alert(1)</script>", &ClientTag::new("tok"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!page.contains("<script>alert"));
        assert_eq!(page.matches("data-relive").count(), 1);
    }
}
