//! app: starts every part, reports where relive is listening, and stops them all together.
//!
//! [`run`] takes a resolved [`Config`], the address chosen for the front door and one
//! [`CancellationToken`] that every task (front door, origin, sockets, watcher) listens to, so
//! tests can run relive in-process as well as the binary does.
//!
//! Uses: config, front_door, hub, inject, log, origin, tls, triggers, upstream.
//!
//! Must never: leave a task or thread running after shutdown, or report "listening" before
//! the front door really accepts connections.

pub mod lan;
pub mod listen;
mod shutdown;
pub mod state;

pub use shutdown::{Failure, stop_on_signal};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignal, ShutdownSignalWatch};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Mode};
use crate::front_door::FrontDoor;
use crate::hub::Hub;
use crate::inject::ClientTag;
use crate::origin::static_files::StaticFiles;
use crate::origin::ws::SocketContext;
use crate::origin::{self, Origin};
use crate::triggers::{self, PageLoads, Route};
use crate::upstream::Upstream;

/// How long the front door may take to start accepting connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// Why relive could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start relive's internal server: {0}")]
    Origin(std::io::Error),
    #[error("cannot serve {path}: {source}")]
    Folder {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot resolve the upstream host `{host}`: {detail}")]
    Resolve { host: String, detail: String },
    #[error("the front door did not start listening on {0} (is another program taking the port?)")]
    FrontDoor(SocketAddr),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Watch(#[from] triggers::WatchError),
}

/// Where relive listens, once it does.
#[derive(Debug, Clone)]
pub struct Listening {
    pub addr: SocketAddr,
    pub url: String,
    /// SHA-256 of the front door's certificate (hex), when it serves HTTPS.
    pub cert_sha256: Option<String>,
    /// Bearer token for `POST /__relive/notify`.
    pub control_token: String,
}

/// A random lowercase hex string of `bytes` random bytes.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// The address to connect to for a bound one: a wildcard bind is reached through loopback.
fn reachable(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

/// The URL to open for a bound address.
pub fn browse_url(addr: SocketAddr, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    match reachable(addr.ip()) {
        IpAddr::V4(ip) if ip.is_loopback() => format!("{scheme}://localhost:{}/", addr.port()),
        IpAddr::V6(ip) => format!("{scheme}://[{ip}]:{}/", addr.port()),
        IpAddr::V4(ip) => format!("{scheme}://{ip}:{}/", addr.port()),
    }
}

/// Tells pingora to stop at once when relive's shutdown token is cancelled.
struct StopOnCancel(CancellationToken);

#[async_trait::async_trait]
impl ShutdownSignalWatch for StopOnCancel {
    async fn recv(&self) -> ShutdownSignal {
        self.0.cancelled().await;
        ShutdownSignal::FastShutdown
    }
}

/// Runs relive until `shutdown` is cancelled. `on_listening` is called once the front door
/// accepts connections.
pub async fn run(
    config: Config,
    addr: SocketAddr,
    shutdown: CancellationToken,
    on_listening: impl FnOnce(&Listening),
) -> Result<(), RunError> {
    let token = random_hex(16);
    let control_token = random_hex(16);
    let hub = Arc::new(Hub::new(random_hex(8)));
    let tag = ClientTag {
        badge: config.badge,
        highlight: config.highlight,
        debug: config.client_debug,
        session: hub.session_id().to_owned(),
        ..ClientTag::new(token.clone())
    };
    let page_loads = Arc::new(PageLoads::default());
    let Serving {
        files,
        upstream,
        shown,
    } = what_to_serve(&config).await?;

    let origin_listener = origin::bind().await.map_err(RunError::Origin)?;
    let origin_addr = origin_listener.local_addr().map_err(RunError::Origin)?;
    let origin = Arc::new(Origin {
        socket: Arc::new(SocketContext {
            hub: hub.clone(),
            clients: Default::default(),
            token,
            heartbeat: config.heartbeat,
            shutdown: shutdown.clone(),
            upstream: upstream.clone(),
            posted_errors: Default::default(),
            sync: config.sync.into(),
        }),
        tag: tag.clone(),
        control_token: control_token.clone(),
        files: files.clone(),
        serving: shown.clone(),
        watching: watching_status(config.watch.as_ref()),
        started: Instant::now(),
    });
    let origin_task = tokio::spawn(origin::serve(origin_listener, origin, shutdown.clone()));

    // The machine's network addresses, when relive is reachable on them: printed as URLs, and
    // named in a locally issued certificate.
    let lan = if config.host.is_loopback() {
        Vec::new()
    } else {
        crate::app::lan::addresses(config.host)
    };
    let cert = front_door_cert(&config, &lan)?;
    let front_door = FrontDoor {
        upstream: upstream.clone(),
        files: files.clone(),
        origin: origin_addr,
        tag,
        hub: hub.clone(),
        page_loads: page_loads.clone(),
        allowed_hosts: config.allowed_hosts.clone(),
        csp_reported: Default::default(),
        rewritten: Default::default(),
        upstream_timeout: config.upstream_timeout,
        https: cert.is_some(),
        upstream_insecure: config.upstream_insecure,
        tls_reported: Default::default(),
        upstream_tls: Default::default(),
    };
    let pingora = start_front_door(
        front_door,
        addr,
        cert.as_ref().map(|c| c.key.clone()),
        shutdown.clone(),
    );
    if let Err(error) = wait_until_accepting(addr, &pingora).await {
        shutdown.cancel();
        return Err(error);
    }

    let route = Route {
        hub: hub.clone(),
        defer_to: upstream.clone().filter(|_| config.defer_to_hmr),
        page_loads,
        morph: config.morph,
    };
    let forget_files = files.clone();
    let trigger_tasks = triggers::start(
        config.watch.as_ref(),
        config.build.clone(),
        route,
        Arc::new(move || forget_files.iter().for_each(|files| files.forget())),
        shutdown.clone(),
    )
    .await?;

    let config_task = config.file.clone().map(|file| {
        // Taken now, before relive says it is listening: an edit made the moment it is up must
        // count as a change, not as the starting point.
        let started_with = std::fs::read(&file).ok();
        tokio::spawn(watch_config_file(file, started_with, shutdown.clone()))
    });

    let listening = Listening {
        addr,
        url: browse_url(addr, cert.is_some()),
        cert_sha256: cert
            .as_ref()
            .and_then(|c| c.key.end_entity_cert().ok().map(crate::tls::sha256_hex)),
        control_token,
    };
    let _state_file = publish_state(&listening);
    on_listening(&listening);
    report(&config, &listening, &shown, cert.as_ref(), &lan);
    let health_task = upstream.map(|upstream| {
        tokio::spawn(follow_upstream(
            config.dev.clone(),
            upstream,
            hub,
            shutdown.clone(),
        ))
    });

    shutdown.cancelled().await;
    for task in [Some(origin_task), health_task, config_task]
        .into_iter()
        .flatten()
        .chain(trigger_tasks)
    {
        let _ = task.await;
    }
    let _ = tokio::task::spawn_blocking(move || pingora.join()).await;
    Ok(())
}

/// What relive serves: a folder through its own origin, or an upstream; and how to name it.
struct Serving {
    files: Option<Arc<StaticFiles>>,
    upstream: Option<Arc<Upstream>>,
    shown: String,
}

async fn what_to_serve(config: &Config) -> Result<Serving, RunError> {
    match &config.mode {
        Mode::Static { root } => {
            let files = StaticFiles::new(root).map_err(|source| RunError::Folder {
                path: root.clone(),
                source,
            })?;
            Ok(Serving {
                shown: files.root().display().to_string(),
                files: Some(Arc::new(files)),
                upstream: None,
            })
        }
        Mode::Proxy { upstream } => {
            let (url, addrs) = match upstream {
                Some(url) => {
                    let addrs = crate::upstream::resolve(&url.host, url.port)
                        .await
                        .map_err(|detail| RunError::Resolve {
                            host: url.host.clone(),
                            detail,
                        })?;
                    (Some(url.clone()), addrs)
                }
                None => (None, Vec::new()),
            };
            let command = config.dev.as_ref().map(|dev| dev.display.clone());
            let upstream = Arc::new(Upstream::new(command, url, addrs));
            Ok(Serving {
                shown: upstream.display(),
                files: None,
                upstream: Some(upstream),
            })
        }
    }
}

/// The `watching` part of `/__relive/status`.
fn watching_status(watch: Option<&crate::config::WatchSettings>) -> serde_json::Value {
    watch.map_or(serde_json::Value::Null, |w| {
        serde_json::json!({
            "paths": w.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "ignore": w.ignore,
            "builtin_ignore": crate::triggers::BUILTIN_IGNORES,
            "poll": w.poll,
            "debounce_ms": w.debounce.as_millis() as u64,
        })
    })
}

/// The front door's certificate when it serves HTTPS, covering every name it is reached by.
fn front_door_cert(
    config: &Config,
    lan: &[IpAddr],
) -> Result<Option<crate::tls::FrontDoorCert>, RunError> {
    let Some(source) = &config.https else {
        return Ok(None);
    };
    let names = crate::tls::names_to_cover(config.host, lan, &config.allowed_hosts);
    Ok(Some(crate::tls::front_door_cert(
        source,
        &names,
        crate::tls::data_dir().as_deref(),
    )?))
}

/// Follows the upstream's health: runs and restarts the dev server relive started, or watches
/// one started elsewhere.
async fn follow_upstream(
    dev: Option<crate::config::DevCommand>,
    upstream: Arc<Upstream>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
) {
    match dev {
        Some(dev) => crate::upstream::devserver::supervise(dev, upstream, hub, shutdown).await,
        None => crate::upstream::follow(upstream, hub, shutdown).await,
    }
}

/// Says when relive.toml changes while relive runs: what is wrong with it (file, line, key),
/// or that relive reads it at start and needs a restart to apply it.
async fn watch_config_file(
    file: std::path::PathBuf,
    started_with: Option<Vec<u8>>,
    shutdown: CancellationToken,
) {
    let mut last = started_with;
    // Read every few seconds: often enough for a warning, rare enough for an idle relive.
    let mut tick = tokio::time::interval(Duration::from_secs(3));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = std::fs::read(&file).ok();
        if now == last {
            continue;
        }
        last = now;
        match crate::config::load_file(&file) {
            Err(error) => {
                tracing::warn!("{error}; relive keeps running with the settings it started with")
            }
            Ok(_) => tracing::warn!(
                "{} changed; relive reads it at start, so restart relive to apply it",
                file.display()
            ),
        }
    }
}

/// Writes the state file `relive notify` looks for; it is removed when the guard drops.
fn publish_state(listening: &Listening) -> Option<crate::app::state::Guard> {
    let dir = crate::app::state::dir()?;
    let instance = crate::app::state::Instance {
        pid: std::process::id(),
        url: listening.url.clone(),
        port: listening.addr.port(),
        control_token: listening.control_token.clone(),
        cwd: std::env::current_dir().unwrap_or_default(),
        started: crate::hub::protocol::now_ms(),
        cert_sha256: listening.cert_sha256.clone(),
    };
    match crate::app::state::write(&dir, &instance) {
        Ok(path) => Some(crate::app::state::Guard(path)),
        Err(error) => {
            tracing::warn!(
                "cannot write the state file in {} ({error}); `relive notify` needs --url and --token",
                dir.display()
            );
            None
        }
    }
}

/// The front door's listener. Its write buffer holds a response head and a small body (a page's
/// first chunk, a stylesheet) so they leave in one write; pingora's default (one segment,
/// 1,460 bytes) sends the head alone and the body after it.
fn listener(addr: SocketAddr) -> pingora::listeners::ListenerConfig {
    let buffers = pingora::protocols::l4::stream::L4BufferSettings::default().write(16 * 1024);
    pingora::listeners::ListenerConfig::tcp(addr.to_string()).l4_buffer(buffers)
}

/// Runs pingora on its own thread (it builds its own runtimes) until `shutdown`.
fn start_front_door(
    front_door: FrontDoor,
    addr: SocketAddr,
    tls: Option<Arc<rustls::sign::CertifiedKey>>,
    shutdown: CancellationToken,
) -> std::thread::JoinHandle<()> {
    let conf = ServerConf {
        threads: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        // A dev tool stops at once: no grace period, no draining.
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(0),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    let mut service = pingora::proxy::http_proxy_service(&server.configuration, front_door);
    match tls {
        Some(key) => {
            let mut settings = pingora::listeners::tls::TlsSettings::intermediate("", "")
                .expect("TLS settings without files are always made");
            settings.set_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key)));
            // HTTP/2 where the browser offers it; WebSockets still open over HTTP/1.1 (relive
            // does not offer extended CONNECT, so browsers use a separate connection for them).
            settings.enable_h2();
            service.add_listener(listener(addr).tls(settings));
        }
        None => service.add_listener(listener(addr)),
    }
    server.add_service(service);
    server.bootstrap();
    std::thread::Builder::new()
        .name("relive-front-door".into())
        .spawn(move || {
            server.run(RunArgs {
                shutdown_signal: Box::new(StopOnCancel(shutdown)),
            })
        })
        .expect("spawning a thread succeeds")
}

