//! cli: the command line, as clap parses it. Every value here is optional so that `config`
//! can tell a flag the user gave from a default (flags override the file, which overrides
//! the defaults; `RELIVE_*` environment variables count as flags).
//!
//! Must never: hold defaults or validation; those live in `config`.

use std::path::PathBuf;

use crate::log::LogFormat;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// relive: put it in front of a dev server or a folder, and every tab reloads itself when
/// something changes.
#[derive(Debug, Parser, Default)]
#[command(
    name = "relive",
    version,
    about,
    after_help = "Examples:\n  relive                       serve the current folder\n  relive examples/site         serve a folder\n  relive --proxy localhost:5173   front a running dev server\n  relive --proxy 3000 --watch templates   also reload when templates change\n  relive -- npm run dev        run the dev server and front it\n  relive --restart -- python3 -m http.server 8765"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Folder to serve (static mode). Defaults to the current folder unless --proxy is given.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Front a running dev server instead of serving a folder: a URL, host:port, or port.
    #[arg(long, value_name = "URL", env = "RELIVE_PROXY")]
    pub proxy: Option<String>,

    /// Address to listen on.
    #[arg(long, value_name = "ADDR", env = "RELIVE_HOST")]
    pub host: Option<String>,

    /// Port to listen on; if taken, the next free one of the following 100 is used. 0 picks
    /// any free port.
    #[arg(long, short, value_name = "N", env = "RELIVE_PORT")]
    pub port: Option<u16>,

    /// Fail instead of trying another port when the port is taken.
    #[arg(long)]
    pub strict_port: bool,

    /// Serve over HTTPS, with a certificate from relive's local certificate authority (made on
    /// first use; relive prints how to trust it) unless --cert and --key are given.
    #[arg(long, env = "RELIVE_HTTPS")]
    pub https: bool,

    /// The HTTPS certificate (PEM, leaf first; for example from mkcert). Implies --https.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// The private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Accept any certificate from an https:// dev server (self-signed ones are the norm).
    #[arg(long)]
    pub upstream_insecure: bool,

    /// Also answer requests for this host name (repeatable; `.example.test` allows its
    /// subdomains too). localhost, *.localhost and IP addresses are always allowed.
    #[arg(long, value_name = "NAME")]
    pub allowed_host: Vec<String>,

    /// Also watch this path (repeatable). In static mode DIR is always watched.
    #[arg(long, short, value_name = "PATH")]
    pub watch: Vec<PathBuf>,

    /// Ignore changes matching this pattern (.gitignore syntax; repeatable).
    #[arg(long, short, value_name = "GLOB")]
    pub ignore: Vec<String>,

    /// Do not watch any files (reloads then come only from other triggers).
    #[arg(long)]
    pub no_watch: bool,

    /// Reload pages when their HTML changes instead of updating them in place.
    #[arg(long)]
    pub no_morph: bool,

    /// Mirror scrolling, clicks, typing and navigation between every tab showing the site.
    #[arg(long)]
    pub sync: bool,

    /// Run this shell command after each batch of changes; tabs reload when it succeeds and
    /// show its errors when it fails.
    #[arg(long, value_name = "CMD", env = "RELIVE_BUILD")]
    pub build: Option<String>,

    /// Poll for changes instead of using OS notifications (network mounts, WSL, containers).
    #[arg(long)]
    pub poll: bool,

    /// Read settings from this file instead of ./relive.toml.
    #[arg(long, short, value_name = "FILE", env = "RELIVE_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log format: `text` for people, `json` (one object per line) for machines.
    #[arg(long, value_enum, value_name = "FORMAT", env = "RELIVE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// More detail (-v: debug, -vv: trace, including the proxy library's own logs).
    #[arg(long, short, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Only warnings and errors.
    #[arg(long, short)]
    pub quiet: bool,

    /// Start the dev server again (with backoff) when the command after `--` exits.
    #[arg(long)]
    pub restart: bool,

    /// The dev server command to run and front (`relive -- npm run dev`). Its address comes
    /// from --proxy, else the first local URL it prints, else its --port argument or the
    /// framework's default port.
    #[arg(last = true, value_name = "CMD")]
    pub run: Vec<String>,

    /// Print the control token for `POST /__relive/notify` on standard output at start.
    #[arg(long)]
    pub print_token: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tell a running relive that something changed (from a build script, a hook, a terminal).
    Notify(NotifyArgs),
    /// Smoke-check a site for CI: start relive (and the dev server), load each page, report
    /// errors, exit non-zero on any failure.
    Check(CheckArgs),
    /// Print the shell completion script for SHELL (bash, zsh, fish, powershell, elvish).
    #[command(
        after_help = "Install:\n  bash: relive completions bash > ~/.local/share/bash-completion/completions/relive\n  zsh:  relive completions zsh > ~/.zfunc/_relive   (with fpath+=~/.zfunc before compinit)\n  fish: relive completions fish > ~/.config/fish/completions/relive.fish\n  PowerShell: relive completions powershell >> $PROFILE"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print relive's manual page (roff): relive man > ~/.local/share/man/man1/relive.1
    Man,
}

