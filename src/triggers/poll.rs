//! poll: finds changes by comparing metadata snapshots of the watched trees, for file systems
//! that send no notifications (network mounts, WSL, some containers) and as the fallback when
//! native watching fails.
//!
//! notify's own poller compares modification times in whole seconds, so a second save within
//! the same second is lost; this one compares nanosecond times, sizes and inodes.
//!
//! Must never: descend into ignored trees or follow symlinks (no loops), or report the same
//! change twice.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind};
use notify::{Event, EventKind};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ignore::IgnoreRules;

/// What is compared between two polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
    is_dir: bool,
}

pub type Snapshot = HashMap<PathBuf, Stamp>;

/// Stats every path under the roots that the rules keep.
pub fn snapshot(roots: &[(PathBuf, Arc<IgnoreRules>)]) -> Snapshot {
    let mut snapshot = Snapshot::new();
    for (root, rules) in roots {
        for entry in rules.walk(root, false).flatten() {
            if let Ok(metadata) = entry.metadata() {
                snapshot.insert(
                    entry.into_path(),
                    Stamp {
                        modified: metadata.modified().ok(),
                        len: metadata.len(),
                        inode: metadata.ino(),
                        is_dir: metadata.is_dir(),
                    },
                );
            }
        }
    }
    snapshot
}

/// The changes from `old` to `new`, as notify events. A directory's own time changes whenever
/// its entries do, so directories count only when they appear or disappear.
pub fn diff(old: &Snapshot, new: &Snapshot) -> Vec<Event> {
    let mut events = Vec::new();
    for (path, stamp) in new {
        let kind = match old.get(path) {
            None => EventKind::Create(CreateKind::Any),
            Some(before) if before != stamp && !(before.is_dir && stamp.is_dir) => {
                EventKind::Modify(ModifyKind::Data(DataChange::Any))
            }
            Some(_) => continue,
        };
        events.push(Event::new(kind).add_path(path.clone()));
    }
    for path in old.keys().filter(|p| !new.contains_key(*p)) {
        events.push(Event::new(EventKind::Remove(RemoveKind::Any)).add_path(path.clone()));
    }
    events
}

/// Polls every `interval` on its own thread until `shutdown`, sending changes to `sender`.
pub fn spawn(
    roots: Vec<(PathBuf, Arc<IgnoreRules>)>,
    interval: Duration,
    sender: mpsc::Sender<notify::Result<Event>>,
    shutdown: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let mut last = snapshot(&roots);
    std::thread::Builder::new()
        .name("relive-poll".into())
        .spawn(move || {
            while !shutdown.is_cancelled() {
                std::thread::sleep(interval);
                let next = snapshot(&roots);
                for event in diff(&last, &next) {
                    if sender.blocking_send(Ok(event)).is_err() {
                        return;
                    }
                }
                last = next;
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(events: &[Event]) -> Vec<(String, &'static str)> {
        let mut kinds: Vec<_> = events
            .iter()
            .map(|e| {
                let name = e.paths[0]
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                let kind = match e.kind {
                    EventKind::Create(_) => "create",
                    EventKind::Modify(_) => "modify",
                    EventKind::Remove(_) => "remove",
                    _ => "other",
                };
                (name, kind)
            })
            .collect();
        kinds.sort();
        kinds
    }

    #[test]
    fn creates_modifies_and_removes_are_found_even_within_one_second() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(root.join("a.html"), "1").unwrap();
        std::fs::write(root.join("b.html"), "1").unwrap();
        std::fs::create_dir(root.join("node_modules")).unwrap();
        let roots = vec![(
            root.clone(),
            Arc::new(IgnoreRules::new(&root, &[]).unwrap()),
        )];
        let before = snapshot(&roots);

        std::fs::write(root.join("a.html"), "22").unwrap();
        std::fs::remove_file(root.join("b.html")).unwrap();
        std::fs::write(root.join("c.html"), "1").unwrap();
        std::fs::write(root.join("node_modules/x.js"), "1").unwrap();
        let after = snapshot(&roots);
        assert_eq!(
            kinds(&diff(&before, &after)),
            vec![
                ("a.html".into(), "modify"),
                ("b.html".into(), "remove"),
                ("c.html".into(), "create"),
            ]
        );
        assert!(
            diff(&after, &snapshot(&roots)).is_empty(),
            "no change, no event"
        );
    }
}
