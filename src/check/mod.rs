//! check: `relive check`, a smoke check for CI. Starts relive in this process (and the dev
//! server, for `-- CMD`) on a free port, waits until the site is ready, loads each page and
//! reports what went wrong: in headless Chromium (JS errors, unhandled rejections, console
//! errors, failed sub-resources, time to load) or, without a browser, over HTTP (the page's
//! status and that of every same-origin script, stylesheet and image it references).
//!
//! Uses: app, config, hub, inject, log.
//!
//! Must never: pass a page it could not load, or leave relive's children (dev server, browser)
//! running when it returns, on a timeout included.

pub mod chromium;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use serde::Serialize;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::cli::{CheckArgs, Cli, ReportFormat};
use chromium::Chromium;

/// After the load event, how long late errors (a failing fetch, a timer) are still collected.
const SETTLE: Duration = Duration::from_millis(500);
/// How many bytes of a page are read to find what it references.
const MAX_PAGE: usize = 8 * 1024 * 1024;

/// One thing wrong with a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// `status`, `js-error`, `unhandled-rejection`, `console-error`, `resource`, `timeout` or
    /// `not-ready`.
    pub kind: &'static str,
    pub message: String,
}

/// What loading one page showed.
#[derive(Debug, Clone, Serialize)]
pub struct PageReport {
    pub path: String,
    pub url: String,
    pub ok: bool,
    pub status: Option<u16>,
    pub load_ms: Option<u64>,
    pub problems: Vec<Problem>,
}

impl PageReport {
    fn new(path: &str, url: String) -> PageReport {
        PageReport {
            path: path.to_owned(),
            url,
            ok: false,
            status: None,
            load_ms: None,
            problems: Vec::new(),
        }
    }

    fn problem(&mut self, kind: &'static str, message: impl Into<String>) {
        let message = message.into();
        let problem = Problem { kind, message };
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    fn finish(mut self) -> PageReport {
        self.ok = self.problems.is_empty();
        self
    }
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub ok: bool,
    /// `browser` or `http`.
    pub mode: &'static str,
    pub browser: Option<String>,
    pub duration_ms: u64,
    pub pages: Vec<PageReport>,
}

/// Runs the check; returns the report (printing is the caller's).
pub fn run(args: &CheckArgs, cwd: &Path) -> Result<Report, crate::app::Failure> {
    let serves_files = args.proxy.is_none() && args.run.is_empty();
    let (dir, paths) =
        split_targets(&args.targets, serves_files, cwd).map_err(crate::app::Failure::Usage)?;
    let cli = Cli {
        dir,
        proxy: args.proxy.clone(),
        run: args.run.clone(),
        config: args.config.clone(),
        port: Some(0),
        no_watch: true,
        upstream_insecure: args.upstream_insecure,
        ..Cli::default()
    };
    let mut config =
        crate::config::resolve(&cli, cwd).map_err(|e| crate::app::Failure::Usage(e.into()))?;
    // The check's relive is private to this run, on loopback: plain HTTP even when relive.toml
    // asks for HTTPS (the pages are the same either way).
    config.https = None;
    crate::log::init(config.log_format, -1);
    let browser = if args.no_browser {
        None
    } else {
        chromium::find(args.browser.as_deref())
    };
    let addr = crate::app::listen::choose(config.host, 0, true)
        .map_err(|e| crate::app::Failure::Runtime(e.into()))?;
    let timeout = Duration::from_secs(args.timeout.max(1));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .map_err(|e| {
            crate::app::Failure::Runtime(anyhow!("cannot start the async runtime: {e}"))
        })?;
    runtime.block_on(async move {
        let started = Instant::now();
        let shutdown = CancellationToken::new();
        let stop_on_signal = tokio::spawn(crate::app::stop_on_signal(shutdown.clone()));
        let (listening, listened) = tokio::sync::oneshot::channel();
        let app = tokio::spawn(crate::app::run(config, addr, shutdown.clone(), move |l| {
            let _ = listening.send(l.clone());
        }));
        let pages = tokio::select! {
            pages = check_all(listened, &paths, browser.as_deref(), timeout) => pages,
            _ = shutdown.cancelled() => Err(anyhow!("interrupted")),
        };
        shutdown.cancel();
        let app_result = app.await;
        stop_on_signal.abort();
        let pages = pages.map_err(crate::app::Failure::Runtime)?;
        if let Ok(Err(error)) = app_result {
            return Err(crate::app::Failure::Runtime(error.into()));
        }
        Ok(Report {
            ok: pages.iter().all(|p| p.ok),
            mode: if browser.is_some() { "browser" } else { "http" },
            browser: browser.map(|b| b.display().to_string()),
            duration_ms: started.elapsed().as_millis() as u64,
            pages,
        })
    })
}

/// Splits `relive check`'s positional words into the folder (if any) and the page paths.
///
/// A word that does not start with `/` is the folder. One that does is a page, except the
/// first word when it names an existing folder on this machine and relive serves files (no
/// `--proxy` or `--run`): `relive check "$PWD/dist" /about.html` checks `dist`. When that first
/// word is also a path inside the folder relive would serve otherwise (`cwd`), both readings are
/// possible and the check asks which was meant.
fn split_targets(
    targets: &[String],
    serves_files: bool,
    cwd: &Path,
) -> anyhow::Result<(Option<PathBuf>, Vec<String>)> {
    let mut dir = None;
    let mut paths = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        let page = target.starts_with('/');
        if page && !(index == 0 && serves_files && is_folder_not_page(target, cwd)?) {
            paths.push(target.clone());
        } else if dir.is_none() {
            dir = Some(PathBuf::from(target));
        } else {
            return Err(anyhow!(
                "`{target}`: give one folder, and pages as paths starting with / (like /about.html)"
            ));
        }
    }
    if paths.is_empty() {
        paths.push("/".to_owned());
    }
    Ok((dir, paths))
}

