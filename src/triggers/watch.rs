//! watch: turns file-system changes into hub events.
//!
//! notify reports raw changes; ignore rules drop the noise (`.git`, `node_modules`, `target`,
//! editor temp files, `.gitignore`d paths, `--ignore` globs); the [`Debouncer`] coalesces a
//! burst into one batch; [`classify`] says whether the batch is a stylesheet swap or a reload.
//! Directories are watched one by one (not recursively) so ignored trees such as
//! `node_modules` cost no watches; new directories are picked up as they appear.
//!
//! Must never: drop the last change of a burst, or stop silently (a failing native watcher
//! falls back to polling and says so).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ignore::IgnoreRules;
use crate::config::WatchSettings;
use crate::hub::protocol::Event;

/// Longest a burst may keep postponing its batch.
const MAX_WAIT: Duration = Duration::from_secs(2);
/// Past this many distinct paths a batch just says "everything changed".
const MAX_PENDING: usize = 10_000;

/// A batch of changes ready to become one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub paths: Vec<PathBuf>,
    /// Too many changes (or an overflowing OS queue) to list: treat as "everything".
    pub everything: bool,
}

/// One batch of changes on its way to the tabs (straight to the hub, or through the build).
#[derive(Debug, Clone)]
pub struct ChangeSet {
    /// What the batch causes: `css`/`image` swaps or one `reload`.
    pub events: Vec<Event>,
    /// The changed files as URL paths, sorted (empty when too many changed to list).
    pub files: Vec<String>,
    /// When the batch's first change was seen, to tell what caused it (`loop_guard`).
    pub first_seen: std::time::Instant,
}

impl ChangeSet {
    /// The change set of a due `batch` whose first change was seen at `first_seen`.
    pub fn new(batch: &Batch, roots: &[PathBuf], first_seen: std::time::Instant) -> ChangeSet {
        let mut files: Vec<String> = if batch.everything {
            Vec::new()
        } else {
            batch.paths.iter().map(|p| url_path(p, roots)).collect()
        };
        files.sort();
        files.dedup();
        ChangeSet {
            events: classify(batch, roots),
            files,
            first_seen,
        }
    }
}

/// Coalesces bursts: a batch is due once no change arrived for `quiet`, or `max_wait` after the
/// first change of the burst, whichever is first. Time is passed in, so tests control it.
#[derive(Debug)]
pub struct Debouncer {
    quiet: Duration,
    max_wait: Duration,
    pending: BTreeSet<PathBuf>,
    everything: bool,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Debouncer {
    pub fn new(quiet: Duration, max_wait: Duration) -> Debouncer {
        Debouncer {
            quiet,
            max_wait,
            pending: BTreeSet::new(),
            everything: false,
            first: None,
            last: None,
        }
    }

    /// Records a changed path at `now`.
    pub fn add(&mut self, path: PathBuf, now: Instant) {
        if self.pending.len() < MAX_PENDING {
            self.pending.insert(path);
        } else {
            self.everything = true;
        }
        self.touch(now);
    }

    /// Records that changes were lost (an OS queue overflowed) at `now`.
    pub fn add_everything(&mut self, now: Instant) {
        self.everything = true;
        self.touch(now);
    }

    fn touch(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the pending batch's first change was recorded.
    pub fn started(&self) -> Option<Instant> {
        self.first
    }

    /// When the pending batch becomes due, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        Some((self.last? + self.quiet).min(self.first? + self.max_wait))
    }

    /// Takes the pending batch if it is due at `now`.
    pub fn take_due(&mut self, now: Instant) -> Option<Batch> {
        if self.deadline()? > now {
            return None;
        }
        self.first = None;
        self.last = None;
        Some(Batch {
            paths: std::mem::take(&mut self.pending).into_iter().collect(),
            everything: std::mem::take(&mut self.everything),
        })
    }
}

/// The URL path of `path` relative to the first root that contains it (`/css/site.css`).
pub fn url_path(path: &Path, roots: &[PathBuf]) -> String {
    let relative = roots
        .iter()
        .find_map(|root| path.strip_prefix(root).ok())
        .unwrap_or(path);
    let parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    format!("/{}", parts.join("/"))
}

/// Changes a page can take in without a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swappable {
    Stylesheet,
    Image,
}

