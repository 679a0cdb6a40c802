//! static_files: serves a folder (static mode) behind the front door.
//!
//! tower-http's `ServeFile` does the HTTP (ranges, conditional requests, HEAD); this file
//! decides what may be served at all: the path is decoded once and checked, dotfiles (but
//! `.well-known`) and secrets are refused, and the file is opened beneath the root so that no
//! symlink, however it is swapped in, leads out: by the kernel on Linux (`openat2`,
//! `RESOLVE_BENEATH`), and on every other Unix (or a Linux without `openat2`) by walking the path
//! one component at a time with `openat` and `O_NOFOLLOW`, following only symlinks that stay
//! inside. Either way there is no check-then-open window: what is checked is the open file.
//!
//! Must never: serve a file outside the root, a dotfile, or a key; list a directory.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode};
use tower::ServiceExt;
use tower_http::services::ServeFile;

pub use super::file_cache::Figures;
use super::file_cache::{FileCache, Identity};

/// Why a request path is refused before the file system is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRefused {
    /// Malformed: bad percent-encoding, NUL, backslash, `#`, invalid UTF-8, dot-segments.
    BadRequest,
    /// Well-formed but never served: dotfiles, secrets, paths that leave the root.
    Hidden,
}

/// File names that are never served, whatever the folder (compared case-insensitively).
const SECRET_SUFFIXES: &[&str] = &[".pem", ".key", ".crt", ".p12", ".pfx", ".jks", ".keystore"];
const SECRET_NAMES: &[&str] = &["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"];

/// Decodes `%XX` escapes once. Fails on a malformed escape or invalid UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Checks a request path (the part before `?`) and returns its decoded segments.
pub fn check_path(raw_path: &str) -> Result<Vec<String>, PathRefused> {
    if raw_path.starts_with("//") || !raw_path.starts_with('/') {
        return Err(PathRefused::BadRequest);
    }
    let decoded = percent_decode(raw_path).ok_or(PathRefused::BadRequest)?;
    if decoded.contains(['\0', '\\', '#']) {
        return Err(PathRefused::BadRequest);
    }
    let mut segments = Vec::new();
    for segment in decoded.split('/').skip(1) {
        // Windows and some file systems ignore trailing dots and spaces: `.env.` is `.env`.
        let trimmed = segment.trim_end_matches(['.', ' ']);
        if segment == "." || segment == ".." {
            return Err(PathRefused::BadRequest);
        }
        let lower = trimmed.to_ascii_lowercase();
        let dotfile = segment.starts_with('.') && lower != ".well-known";
        let secret = SECRET_SUFFIXES.iter().any(|s| lower.ends_with(s))
            || SECRET_NAMES.contains(&lower.as_str());
        if dotfile || secret || (trimmed.is_empty() && !segment.is_empty()) {
            return Err(PathRefused::Hidden);
        }
        segments.push(segment.to_owned());
    }
    Ok(segments)
}

/// Serves one folder.
pub struct StaticFiles {
    root: PathBuf,
    // Only Linux has a kernel way to choose; elsewhere every open walks.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    beneath: Beneath,
    cache: FileCache<Small>,
}

/// What serving a request came to.
pub enum Served<B> {
    /// A response from the folder (file, redirect, 304, 416…).
    Response(Response<B>),
    /// Nothing there (or nothing that may be shown): the caller writes its 404 page.
    NotFound,
    /// A folder asked for without its trailing slash: where it is (path and query).
    Redirect(String),
    /// The path was malformed.
    BadRequest,
}

/// Why a path resolves to no file (the [`Served`] answers without a response).
enum Unserved {
    NotFound,
    BadRequest,
    Redirect(String),
}

/// How a file is opened beneath the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beneath {
    /// The kernel resolves the path beneath the root (Linux's `openat2`, `RESOLVE_BENEATH`).
    Kernel,
    /// relive walks it one component at a time (`openat`, `O_NOFOLLOW`), resolving symlinks
    /// itself and refusing any that leave the root. Any Unix.
    Walk,
}