/// Whether a first word starting with `/` means a folder on this machine rather than a page.
fn is_folder_not_page(word: &str, cwd: &Path) -> anyhow::Result<bool> {
    if word == "/" || !Path::new(word).is_dir() {
        return Ok(false);
    }
    let as_page = cwd.join(word.trim_start_matches('/'));
    if as_page.exists() {
        return Err(anyhow!(
            "`{word}` is both a folder on this machine and the page {word} of the folder {}; \
             write `relive check {word} /` to check that folder's front page, or \
             `relive check . {word}` to check the page",
            cwd.display()
        ));
    }
    Ok(true)
}

async fn check_all(
    listened: tokio::sync::oneshot::Receiver<crate::app::Listening>,
    paths: &[String],
    browser: Option<&Path>,
    timeout: Duration,
) -> anyhow::Result<Vec<PageReport>> {
    let deadline = Instant::now() + timeout;
    let listening = tokio::time::timeout_at(deadline, listened)
        .await
        .map_err(|_| anyhow!("relive did not start within {timeout:?}"))?
        .map_err(|_| anyhow!("relive stopped before it was listening"))?;
    let base = listening.url.trim_end_matches('/').to_owned();
    let url = |path: &str| format!("{base}{path}");
    if let Err(reason) = wait_until_ready(&base, deadline, timeout).await {
        return Ok(paths
            .iter()
            .map(|path| {
                let mut report = PageReport::new(path, url(path));
                report.problem("not-ready", reason.clone());
                report.finish()
            })
            .collect());
    }
    let mut reports = Vec::new();
    match browser {
        Some(path) => {
            let mut chromium = Chromium::launch(path).await?;
            for page in paths {
                reports.push(in_browser(&mut chromium, page, &url(page), timeout).await?);
            }
        }
        None => {
            for page in paths {
                reports.push(over_http(page, &url(page), timeout).await);
            }
        }
    }
    Ok(reports)
}

