//! config: `relive.toml` and the one resolved, validated [`Config`] the rest of relive reads.
//!
//! Two layers: serde structs that mirror the file exactly (unknown keys are errors), and
//! [`Config`], merged as defaults < file < environment < flags. `config/relive.toml` in the
//! repository documents every key.
//!
//! Uses: log, tls.
//!
//! Must never: let a bad value through unnamed; every error names the file, line and key (or
//! the flag) and says what would be right.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub mod cli;
mod values;

pub use values::{DevCommand, UpstreamUrl, WatchSettings};

use crate::log::LogFormat;
use crate::tls::CertSource;
use cli::Cli;

/// The file looked for in the working directory when `--config` is not given.
pub const DEFAULT_FILE: &str = "relive.toml";
pub const DEFAULT_PORT: u16 = 4500;
const DEFAULT_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const DEFAULT_DEBOUNCE_MS: u64 = 20;
const DEFAULT_POLL_INTERVAL_MS: u64 = 500;
const DEFAULT_HEARTBEAT_SECS: u64 = 30;

/// `relive.toml`, exactly as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub root: Option<PathBuf>,
    pub proxy: Option<String>,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub watch: WatchSection,
    #[serde(default)]
    pub client: ClientSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub build: BuildSection,
    #[serde(default)]
    pub dev: DevSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevSection {
    /// The dev server command, run by `sh -c`.
    pub command: Option<String>,
    pub restart: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    pub command: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub upstream_timeout_secs: Option<u64>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub strict_port: Option<bool>,
    pub allowed_hosts: Option<Vec<String>>,
    pub https: Option<bool>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub upstream_insecure: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchSection {
    pub enabled: Option<bool>,
    pub paths: Option<Vec<PathBuf>>,
    pub ignore: Option<Vec<String>>,
    pub poll: Option<bool>,
    pub poll_interval_ms: Option<u64>,
    pub debounce_ms: Option<u64>,
    pub defer_to_hmr: Option<bool>,
    pub morph: Option<bool>,
    pub highlight: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSection {
    pub heartbeat_secs: Option<u64>,
    pub sync: Option<bool>,
    pub badge: Option<bool>,
    pub debug: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    pub format: Option<LogFormat>,
}

/// What relive is in front of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Serve a folder.
    Static { root: PathBuf },
    /// Front a dev server: at a known address, or (with `dev`) wherever the command says.
    Proxy { upstream: Option<UpstreamUrl> },
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub mode: Mode,
    pub host: IpAddr,
    pub port: u16,
    pub strict_port: bool,
    /// Host names allowed besides localhost and IP literals.
    pub allowed_hosts: Vec<String>,
    /// A shell command run after each batch of changes, before tabs reload.
    pub build: Option<String>,
    /// The dev server relive runs (`relive -- CMD` or `dev.command`).
    pub dev: Option<DevCommand>,
    /// Leave module and stylesheet changes to a dev server that hot-reloads them itself.
    pub defer_to_hmr: bool,
    /// Update pages in place when their HTML changes, rather than reload them.
    pub morph: bool,
    /// Outline what a morph changed.
    pub highlight: bool,
    /// How long the upstream may go without sending a byte before the request is given up.
    pub upstream_timeout: Duration,
    /// Serve the front door over HTTPS, with this certificate.
    pub https: Option<CertSource>,
    /// Accept any certificate from an HTTPS upstream.
    pub upstream_insecure: bool,
    /// `None` when nothing is watched.
    pub watch: Option<WatchSettings>,
    pub heartbeat: Duration,
    /// Show the client's status badge.
    pub badge: bool,
    /// Tabs mirror each other's scrolling, clicks, typing and navigation.
    pub sync: bool,
    /// Log every message in the browser console.
    pub client_debug: bool,
    pub log_format: LogFormat,
    /// The file the settings came from, if any.
    pub file: Option<PathBuf>,
}

/// A configuration error, naming where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}, line {line}, key `{key}`: {message}")]
    Parse {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    #[error("{file}: {message}")]
    File { file: PathBuf, message: String },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// Reads and parses a config file.
pub fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        file: path.to_path_buf(),
        source,
    })?;
    parse_file(path, &text)
}

