//! shutdown: the one way relive stops — a cancelled token — and what cancels it (Ctrl-C,
//! SIGTERM), and how a run's end maps to an exit code.
//!
//! Must never: leave a signal unanswered: a second part waiting on a signal of its own would
//! keep relive running after the person asked it to stop.

use tokio_util::sync::CancellationToken;

/// How a run ended, for the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad flags or config: exit 2.
    Usage(anyhow::Error),
    /// Anything else: exit 1.
    Runtime(anyhow::Error),
}

/// Cancels `shutdown` on Ctrl-C or SIGTERM; returns whether a signal (not another cause)
/// ended the run.
pub async fn stop_on_signal(shutdown: CancellationToken) -> bool {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        shutdown.cancelled().await;
        return false;
    };
    let signalled = tokio::select! {
        _ = interrupt.recv() => true,
        _ = terminate.recv() => true,
        _ = shutdown.cancelled() => false,
    };
    shutdown.cancel();
    signalled
}