/// Waits until the front door accepts a connection, or pingora's thread gave up.
async fn wait_until_accepting(
    addr: SocketAddr,
    pingora: &std::thread::JoinHandle<()>,
) -> Result<(), RunError> {
    let probe = SocketAddr::new(reachable(addr.ip()), addr.port());
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while Instant::now() < deadline && !pingora.is_finished() {
        if tokio::net::TcpStream::connect(probe).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(RunError::FrontDoor(addr))
}

/// Says what relive serves, where to open it, what it watches, and what needs the person's eye.
fn report(
    config: &Config,
    listening: &Listening,
    serving: &str,
    cert: Option<&crate::tls::FrontDoorCert>,
    lan: &[IpAddr],
) {
    let what = match &config.mode {
        Mode::Static { .. } => format!("serving {serving}"),
        Mode::Proxy { .. } => match &config.dev {
            Some(dev) => format!("running `{}`", dev.display),
            None => format!("proxying {serving}"),
        },
    };
    tracing::info!(
        event = "listening",
        url = %listening.url,
        port = listening.addr.port(),
        "relive {} {what}\n  ➜  {}",
        env!("CARGO_PKG_VERSION"),
        listening.url
    );
    report_watching(config.watch.as_ref());
    if let Some(cert) = cert {
        report_authority(cert);
    }
    if config.upstream_insecure && matches!(config.mode, Mode::Proxy { .. }) {
        tracing::warn!(
            "  --upstream-insecure: accepting any certificate from an https:// dev server"
        );
    }
    if !config.host.is_loopback() {
        report_network(config, listening.addr.port(), cert.is_some(), lan);
    }
}

fn report_watching(watch: Option<&crate::config::WatchSettings>) {
    let Some(settings) = watch else {
        tracing::info!("  not watching files (add --watch PATH to reload on changes)");
        return;
    };
    let paths: Vec<String> = settings
        .paths
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    tracing::info!(
        "  watching {}{}",
        paths.join(", "),
        if settings.poll { " (polling)" } else { "" }
    );
}

/// Names the local certificate authority, and how to trust it when it is new.
fn report_authority(cert: &crate::tls::FrontDoorCert) {
    let Some(authority) = cert.authority.as_deref() else {
        return;
    };
    let trust = crate::tls::trust_command(authority);
    if cert.new_authority {
        tracing::warn!(
            event = "https_authority",
            authority = %authority.display(),
            "  made a local certificate authority for HTTPS: {}\n  \
             browsers show a warning until you trust it once (relive never does this itself):\n    {trust}",
            authority.display()
        );
    } else {
        tracing::info!(
            event = "https_authority",
            authority = %authority.display(),
            "  HTTPS certificate from relive's local authority {} (to trust it: {trust})",
            authority.display()
        );
    }
}

/// The URLs other machines use, a QR code for phones when a person is looking, and a warning.
fn report_network(config: &Config, port: u16, https: bool, lan: &[IpAddr]) {
    for ip in lan {
        let url = crate::app::lan::url(*ip, port, https);
        tracing::info!(event = "network_url", url = %url, "  ➜  on your network: {url}");
    }
    if let Some(first) = lan.first()
        && config.log_format == crate::log::LogFormat::Text
        && crate::log::colour()
        && let Some(code) = crate::app::lan::qr(&crate::app::lan::url(*first, port, https))
    {
        eprintln!("{code}");
    }
    tracing::warn!(
        "listening on {}: other machines on your network can open this site",
        config.host
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browse_url_uses_a_reachable_host() {
        assert_eq!(
            browse_url("127.0.0.1:4500".parse().unwrap(), false),
            "http://localhost:4500/"
        );
        assert_eq!(
            browse_url("0.0.0.0:4500".parse().unwrap(), false),
            "http://localhost:4500/"
        );
        assert_eq!(
            browse_url("[::]:4500".parse().unwrap(), false),
            "http://[::1]:4500/"
        );
        assert_eq!(
            browse_url("192.168.1.5:80".parse().unwrap(), false),
            "http://192.168.1.5:80/"
        );
        assert_eq!(
            browse_url("127.0.0.1:4500".parse().unwrap(), true),
            "https://localhost:4500/"
        );
    }

    #[test]
    fn tokens_are_random_hex() {
        let a = random_hex(16);
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, random_hex(16));
    }
}