/// Parses config `text` read from `path`.
pub fn parse_file(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|error| {
        let message = error.message().trim().to_owned();
        match error.span() {
            Some(span) => {
                let (line, key) = locate(text, span.start);
                ConfigError::Parse {
                    file: path.to_path_buf(),
                    line,
                    key,
                    message,
                }
            }
            None => ConfigError::File {
                file: path.to_path_buf(),
                message,
            },
        }
    })
}

/// The 1-based line of byte `offset` in `text`, and the dotted key written on that line
/// (`server.port`), found from the line itself and the nearest `[table]` above it.
fn locate(text: &str, offset: usize) -> (usize, String) {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_number = text[..offset].matches('\n').count() + 1;
    let line = text[line_start..].lines().next().unwrap_or("");
    let key = line
        .split_once('=')
        .map_or(line, |(key, _)| key)
        .trim()
        .trim_matches(['[', ']'])
        .trim()
        .to_owned();
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(['[', ']']).trim().to_owned());
    let dotted = match table {
        Some(table) if line.contains('=') => format!("{table}.{key}"),
        _ => key,
    };
    (line_number, dotted)
}

fn invalid(origin: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_owned(),
        message: message.into(),
    }
}

/// Resolves the configuration from the command line, the config file it names (or
/// `./relive.toml`), and the defaults.
pub fn resolve(cli: &Cli, cwd: &Path) -> Result<Config, ConfigError> {
    let (file_path, file) = match &cli.config {
        Some(path) => (Some(cwd.join(path)), Some(load_file(&cwd.join(path))?)),
        None => {
            let default = cwd.join(DEFAULT_FILE);
            if default.is_file() {
                (Some(default.clone()), Some(load_file(&default)?))
            } else {
                (None, None)
            }
        }
    };
    let file = file.unwrap_or_default();
    let file_dir = file_path
        .as_deref()
        .and_then(Path::parent)
        .unwrap_or(cwd)
        .to_path_buf();
    let file_origin = file_path
        .as_ref()
        .map_or_else(|| DEFAULT_FILE.to_owned(), |p| p.display().to_string());

    let dev = resolve_dev(cli, &file, cwd, &file_dir);
    if cli.restart && dev.is_none() {
        return Err(invalid(
            "--restart",
            "it restarts the dev server relive runs; give the command after -- (relive --restart -- npm run dev)",
        ));
    }
    let mode = resolve_mode(cli, &file, cwd, &file_dir, &file_origin, dev.is_some())?;
    let dev = dev.map(|dev| DevCommand {
        fixed_address: matches!(mode, Mode::Proxy { upstream: Some(_) }),
        ..dev
    });
    let host = resolve_host(cli, &file, &file_origin)?;
    let port = cli.port.or(file.server.port).unwrap_or(DEFAULT_PORT);
    let strict_port = cli.strict_port || file.server.strict_port.unwrap_or(false);
    let heartbeat_secs = file.client.heartbeat_secs.unwrap_or(DEFAULT_HEARTBEAT_SECS);
    if heartbeat_secs == 0 || heartbeat_secs > 3600 {
        return Err(invalid(
            &format!("{file_origin}, key `client.heartbeat_secs`"),
            format!("{heartbeat_secs} is out of range; use 1 to 3600 seconds"),
        ));
    }
    let watch = resolve_watch(cli, &file, &mode, cwd, &file_dir, &file_origin)?;
    let upstream_timeout_secs = file.server.upstream_timeout_secs.unwrap_or(300);
    if !(1..=3600).contains(&upstream_timeout_secs) {
        return Err(invalid(
            &format!("{file_origin}, key `server.upstream_timeout_secs`"),
            format!("{upstream_timeout_secs} is out of range; use 1 to 3600 seconds"),
        ));
    }
    let https = resolve_https(cli, &file, cwd, &file_dir, &file_origin)?;
    Ok(Config {
        mode,
        host,
        port,
        strict_port,
        allowed_hosts: file
            .server
            .allowed_hosts
            .iter()
            .flatten()
            .chain(&cli.allowed_host)
            .cloned()
            .collect(),
        build: cli
            .build
            .clone()
            .or(file.build.command.clone())
            .filter(|c| !c.trim().is_empty()),
        dev,
        defer_to_hmr: file.watch.defer_to_hmr.unwrap_or(true),
        morph: !cli.no_morph && file.watch.morph.unwrap_or(true),
        highlight: file.watch.highlight.unwrap_or(true),
        upstream_timeout: Duration::from_secs(upstream_timeout_secs),
        https,
        upstream_insecure: cli.upstream_insecure || file.server.upstream_insecure.unwrap_or(false),
        watch,
        heartbeat: Duration::from_secs(heartbeat_secs),
        badge: file.client.badge.unwrap_or(true),
        sync: cli.sync || file.client.sync.unwrap_or(false),
        client_debug: file.client.debug.unwrap_or(false),
        log_format: cli.log_format.or(file.log.format).unwrap_or_default(),
        file: file_path,
    })
}