/// Waits until relive's status says the dev server answers (at once in static mode).
async fn wait_until_ready(base: &str, deadline: Instant, timeout: Duration) -> Result<(), String> {
    let status_url = format!("{base}/__relive/status");
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok((200, body)) = fetch(&status_url, "application/json", true).await
            && let Ok(status) = serde_json::from_slice::<Value>(&body)
        {
            let upstream = &status["upstream"];
            match upstream["status"].as_str() {
                None | Some("ready") => return Ok(()),
                Some("exited") => return Err(not_ready("the dev server stopped", upstream)),
                _ => last = upstream.clone(),
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(not_ready(
        &format!("the site was not ready within {} s", timeout.as_secs()),
        &last,
    ))
}

/// Why the site is not ready, with how the dev server ended and its last lines.
fn not_ready(what: &str, upstream: &Value) -> String {
    let mut reason = what.to_owned();
    if let Some(exit) = upstream["exit"].as_str() {
        reason.push_str(&format!(" (it {exit})"));
    }
    let lines: Vec<String> = upstream["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(crate::log::strip_ansi)
        .collect();
    if !lines.is_empty() {
        reason.push_str("; its last output:\n");
        reason.push_str(&lines.join("\n"));
    }
    reason
}

/// GET `url` over HTTP/1.1; returns the status and (when `body`) up to [`MAX_PAGE`] bytes.
async fn fetch(url: &str, accept: &str, body: bool) -> anyhow::Result<(u16, Bytes)> {
    let uri: http::Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
    let authority = uri.authority().context("URL without host")?.clone();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((authority.host().trim_matches(['[', ']']), port))
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = http::Request::get(uri.path_and_query().map_or("/", |p| p.as_str()))
        .header(http::header::HOST, authority.as_str())
        .header(http::header::ACCEPT, accept)
        .header("sec-fetch-mode", if body { "navigate" } else { "no-cors" })
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    if !body {
        return Ok((status, Bytes::new()));
    }
    let limited = http_body_util::Limited::new(response.into_body(), MAX_PAGE);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| anyhow!("reading {url}: {e}"))?
        .to_bytes();
    Ok((status, bytes))
}

/// The HTTP-level check: the page's status, then every same-origin script, stylesheet and
/// image it references.
async fn over_http(path: &str, url: &str, timeout: Duration) -> PageReport {
    let mut report = PageReport::new(path, url.to_owned());
    let started = Instant::now();
    let page = tokio::time::timeout(timeout, fetch(url, "text/html", true)).await;
    let (status, body) = match page {
        Err(_) => {
            report.problem(
                "timeout",
                format!("no answer within {} s", timeout.as_secs()),
            );
            return report.finish();
        }
        Ok(Err(error)) => {
            report.problem("status", format!("{error:#}"));
            return report.finish();
        }
        Ok(Ok(answer)) => answer,
    };
    report.status = Some(status);
    report.load_ms = Some(started.elapsed().as_millis() as u64);
    if status >= 400 {
        report.problem("status", format!("the page answered {status}"));
    }
    for reference in references(&body) {
        let Some(target) = local_path(url, &reference) else {
            continue;
        };
        let answer = tokio::time::timeout(timeout, fetch(&target, "*/*", false)).await;
        match answer {
            Ok(Ok((status, _))) if status < 400 => {}
            Ok(Ok((status, _))) => report.problem("resource", format!("{reference} ({status})")),
            Ok(Err(error)) => report.problem("resource", format!("{reference} ({error:#})")),
            Err(_) => report.problem("resource", format!("{reference} (no answer)")),
        }
    }
    report.finish()
}

/// The `src`/`href` of a page's scripts, stylesheets and images, in order, without repeats.
pub fn references(html: &[u8]) -> Vec<String> {
    use lol_html::{HtmlRewriter, Settings, element};
    let found = std::cell::RefCell::new(Vec::<String>::new());
    let add = |value: Option<String>| {
        if let Some(value) = value.map(|v| v.trim().to_owned())
            && !value.is_empty()
            && !found.borrow().contains(&value)
        {
            found.borrow_mut().push(value);
        }
    };
    let settings = Settings::new()
        .append_element_content_handler(element!("script[src]", |el| {
            add(el.get_attribute("src"));
            Ok(())
        }))
        .append_element_content_handler(element!("link[href]", |el| {
            let rel = el.get_attribute("rel").unwrap_or_default();
            if rel
                .split_ascii_whitespace()
                .any(|r| r.eq_ignore_ascii_case("stylesheet"))
            {
                add(el.get_attribute("href"));
            }
            Ok(())
        }))
        .append_element_content_handler(element!("img[src]", |el| {
            add(el.get_attribute("src"));
            Ok(())
        }));
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    // A malformed page still yields what was found before the error.
    if rewriter.write(html).is_ok() {
        let _ = rewriter.end();
    } else {
        drop(rewriter);
    }
    found.take()
}

/// The length of `url`'s origin (`http://host:port`), if it has a scheme.
fn origin_len(url: &str) -> Option<usize> {
    let host = url.find("://")? + 3;
    Some(url[host..].find('/').map_or(url.len(), |i| host + i))
}

/// `reference` resolved against `page`, if it stays on the same origin and is not relive's own.
pub fn local_path(page: &str, reference: &str) -> Option<String> {
    let origin_end = origin_len(page)?;
    let origin = &page[..origin_end];
    let path = if let Some(rest) = reference.strip_prefix(origin) {
        rest.to_owned()
    } else if reference.starts_with("//") || reference.contains("://") {
        return None;
    } else if reference.starts_with('/') {
        reference.to_owned()
    } else if reference.starts_with("data:") || reference.starts_with("blob:") {
        return None;
    } else {
        let dir = &page[origin_end
            ..page
                .rfind('/')
                .filter(|i| *i >= origin_end)
                .unwrap_or(origin_end)];
        format!("{dir}/{reference}")
    };
    let path = path.split('#').next().unwrap_or("");
    if path.starts_with(crate::hub::routes::PREFIX) {
        return None;
    }
    Some(format!(
        "{origin}{}",
        if path.is_empty() { "/" } else { path }
    ))
}

/// The browser check: navigates, then collects what the page did until its load event and a
/// short settle.
async fn in_browser(
    chromium: &mut Chromium,
    path: &str,
    url: &str,
    timeout: Duration,
) -> anyhow::Result<PageReport> {
    let mut report = PageReport::new(path, url.to_owned());
    let started = Instant::now();
    let navigated = chromium
        .call("Page.navigate", serde_json::json!({"url": url}))
        .await?;
    if let Some(error) = navigated["errorText"].as_str() {
        report.problem("status", format!("the page did not load: {error}"));
        return Ok(report.finish());
    }
    let mut page = PageEvents {
        url,
        frame: navigated["frameId"].as_str().unwrap_or("").to_owned(),
        requests: Default::default(),
        report,
    };
    let mut deadline = started + timeout;
    let mut loaded = false;
    while let Some(event) = chromium.next_event(deadline).await? {
        match event["method"].as_str().unwrap_or("") {
            "Page.loadEventFired" if !loaded => {
                loaded = true;
                page.report.load_ms = Some(started.elapsed().as_millis() as u64);
                deadline = Instant::now() + SETTLE;
            }
            method => page.record(method, &event["params"]),
        }
    }
    if !loaded {
        page.report.problem(
            "timeout",
            format!(
                "the page did not finish loading within {} s",
                timeout.as_secs()
            ),
        );
    }
    Ok(page.report.finish())
}

/// What one page did in the browser, as its DevTools events arrive.
struct PageEvents<'a> {
    url: &'a str,
    /// The page's own frame: its document's status is the page's.
    frame: String,
    /// Request id to URL, to name a request that failed.
    requests: std::collections::HashMap<String, String>,
    report: PageReport,
}

impl PageEvents<'_> {
    fn record(&mut self, method: &str, params: &Value) {
        match method {
            "Network.requestWillBeSent" => {
                if let (Some(id), Some(url)) = (
                    params["requestId"].as_str(),
                    params["request"]["url"].as_str(),
                ) {
                    self.requests.insert(id.to_owned(), url.to_owned());
                }
            }
            "Network.responseReceived" => self.response(params),
            "Network.loadingFailed" if params["canceled"] != true => {
                let id = params["requestId"].as_str().unwrap_or("");
                let resource = self.requests.get(id).map(String::as_str).unwrap_or("?");
                let error = params["errorText"].as_str().unwrap_or("failed");
                if !ignored(resource) && !error.contains("ERR_ABORTED") {
                    let problem = format!("{} ({error})", shown(self.url, resource));
                    self.report.problem("resource", problem);
                }
            }
            "Runtime.exceptionThrown" => {
                let details = &params["exceptionDetails"];
                let kind = if details["text"]
                    .as_str()
                    .is_some_and(|t| t.contains("(in promise)"))
                {
                    "unhandled-rejection"
                } else {
                    "js-error"
                };
                self.report.problem(kind, exception_text(details, self.url));
            }
            "Runtime.consoleAPICalled" if params["type"] == "error" => {
                self.report
                    .problem("console-error", console_text(&params["args"]));
            }
            "Log.entryAdded"
                if params["entry"]["level"] == "error"
                    && params["entry"]["source"] != "network"
                    && params["entry"]["source"] != "console-api" =>
            {
                let text = params["entry"]["text"].as_str().unwrap_or("");
                self.report.problem("console-error", text.to_owned());
            }
            _ => {}
        }
    }

    fn response(&mut self, params: &Value) {
        let status = params["response"]["status"].as_u64().unwrap_or(0) as u16;
        let resource = params["response"]["url"].as_str().unwrap_or("");
        if params["type"] == "Document" && params["frameId"] == self.frame.as_str() {
            self.report.status = Some(status);
            if status >= 400 {
                self.report
                    .problem("status", format!("the page answered {status}"));
            }
        } else if status >= 400 && !ignored(resource) {
            let problem = format!("{} ({status})", shown(self.url, resource));
            self.report.problem("resource", problem);
        }
    }
}