impl Beneath {
    /// The kernel's way where there is one; `RELIVE_OPEN_BENEATH=walk` asks for the walk (the
    /// tests run the static-file suite both ways).
    fn for_this_system() -> Beneath {
        if cfg!(target_os = "linux")
            && std::env::var_os("RELIVE_OPEN_BENEATH").is_none_or(|v| v != "walk")
        {
            Beneath::Kernel
        } else {
            Beneath::Walk
        }
    }
}

/// The most symlinks one path may pass through (Linux's own limit); more is a loop.
const MAX_SYMLINKS: usize = 40;

/// A file opened beneath the root, and its real path (symlinks resolved).
struct Opened {
    fd: OwnedFd,
    real: PathBuf,
}

/// What is asked of every open: read only, never a controlling terminal, never blocking on a
/// FIFO, not inherited by children.
fn read_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK
}

impl StaticFiles {
    /// `root` must exist; it is canonicalized so containment checks compare real paths.
    pub fn new(root: &Path) -> std::io::Result<StaticFiles> {
        StaticFiles::opening(root, Beneath::for_this_system())
    }

    /// Like `new`, with the way files are opened chosen.
    pub fn opening(root: &Path, beneath: Beneath) -> std::io::Result<StaticFiles> {
        let root = std::fs::canonicalize(root)?;
        Ok(StaticFiles {
            root,
            beneath,
            cache: FileCache::default(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Opens `relative` for reading so that resolving it cannot leave the root, whatever
    /// symlinks say or are swapped in meanwhile.
    fn open_beneath(&self, relative: &Path) -> nix::Result<Opened> {
        #[cfg(target_os = "linux")]
        if self.beneath == Beneath::Kernel {
            match self.open_by_kernel(relative) {
                // A kernel before 5.6, or a sandbox that refuses the call: walk instead.
                Err(Errno::ENOSYS | Errno::EPERM) => {}
                opened => return opened,
            }
        }
        self.open_by_walking(relative)
    }

    /// The kernel resolves `relative` beneath the root and refuses what leaves it (absolute
    /// symlinks, `..` above the root, magic links).
    #[cfg(target_os = "linux")]
    fn open_by_kernel(&self, relative: &Path) -> nix::Result<Opened> {
        use nix::fcntl::{AT_FDCWD, OpenHow, ResolveFlag, openat2};
        // Most paths pass no symlink at all, the root's included: then the real path is the
        // root's joined with `relative`, with no need to ask the kernel for it.
        let strict = ResolveFlag::RESOLVE_NO_SYMLINKS;
        let root_flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let strict_root = openat2(
            AT_FDCWD,
            &self.root,
            OpenHow::new().flags(root_flags).resolve(strict),
        );
        let (root, no_symlink_above) = match strict_root {
            Ok(root) => (root, true),
            // A symlink in the root's own path now: its real path is asked for below.
            Err(_) => (
                nix::fcntl::open(&self.root, root_flags, Mode::empty())?,
                false,
            ),
        };
        let beneath = ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS;
        if no_symlink_above {
            let plain = OpenHow::new().flags(read_flags()).resolve(beneath | strict);
            match openat2(&root, relative, plain) {
                Ok(fd) => {
                    return Ok(Opened {
                        fd,
                        real: self.root.join(relative),
                    });
                }
                Err(Errno::ELOOP) => {}
                Err(e) => return Err(e),
            }
        }
        let how = OpenHow::new().flags(read_flags()).resolve(beneath);
        let fd = openat2(&root, relative, how)?;
        // What the descriptor really is, as the kernel resolved it.
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map_err(|_| Errno::ENOENT)?;
        Ok(Opened { fd, real })
    }

    /// Walks `relative` from the root one name at a time, each opened with `O_NOFOLLOW` in the
    /// directory opened before it. A symlink is read and its target walked in its place, as
    /// long as it is relative and stays inside; an absolute one, or a `..` above the root, is
    /// refused as `RESOLVE_BENEATH` refuses it (`EXDEV`).
    fn open_by_walking(&self, relative: &Path) -> nix::Result<Opened> {
        let root = nix::fcntl::open(&self.root, read_flags() | OFlag::O_DIRECTORY, Mode::empty())?;
        let mut todo: VecDeque<OsString> = VecDeque::new();
        push_front(&mut todo, relative)?;
        // The directories (and last the file) opened below the root, with their names.
        let mut walked: Vec<(OwnedFd, OsString)> = Vec::new();
        let mut links = 0;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                walked.pop().ok_or(Errno::EXDEV)?;
                continue;
            }
            let parent = walked.last().map_or(&root, |(fd, _)| fd);
            let flags = if todo.is_empty() {
                read_flags()
            } else {
                read_flags() | OFlag::O_DIRECTORY
            };
            match nix::fcntl::openat(
                parent,
                name.as_os_str(),
                flags | OFlag::O_NOFOLLOW,
                Mode::empty(),
            ) {
                Ok(fd) => walked.push((fd, name)),
                // `O_NOFOLLOW` met a symlink (macOS says ENOTDIR when O_DIRECTORY is set too).
                Err(error @ (Errno::ELOOP | Errno::EMLINK | Errno::ENOTDIR)) => {
                    let Ok(target) = nix::fcntl::readlinkat(parent, name.as_os_str()) else {
                        return Err(error);
                    };
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(Errno::ELOOP);
                    }
                    push_front(&mut todo, Path::new(&target))?;
                }
                Err(error) => return Err(error),
            }
        }
        let mut real = self.root.clone();
        real.extend(walked.iter().map(|(_, name)| name));
        let fd = match walked.pop() {
            Some((fd, _)) => fd,
            None => root,
        };
        Ok(Opened { fd, real })
    }

    /// Whether a file's real path is inside the root with no hidden component: a symlink
    /// inside the root may point at a dotfile.
    fn visible_inside(&self, real: &Path) -> bool {
        real.strip_prefix(&self.root)
            .is_ok_and(|inside| inside.components().all(|c| visible(&c)))
    }

    /// Finds what a request path names: an open file beneath the root and its metadata, a
    /// folder's `index.html`, or why there is nothing to serve.
    fn resolve(&self, path: &str, query: Option<&str>) -> Result<(Opened, FileStat), Unserved> {
        let segments = match check_path(path) {
            Ok(segments) => segments,
            Err(PathRefused::BadRequest) => return Err(Unserved::BadRequest),
            Err(PathRefused::Hidden) => return Err(Unserved::NotFound),
        };
        let relative: PathBuf = segments.iter().filter(|s| !s.is_empty()).collect();
        let relative = if relative.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            relative
        };
        // ENOENT, and EXDEV/ELOOP for paths that would leave the root: all "not found".
        let Ok(mut opened) = self.open_beneath(&relative) else {
            return Err(Unserved::NotFound);
        };
        let Ok(mut stat) = nix::sys::stat::fstat(&opened.fd) else {
            return Err(Unserved::NotFound);
        };
        if nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode)
            .contains(nix::sys::stat::SFlag::S_IFDIR)
        {
            if !path.ends_with('/') {
                // `/docs` → `/docs/`, so the page's relative links resolve inside it.
                let query = query.map(|q| format!("?{q}")).unwrap_or_default();
                return Err(Unserved::Redirect(format!("{path}/{query}")));
            }
            opened = self
                .open_beneath(&relative.join("index.html"))
                .map_err(|_| Unserved::NotFound)?;
            stat = nix::sys::stat::fstat(&opened.fd).map_err(|_| Unserved::NotFound)?;
        }
        if !self.visible_inside(&opened.real) {
            return Err(Unserved::NotFound);
        }
        Ok((opened, stat))
    }

    /// Serves `request` from the folder.
    pub async fn serve<B>(&self, request: Request<B>) -> Served<Body>
    where
        B: Send + 'static,
    {
        let (opened, stat) = match self.resolve(request.uri().path(), request.uri().query()) {
            Ok(found) => found,
            Err(Unserved::NotFound) => return Served::NotFound,
            Err(Unserved::BadRequest) => return Served::BadRequest,
            Err(Unserved::Redirect(location)) => return Served::Redirect(location),
        };
        let mime = mime_guess::from_path(&opened.real).first_or_octet_stream();
        let response =
            match small_file(request.method(), request.headers(), opened.fd, &stat, &mime) {
                Ok(response) => {
                    response.map(|bytes| Full::new(bytes).map_err(|e| match e {}).boxed_unsync())
                }
                Err(fd) => {
                    // The HTTP (ranges, preconditions, large files streamed) is tower-http's; the
                    // file it opens is the one opened above, through its descriptor, not a path
                    // that could be swapped.
                    let file = ServeFile::new_with_mime(descriptor_path(&fd), &mime);
                    let mut response = match file.oneshot(request).await {
                        Ok(response) => response,
                        Err(infallible) => match infallible {},
                    };
                    drop(fd);
                    if response.status() == StatusCode::NOT_FOUND {
                        return Served::NotFound;
                    }
                    revalidate(response.headers_mut());
                    response.map(|body| body.map_err(std::io::Error::other).boxed_unsync())
                }
            };
        Served::Response(response)
    }

    /// The whole answer to a plain `GET`/`HEAD` of a small file (or its `304`), made on the
    /// spot without an HTTP server, so the front door can write it itself; `None` for
    /// everything else (folders without their slash, ranges, large files, nothing there), which
    /// [`StaticFiles::serve`] answers.
    pub fn small_answer(
        &self,
        method: &http::Method,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Option<Response<Bytes>> {
        if !plain(method, headers) {
            return None;
        }
        if let Some(kept) = self.cache.fresh(path) {
            return Some(kept.value.respond(method, headers));
        }
        // Taken before the file's identity: what is read may be kept only if the file's last
        // change lies well before this moment.
        let read_at = SystemTime::now();
        let (opened, stat) = self.resolve(path, None).ok()?;
        let mime = mime_guess::from_path(&opened.real).first_or_octet_stream();
        let mut small = Small::of(&stat, &mime)?;
        if small.needs_body(method, headers) {
            small.read(opened.fd).ok()?;
            if self.reached_without_symlinks(path, &opened.real) {
                let size = small.body.as_ref().map_or(0, Bytes::len);
                let identity = Identity::of(&stat);
                let kept = small.clone();
                self.cache
                    .keep(path, &opened.real, identity, read_at, size, kept);
            }
        }
        Some(small.respond(method, headers))
    }

    /// Whether `real` is what `path` names beneath the root with no symlink on the way (a
    /// folder's `index.html` included), so that the path cannot come to name another file
    /// while that file stays the same.
    fn reached_without_symlinks(&self, path: &str, real: &Path) -> bool {
        let Ok(segments) = check_path(path) else {
            return false;
        };
        let mut named: PathBuf = self.root.clone();
        named.extend(segments.iter().filter(|s| !s.is_empty()));
        if path.ends_with('/') {
            named.push("index.html");
        }
        named == real
    }

    /// The file cache's figures, for `/__relive/status`.
    pub fn cache_figures(&self) -> Figures {
        self.cache.figures()
    }

    /// Empties the file cache: the watcher saw a change.
    pub fn forget(&self) {
        self.cache.forget();
    }
}

