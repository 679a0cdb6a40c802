//! file_cache: small files kept in memory between requests, never served stale.
//!
//! A file's bytes are kept under the request path that found them, with the identity of the
//! file they were read from (device, inode, type, size, modification and change times, taken
//! from the open descriptor before the read). Two things keep an entry honest:
//! - every hit first looks at the file's real path again (one `lstat`, no open, no read) and is
//!   served only if the identity is the same; a write, a rename over it, a delete, a `touch` or a
//!   `cp -p` that puts an old modification time back all change the change time, which no
//!   program can set;
//! - a file is kept only once its change time is [`SETTLED`] older than the moment relive began
//!   reading it, so a second write inside the same timestamp tick (file systems keep time in
//!   ticks of up to two seconds, FAT's) cannot hide behind an identical identity.
//!
//! The watcher also empties the whole cache at every change it reports (`forget`), so entries
//! for changed or deleted files do not linger; correctness does not wait for it, since its
//! event arrives after the write and a request can come in between.
//!
//! Only files reached without a symlink are kept (their real path is the request's path
//! beneath the root), so what a path names cannot move while the entry stands.
//!
//! Must never: serve bytes that differ from the file's content at the moment of the hit, or
//! grow past [`MAX_BYTES`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use nix::sys::stat::FileStat;

/// How long a file's change time must lie behind the start of its read before its bytes are
/// kept: more than the coarsest timestamp tick of a file system relive may serve from.
pub const SETTLED: Duration = Duration::from_secs(3);

/// The most bytes kept; a file that does not fit is simply read each time.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// The most files kept.
pub const MAX_FILES: usize = 8192;

/// What a file is, as far as telling a changed file from an unchanged one goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    dev: u64,
    ino: u64,
    mode: u32,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    #[allow(clippy::useless_conversion)] // the field types differ between systems
    pub fn of(stat: &FileStat) -> Identity {
        Identity {
            dev: u64::try_from(stat.st_dev).unwrap_or(u64::MAX),
            ino: u64::try_from(stat.st_ino).unwrap_or(u64::MAX),
            mode: u32::from(stat.st_mode),
            size: i64::from(stat.st_size),
            mtime: (i64::from(stat.st_mtime), i64::from(stat.st_mtime_nsec)),
            ctime: (i64::from(stat.st_ctime), i64::from(stat.st_ctime_nsec)),
        }
    }

    /// Whether the bytes read after this identity was taken at `read_at` may be kept: the
    /// file's last change is [`SETTLED`] behind (a change time in the future never is).
    pub fn settled_at(&self, read_at: SystemTime) -> bool {
        let (secs, nanos) = self.ctime;
        let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else {
            return false;
        };
        let changed = SystemTime::UNIX_EPOCH
            + Duration::new(secs, 0)
            + Duration::from_nanos(u64::from(nanos));
        read_at
            .duration_since(changed)
            .is_ok_and(|behind| behind >= SETTLED)
    }
}

/// One kept file.
pub struct Entry<T> {
    real: PathBuf,
    identity: Identity,
    size: usize,
    pub value: T,
}

/// The cache: request path → entry, with counters for `/__relive/status`.
pub struct FileCache<T> {
    inner: RwLock<Inner<T>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

struct Inner<T> {
    entries: HashMap<String, Arc<Entry<T>>>,
    bytes: usize,
}

/// The cache's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Figures {
    pub files: usize,
    pub bytes: usize,
    pub hits: u64,
    pub misses: u64,
}

