//! A minimal pingora proxy with no relive hooks: every request to its upstream, nothing else.
//! `benches/load.py` runs it beside nginx and relive so relive's rows can be read against the
//! proxy library itself (what pingora costs, and what relive adds to it). Same thread count as
//! relive's front door.
//!
//! `cargo bench --bench bare_pingora -- --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT`
//! (without them it says so and ends, so a plain `cargo bench` passes over it).

use std::net::SocketAddr;

use async_trait::async_trait;
use pingora::prelude::{HttpPeer, ProxyHttp, Result, Session};
use pingora::server::Server;
use pingora::server::configuration::ServerConf;

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn flag(args: &[String], name: &str) -> Option<SocketAddr> {
    let at = args.iter().position(|a| a == name)?;
    args.get(at + 1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(upstream)) = (flag(&args, "--listen"), flag(&args, "--upstream"))
    else {
        println!("bare_pingora: run by benches/load.py (--listen ADDR --upstream ADDR)");
        return;
    };
    let conf = ServerConf {
        threads: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = pingora::proxy::http_proxy_service(&server.configuration, Bare { upstream });
    service.add_tcp(&listen.to_string());
    server.add_service(service);
    server.run_forever();
}