/// Revalidate every time: a stale stylesheet or script from the browser's heuristic cache would
/// make a reload show old content.
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

fn revalidate(headers: &mut http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, NO_CACHE);
}

/// A path that opens the file `fd` is open on, not a name that could be swapped meanwhile.
fn descriptor_path(fd: &OwnedFd) -> String {
    if cfg!(target_os = "linux") {
        format!("/proc/self/fd/{}", fd.as_raw_fd())
    } else {
        format!("/dev/fd/{}", fd.as_raw_fd())
    }
}

/// Puts the names of `path` in front of what is left to walk; an absolute path leaves the root.
fn push_front(todo: &mut VecDeque<OsString>, path: &Path) -> nix::Result<()> {
    for component in path.components().rev() {
        match component {
            Component::Normal(name) => todo.push_front(name.to_owned()),
            Component::ParentDir => todo.push_front("..".into()),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(Errno::EXDEV),
        }
    }
    Ok(())
}

/// Whether an `If-None-Match` list names `etag` (weak comparison, as the header asks).
fn etag_matches(tags: &str, etag: &str) -> bool {
    tags.split(',')
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

/// A response body (a small file's bytes, or tower-http's stream of a large one).
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// Files up to this size are read in one go on the spot; larger ones are streamed.
const SMALL_FILE: i64 = 256 * 1024;

/// Whether a request asks for the whole file with no precondition but `If-None-Match` (and
/// `If-Modified-Since`, never honoured): the requests a small file is answered to here.
fn plain(method: &http::Method, headers: &http::HeaderMap) -> bool {
    (method == http::Method::GET || method == http::Method::HEAD)
        && [
            header::RANGE,
            header::IF_RANGE,
            header::IF_MATCH,
            header::IF_UNMODIFIED_SINCE,
        ]
        .iter()
        .all(|h| !headers.contains_key(h))
}

/// A small regular file's answer before a request has its say: its validators, its type, its
/// length and (once read) its bytes. What the file cache keeps.
#[derive(Clone)]
pub struct Small {
    etag: HeaderValue,
    last_modified: HeaderValue,
    content_type: HeaderValue,
    len: u64,
    body: Option<Bytes>,
}

impl Small {
    /// The answer for a file with metadata `stat`, if it is a small regular file. Its `ETag` is
    /// made from the size and the modification time to the nanosecond, and `If-None-Match` is
    /// checked against it: a stylesheet saved twice within one second must not look unchanged,
    /// as it would to `Last-Modified` (whole seconds), which is still sent but never checked.
    fn of(stat: &FileStat, mime: &mime_guess::Mime) -> Option<Small> {
        let regular = nix::sys::stat::SFlag::from_bits_truncate(stat.st_mode)
            .contains(nix::sys::stat::SFlag::S_IFREG);
        if !regular || stat.st_size > SMALL_FILE {
            return None;
        }
        let modified = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(stat.st_mtime).unwrap_or(0));
        let etag = format!(
            "\"{:x}-{:x}.{:x}\"",
            stat.st_size, stat.st_mtime, stat.st_mtime_nsec
        );
        Some(Small {
            etag: HeaderValue::try_from(etag).ok()?,
            last_modified: HeaderValue::try_from(httpdate::fmt_http_date(modified)).ok()?,
            content_type: HeaderValue::try_from(mime.as_ref()).ok()?,
            len: u64::try_from(stat.st_size).ok()?,
            body: None,
        })
    }

    /// Whether the request's `If-None-Match` names this file as it is (a `304`).
    fn unchanged_for(&self, headers: &http::HeaderMap) -> bool {
        // `If-Modified-Since` is never honoured: the front door drops it from every request
        // it forwards, and answers these itself by the same rule.
        let etag = self.etag.to_str().unwrap_or_default();
        headers
            .get(header::IF_NONE_MATCH)
            .and_then(|tags| tags.to_str().ok())
            .is_some_and(|tags| etag_matches(tags, etag))
    }

    /// Whether answering `method` with `headers` needs the file's bytes.
    fn needs_body(&self, method: &http::Method, headers: &http::HeaderMap) -> bool {
        method == http::Method::GET && self.body.is_none() && !self.unchanged_for(headers)
    }

    /// Reads the file's bytes from `fd`: one read from the page cache, no hand-off to the
    /// blocking pool (the hand-offs were most of a static request's cost).
    fn read(&mut self, fd: OwnedFd) -> Result<(), OwnedFd> {
        let mut bytes = Vec::with_capacity(usize::try_from(self.len).unwrap_or(0));
        let mut file = std::fs::File::from(fd);
        if std::io::Read::read_to_end(&mut file, &mut bytes).is_err() {
            return Err(file.into());
        }
        self.len = bytes.len() as u64;
        self.body = Some(Bytes::from(bytes));
        Ok(())
    }

    /// The answer to a plain `GET`/`HEAD` (the body must have been read for a `GET` `200`).
    fn respond(&self, method: &http::Method, headers: &http::HeaderMap) -> Response<Bytes> {
        let builder = Response::builder()
            .header(header::ETAG, &self.etag)
            .header(header::LAST_MODIFIED, &self.last_modified)
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::CACHE_CONTROL, NO_CACHE);
        let built = if self.unchanged_for(headers) {
            builder.status(StatusCode::NOT_MODIFIED).body(Bytes::new())
        } else {
            let builder = builder
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, &self.content_type)
                .header(header::CONTENT_LENGTH, self.len);
            let body = match method {
                // HEAD needs only the length, which the descriptor's metadata already gave.
                &http::Method::HEAD => Bytes::new(),
                _ => self.body.clone().unwrap_or_default(),
            };
            builder.body(body)
        };
        // Every header above is valid, so building cannot fail.
        built.expect("a valid response")
    }
}