impl<T> Default for FileCache<T> {
    fn default() -> Self {
        FileCache {
            inner: RwLock::new(Inner {
                entries: HashMap::new(),
                bytes: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

impl<T> FileCache<T> {
    /// The entry for `path`, if the file it was read from is still exactly that file.
    pub fn fresh(&self, path: &str) -> Option<Arc<Entry<T>>> {
        let entry = self.read().entries.get(path).cloned();
        let Some(entry) = entry else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        let same = nix::sys::stat::lstat(&entry.real)
            .is_ok_and(|now| Identity::of(&now) == entry.identity);
        if same {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(entry);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.write();
        // Gone only if no one has kept a newer one meanwhile.
        if inner
            .entries
            .get(path)
            .is_some_and(|kept| Arc::ptr_eq(kept, &entry))
        {
            inner.entries.remove(path);
            inner.bytes -= entry.size;
        }
        None
    }

    /// Keeps `value` (`size` bytes, read from `real` whose identity before the read, begun at
    /// `read_at`, was `identity`) under `path`, if it has settled and fits.
    pub fn keep(
        &self,
        path: &str,
        real: &Path,
        identity: Identity,
        read_at: SystemTime,
        size: usize,
        value: T,
    ) {
        if !identity.settled_at(read_at) {
            return;
        }
        let mut inner = self.write();
        if let Some(old) = inner.entries.remove(path) {
            inner.bytes -= old.size;
        }
        if inner.entries.len() >= MAX_FILES || inner.bytes + size > MAX_BYTES {
            return;
        }
        inner.bytes += size;
        let entry = Entry {
            real: real.to_owned(),
            identity,
            size,
            value,
        };
        inner.entries.insert(path.to_owned(), Arc::new(entry));
    }

    /// Empties the cache (the watcher saw a change).
    pub fn forget(&self) {
        let mut inner = self.write();
        inner.entries.clear();
        inner.bytes = 0;
    }

    pub fn figures(&self) -> Figures {
        let inner = self.read();
        Figures {
            files: inner.entries.len(),
            bytes: inner.bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner<T>> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner<T>> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity_of(path: &Path) -> Identity {
        Identity::of(&nix::sys::stat::lstat(path).unwrap())
    }

    /// A moment long enough after every change made so far for the cache to keep what it read.
    fn later() -> SystemTime {
        SystemTime::now() + SETTLED + Duration::from_secs(1)
    }

    #[test]
    fn a_change_of_any_kind_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.html");
        std::fs::write(&file, "one").unwrap();
        let cache = FileCache::default();
        let keep = |cache: &FileCache<&str>, value| {
            cache.keep("/a.html", &file, identity_of(&file), later(), 3, value);
        };

        keep(&cache, "one");
        assert_eq!(cache.fresh("/a.html").map(|e| e.value), Some("one"));

        // Rewritten in place, same size.
        std::fs::write(&file, "two").unwrap();
        assert!(cache.fresh("/a.html").is_none(), "rewritten in place");

        // The modification time put back as it was (`cp -p`, `touch -r`): the change time moves.
        keep(&cache, "two");
        let before = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, "333").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(before)
            .unwrap();
        assert!(cache.fresh("/a.html").is_none(), "old mtime put back");

        // Replaced by a rename (how most editors save).
        keep(&cache, "333");
        let other = dir.path().join("b.tmp");
        std::fs::write(&other, "444").unwrap();
        std::fs::rename(&other, &file).unwrap();
        assert!(cache.fresh("/a.html").is_none(), "renamed over");

        // Replaced by a symlink to a file with the same content.
        keep(&cache, "444");
        std::fs::write(&other, "444").unwrap();
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(&other, &file).unwrap();
        assert!(cache.fresh("/a.html").is_none(), "a symlink now");

        // Deleted.
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, "555").unwrap();
        keep(&cache, "555");
        std::fs::remove_file(&file).unwrap();
        assert!(cache.fresh("/a.html").is_none(), "deleted");

        let figures = cache.figures();
        assert_eq!((figures.hits, figures.misses), (1, 5));
    }

    #[test]
    fn a_file_changed_just_now_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.css");
        std::fs::write(&file, "a{}").unwrap();
        let cache = FileCache::default();
        let identity = identity_of(&file);
        cache.keep("/a.css", &file, identity, SystemTime::now(), 3, ());
        assert!(
            cache.fresh("/a.css").is_none(),
            "read within SETTLED of its change"
        );
        cache.keep("/a.css", &file, identity, later(), 3, ());
        assert!(cache.fresh("/a.css").is_some());
        // A change time in the future (another machine's clock) is never settled.
        let behind = SystemTime::now() - Duration::from_secs(3600);
        cache.keep("/b.css", &file, identity, behind, 3, ());
        assert!(
            cache.fresh("/b.css").is_none(),
            "change time after the read began"
        );
    }

    #[test]
    fn the_budget_holds_and_forget_empties() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.js");
        std::fs::write(&file, "x").unwrap();
        let cache = FileCache::default();
        let identity = identity_of(&file);
        cache.keep("/1", &file, identity, later(), MAX_BYTES - 10, ());
        cache.keep("/2", &file, identity, later(), 11, ());
        assert_eq!(cache.figures().files, 1, "over the byte budget");
        cache.keep("/2", &file, identity, later(), 10, ());
        assert_eq!(cache.figures().bytes, MAX_BYTES);
        // Kept again under the same path: counted once.
        cache.keep("/2", &file, identity, later(), 10, ());
        assert_eq!(cache.figures().bytes, MAX_BYTES);
        cache.forget();
        assert_eq!(cache.figures().files, 0);
        assert_eq!(cache.figures().bytes, 0);
        for i in 0..=MAX_FILES {
            cache.keep(&format!("/{i}"), &file, identity, later(), 0, ());
        }
        assert_eq!(cache.figures().files, MAX_FILES);
    }
}
