//! A minimal pingora server with no relive hooks, in one of two roles: a proxy that sends every
//! request to its upstream and does nothing else, or (`--folder`) a server that answers from a
//! folder's files read into memory at start (the best a static server on pingora could do: no
//! file system, no rewriting). `benches/load.py` runs both beside nginx and relive so relive's
//! rows can be read against the library itself (what pingora costs, and what relive adds to it).
//! Same thread count and write buffer as relive's front door.
//!
//! `cargo bench --bench bare_pingora -- --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT`
//! `cargo bench --bench bare_pingora -- --listen 127.0.0.1:PORT --folder DIR`
//! (without them it says so and ends, so a plain `cargo bench` passes over it).

use std::collections::HashMap;
use std::net::SocketAddr;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::listeners::ListenerConfig;
use pingora::prelude::{HttpPeer, ProxyHttp, Result, Session};
use pingora::protocols::l4::stream::L4BufferSettings;
use pingora::server::Server;
use pingora::server::configuration::ServerConf;

struct Bare {
    upstream: Option<SocketAddr>,
    /// `--folder`: each file's path (`/name`), type and bytes.
    files: HashMap<String, (&'static str, Bytes)>,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        if self.upstream.is_some() {
            return Ok(false);
        }
        let (status, kind, body) = match self.files.get(session.req_header().uri.path()) {
            Some((kind, body)) => (200, *kind, body.clone()),
            None => (404, "text/plain", Bytes::from_static(b"not found")),
        };
        let mut head = ResponseHeader::build(status, Some(2))?;
        head.insert_header("content-type", kind)?;
        head.insert_header("content-length", body.len().to_string())?;
        session.write_response_header(Box::new(head), false).await?;
        session.write_response_body(Some(body), true).await?;
        Ok(true)
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        let upstream = self.upstream.expect("proxying has an upstream");
        Ok(Box::new(HttpPeer::new(upstream, false, String::new())))
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1).map(String::as_str)
}

/// The folder's files (not its subfolders), read now.
fn read_folder(dir: &str) -> HashMap<String, (&'static str, Bytes)> {
    let mut files = HashMap::new();
    for entry in std::fs::read_dir(dir)
        .expect("the folder can be read")
        .flatten()
    {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let kind = match path.extension().and_then(|e| e.to_str()) {
            Some("html") => "text/html",
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            _ => "application/octet-stream",
        };
        let name = format!("/{}", entry.file_name().to_string_lossy());
        files.insert(name, (kind, Bytes::from(std::fs::read(&path).unwrap())));
    }
    files
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen: Option<SocketAddr> = flag(&args, "--listen").and_then(|a| a.parse().ok());
    let upstream: Option<SocketAddr> = flag(&args, "--upstream").and_then(|a| a.parse().ok());
    let folder = flag(&args, "--folder");
    let Some(listen) = listen.filter(|_| upstream.is_some() || folder.is_some()) else {
        println!(
            "bare_pingora: run by benches/load.py (--listen ADDR --upstream ADDR | --folder DIR)"
        );
        return;
    };
    let files = folder.map(read_folder).unwrap_or_default();
    let conf = ServerConf {
        threads: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service =
        pingora::proxy::http_proxy_service(&server.configuration, Bare { upstream, files });
    let buffers = L4BufferSettings::default().write(16 * 1024);
    service.add_listener(ListenerConfig::tcp(listen.to_string()).l4_buffer(buffers));
    server.add_service(service);
    server.run_forever();
}