/// The text of a `console.error(...)` call's arguments.
fn console_text(args: &Value) -> String {
    let text: Vec<String> = args
        .as_array()
        .into_iter()
        .flatten()
        .map(|arg| match &arg["value"] {
            Value::String(s) => s.clone(),
            Value::Null => arg["description"].as_str().unwrap_or("").to_owned(),
            other => other.to_string(),
        })
        .collect();
    text.join(" ")
}

/// Requests a browser makes by itself, not the page's.
fn ignored(url: &str) -> bool {
    url.ends_with("/favicon.ico")
}

/// A resource as the report shows it: its path when on the page's origin.
fn shown(page: &str, resource: &str) -> String {
    let origin_end = origin_len(page).unwrap_or(page.len());
    resource
        .strip_prefix(&page[..origin_end])
        .unwrap_or(resource)
        .to_owned()
}

/// An exception's first line and where it was thrown: the script and line, or the page and
/// line for an inline script.
fn exception_text(details: &Value, page: &str) -> String {
    let described = details["exception"]["description"]
        .as_str()
        .and_then(|d| d.lines().next())
        .map(str::to_owned);
    let text = described.unwrap_or_else(|| {
        let base = details["text"].as_str().unwrap_or("error");
        match details["exception"]["value"].as_str() {
            Some(value) => format!("{base} {value}"),
            None => base.to_owned(),
        }
    });
    let line = details["lineNumber"].as_u64().map(|line| line + 1);
    match (details["url"].as_str(), line) {
        (Some(source), Some(line)) if source == page => {
            format!("{text} ({}:{line} (inline script))", shown(page, source))
        }
        (Some(source), Some(line)) if !source.is_empty() => {
            format!("{text} ({}:{line})", shown(page, source))
        }
        _ => text,
    }
}