/// The dev server command: the words after `--`, else the config file's `dev.command`
/// (which runs in the config file's folder).
fn resolve_dev(cli: &Cli, file: &FileConfig, cwd: &Path, file_dir: &Path) -> Option<DevCommand> {
    let restart = cli.restart || file.dev.restart.unwrap_or(false);
    if !cli.run.is_empty() {
        return Some(DevCommand::from_args(
            cli.run.clone(),
            restart,
            cwd.to_path_buf(),
        ));
    }
    let line = file
        .dev
        .command
        .as_deref()
        .filter(|c| !c.trim().is_empty())?;
    if cli.dir.is_some() {
        return None;
    }
    Some(DevCommand::from_shell(
        line,
        restart,
        file_dir.to_path_buf(),
    ))
}

fn resolve_mode(
    cli: &Cli,
    file: &FileConfig,
    cwd: &Path,
    file_dir: &Path,
    file_origin: &str,
    runs_dev_server: bool,
) -> Result<Mode, ConfigError> {
    if cli.dir.is_some() && cli.proxy.is_some() {
        return Err(invalid(
            "command line",
            "give either a folder to serve or --proxy URL, not both",
        ));
    }
    if cli.dir.is_some() && !cli.run.is_empty() {
        return Err(invalid(
            "command line",
            "give either a folder to serve or a dev server command after --, not both",
        ));
    }
    let proxy = match (&cli.proxy, &cli.dir, &file.proxy) {
        (Some(url), _, _) => Some((url.as_str(), "--proxy".to_owned())),
        (None, None, Some(url)) => Some((url.as_str(), format!("{file_origin}, key `proxy`"))),
        _ => None,
    };
    if let Some((url, origin)) = proxy {
        let upstream = UpstreamUrl::parse(url).map_err(|message| invalid(&origin, message))?;
        return Ok(Mode::Proxy {
            upstream: Some(upstream),
        });
    }
    if runs_dev_server {
        return Ok(Mode::Proxy { upstream: None });
    }
    let (root, origin) = match (&cli.dir, &file.root) {
        (Some(dir), _) => (cwd.join(dir).components().collect(), "DIR".to_owned()),
        (None, Some(root)) => (file_dir.join(root), format!("{file_origin}, key `root`")),
        (None, None) => (cwd.to_path_buf(), "the current folder".to_owned()),
    };
    if !root.is_dir() {
        return Err(invalid(
            &origin,
            format!("{} is not a folder", root.display()),
        ));
    }
    Ok(Mode::Static { root })
}