/// `relive check [DIR | --proxy URL | -- CMD…] [PATH…]`.
#[derive(Debug, Args, Default)]
#[command(
    after_help = "Examples:\n  relive check examples/site / /about.html\n  relive check \"$PWD/dist\" /\n  relive check --proxy 8000 /\n  relive check --format junit -- npm run dev > report.xml"
)]
pub struct CheckArgs {
    /// The folder to serve (relative, or an absolute path to an existing folder as the first
    /// word) and the pages to load (`/`, `/about.html`; default `/`).
    #[arg(value_name = "DIR | PATH")]
    pub targets: Vec<String>,

    /// Check a running dev server instead of a folder.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,

    /// Seconds to wait for the site to be ready and for each page to load.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,

    /// The Chromium (or Chrome) to load pages in; default: the first found on PATH.
    #[arg(long, value_name = "PATH", conflicts_with = "no_browser")]
    pub browser: Option<PathBuf>,

    /// Check over HTTP only (page status and its same-origin scripts, stylesheets, images).
    #[arg(long)]
    pub no_browser: bool,

    /// Accept any certificate from an https:// dev server (self-signed ones are the norm).
    #[arg(long)]
    pub upstream_insecure: bool,

    /// Report format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,

    /// Read settings from this file instead of ./relive.toml.
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The dev server command to run and check (`relive check -- npm run dev`).
    #[arg(last = true, value_name = "CMD")]
    pub run: Vec<String>,
}

/// How `relive check` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ReportFormat {
    /// A table for people.
    #[default]
    Table,
    /// One JSON object.
    Json,
    /// JUnit XML, for CI systems' test views.
    Junit,
}

/// `relive notify`.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    #[command(subcommand)]
    pub signal: Option<SignalArg>,

    /// The relive to notify (default: the one started in this folder or above, else the
    /// newest running one).
    #[arg(long, value_name = "URL", requires = "token", global = true)]
    pub url: Option<String>,

    /// Its control token (see `relive --print-token`).
    #[arg(long, value_name = "TOKEN", env = "RELIVE_TOKEN", global = true)]
    pub token: Option<String>,
}

/// What `relive notify` sends (default: `reload`).
#[derive(Debug, Clone, Subcommand)]
pub enum SignalArg {
    /// Reload every tab.
    Reload {
        /// Shown in the terminal and the browser console.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Swap these stylesheets (URL paths such as /css/site.css) without a reload.
    Css {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Refresh these images (URL paths) without a reload.
    Image {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<String>,
    },
    /// Show a short message in every tab.
    Message {
        #[arg(required = true, value_name = "TEXT")]
        text: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "relive",
            "site",
            "--port",
            "0",
            "--strict-port",
            "-w",
            "a",
            "-w",
            "b",
            "-i",
            "*.log",
        ])
        .unwrap();
        assert_eq!(cli.dir, Some(PathBuf::from("site")));
        assert_eq!(cli.port, Some(0));
        assert!(cli.strict_port);
        assert_eq!(cli.watch, vec![PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(cli.ignore, vec!["*.log".to_owned()]);
    }

    #[test]
    fn a_command_follows_the_double_dash() {
        let cli = Cli::try_parse_from([
            "relive",
            "--restart",
            "--",
            "npm",
            "run",
            "dev",
            "--port",
            "4000",
        ])
        .unwrap();
        assert_eq!(cli.run, ["npm", "run", "dev", "--port", "4000"]);
        assert!(cli.restart);
        assert_eq!(cli.dir, None);
    }

    #[test]
    fn check_parses_folder_paths_and_a_command() {
        let cli = Cli::try_parse_from([
            "relive",
            "check",
            "site",
            "/",
            "/about.html",
            "--format",
            "junit",
            "--",
            "npm",
            "run",
            "dev",
        ])
        .unwrap();
        let Some(Command::Check(args)) = cli.command else {
            panic!()
        };
        assert_eq!(args.targets, ["site", "/", "/about.html"]);
        assert_eq!(args.format, ReportFormat::Junit);
        assert_eq!(args.run, ["npm", "run", "dev"]);
        assert_eq!(args.timeout, 60);
    }

    #[test]
    fn notify_parses_with_a_default_signal() {
        let cli = Cli::try_parse_from(["relive", "notify"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Notify(NotifyArgs { signal: None, .. }))
        ));
        let cli = Cli::try_parse_from(["relive", "notify", "css", "/a.css", "/b.css"]).unwrap();
        let Some(Command::Notify(args)) = cli.command else {
            panic!()
        };
        assert!(matches!(args.signal, Some(SignalArg::Css { paths }) if paths.len() == 2));
        assert!(Cli::try_parse_from(["relive", "notify", "css"]).is_err());
    }
}