fn swappable(path: &Path) -> Option<Swappable> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "css" => Some(Swappable::Stylesheet),
        "png" | "jpg" | "jpeg" | "gif" | "webp" | "avif" | "svg" | "ico" | "bmp" => {
            Some(Swappable::Image)
        }
        _ => None,
    }
}

/// Turns a batch into the events it causes: `css` and/or `image` when every change is a
/// stylesheet or an image that still exists, one `reload` otherwise.
pub fn classify(batch: &Batch, roots: &[PathBuf]) -> Vec<Event> {
    let urls: Vec<String> = batch.paths.iter().map(|p| url_path(p, roots)).collect();
    let kinds: Option<Vec<Swappable>> = batch
        .paths
        .iter()
        .map(|p| swappable(p).filter(|_| p.is_file()))
        .collect();
    if let Some(kinds) = kinds.filter(|k| !batch.everything && !k.is_empty()) {
        let of = |kind| -> Vec<String> {
            urls.iter()
                .zip(&kinds)
                .filter(|(_, k)| **k == kind)
                .map(|(u, _)| u.clone())
                .collect()
        };
        let (css, images) = (of(Swappable::Stylesheet), of(Swappable::Image));
        let mut events = Vec::new();
        if !css.is_empty() {
            events.push(Event::Css { paths: css });
        }
        if !images.is_empty() {
            events.push(Event::Image { paths: images });
        }
        return events;
    }
    // A watched folder itself (removed, renamed) has no path of its own to name.
    let urls: Vec<String> = urls
        .into_iter()
        .filter(|u| !u.is_empty() && u != "/")
        .collect();
    let reason = match (batch.everything, urls.as_slice()) {
        (true, _) | (false, []) => "many files changed".to_owned(),
        (false, [one]) => format!("{} changed", one.trim_start_matches('/')),
        (false, [first, rest @ ..]) => format!(
            "{} and {} more changed",
            first.trim_start_matches('/'),
            rest.len()
        ),
    };
    vec![Event::Reload {
        reason,
        paths: urls,
    }]
}

