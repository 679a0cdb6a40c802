//! A small in-test upstream ("dev server") written on raw TCP, so tests control framing
//! exactly: Content-Length, chunked with tokens split across chunks, gzip, HTTP/1.0, a
//! WebSocket echo, and a log of every request target it received.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const PAGE: &str =
    "<!doctype html><html><head><title>up</title></head><body><p>upstream page</p></body></html>";
pub const SCRIPT: &str = "document.write('</body>'); // a script that mentions </body>\n";

pub struct Upstream {
    pub addr: SocketAddr,
    /// Every request target received, byte for byte.
    pub targets: Arc<Mutex<Vec<String>>>,
    /// Every request head received.
    pub heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Upstream {
    pub async fn start() -> Upstream {
        Upstream::start_on(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(addr: SocketAddr) -> Upstream {
        let listener = TcpListener::bind(addr).await.expect("upstream binds");
        let addr = listener.local_addr().unwrap();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (t, h) = (targets.clone(), heads.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (t, h) = (t.clone(), h.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, t, h).await;
                });
            }
        });
        Upstream {
            addr,
            targets,
            heads,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Bytes that are not UTF-8 and not text, to prove passthrough is byte-exact.
pub fn binary() -> Vec<u8> {
    (0..=255u8).cycle().take(70_000).collect()
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(None);
        }
        head.push(byte[0]);
    }
    Ok(Some(String::from_utf8_lossy(&head).into_owned()))
}

async fn peek_head(stream: &TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = vec![0u8; 8192];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(end) = buf[..n].windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(Some(String::from_utf8_lossy(&buf[..end]).into_owned()));
        }
        tokio::task::yield_now().await;
    }
}

async fn serve(
    mut stream: TcpStream,
    targets: Arc<Mutex<Vec<String>>>,
    heads: Arc<Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    loop {
        let Some(peeked) = peek_head(&stream).await? else {
            return Ok(());
        };
        let target = peeked.split(' ').nth(1).unwrap_or("").to_owned();
        if target.starts_with("/ws") {
            targets.lock().unwrap().push(target);
            heads.lock().unwrap().push(peeked);
            let mut ws = tokio_tungstenite::accept_async(stream)
                .await
                .map_err(std::io::Error::other)?;
            while let Some(Ok(message)) = ws.next().await {
                if message.is_text() {
                    let reply = format!("echo: {}", message.into_text().unwrap());
                    ws.send(reply.into()).await.map_err(std::io::Error::other)?;
                }
            }
            return Ok(());
        }
        let Some(head) = read_head(&mut stream).await? else {
            return Ok(());
        };
        targets.lock().unwrap().push(target.clone());
        heads.lock().unwrap().push(head.clone());
        // Read the body as its framing says, like a correct server: a request hidden in a body
        // is then only seen here if relive framed the body differently than it was sent.
        if !skip_body(&mut stream, &head).await? {
            return Ok(());
        }
        let head_request = head.starts_with("HEAD ");
        let path = target.split('?').next().unwrap_or("");
        let keep_going = respond(&mut stream, path, &target, head_request).await?;
        if !keep_going {
            return Ok(());
        }
    }
}

/// Reads and drops a request body framed by `head` (Content-Length or chunked). Returns false
/// when the connection ended or the framing was unreadable.
async fn skip_body(stream: &mut TcpStream, head: &str) -> std::io::Result<bool> {
    let lower = head.to_ascii_lowercase();
    let header = |name: &str| {
        lower.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            (n.trim() == name).then(|| v.trim().to_owned())
        })
    };
    let mut byte = [0u8; 1];
    if header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                if stream.read(&mut byte).await? == 0 {
                    return Ok(false);
                }
                line.push(byte[0]);
            }
            let text = String::from_utf8_lossy(&line[..line.len() - 2]).into_owned();
            let Ok(size) = usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16)
            else {
                return Ok(false);
            };
            let mut data = vec![0u8; size + 2];
            stream.read_exact(&mut data).await?;
            if size == 0 {
                // `data` held the final CRLF (no trailers are sent by relive's tests).
                return Ok(true);
            }
        }
    }
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut data = vec![0u8; length];
        stream.read_exact(&mut data).await?;
    }
    Ok(true)
}

async fn fixed(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    head_request: bool,
) -> std::io::Result<bool> {
    let mut out = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_request {
        bytes.extend_from_slice(body);
    }
    stream.write_all(&bytes).await?;
    Ok(true)
}