/// `--https` / `--cert` / `--key` (or `server.https`, `server.cert`, `server.key`): a
/// certificate pair given on the command line wins over one in the file, and either implies
/// HTTPS.
fn resolve_https(
    cli: &Cli,
    file: &FileConfig,
    cwd: &Path,
    file_dir: &Path,
    file_origin: &str,
) -> Result<Option<CertSource>, ConfigError> {
    let pair = match (&cli.cert, &cli.key) {
        (Some(cert), Some(key)) => Some((cwd.join(cert), cwd.join(key))),
        (Some(_), None) | (None, Some(_)) => {
            return Err(invalid(
                if cli.cert.is_some() {
                    "--cert"
                } else {
                    "--key"
                },
                "give both --cert FILE and --key FILE (PEM), or neither for relive's own certificate",
            ));
        }
        (None, None) => match (&file.server.cert, &file.server.key) {
            (Some(cert), Some(key)) => Some((file_dir.join(cert), file_dir.join(key))),
            (Some(_), None) | (None, Some(_)) => {
                return Err(invalid(
                    &format!("{file_origin}, key `server.cert`/`server.key`"),
                    "give both server.cert and server.key, or neither for relive's own certificate",
                ));
            }
            (None, None) => None,
        },
    };
    let https = cli.https || pair.is_some() || file.server.https.unwrap_or(false);
    let source = match pair {
        Some((cert, key)) => CertSource::Files { cert, key },
        None => CertSource::Local,
    };
    Ok(https.then_some(source))
}

fn resolve_host(cli: &Cli, file: &FileConfig, file_origin: &str) -> Result<IpAddr, ConfigError> {
    let (host, origin) = match (&cli.host, &file.server.host) {
        (Some(host), _) => (host.as_str(), "--host".to_owned()),
        (None, Some(host)) => (host.as_str(), format!("{file_origin}, key `server.host`")),
        (None, None) => return Ok(DEFAULT_HOST),
    };
    match host {
        "localhost" => Ok(DEFAULT_HOST),
        _ => host.trim_matches(['[', ']']).parse().map_err(|_| {
            invalid(
                &origin,
                format!("`{host}` is not an IP address (try 127.0.0.1, ::1 or 0.0.0.0)"),
            )
        }),
    }
}

