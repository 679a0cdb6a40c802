//! loop_guard: tells a reload loop from a person saving, by cause rather than by count.
//!
//! The rule. A batch of changes is *caused* when its first change came while a page that relive's
//! own reload brought (one requested within [`RELOAD_WINDOW`] of a published reload) was being
//! served (from the request's arrival to [`CAUSE_SLACK`] after its last byte) — or, with
//! `--build`, while the build ran. Pages that other traffic requests (a tab being browsed, a
//! load test, a monitor) never count, however many there are. [`LOOP_CYCLES`] caused batches in a row that touch the same
//! files are a loop: the server (a log, a cache, generated output) or the build rewrites those
//! files because a page loaded or a build ran. From then on, caused changes to those files are
//! held back; everything else goes out as usual — a change to another file, or one that no
//! page load or build explains (the person saved) — so a person is never held back, whatever
//! their cadence. A build runs for seconds and a person often saves while it runs, so with
//! `--build` one more rule holds: a file that ever changed with no build running is the
//! person's, and a batch that touches one is never part of a loop.
//!
//! Must never: hold a change that no page load or build explains, or block the front door
//! (recording a page is a short lock on a small ring).

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::hub::Hub;
use crate::hub::protocol::{Event, LoopCause};

/// How many caused batches in a row, with the same files, make a loop.
pub const LOOP_CYCLES: u32 = 3;
/// How long after a page's last byte a change still counts as caused by it: the file event
/// reaches relive a moment after the write.
pub const CAUSE_SLACK: Duration = Duration::from_millis(25);
/// The same for a build: its last writes may be seen a little after it exits.
pub const BUILD_SLACK: Duration = Duration::from_millis(100);
/// How long after relive publishes a reload a page request still counts as that reload's.
pub const RELOAD_WINDOW: Duration = Duration::from_secs(1);
/// A page still streaming after this long explains no later change (a page that never ends
/// must not make every save look caused).
pub const LONGEST_CAUSE: Duration = Duration::from_secs(5);
/// How many recent page serves are remembered.
const SPANS_KEPT: usize = 256;

/// One page served: from the request's arrival to the response's end (`None` while streaming).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    id: u64,
    start: Instant,
    end: Option<Instant>,
}

/// Recent page serves, recorded by the front door and read when a batch of changes arrives.
#[derive(Debug, Default)]
pub struct PageLoads {
    inner: Mutex<Spans>,
}

#[derive(Debug, Default)]
struct Spans {
    next_id: u64,
    spans: VecDeque<Span>,
    last_reload: Option<Instant>,
}

impl PageLoads {
    /// Records that relive published a reload at `at`: the page loads that follow are its.
    pub fn reloaded(&self, at: Instant) {
        self.lock().last_reload = Some(at);
    }

    /// Records a page whose request arrived at `start`; returns its id for [`PageLoads::end`],
    /// or `None` when no reload of relive's brought it (it never explains a change).
    pub fn begin(&self, start: Instant) -> Option<u64> {
        let mut inner = self.lock();
        let brought_by_reload = inner
            .last_reload
            .is_some_and(|reload| reload <= start && start <= reload + RELOAD_WINDOW);
        if !brought_by_reload {
            return None;
        }
        inner.next_id += 1;
        let id = inner.next_id;
        if inner.spans.len() == SPANS_KEPT {
            inner.spans.pop_front();
        }
        inner.spans.push_back(Span {
            id,
            start,
            end: None,
        });
        Some(id)
    }

    /// Records that page `id` was served completely (or cut off) at `at`.
    pub fn end(&self, id: u64, at: Instant) {
        if let Some(span) = self.lock().spans.iter_mut().rev().find(|s| s.id == id) {
            span.end = Some(at);
        }
    }

