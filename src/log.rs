//! log: sets up `tracing` for people (`text`: short lines, warnings marked) or machines
//! (`json`: one object per line), and bridges pingora's `log` records into it.
//!
//! Must never: print pingora's per-request noise at the default level.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::FmtContext;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::registry::LookupSpan;

use crate::cli::LogFormat;

/// The filter for a verbosity: 0 is the default, negative is `--quiet`. pingora's connection
/// pool logs an error whenever two requests race for one idle upstream connection (it then
/// opens another, which is harmless), so that module stays quiet unless asked with `-v`.
pub fn filter(verbosity: i8) -> EnvFilter {
    let directives = match verbosity {
        i8::MIN..=-1 => "warn,pingora_core=error,pingora_core::connectors=off,pingora_proxy=error",
        0 => "warn,relive=info,pingora_core=error,pingora_core::connectors=off,pingora_proxy=error",
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

/// Installs the global subscriber (once; later calls do nothing).
pub fn init(format: LogFormat, verbosity: i8) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(verbosity))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.event_format(Friendly).try_init(),
    };
}