/// The report for people.
pub fn table(report: &Report) -> String {
    let failed = report.pages.iter().filter(|p| !p.ok).count();
    let how = match &report.browser {
        Some(browser) => format!("in {browser}"),
        None => "over HTTP (no browser)".to_owned(),
    };
    let mut out = format!(
        "relive check: {} page{} {how}, {}\n",
        report.pages.len(),
        if report.pages.len() == 1 { "" } else { "s" },
        if failed == 0 {
            "all passed".to_owned()
        } else {
            format!("{failed} failed")
        }
    );
    let width = report.pages.iter().map(|p| p.path.len()).max().unwrap_or(1);
    for page in &report.pages {
        let status = page.status.map_or("---".to_owned(), |s| s.to_string());
        let time = page.load_ms.map_or(String::new(), |ms| format!("{ms} ms"));
        out.push_str(&format!(
            "  {} {:width$}  {status}  {time}\n",
            if page.ok { "✓" } else { "✗" },
            page.path
        ));
        for problem in &page.problems {
            let mut lines = problem.message.lines();
            out.push_str(&format!(
                "      {}: {}\n",
                problem.kind,
                lines.next().unwrap_or("")
            ));
            for line in lines {
                out.push_str(&format!("        {line}\n"));
            }
        }
    }
    out
}

