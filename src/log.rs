//! log: sets up `tracing` for people (`text`: short lines, warnings marked) or machines
//! (`json`: one object per line), and bridges pingora's `log` records into it.
//!
//! Uses: nothing.
//!
//! Must never: print pingora's per-request noise at the default level.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The filter for a verbosity: 0 is the default, negative is `--quiet`. pingora's connection
/// pool logs an error whenever two requests race for one idle upstream connection (it then
/// opens another, which is harmless), so that module stays quiet unless asked with `-v`; so
/// does its listener, which logs every TLS handshake a browser abandons (an untrusted
/// certificate, a closed tab).
pub fn filter(verbosity: i8) -> EnvFilter {
    let directives = match verbosity {
        i8::MIN..=-1 => {
            "warn,pingora_core=error,pingora_core::connectors=off,pingora_core::services::listening=off,pingora_proxy=error"
        }
        0 => {
            "warn,relive=info,pingora_core=error,pingora_core::connectors=off,pingora_core::services::listening=off,pingora_proxy=error"
        }
        1 => "info,relive=debug",
        _ => "trace",
    };
    EnvFilter::try_from_env("RELIVE_LOG").unwrap_or_else(|_| EnvFilter::new(directives))
}

/// Writes the message alone, prefixed with `warning:`/`error:` when it is one.
struct Friendly;

impl<S, N> FormatEvent<S, N> for Friendly
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        match *event.metadata().level() {
            Level::ERROR => write!(writer, "error: ")?,
            Level::WARN => write!(writer, "warning: ")?,
            Level::DEBUG | Level::TRACE => write!(writer, "{}: ", event.metadata().target())?,
            Level::INFO => {}
        }
        let mut message = MessageOnly(String::new());
        event.record(&mut message);
        if message.0.is_empty() {
            ctx.format_fields(writer.by_ref(), event)?;
        } else {
            write!(writer, "{}", message.0)?;
        }
        writeln!(writer)
    }
}

struct MessageOnly(String);

impl tracing::field::Visit for MessageOnly {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// `text` without terminal escape sequences (colours, cursor moves), for pages and JSON logs.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            // CSI: ESC [ parameters… final byte (@ to ~).
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: ESC ] … BEL or ESC \ (links, titles).
            Some(']') => {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {
                chars.next();
            }
        }
    }
    out
}

/// Whether log lines are JSON (set once by [`init`]).
static JSON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// Prints one line another program wrote (the dev server, the build), prefixed with its
/// source. For people the line keeps its colours; in JSON it becomes a record without them.
pub fn output_line(source: &str, line: &str) {
    if JSON.get().copied().unwrap_or(false) {
        tracing::info!(event = "output", source, line = %strip_ansi(line));
    } else {
        use std::io::Write;
        let dim = if colour() { "\u{1b}[2m" } else { "" };
        let reset = if colour() { "\u{1b}[0m" } else { "" };
        let _ = writeln!(std::io::stderr().lock(), "{dim}{source:>5} │{reset} {line}");
    }
}

/// Whether relive's own output may use colour: a terminal, and `NO_COLOR` unset.
pub fn colour() -> bool {
    use std::io::IsTerminal;
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Installs the global subscriber (once; later calls do nothing).
pub fn init(format: LogFormat, verbosity: i8) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(verbosity))
        .with_writer(std::io::stderr);
    let _ = JSON.set(format == LogFormat::Json);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.event_format(Friendly).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_stripped() {
        assert_eq!(
            strip_ansi(
                "  \u{1b}[32m➜\u{1b}[39m  Local:   \u{1b}[36mhttp://localhost:\u{1b}[1m5173\u{1b}[22m/\u{1b}[39m"
            ),
            "  ➜  Local:   http://localhost:5173/"
        );
        assert_eq!(
            strip_ansi("\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{7}"),
            "link"
        );
        assert_eq!(strip_ansi("plain"), "plain");
    }
}