/// Answers a plain `GET`/`HEAD` for a small regular file straight from its descriptor.
/// Anything else (ranges, other preconditions, large files) goes back as `Err(fd)`.
fn small_file(
    method: &http::Method,
    headers: &http::HeaderMap,
    fd: OwnedFd,
    stat: &FileStat,
    mime: &mime_guess::Mime,
) -> Result<Response<Bytes>, OwnedFd> {
    let Some(mut small) = Small::of(stat, mime).filter(|_| plain(method, headers)) else {
        return Err(fd);
    };
    if small.needs_body(method, headers) {
        small.read(fd)?;
    }
    Ok(small.respond(method, headers))
}

/// A resolved path component that may be served (no dot-names but `.well-known`).
fn visible(component: &Component<'_>) -> bool {
    match component {
        Component::Normal(name) => {
            let name = name.to_string_lossy();
            !name.starts_with('.') || name.eq_ignore_ascii_case(".well-known")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_checks_table() {
        use PathRefused::*;
        let cases: &[(&str, Result<&[&str], PathRefused>)] = &[
            ("/", Ok(&[""])),
            ("/index.html", Ok(&["index.html"])),
            ("/css/site.css", Ok(&["css", "site.css"])),
            ("/hello%20world.html", Ok(&["hello world.html"])),
            (
                "/.well-known/security.txt",
                Ok(&[".well-known", "security.txt"]),
            ),
            ("/%2e%2e/etc/passwd", Err(BadRequest)),
            ("/../etc/passwd", Err(BadRequest)),
            ("/a/./b", Err(BadRequest)),
            ("/bad%zzescape", Err(BadRequest)),
            ("/trailing%", Err(BadRequest)),
            ("/nul%00.html", Err(BadRequest)),
            ("/back%5cslash", Err(BadRequest)),
            ("/hash%23.html", Err(BadRequest)),
            ("/%ff%fe", Err(BadRequest)),
            ("//evil.example/", Err(BadRequest)),
            ("/.env", Err(Hidden)),
            ("/.ENV.local", Err(Hidden)),
            ("/.git/config", Err(Hidden)),
            ("/.npmrc", Err(Hidden)),
            ("/certs/server.KEY", Err(Hidden)),
            ("/certs/server.pem.", Err(Hidden)),
            ("/certs/server.pem%20", Err(Hidden)),
            ("/id_rsa", Err(Hidden)),
            ("/%2eenv", Err(Hidden)),
        ];
        for (path, expected) in cases {
            let expected = expected.map(|segs| segs.iter().map(|s| s.to_string()).collect());
            assert_eq!(check_path(path), expected, "{path}");
        }
    }

    #[tokio::test]
    async fn symlinks_out_of_the_root_are_not_served() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("ok.txt"), "ok").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            root.path().join("link.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("dir")).unwrap();
        for way in [Beneath::Kernel, Beneath::Walk] {
            let files = StaticFiles::opening(root.path(), way).unwrap();
            let get = |path: &str| Request::get(path).body(()).unwrap();
            assert!(matches!(
                files.serve(get("/ok.txt")).await,
                Served::Response(_)
            ));
            assert!(matches!(
                files.serve(get("/link.txt")).await,
                Served::NotFound
            ));
            assert!(matches!(
                files.serve(get("/dir/secret.txt")).await,
                Served::NotFound
            ));
            assert!(matches!(
                files.serve(get("/missing.txt")).await,
                Served::NotFound
            ));
        }
    }
}