/// JUnit XML: one test case per page, a failure per page with problems.
pub fn junit(report: &Report) -> String {
    let escape = crate::inject::escape_html;
    let failures = report.pages.iter().filter(|p| !p.ok).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"relive check\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{:.3}\">\n",
        report.pages.len(),
        report.duration_ms as f64 / 1000.0
    );
    for page in &report.pages {
        out.push_str(&format!(
            "  <testcase classname=\"relive.check\" name=\"{}\" time=\"{:.3}\"",
            escape(&page.path),
            page.load_ms.unwrap_or(0) as f64 / 1000.0
        ));
        if page.ok {
            out.push_str("/>\n");
            continue;
        }
        let first = page
            .problems
            .first()
            .map(|p| format!("{}: {}", p.kind, p.message.lines().next().unwrap_or("")))
            .unwrap_or_default();
        let all: Vec<String> = page
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.kind, p.message))
            .collect();
        out.push_str(&format!(
            ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>\n",
            escape(&first),
            escape(&all.join("\n"))
        ));
    }
    out.push_str("</testsuite>\n");
    out
}

/// Prints the report in `format` on standard output.
pub fn print(report: &Report, format: ReportFormat) {
    let text = match format {
        ReportFormat::Table => table(report),
        ReportFormat::Json => {
            serde_json::to_string_pretty(report).expect("the report serializes") + "\n"
        }
        ReportFormat::Junit => junit(report),
    };
    print!("{text}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_a_folder_and_paths() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let cwd = Path::new("/nonexistent-cwd");
        let split = |w: &[&str]| split_targets(&words(w), true, cwd);
        let (dir, paths) = split(&["site", "/", "/a.html"]).unwrap();
        assert_eq!(dir, Some(PathBuf::from("site")));
        assert_eq!(paths, ["/", "/a.html"]);
        assert_eq!(split(&[]).unwrap().1, ["/"]);
        assert!(split(&["a", "b"]).is_err());

        // An absolute folder, as CI gives it (`$GITHUB_WORKSPACE/dist`).
        let site = tempfile::tempdir().unwrap();
        let abs = site.path().to_str().unwrap();
        let (dir, paths) = split(&[abs, "/", "/about.html"]).unwrap();
        assert_eq!(dir.as_deref(), Some(site.path()));
        assert_eq!(paths, ["/", "/about.html"]);
        // Only the first word, only an existing folder, and only when relive serves files.
        assert_eq!(
            split(&["/about.html"]).unwrap(),
            (None, words(&["/about.html"]))
        );
        assert_eq!(split(&["/"]).unwrap(), (None, words(&["/"])));
        assert_eq!(split(&["site", abs]).unwrap().1, [abs]);
        let proxied = split_targets(&words(&[abs]), false, cwd).unwrap();
        assert_eq!(proxied, (None, words(&[abs])));
        // Both a folder here and a page of the folder served by default: asked, both named.
        let error = split_targets(&words(&[abs]), true, Path::new("/"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(&format!("relive check {abs} /"))
                && error.contains(&format!("relive check . {abs}")),
            "{error}"
        );
    }

    #[test]
    fn an_inline_scripts_error_names_the_page_and_line() {
        let page = "http://localhost:4500/index.html";
        let thrown = |url: &str| {
            serde_json::json!({
                "text": "Uncaught",
                "url": url,
                "lineNumber": 2,
                "exception": {"description": "Error: boom\n    at x"},
            })
        };
        assert_eq!(
            exception_text(&thrown(page), page),
            "Error: boom (/index.html:3 (inline script))"
        );
        assert_eq!(
            exception_text(&thrown("http://localhost:4500/js/app.js"), page),
            "Error: boom (/js/app.js:3)"
        );
        assert_eq!(exception_text(&thrown(""), page), "Error: boom");
    }

    #[test]
    fn references_are_the_pages_scripts_stylesheets_and_images() {
        let html = br#"<link rel="stylesheet" href="/css/a.css"><link rel="icon" href="/i.png">
            <script src="app.js"></script><img src="/logo.png"><img src="/logo.png">
            <script src="https://cdn.example.com/x.js"></script>"#;
        assert_eq!(
            references(html),
            [
                "/css/a.css",
                "app.js",
                "/logo.png",
                "https://cdn.example.com/x.js"
            ]
        );
    }

    #[test]
    fn only_same_origin_references_are_fetched() {
        let page = "http://localhost:4500/docs/intro.html";
        assert_eq!(
            local_path(page, "app.js").as_deref(),
            Some("http://localhost:4500/docs/app.js")
        );
        assert_eq!(
            local_path(page, "/css/a.css#x").as_deref(),
            Some("http://localhost:4500/css/a.css")
        );
        assert_eq!(
            local_path(page, "http://localhost:4500/x.png").as_deref(),
            Some("http://localhost:4500/x.png")
        );
        assert_eq!(local_path(page, "https://cdn.example.com/x.js"), None);
        assert_eq!(local_path(page, "//cdn.example.com/x.js"), None);
        assert_eq!(local_path(page, "data:image/png;base64,AA"), None);
        assert_eq!(local_path(page, "/__relive/client.js"), None);
    }

    fn report() -> Report {
        let mut bad = PageReport::new("/bad <1>.html", "http://localhost/bad".into());
        bad.status = Some(200);
        bad.problem(
            "js-error",
            "ReferenceError: boom is not defined (bad.html:3)",
        );
        bad.problem("resource", "/missing.png (404)");
        let mut good = PageReport::new("/", "http://localhost/".into());
        good.status = Some(200);
        good.load_ms = Some(12);
        Report {
            ok: false,
            mode: "browser",
            browser: Some("/usr/bin/chromium".into()),
            duration_ms: 1500,
            pages: vec![good.finish(), bad.finish()],
        }
    }

    #[test]
    fn the_table_names_each_problem() {
        let text = table(&report());
        assert!(text.starts_with("relive check: 2 pages in /usr/bin/chromium, 1 failed\n"));
        assert!(text.contains("  ✓ /              200  12 ms\n"), "{text}");
        assert!(
            text.contains("      resource: /missing.png (404)\n"),
            "{text}"
        );
    }

    #[test]
    fn junit_has_a_case_per_page_and_escapes() {
        let xml = junit(&report());
        assert!(xml.contains("<testsuite name=\"relive check\" tests=\"2\" failures=\"1\""));
        assert!(xml.contains("<testcase classname=\"relive.check\" name=\"/\" time=\"0.012\"/>"));
        assert!(xml.contains("name=\"/bad &lt;1&gt;.html\""), "{xml}");
        assert!(xml.contains(
            "<failure message=\"js-error: ReferenceError: boom is not defined (bad.html:3)\">"
        ));
    }
}
