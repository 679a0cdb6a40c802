//! build: runs the user's build command (`--build CMD`) after each batch of changes and before
//! any reload. Its output streams to the terminal and to every tab (`build_progress`); success
//! sends `build_completed` and then the batch's events; failure sends `build_error` with the
//! last 20 lines and no reload.
//!
//! Must never: run two builds at once (changes during a build cause exactly one more run after
//! it), or leave a build's processes behind when relive stops (the build gets its own process
//! group, which is terminated).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tokio::process::Command;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::loop_guard::LoopGuard;
use super::route::Route;
use super::watch::ChangeSet;
use crate::child::{Child, Report};
use crate::hub::Hub;
use crate::hub::protocol::{Event, LoopCause};

/// How long a build gets to stop when relive stops, before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How many output lines a failure shows.
pub const ERROR_LINES: usize = 20;

/// Merges the events of two batches: any reload wins; otherwise the stylesheet and image paths
/// of both are swapped together.
pub fn merge(first: Vec<Event>, second: Vec<Event>) -> Vec<Event> {
    let all: Vec<Event> = first.into_iter().chain(second).collect();
    if let Some(reload) = all.iter().find(|e| matches!(e, Event::Reload { .. })) {
        return vec![reload.clone()];
    }
    let mut css: Vec<String> = Vec::new();
    let mut images: Vec<String> = Vec::new();
    for event in all {
        match event {
            Event::Css { paths } => css.extend(paths),
            Event::Image { paths } => images.extend(paths),
            _ => {}
        }
    }
    css.sort();
    css.dedup();
    images.sort();
    images.dedup();
    let mut merged = Vec::new();
    if !css.is_empty() {
        merged.push(Event::Css { paths: css });
    }
    if !images.is_empty() {
        merged.push(Event::Image { paths: images });
    }
    merged
}

/// Merges two change sets: their events (see [`merge`]) and files; seen when the first was.
fn merge_changes(first: ChangeSet, second: ChangeSet) -> ChangeSet {
    let mut files = first.files;
    files.extend(second.files);
    files.sort();
    files.dedup();
    ChangeSet {
        events: merge(first.events, second.events),
        files,
        first_seen: first.first_seen.min(second.first_seen),
    }
}

/// Runs builds for batches from `batches` until `shutdown`. A batch whose first change came
/// while the previous build ran (or `slack` after it) was caused by that build; the same files
/// caused so several builds in a row are the build writing into a watched folder, and stop
/// starting builds (see `loop_guard`).
pub async fn run(
    command: String,
    mut batches: mpsc::Receiver<ChangeSet>,
    route: Route,
    slack: Duration,
    shutdown: CancellationToken,
) {
    let hub = &route.hub;
    let mut guard = LoopGuard::for_builds();
    let mut last_build: Option<(Instant, Instant)> = None;
    loop {
        let mut changes = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = batches.recv() => match next {
                Some(changes) => changes,
                None => return,
            },
        };
        loop {
            while let Ok(more) = batches.try_recv() {
                changes = merge_changes(changes, more);
            }
            let caused = last_build.is_some_and(|(start, end)| {
                start <= changes.first_seen && changes.first_seen <= end + slack
            });
            if !guard.passes(hub, &changes.files, caused, LoopCause::Build) {
                break;
            }
            let started = Instant::now();
            let build = build_once(&command, hub, &shutdown);
            tokio::pin!(build);
            let mut during: Option<ChangeSet> = None;
            let mut open = true;
            let succeeded = loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    succeeded = &mut build => break succeeded,
                    more = batches.recv(), if open => match more {
                        Some(more) => {
                            tracing::info!(
                                "build   changed during the build: {}; one more run follows",
                                describe(&more.events)
                            );
                            during = Some(match during.take() {
                                Some(earlier) => merge_changes(earlier, more),
                                None => more,
                            });
                        }
                        None => open = false,
                    },
                }
            };
            last_build = Some((started, Instant::now()));
            if succeeded {
                route.publish(std::mem::take(&mut changes.events));
            }
            // Changes made while the build ran: exactly one more run for all of them.
            match during {
                Some(more) => changes = more,
                None => break,
            }
        }
    }
}

/// The files behind a batch's events, for the terminal.
fn describe(events: &[Event]) -> String {
    let paths: Vec<&str> = events
        .iter()
        .flat_map(|event| match event {
            Event::Reload { paths, .. } | Event::Css { paths } | Event::Image { paths } => {
                paths.iter().map(|p| p.trim_start_matches('/')).collect()
            }
            _ => Vec::new(),
        })
        .collect();
    if paths.is_empty() {
        "files".to_owned()
    } else {
        paths.join(", ")
    }
}

/// Runs the command once; returns whether it succeeded. Publishes its output and outcome.
async fn build_once(command: &str, hub: &Hub, shutdown: &CancellationToken) -> bool {
    let started = Instant::now();
    tracing::info!("build   $ {command}");
    hub.broadcast(Event::BuildProgress {
        line: format!("$ {command}"),
    });
    let mut process = Command::new("sh");
    process.arg("-c").arg(command);
    let mut child = match Child::spawn(process) {
        Ok(child) => child,
        Err(error) => {
            let line = format!("cannot run the build command: {error}");
            tracing::warn!("{line}");
            hub.publish(Event::BuildError {
                code: None,
                lines: vec![line],
                duration_ms: 0,
            });
            return false;
        }
    };
    let mut last = VecDeque::with_capacity(ERROR_LINES);
    let status = loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                child.stop(STOP_GRACE, |line| crate::log::output_line("build", line)).await;
                return false;
            }
            report = child.next() => match report {
                Some(Report::Line(line)) => record(line, &mut last, hub),
                Some(Report::Exited(status)) => break status,
                None => return false,
            },
        }
    };
    // Whatever the build started in the background goes with it.
    child.end_group();
    let duration_ms = started.elapsed().as_millis() as u64;
    match status {
        Ok(status) if status.success() => {
            tracing::info!("build   ✓ done in {duration_ms} ms");
            hub.publish(Event::BuildCompleted { duration_ms });
            true
        }
        other => {
            let code = other.ok().and_then(|s| s.code());
            tracing::warn!(
                "build failed{} after {duration_ms} ms; tabs show the error",
                code.map(|c| format!(" (exit {c})")).unwrap_or_default()
            );
            hub.publish(Event::BuildError {
                code,
                lines: last.into_iter().collect(),
                duration_ms,
            });
            false
        }
    }
}

/// Prints and broadcasts one output line, keeping the last [`ERROR_LINES`].
fn record(line: String, last: &mut VecDeque<String>, hub: &Hub) {
    crate::log::output_line("build", &line);
    if last.len() == ERROR_LINES {
        last.pop_front();
    }
    last.push_back(line.clone());
    hub.broadcast(Event::BuildProgress { line });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_batches_keep_a_reload_or_join_swaps() {
        let css = |p: &str| Event::Css {
            paths: vec![p.into()],
        };
        let reload = Event::Reload {
            reason: "x".into(),
            paths: vec![],
        };
        assert_eq!(
            merge(vec![css("/a.css")], vec![reload.clone()]),
            vec![reload]
        );
        assert_eq!(
            merge(vec![css("/a.css")], vec![css("/b.css")]),
            vec![Event::Css {
                paths: vec!["/a.css".into(), "/b.css".into()]
            }]
        );
        let two = Event::Css {
            paths: vec!["/a.css".into(), "/b.css".into()],
        };
        assert_eq!(
            merge(vec![two.clone()], vec![css("/a.css")]),
            vec![two],
            "a path changed in both is swapped once"
        );
    }
}