    /// Whether a change first seen at `at` came while a page was served (or `slack` after).
    pub fn explain(&self, at: Instant, slack: Duration) -> bool {
        self.lock().spans.iter().any(|s| {
            s.start <= at
                && at <= s.start + LONGEST_CAUSE
                && s.end.is_none_or(|end| at <= end + slack)
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spans> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What to do with a batch of changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on (reload, swap, build).
    Publish,
    /// Hold it back: it is the known loop going round once more.
    Hold,
    /// It completes a loop: hold it back and say so, once.
    LoopFound,
}

/// The loop detector's memory: the current streak of caused batches and the loops found.
#[derive(Debug, Default)]
pub struct LoopGuard {
    streak: u32,
    streak_files: Vec<String>,
    looping: BTreeSet<String>,
    /// For builds: the files that changed with no build running (a person's).
    sources: Option<BTreeSet<String>>,
}

impl LoopGuard {
    /// A guard for changes that page loads may cause.
    pub fn for_page_loads() -> LoopGuard {
        LoopGuard::default()
    }

    /// A guard for changes that the build may cause.
    pub fn for_builds() -> LoopGuard {
        LoopGuard {
            sources: Some(BTreeSet::new()),
            ..LoopGuard::default()
        }
    }

    /// Judges a batch touching `files` (URL paths, sorted); `caused` says whether a page load
    /// (or the build) explains it.
    pub fn judge(&mut self, files: &[String], caused: bool) -> Verdict {
        let persons = self
            .sources
            .as_ref()
            .is_some_and(|sources| files.iter().any(|f| sources.contains(f)));
        if !caused || persons || files.is_empty() {
            if let Some(sources) = self.sources.as_mut().filter(|_| !caused) {
                sources.extend(files.iter().cloned());
            }
            self.streak = 0;
            return Verdict::Publish;
        }
        if files.iter().all(|f| self.looping.contains(f)) {
            return Verdict::Hold;
        }
        if self.streak > 0 && files == self.streak_files {
            self.streak += 1;
        } else {
            self.streak = 1;
            self.streak_files = files.to_vec();
        }
        if self.streak < LOOP_CYCLES {
            return Verdict::Publish;
        }
        self.streak = 0;
        self.looping.extend(files.iter().cloned());
        Verdict::LoopFound
    }
}

impl LoopGuard {
    /// Judges a batch and acts on the verdict: says so once a loop is found, notes a held
    /// batch in the debug log. Returns whether the batch goes on (to the tabs, or the build).
    pub fn passes(&mut self, hub: &Hub, files: &[String], caused: bool, cause: LoopCause) -> bool {
        match self.judge(files, caused) {
            Verdict::Publish => true,
            Verdict::Hold => {
                let by = match cause {
                    LoopCause::PageLoad => "a page load",
                    LoopCause::Build => "the build",
                };
                tracing::debug!(
                    "held back {}: {by} changed it again (a known loop)",
                    files.join(", ")
                );
                false
            }
            Verdict::LoopFound => {
                announce(hub, files.to_vec(), cause);
                false
            }
        }
    }
}

/// Says in relive's output and in every tab that a loop was found and what ends it.
fn announce(hub: &Hub, paths: Vec<String>, cause: LoopCause) {
    let fix = ignore_hint(&paths);
    let names = paths
        .iter()
        .map(|p| p.trim_start_matches('/'))
        .collect::<Vec<_>>()
        .join(", ");
    match cause {
        LoopCause::PageLoad => tracing::warn!(
            event = "loop",
            "loop    {names} changed each time a page loaded ({LOOP_CYCLES} times in a row): \
             relive no longer reloads for what page loads write there; your own saves still \
             reload. To stop watching it: relive {fix} (or watch.ignore in relive.toml)"
        ),
        LoopCause::Build => tracing::warn!(
            event = "loop",
            "loop    the build writes {names} into a watched folder, so each build started the \
             next ({LOOP_CYCLES} times in a row): relive no longer rebuilds for the build's own \
             output; your own saves still do. Ignore the build's output: relive {fix} (or \
             watch.ignore in relive.toml)"
        ),
    }
    hub.publish(Event::LoopStopped { paths, cause, fix });
}

/// The `--ignore` pattern(s) that would end a loop on `files` (URL paths): their common folder
/// when they share one, else each file.
pub fn ignore_hint(files: &[String]) -> String {
    let relative: Vec<&str> = files.iter().map(|f| f.trim_start_matches('/')).collect();
    let folder = |f: &str| f.rsplit_once('/').map(|(dir, _)| dir.to_owned());
    let common = relative
        .first()
        .and_then(|first| folder(first))
        .filter(|dir| relative.iter().all(|f| folder(f).as_deref() == Some(dir)));
    match (relative.as_slice(), common) {
        ([one], _) => format!("--ignore '{one}'"),
        (_, Some(dir)) => format!("--ignore '{dir}/'"),
        (all, None) => all
            .iter()
            .map(|f| format!("--ignore '{f}'"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_person_saving_is_never_held_whatever_the_cadence() {
        let mut guard = LoopGuard::for_page_loads();
        for _ in 0..1000 {
            assert_eq!(
                guard.judge(&files(&["/index.html"]), false),
                Verdict::Publish
            );
        }
    }

    #[test]
    fn the_same_files_changing_with_every_page_load_are_a_loop_then_held() {
        let mut guard = LoopGuard::for_page_loads();
        let log = files(&["/data/log.txt"]);
        assert_eq!(guard.judge(&log, true), Verdict::Publish);
        assert_eq!(guard.judge(&log, true), Verdict::Publish);
        assert_eq!(guard.judge(&log, true), Verdict::LoopFound);
        assert_eq!(guard.judge(&log, true), Verdict::Hold);
        assert_eq!(guard.judge(&log, true), Verdict::Hold);
        // Another file, or the looping file saved by a person, still goes out.
        assert_eq!(
            guard.judge(&files(&["/index.html"]), false),
            Verdict::Publish
        );
        assert_eq!(guard.judge(&log, false), Verdict::Publish);
        assert_eq!(guard.judge(&log, true), Verdict::Hold);
        // A caused batch that also holds a new file is not only the loop.
        assert_eq!(
            guard.judge(&files(&["/data/log.txt", "/index.html"]), true),
            Verdict::Publish
        );
    }

    #[test]
    fn a_streak_is_broken_by_other_files_or_an_unexplained_change() {
        let mut guard = LoopGuard::for_page_loads();
        let (a, b) = (files(&["/a.html"]), files(&["/b.html"]));
        assert_eq!(guard.judge(&a, true), Verdict::Publish);
        assert_eq!(guard.judge(&a, true), Verdict::Publish);
        assert_eq!(guard.judge(&b, true), Verdict::Publish);
        assert_eq!(guard.judge(&a, true), Verdict::Publish);
        assert_eq!(guard.judge(&a, false), Verdict::Publish);
        assert_eq!(guard.judge(&a, true), Verdict::Publish);
        assert_eq!(guard.judge(&a, true), Verdict::Publish);
        assert_eq!(guard.judge(&a, true), Verdict::LoopFound);
    }

    #[test]
    fn with_builds_a_persons_file_saved_during_builds_is_never_a_loop() {
        let mut guard = LoopGuard::for_builds();
        let (source, output) = (files(&["/src/app.js"]), files(&["/out/app.js"]));
        assert_eq!(guard.judge(&source, false), Verdict::Publish);
        for _ in 0..10 {
            assert_eq!(guard.judge(&source, true), Verdict::Publish);
        }
        assert_eq!(guard.judge(&output, true), Verdict::Publish);
        assert_eq!(guard.judge(&output, true), Verdict::Publish);
        assert_eq!(guard.judge(&output, true), Verdict::LoopFound);
        assert_eq!(guard.judge(&output, true), Verdict::Hold);
        assert_eq!(
            guard.judge(&files(&["/out/app.js", "/src/app.js"]), true),
            Verdict::Publish
        );
    }

    #[test]
    fn everything_changed_is_never_a_loop() {
        let mut guard = LoopGuard::for_page_loads();
        for _ in 0..10 {
            assert_eq!(guard.judge(&[], true), Verdict::Publish);
        }
    }

    #[test]
    fn a_change_is_explained_while_a_page_is_served_and_just_after() {
        let loads = PageLoads::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        loads.reloaded(at(90));
        let id = loads.begin(at(100)).expect("brought by the reload");
        assert!(!loads.explain(at(99), CAUSE_SLACK), "before the request");
        assert!(loads.explain(at(150), CAUSE_SLACK), "while streaming");
        assert!(
            !loads.explain(
                at(100) + LONGEST_CAUSE + Duration::from_millis(1),
                CAUSE_SLACK
            ),
            "a page that streams on and on explains nothing after a while"
        );
        loads.end(id, at(200));
        assert!(loads.explain(at(200), CAUSE_SLACK));
        assert!(loads.explain(at(224), CAUSE_SLACK), "within the slack");
        assert!(
            !loads.explain(at(226), CAUSE_SLACK),
            "a person's save later"
        );
        let other = loads.begin(at(1000)).expect("within the window");
        loads.end(other, at(1010));
        assert!(loads.explain(at(1005), CAUSE_SLACK));
        assert!(!loads.explain(at(600), CAUSE_SLACK), "between two pages");
    }

    #[test]
    fn pages_no_reload_brought_never_explain_a_change() {
        let loads = PageLoads::default();
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(loads.begin(at(0)), None, "before any reload: a person's");
        loads.reloaded(at(100));
        assert_eq!(loads.begin(at(50)), None, "before the reload");
        assert_eq!(loads.begin(at(1200)), None, "long after it: other traffic");
        assert!(!loads.explain(at(1201), CAUSE_SLACK));
    }

    #[test]
    fn only_recent_pages_are_kept() {
        let loads = PageLoads::default();
        let t0 = Instant::now();
        loads.reloaded(t0);
        let first = loads.begin(t0).unwrap();
        for _ in 1..=SPANS_KEPT {
            let id = loads.begin(t0 + Duration::from_millis(20)).unwrap();
            loads.end(id, t0 + Duration::from_millis(20));
        }
        loads.end(first, t0 + Duration::from_millis(10));
        assert!(!loads.explain(t0 + Duration::from_millis(5), CAUSE_SLACK));
    }

    #[test]
    fn the_hint_names_the_common_folder_or_each_file() {
        assert_eq!(ignore_hint(&files(&["/log.txt"])), "--ignore 'log.txt'");
        assert_eq!(
            ignore_hint(&files(&["/data/a.json", "/data/b.json"])),
            "--ignore 'data/'"
        );
        assert_eq!(
            ignore_hint(&files(&["/a.txt", "/data/b.json"])),
            "--ignore 'a.txt' --ignore 'data/b.json'"
        );
    }
}