fn resolve_watch(
    cli: &Cli,
    file: &FileConfig,
    mode: &Mode,
    cwd: &Path,
    file_dir: &Path,
    file_origin: &str,
) -> Result<Option<WatchSettings>, ConfigError> {
    if cli.no_watch || file.watch.enabled == Some(false) {
        return Ok(None);
    }
    let mut paths = Vec::new();
    if let Mode::Static { root } = mode {
        paths.push(root.clone());
    }
    paths.extend(file.watch.paths.iter().flatten().map(|p| file_dir.join(p)));
    paths.extend(cli.watch.iter().map(|p| cwd.join(p)));
    for path in &paths {
        if !path.exists() {
            return Err(invalid(
                "watch",
                format!("{} does not exist", path.display()),
            ));
        }
    }
    if paths.is_empty() {
        return Ok(None);
    }
    let debounce_ms = file.watch.debounce_ms.unwrap_or(DEFAULT_DEBOUNCE_MS);
    if debounce_ms > 10_000 {
        return Err(invalid(
            &format!("{file_origin}, key `watch.debounce_ms`"),
            format!("{debounce_ms} is out of range; use 0 to 10000 milliseconds"),
        ));
    }
    let poll_interval_ms = file
        .watch
        .poll_interval_ms
        .unwrap_or(DEFAULT_POLL_INTERVAL_MS);
    if !(50..=60_000).contains(&poll_interval_ms) {
        return Err(invalid(
            &format!("{file_origin}, key `watch.poll_interval_ms`"),
            format!("{poll_interval_ms} is out of range; use 50 to 60000 milliseconds"),
        ));
    }
    let mut ignore = file.watch.ignore.clone().unwrap_or_default();
    ignore.extend(cli.ignore.iter().cloned());
    Ok(Some(WatchSettings {
        paths,
        ignore,
        poll: cli.poll || file.watch.poll.unwrap_or(false),
        poll_interval: Duration::from_millis(poll_interval_ms),
        debounce: Duration::from_millis(debounce_ms),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig, ConfigError> {
        parse_file(Path::new("relive.toml"), text)
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let error = parse("[server]\nport = 4000\nprot = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("relive.toml, line 3, key `server.prot`: unknown field `prot`"),
            "{error}"
        );
    }

    #[test]
    fn bad_value_names_file_line_and_key() {
        let error = parse("root = \"site\"\n\n[server]\nport = \"eighty\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("relive.toml, line 4, key `server.port`:"),
            "{error}"
        );
        let error = parse("[server]\nport = 70000\n").unwrap_err().to_string();
        assert!(error.contains("line 2, key `server.port`"), "{error}");
    }

    #[test]
    fn unknown_top_level_key_is_named() {
        let error = parse("porxy = \"x\"\n").unwrap_err().to_string();
        assert!(error.contains("line 1, key `porxy`"), "{error}");
    }

    #[test]
    fn the_reference_config_parses() {
        let text = include_str!("../../config/relive.toml");
        let parsed = parse(text).expect("config/relive.toml must stay valid");
        assert_eq!(parsed.server.port, Some(DEFAULT_PORT));
    }

    #[test]
    fn upstream_urls_parse() {
        let ok = |s: &str, host: &str, port: u16| {
            assert_eq!(
                UpstreamUrl::parse(s),
                Ok(UpstreamUrl {
                    tls: false,
                    host: host.into(),
                    port
                }),
                "{s}"
            )
        };
        ok("3000", "localhost", 3000);
        ok("localhost:5173", "localhost", 5173);
        ok("http://127.0.0.1:8000/", "127.0.0.1", 8000);
        ok("http://[::1]:8000", "::1", 8000);
        ok("http://example.localhost", "example.localhost", 80);
        let https = UpstreamUrl::parse("https://localhost:3000").unwrap();
        assert!(https.tls);
        assert_eq!(https.to_string(), "https://localhost:3000");
        assert_eq!(UpstreamUrl::parse("https://dev.test").unwrap().port, 443);
        assert!(UpstreamUrl::parse("http://localhost:3000/app").is_err());
        assert!(UpstreamUrl::parse("ftp://x").is_err());
        assert!(UpstreamUrl::parse("localhost:port").is_err());
    }

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("site")).unwrap();
        std::fs::write(
            dir.path().join("relive.toml"),
            "root = \"site\"\n[server]\nport = 4100\nstrict_port = true\n",
        )
        .unwrap();
        let from_file = resolve(&Cli::default(), dir.path()).unwrap();
        assert_eq!(from_file.port, 4100);
        assert!(from_file.strict_port);
        assert_eq!(
            from_file.mode,
            Mode::Static {
                root: dir.path().join("site")
            }
        );
        let cli = Cli {
            port: Some(4200),
            proxy: Some("3000".into()),
            ..Cli::default()
        };
        let flagged = resolve(&cli, dir.path()).unwrap();
        assert_eq!(flagged.port, 4200);
        assert!(matches!(flagged.mode, Mode::Proxy { .. }));
        assert!(
            flagged.watch.is_none(),
            "proxy mode watches nothing unless asked"
        );
    }

    #[test]
    fn folder_and_proxy_together_is_an_error() {
        let cli = Cli {
            dir: Some(".".into()),
            proxy: Some("3000".into()),
            ..Cli::default()
        };
        assert!(resolve(&cli, Path::new(".")).is_err());
    }
}
