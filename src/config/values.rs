//! values: the settings that carry rules of their own — the upstream's address, the dev server
//! command, what to watch — as the rest of relive reads them once resolved.
//!
//! Must never: hold a value that was not checked; the parsers here say what is wrong and
//! what would be right.

use std::path::PathBuf;
use std::time::Duration;

/// The dev server to front: `http://HOST:PORT`, nothing more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamUrl {
    /// `https://`: relive speaks TLS to it.
    pub tls: bool,
    pub host: String,
    pub port: u16,
}

impl UpstreamUrl {
    /// Accepts `http://host:port[/]`, `https://host:port[/]`, `host:port` or a bare port
    /// (meaning `localhost`).
    pub fn parse(input: &str) -> Result<UpstreamUrl, String> {
        let input = input.trim();
        if let Ok(port) = input.parse::<u16>() {
            return Ok(UpstreamUrl {
                tls: false,
                host: "localhost".into(),
                port,
            });
        }
        let (tls, rest) = match input.split_once("://") {
            Some(("http", rest)) => (false, rest),
            Some(("https", rest)) => (true, rest),
            Some((scheme, _)) => {
                return Err(format!(
                    "`{input}`: unsupported scheme `{scheme}`; use http:// or https://"
                ));
            }
            None => (false, input),
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if !(path.is_empty() || path == "/") {
            return Err(format!(
                "`{input}`: give only the dev server's address (no path); relive forwards every \
                 path as it is"
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| format!("`{input}`: `{port}` is not a port number"))?;
                (host, port)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("`{input}`: the host is missing"));
        }
        Ok(UpstreamUrl {
            tls,
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The dev server command and how to run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCommand {
    /// The program and its arguments (`["sh", "-c", "…"]` for a command from the config file).
    pub argv: Vec<String>,
    /// The words to recognise the framework and port by.
    pub words: Vec<String>,
    /// As the user wrote it.
    pub display: String,
    /// Start it again when it exits.
    pub restart: bool,
    /// The address was given with `--proxy`: nothing to discover.
    pub fixed_address: bool,
    /// Where it runs.
    pub cwd: PathBuf,
}

impl DevCommand {
    /// From the words after `--`, run as they are.
    pub fn from_args(args: Vec<String>, restart: bool, cwd: PathBuf) -> DevCommand {
        DevCommand {
            display: display(&args),
            words: args.clone(),
            argv: args,
            restart,
            fixed_address: false,
            cwd,
        }
    }

    /// From a shell command line (the config file's `dev.command`), run by `sh -c`.
    pub fn from_shell(line: &str, restart: bool, cwd: PathBuf) -> DevCommand {
        DevCommand {
            argv: vec!["sh".into(), "-c".into(), line.into()],
            words: line.split_whitespace().map(str::to_owned).collect(),
            display: line.to_owned(),
            restart,
            fixed_address: false,
            cwd,
        }
    }
}

/// Words joined for people, quoted where a shell would need it.
fn display(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@+,%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Watch settings, resolved from flags and config.
#[derive(Debug, Clone)]
pub struct WatchSettings {
    /// Directories (or files) to watch.
    pub paths: Vec<PathBuf>,
    /// Extra ignore patterns, `.gitignore` syntax.
    pub ignore: Vec<String>,
    /// Poll instead of using the OS's notifications.
    pub poll: bool,
    pub poll_interval: Duration,
    /// How long the files must be quiet before a batch goes out.
    pub debounce: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_display_as_typed() {
        let args = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(display(&args(&["npm", "run", "dev"])), "npm run dev");
        assert_eq!(
            display(&args(&["sh", "-c", "echo it's"])),
            r"sh -c 'echo it'\''s'"
        );
    }
}
