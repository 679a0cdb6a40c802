//! triggers: everything that makes tabs update, and the one route from a change to the hub.
//!
//! A file change: `watch` (native notifications, or `poll`) debounces a burst into one batch,
//! skipping what `ignore` says; the batch is classified (stylesheet swap, image, reload) and
//! goes to [`start`]'s consumer: with `--build`, `build` runs the command first and passes on
//! only after it succeeds; without, the batch goes on at once. Either way `loop_guard` holds
//! what a page load or the build itself keeps rewriting, and [`Route::publish`] leaves to the
//! dev server's hot reloading what it updates by itself, then publishes the rest. Signals from
//! scripts (`origin::control`) and the dev server's restarts (`upstream`) publish to the hub
//! directly: they name their event themselves.
//!
//! Uses: child, config, hub, log, upstream.
//!
//! Must never: lose the last change of a burst, publish a batch the loop guard held, or
//! reload over a hot update the dev server applies itself.

mod build;
mod ignore;
pub mod loop_guard;
mod poll;
mod route;
mod watch;

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use ignore::{BUILTIN_IGNORES, IgnoreRules};
pub use loop_guard::PageLoads;
pub use route::Route;
pub use watch::{ChangeSet, OnChange, WatchError};

use crate::config::WatchSettings;
use crate::hub::protocol::LoopCause;
use loop_guard::{BUILD_SLACK, CAUSE_SLACK, LoopGuard};

/// Starts watching `watch` (when set) and the task that takes each batch along the route:
/// through `build` first when there is a build command. Returns the tasks to await on
/// shutdown.
pub async fn start(
    watch: Option<&WatchSettings>,
    build: Option<String>,
    route: Route,
    on_change: OnChange,
    shutdown: CancellationToken,
) -> Result<Vec<JoinHandle<()>>, WatchError> {
    let (changes, batches) = mpsc::channel(16);
    let mut tasks = Vec::new();
    match watch {
        Some(settings) => {
            tasks.push(watch::spawn(settings.clone(), changes, on_change, shutdown.clone()).await?)
        }
        // Nothing will send changes: the consumer below finishes on its own.
        None => drop(changes),
    }
    // Polling sees a change up to one interval late: it still counts as caused.
    let seen_late = match watch {
        Some(settings) if settings.poll => settings.poll_interval,
        _ => Duration::ZERO,
    };
    tasks.push(match build {
        Some(command) => tokio::spawn(build::run(
            command,
            batches,
            route,
            BUILD_SLACK + seen_late,
            shutdown,
        )),
        None => tokio::spawn(forward(batches, route, CAUSE_SLACK + seen_late)),
    });
    Ok(tasks)
}

/// Without a build command, each batch goes straight along the route, unless a page load
/// keeps rewriting its files (a reload loop, see `loop_guard`).
async fn forward(mut batches: mpsc::Receiver<ChangeSet>, route: Route, slack: Duration) {
    let mut guard = LoopGuard::for_page_loads();
    while let Some(changes) = batches.recv().await {
        let caused = route.page_loads.explain(changes.first_seen, slack);
        if guard.passes(&route.hub, &changes.files, caused, LoopCause::PageLoad) {
            route.publish(changes.events);
        }
    }
}