async fn respond(
    stream: &mut TcpStream,
    path: &str,
    target: &str,
    head_request: bool,
) -> std::io::Result<bool> {
    const HTML: (&str, &str) = ("Content-Type", "text/html; charset=utf-8");
    match path {
        "/" | "/plain" => {
            fixed(
                stream,
                "200 OK",
                &[HTML, ("ETag", "\"v1\"")],
                PAGE.as_bytes(),
                head_request,
            )
            .await
        }
        "/chunked" => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            for piece in ["<html><body><p>chunked</p></bo", "dy></html>"] {
                stream
                    .write_all(format!("{:x}\r\n{piece}\r\n", piece.len()).as_bytes())
                    .await?;
                stream.flush().await?;
            }
            stream.write_all(b"0\r\n\r\n").await?;
            Ok(true)
        }
        "/gzip" => {
            let body = gzip(PAGE.as_bytes());
            fixed(
                stream,
                "200 OK",
                &[HTML, ("Content-Encoding", "gzip")],
                &body,
                head_request,
            )
            .await
        }
        "/http10" => {
            stream
                .write_all(
                    format!("HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n{PAGE}").as_bytes(),
                )
                .await?;
            Ok(false)
        }
        "/app.js" => {
            fixed(
                stream,
                "200 OK",
                &[("Content-Type", "text/javascript")],
                SCRIPT.as_bytes(),
                head_request,
            )
            .await
        }
        "/gzip.js" => {
            let body = gzip(SCRIPT.as_bytes());
            fixed(
                stream,
                "200 OK",
                &[
                    ("Content-Type", "text/javascript"),
                    ("Content-Encoding", "gzip"),
                ],
                &body,
                head_request,
            )
            .await
        }
        "/data.bin" => {
            fixed(
                stream,
                "200 OK",
                &[("Content-Type", "application/octet-stream")],
                &binary(),
                head_request,
            )
            .await
        }
        "/fragment" => fixed(stream, "200 OK", &[HTML], b"<li>partial</li>", head_request).await,
        "/not-modified" => {
            stream
                .write_all(b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n")
                .await?;
            Ok(true)
        }
        "/partial" => {
            let part = &PAGE.as_bytes()[..20];
            let range = format!("bytes 0-19/{}", PAGE.len());
            let headers = [HTML, ("Content-Range", range.as_str())];
            fixed(stream, "206 Partial Content", &headers, part, head_request).await
        }
        "/redirect-self" => {
            // As a dev server configured with its own URL writes redirects.
            let own = format!("http://{}/plain?from=redirect", stream.local_addr()?);
            fixed(
                stream,
                "302 Found",
                &[("Location", own.as_str())],
                b"",
                head_request,
            )
            .await
        }
        "/redirect-away" => {
            let away = ("Location", "https://example.com/login");
            fixed(stream, "302 Found", &[away], b"", head_request).await
        }
        "/cookies" => {
            let headers = [
                HTML,
                ("Set-Cookie", "a=1; Path=/; HttpOnly"),
                ("Set-Cookie", "b=2, c=3; Path=/"),
            ];
            fixed(stream, "200 OK", &headers, PAGE.as_bytes(), head_request).await
        }
        "/cors" => {
            let headers = [
                ("Content-Type", "application/json"),
                ("Access-Control-Allow-Origin", "https://app.example"),
                ("Access-Control-Allow-Credentials", "true"),
                ("Vary", "Origin"),
            ];
            fixed(stream, "200 OK", &headers, b"{}", head_request).await
        }
        "/csp" => {
            let headers = [HTML, ("Content-Security-Policy", "default-src 'none'")];
            fixed(stream, "200 OK", &headers, PAGE.as_bytes(), head_request).await
        }
        "/events" => {
            // One event now, the next only much later: a proxy that buffers shows nothing.
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await?;
            let event = "data: first\n\n";
            stream
                .write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes())
                .await?;
            stream.flush().await?;
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            Ok(false)
        }
        "/big" => {
            let megabytes: usize = target
                .split("mb=")
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(20);
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\nc\r\n<html><body>\r\n")
                .await?;
            let line = "<p>".to_owned() + &"x".repeat(1019) + "</p>\n";
            let chunk = line.repeat(64);
            for _ in 0..(megabytes * 1024 * 1024 / chunk.len()) {
                stream
                    .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
                    .await?;
            }
            let tail = "</body></html>";
            stream
                .write_all(format!("{:x}\r\n{tail}\r\n0\r\n\r\n", tail.len()).as_bytes())
                .await?;
            Ok(true)
        }
        _ => {
            fixed(
                stream,
                "200 OK",
                &[("Content-Type", "text/plain")],
                target.as_bytes(),
                head_request,
            )
            .await
        }
    }
}

/// The recording upstream with relive in front of it (`--proxy`, in a temp folder of its own).
pub async fn relive_in_front() -> (Upstream, tempfile::TempDir, super::Relive) {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let relive = super::Relive::start(&["--proxy", &upstream.url()], dir.path());
    (upstream, dir, relive)
}
