//! relive: a live-reload reverse proxy. One public port (pingora) in front of a dev server or
//! a folder; HTML pages get one `<script>` tag while they stream; every tab reloads when
//! something changes.
//!
//! How a request flows: `front_door` (pingora) refuses what must not pass (`front_door::rules`),
//! sends `/__relive/*` — and in static mode everything — to `origin`, the rest to the
//! upstream, and rewrites the responses `inject::policy` calls pages with `inject`.
//! How a change flows: `triggers` (watch → build → loop guard → route) → `hub` →
//! `origin::ws` → the browser client (`client/relive.js`).
//! The design in full, with both walks: `docs/architecture.md`.
//!
//! Parts, lowest first (each part's door says what it uses; `tests/architecture.rs` checks it):
//! - `log`: tracing set-up (text or JSON) with pingora's logs bridged in.
//! - `tls`: the front door's certificate (the user's or the local CA's), upstream TLS.
//! - `child`: runs a command in its own process group, reads its output, stops the group.
//! - `hub`: event ring and broadcast with replay; the wire `protocol`; the `/__relive/` `routes`.
//! - `inject`: pure: the streaming injector, the page `policy`, decoding, HTML escaping.
//! - `config`: `relive.toml`, the command line and the resolved `Config`.
//! - `upstream`: the dev server's address and status; runs `relive -- CMD`; finds its URL.
//! - `triggers`: file watching, `--build`, the loop guard, and the route from a change to the hub.
//! - `origin`: relive's own endpoints (client, socket, event stream, notify, status, dashboard,
//!   static files, its pages).
//! - `front_door`: the pingora proxy, its request rules, answers, page rewrite and tunnels.
//! - `app`: starts every part on one shutdown token and reports the URL.
//! - `check`: `relive check`, in headless Chromium or over HTTP.
//! - `notify`: `relive notify`.
#![forbid(unsafe_code)]

pub mod app;
pub mod check;
pub mod child;
pub mod config;
pub mod front_door;
pub mod hub;
pub mod inject;
pub mod log;
pub mod notify;
pub mod origin;
pub mod tls;
pub mod triggers;
pub mod upstream;

use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

/// Documented exit codes.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const INTERRUPTED: u8 = 130;
}

/// Runs the `relive` command with parsed arguments; returns the process exit code.
pub fn main_with(cli: config::cli::Cli) -> ExitCode {
    use clap::CommandFactory;
    match &cli.command {
        Some(config::cli::Command::Completions { shell }) => {
            let mut command = config::cli::Cli::command();
            clap_complete::generate(*shell, &mut command, "relive", &mut std::io::stdout());
            return ExitCode::from(exit::OK);
        }
        Some(config::cli::Command::Man) => {
            let page = clap_mangen::Man::new(config::cli::Cli::command());
            return match page.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::from(exit::OK),
                Err(error) => {
                    eprintln!("relive: cannot write the manual page: {error}");
                    ExitCode::from(exit::FAILURE)
                }
            };
        }
        _ => {}
    }
    if let Some(config::cli::Command::Notify(args)) = &cli.command {
        let cwd = std::env::current_dir().unwrap_or_default();
        return match notify::run(args, &cwd) {
            Ok(done) => {
                eprintln!("relive: {done}");
                ExitCode::from(exit::OK)
            }
            Err(error) => {
                eprintln!("relive: {error:#}");
                ExitCode::from(exit::FAILURE)
            }
        };
    }
    if let Some(config::cli::Command::Check(args)) = &cli.command {
        let cwd = std::env::current_dir().unwrap_or_default();
        return match check::run(args, &cwd) {
            Ok(report) => {
                check::print(&report, args.format);
                ExitCode::from(if report.ok { exit::OK } else { exit::FAILURE })
            }
            Err(failure) => failed(failure),
        };
    }
    match run_cli(cli) {
        Ok(interrupted) => ExitCode::from(if interrupted {
            exit::INTERRUPTED
        } else {
            exit::OK
        }),
        Err(failure) => failed(failure),
    }
}

/// Says why relive could not do its job; returns the exit code for it.
fn failed(failure: app::Failure) -> ExitCode {
    let (error, code) = match failure {
        app::Failure::Usage(error) => (error, exit::USAGE),
        app::Failure::Runtime(error) => (error, exit::FAILURE),
    };
    // The error and its causes, each said once (most messages already name their cause).
    let mut text = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    eprintln!("relive: {text}");
    ExitCode::from(code)
}

/// Resolves the config, picks the port, and runs until Ctrl-C or SIGTERM. Returns whether
/// it was interrupted.
fn run_cli(cli: config::cli::Cli) -> Result<bool, app::Failure> {
    let cwd = std::env::current_dir().map_err(|e| {
        app::Failure::Runtime(anyhow::anyhow!("cannot read the current folder: {e}"))
    })?;
    let config = config::resolve(&cli, &cwd).map_err(|e| app::Failure::Usage(e.into()))?;
    let verbosity = if cli.quiet {
        -1
    } else {
        cli.verbose.min(2) as i8
    };
    log::init(config.log_format, verbosity);
    let addr = app::listen::choose(config.host, config.port, config.strict_port)
        .map_err(|e| app::Failure::Usage(e.into()))?;
    if config.port != 0 && addr.port() != config.port {
        tracing::info!(
            "port {} is in use; using {} instead",
            config.port,
            addr.port()
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .thread_name("relive")
        .build()
        .map_err(|e| {
            app::Failure::Runtime(anyhow::anyhow!("cannot start the async runtime: {e}"))
        })?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let interrupted = tokio::spawn(app::stop_on_signal(shutdown.clone()));
        let print_token = cli.print_token;
        let result = app::run(config, addr, shutdown.clone(), |listening| {
            if print_token {
                println!("{}", listening.control_token);
            }
        })
        .await;
        shutdown.cancel();
        let interrupted = interrupted.await.unwrap_or(false);
        result.map(|()| interrupted).map_err(|e| match e {
            // A certificate or key that cannot be used is bad input, like a bad config.
            app::RunError::Tls(_) => app::Failure::Usage(e.into()),
            _ => app::Failure::Runtime(e.into()),
        })
    })
}