/// Why watching could not start.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot watch {path}: {source}")]
    Path {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad ignore pattern: {0}")]
    Pattern(#[from] ignore::Error),
    #[error("cannot start watching: {0}")]
    Notify(#[from] notify::Error),
}

type Changes = mpsc::Receiver<notify::Result<notify::Event>>;

/// How often relive checks that a watched folder that is gone is back.
const ROOTS_CHECK: Duration = Duration::from_millis(500);

/// How often relive checks that the watched folders still exist when none is missing. A
/// folder removed or renamed away says so itself (its own watch reports it, and the check runs
/// at once); this catches only what gives no event (a folder above it renamed), and keeps an
/// idle relive from waking more than it must.
const ROOTS_CHECK_IDLE: Duration = Duration::from_secs(5);

/// Everything the watch loop owns.
struct WatchLoop {
    roots: Vec<PathBuf>,
    /// Roots that were removed (or renamed away) and are waited for.
    lost: Vec<bool>,
    /// Where the native watcher sends its events (kept to start a fresh watcher).
    sender: mpsc::Sender<notify::Result<notify::Event>>,
    rules: Vec<Arc<IgnoreRules>>,
    /// The native watcher; `None` while polling.
    watcher: Option<Box<dyn Watcher + Send>>,
    /// The polling thread, when polling.
    poller: Option<std::thread::JoinHandle<()>>,
    settings: WatchSettings,
    on_change: OnChange,
}

/// Told of every file change the moment it is seen, before debouncing (static mode empties its
/// file cache with it).
pub type OnChange = Arc<dyn Fn() + Send + Sync>;

/// Starts watching; the returned task runs until `shutdown` and sends the events each batch
/// of changes causes to `sink` (straight to the hub, or through the build command).
pub async fn spawn(
    settings: WatchSettings,
    sink: mpsc::Sender<ChangeSet>,
    on_change: OnChange,
    shutdown: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, WatchError> {
    let mut roots = Vec::new();
    for path in &settings.paths {
        let root = std::fs::canonicalize(path).map_err(|source| WatchError::Path {
            path: path.clone(),
            source,
        })?;
        roots.push(root);
    }
    let rules = roots
        .iter()
        .map(|root| IgnoreRules::new(root, &settings.ignore).map(Arc::new))
        .collect::<Result<Vec<_>, _>>()?;
    let (sender, changes) = mpsc::channel(4096);
    let mut state = WatchLoop {
        sender: sender.clone(),
        lost: vec![false; roots.len()],
        roots,
        rules,
        watcher: None,
        poller: None,
        settings,
        on_change,
    };
    if !state.settings.poll {
        state.watch_natively(sender.clone());
    }
    if state.watcher.is_none() {
        let roots = state
            .roots
            .iter()
            .cloned()
            .zip(state.rules.iter().cloned())
            .collect();
        let interval = state.settings.poll_interval;
        let poller =
            super::poll::spawn(roots, interval, sender, shutdown.clone()).map_err(|source| {
                WatchError::Path {
                    path: PathBuf::from("(poller thread)"),
                    source,
                }
            })?;
        state.poller = Some(poller);
    }
    Ok(tokio::spawn(state.run(changes, sink, shutdown)))
}

impl WatchLoop {
    /// Watches every root and every directory below it that is not ignored with the OS's
    /// notifications. When that fails (no inotify, out of watches), says so and leaves
    /// `watcher` empty so the caller polls instead.
    fn watch_natively(&mut self, sender: mpsc::Sender<notify::Result<notify::Event>>) {
        // The handler runs on notify's own thread, outside the runtime, so it may block; a
        // full channel then slows notify down instead of losing events.
        let handler = move |event| {
            let _ = sender.blocking_send(event);
        };
        let result = notify::RecommendedWatcher::new(handler, notify::Config::default())
            .map_err(|e| e.to_string())
            .and_then(|watcher| {
                self.watcher = Some(Box::new(watcher));
                (0..self.roots.len()).try_for_each(|index| {
                    let root = self.roots[index].clone();
                    self.watch_tree(index, &root)
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
            });
        if let Err(error) = result {
            self.watcher = None;
            self.settings.poll = true;
            tracing::warn!(
                "native file watching failed ({error}); polling every {} ms instead. On Linux, \
                 raise the limit with: sudo sysctl fs.inotify.max_user_watches=524288",
                self.settings.poll_interval.as_millis()
            );
        }
    }

    /// Watches `dir` and the directories below it that the rules of root `index` keep.
    fn watch_tree(&mut self, index: usize, dir: &Path) -> Result<usize, notify::Error> {
        let Some(watcher) = self.watcher.as_mut() else {
            return Ok(0);
        };
        if !dir.is_dir() {
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
            return Ok(1);
        }
        let mut count = 0;
        for entry in self.rules[index].walk(dir, true).flatten() {
            match watcher.watch(entry.path(), RecursiveMode::NonRecursive) {
                Ok(()) => count += 1,
                Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => return Err(e),
                // A directory that vanished or cannot be read is simply not watched.
                Err(e) => tracing::debug!("not watching {}: {e}", entry.path().display()),
            }
        }
        Ok(count)
    }

    fn root_of(&self, path: &Path) -> Option<usize> {
        self.roots.iter().position(|root| path.starts_with(root))
    }

    async fn run(
        mut self,
        mut changes: Changes,
        sink: mpsc::Sender<ChangeSet>,
        shutdown: CancellationToken,
    ) {
        let mut debouncer = Debouncer::new(self.settings.debounce, MAX_WAIT);
        let mut roots_check = Instant::now() + ROOTS_CHECK_IDLE;
        loop {
            let deadline = debouncer.deadline();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep_until(roots_check) => {
                    self.check_roots(&mut debouncer);
                    let every = if self.lost.contains(&true) { ROOTS_CHECK } else { ROOTS_CHECK_IDLE };
                    roots_check = Instant::now() + every;
                }
                change = changes.recv() => match change {
                    Some(Ok(event)) => {
                        if event.paths.iter().any(|path| self.roots.contains(path)) {
                            // A watched folder itself changed (removed, renamed): look now.
                            roots_check = Instant::now();
                        }
                        self.record(event, &mut debouncer);
                    }
                    Some(Err(error)) => tracing::warn!("file watching error: {error}"),
                    None => break,
                },
                _ = sleep_until(deadline) => {
                    let first_seen = debouncer.started().map_or_else(
                        std::time::Instant::now,
                        Instant::into_std,
                    );
                    if let Some(batch) = debouncer.take_due(Instant::now())
                        && sink
                            .send(ChangeSet::new(&batch, &self.roots, first_seen))
                            .await
                            .is_err()
                    {
                        break;
                    }
                }
            }
        }
        // The poller notices the cancellation (or the closed channel) within one interval.
        drop(changes);
        if let Some(poller) = self.poller.take() {
            let _ = tokio::task::spawn_blocking(move || poller.join()).await;
        }
    }

    /// Notices a watched folder that was removed or renamed away (its watches are gone with it)
    /// and, when a folder is back at that path, watches it again and reloads.
    fn check_roots(&mut self, debouncer: &mut Debouncer) {
        for index in 0..self.roots.len() {
            let root = self.roots[index].clone();
            let present = root.exists();
            if !self.lost[index] && !present {
                self.lost[index] = true;
                tracing::warn!(
                    "the watched folder {} is gone; relive keeps running and watches it again \
                     when it is back",
                    root.display()
                );
            } else if self.lost[index] && present {
                self.lost[index] = false;
                // A fresh watcher: the old one's bookkeeping for the removed folder can swallow
                // the new folder's first events.
                if self.watcher.is_some() {
                    self.watcher = None;
                    self.watch_natively(self.sender.clone());
                }
                tracing::info!(
                    "the watched folder {} is back; watching it again",
                    root.display()
                );
                (self.on_change)();
                debouncer.add_everything(Instant::now());
            }
        }
    }

    fn record(&mut self, event: notify::Event, debouncer: &mut Debouncer) {
        let now = Instant::now();
        if event.need_rescan() {
            (self.on_change)();
            debouncer.add_everything(now);
            return;
        }
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        for path in event.paths {
            let Some(index) = self.root_of(&path) else {
                continue;
            };
            let is_dir = path.is_dir();
            if self.rules[index].is_ignored(&path, is_dir) {
                continue;
            }
            let appeared = matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(notify::event::ModifyKind::Name(_))
            );
            if is_dir
                && appeared
                && let Err(error) = self.watch_tree(index, &path)
            {
                tracing::warn!("cannot watch new directory {}: {error}", path.display());
            }
            (self.on_change)();
            debouncer.add(path, now);
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_millis(50);

    fn path(name: &str) -> PathBuf {
        PathBuf::from(format!("/site/{name}"))
    }

    #[test]
    fn one_save_gives_one_batch_after_the_quiet_period() {
        let start = Instant::now();
        let mut d = Debouncer::new(QUIET, MAX_WAIT);
        assert_eq!(d.deadline(), None);
        d.add(path("index.html"), start);
        assert_eq!(d.take_due(start + QUIET / 2), None);
        let batch = d
            .take_due(start + QUIET)
            .expect("due after the quiet period");
        assert_eq!(batch.paths, vec![path("index.html")]);
        assert_eq!(d.take_due(start + QUIET * 10), None, "nothing left");
    }

    #[test]
    fn a_burst_is_one_batch_with_every_path() {
        let start = Instant::now();
        let mut d = Debouncer::new(QUIET, MAX_WAIT);
        for i in 0..500 {
            let at = start + Duration::from_micros(i * 100);
            d.add(path(&format!("f{i}.html")), at);
            assert_eq!(d.take_due(at), None);
        }
        let batch = d.take_due(start + Duration::from_secs(1)).unwrap();
        assert_eq!(batch.paths.len(), 500);
    }

    #[test]
    fn a_save_during_a_burst_is_never_lost() {
        let start = Instant::now();
        let mut d = Debouncer::new(QUIET, MAX_WAIT);
        d.add(path("a.html"), start);
        // The burst goes on past MAX_WAIT, so a batch is cut while changes still arrive.
        let mut t = start;
        let mut batches = Vec::new();
        while t < start + MAX_WAIT + QUIET * 4 {
            t += QUIET / 2;
            if t < start + MAX_WAIT + QUIET {
                d.add(path("a.html"), t);
            }
            batches.extend(d.take_due(t));
        }
        d.add(path("last.html"), t);
        batches.extend(d.take_due(t + QUIET));
        assert_eq!(batches.len(), 3, "{batches:?}");
        assert_eq!(batches.last().unwrap().paths, vec![path("last.html")]);
    }

    #[test]
    fn too_many_paths_become_everything() {
        let start = Instant::now();
        let mut d = Debouncer::new(QUIET, MAX_WAIT);
        for i in 0..(MAX_PENDING + 1) {
            d.add(path(&format!("{i}")), start);
        }
        assert!(d.take_due(start + QUIET).unwrap().everything);
    }

    #[test]
    fn stylesheets_and_images_are_swapped_everything_else_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir(root.join("css")).unwrap();
        std::fs::write(root.join("css/site.css"), "body{}").unwrap();
        std::fs::write(root.join("index.html"), "<p>").unwrap();
        let roots = vec![root.clone()];
        let css_only = Batch {
            paths: vec![root.join("css/site.css")],
            everything: false,
        };
        assert_eq!(
            classify(&css_only, &roots),
            vec![Event::Css {
                paths: vec!["/css/site.css".into()]
            }]
        );
        std::fs::write(root.join("logo.PNG"), "png").unwrap();
        let css_and_image = Batch {
            paths: vec![root.join("css/site.css"), root.join("logo.PNG")],
            everything: false,
        };
        assert_eq!(
            classify(&css_and_image, &roots),
            vec![
                Event::Css {
                    paths: vec!["/css/site.css".into()]
                },
                Event::Image {
                    paths: vec!["/logo.PNG".into()]
                }
            ]
        );
        let mixed = Batch {
            paths: vec![root.join("css/site.css"), root.join("index.html")],
            everything: false,
        };
        assert!(matches!(
            classify(&mixed, &roots)[..],
            [Event::Reload { .. }]
        ));
        let deleted_css = Batch {
            paths: vec![root.join("gone.css")],
            everything: false,
        };
        assert!(matches!(
            classify(&deleted_css, &roots)[..],
            [Event::Reload { .. }]
        ));
        let everything = Batch {
            paths: vec![root.join("css/site.css")],
            everything: true,
        };
        assert!(matches!(
            classify(&everything, &roots)[..],
            [Event::Reload { .. }]
        ));
    }

    #[test]
    fn reload_reason_names_the_file() {
        let roots = vec![PathBuf::from("/site")];
        let one = Batch {
            paths: vec![path("index.html")],
            everything: false,
        };
        assert_eq!(
            classify(&one, &roots),
            vec![Event::Reload {
                reason: "index.html changed".into(),
                paths: vec!["/index.html".into()]
            }]
        );
    }
}
