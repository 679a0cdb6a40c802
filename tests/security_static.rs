//! SECURITY.md §4, the static folder, with raw bytes over one kept-alive connection: every
//! refusal is followed by a canary request on the same connection, which must still be served
//! (a refusal may not desync or poison the connection). The folder holds a secret in every
//! place a path trick could reach; no response may ever contain it.

mod common;

use std::path::Path;

use common::Relive;
use common::keepalive::Conn;

const SECRET: &str = "TOPSECRET-7f3a";

/// A site with secrets beside, inside and behind the pages.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("index.html"),
        "<!doctype html><html><body><p>canary</p></body></html>",
    )
    .unwrap();
    for secret in [
        ".env",
        ".env.local",
        ".npmrc",
        "server.pem",
        "SERVER.KEY",
        "site.crt",
        "bundle.p12",
        "id_rsa",
    ] {
        std::fs::write(root.join(secret), SECRET).unwrap();
    }
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join(".git/config"), SECRET).unwrap();
    std::fs::create_dir_all(root.join(".well-known")).unwrap();
    std::fs::write(root.join(".well-known/security.txt"), "Contact: x").unwrap();
    std::fs::create_dir_all(root.join("evil.com")).unwrap();
    std::fs::write(root.join("evil.com/index.html"), "<p>sub</p>").unwrap();
    std::fs::create_dir_all(root.join("nolisting")).unwrap();
    std::fs::write(root.join("nolisting/private-name.txt"), SECRET).unwrap();
    std::fs::write(root.join("big.txt"), "0123456789".repeat(1000)).unwrap();
    dir
}

/// The canary: the page itself, on the same connection.
async fn canary(conn: &mut Conn, after: &str) {
    let answer = conn
        .request("GET", "/", "")
        .await
        .unwrap_or_else(|| panic!("the connection closed after {after}"));
    assert_eq!(answer.status, 200, "canary after {after}");
    assert!(answer.text().contains("canary"), "canary after {after}");
}

/// Every test runs against both ways relive opens a file beneath the root: the kernel's
/// (`openat2`) and the walk one name at a time that other systems use.
const WAYS: [&str; 2] = ["kernel", "walk"];

fn start(root: &Path, way: &str) -> Relive {
    // Said first, so a failure's output names the way that failed.
    eprintln!("opening files beneath the root by: {way}");
    Relive::start_with_env(
        &[root.to_str().unwrap(), "--no-watch"],
        root,
        &[("RELIVE_OPEN_BENEATH", way)],
    )
}

#[tokio::test]
async fn malformed_paths_are_400_and_the_connection_stays_usable() {
    let dir = site();
    for way in WAYS {
        let relive = start(dir.path(), way);
        let mut conn = Conn::open(relive.addr).await;
        for target in [
            "/bad%zzescape",
            "/trailing%",
            "/nul%00.html",
            "/index.html%00.txt",
            "/back%5cslash",
            "/back\\slash",
            "/hash%23.html",
            "/%ff%fe",
            "/../.env",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/a/./index.html",
            "/evil.com/../.env",
        ] {
            let answer = conn
                .request("GET", target, "")
                .await
                .unwrap_or_else(|| panic!("{target}: connection closed instead of a 400"));
            assert_eq!(answer.status, 400, "{target}: {}", answer.text());
            assert!(!answer.text().contains(SECRET), "{target}");
            canary(&mut conn, target).await;
        }
    }
}

#[tokio::test]
async fn dotfiles_and_secret_files_are_never_served_however_they_are_spelled() {
    let dir = site();
    for way in WAYS {
        let relive = start(dir.path(), way);
        let mut conn = Conn::open(relive.addr).await;
        for target in [
            "/.env",
            "/.ENV",
            "/.env.local",
            "/%2eenv",
            "/.env.",
            "/.env%20",
            "/.env/",
            "/.npmrc",
            "/.git/config",
            "/.GIT/config",
            "/server.pem",
            "/server.PEM",
            "/server.pem.",
            "/server.pem%20",
            "/server.pem/",
            "/SERVER.KEY",
            "/server.key",
            "/site.crt",
            "/bundle.p12",
            "/id_rsa",
            "/ID_RSA",
        ] {
            let answer = conn
                .request("GET", target, "")
                .await
                .unwrap_or_else(|| panic!("{target}: connection closed"));
            assert!(
                answer.status == 404 || answer.status == 400,
                "{target} answered {}",
                answer.status
            );
            assert!(
                !answer.text().contains(SECRET),
                "{target} leaked the secret"
            );
            canary(&mut conn, target).await;
        }
        // `.well-known` is the one dot-folder that is served.
        let answer = conn
            .request("GET", "/.well-known/security.txt", "")
            .await
            .unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.text(), "Contact: x");
    }
}

#[tokio::test]
async fn no_listing_safe_redirects_and_escaped_error_pages() {
    let dir = site();
    for way in WAYS {
        let relive = start(dir.path(), way);
        let mut conn = Conn::open(relive.addr).await;

        // A folder without index.html is not listed.
        let answer = conn.request("GET", "/nolisting/", "").await.unwrap();
        assert_eq!(answer.status, 404);
        assert!(!answer.text().contains("private-name"), "{}", answer.text());
        canary(&mut conn, "a folder without index").await;

        // The folder redirect keeps the path relative to this host, whatever the spelling.
        let answer = conn.request("GET", "/evil.com", "").await.unwrap();
        assert_eq!(answer.status, 307);
        assert_eq!(answer.header("location").as_deref(), Some("/evil.com/"));
        canary(&mut conn, "a folder redirect").await;
        for target in ["//evil.com", "/%2fevil.com", "/%5cevil.com", "/\\evil.com"] {
            let answer = conn.request("GET", target, "").await;
            let answer = answer.unwrap_or_else(|| panic!("{target}: connection closed"));
            let location = answer.header("location").unwrap_or_default();
            assert!(
                !location.starts_with("//") && !location.starts_with("/\\"),
                "{target} redirected off-site to {location}"
            );
            canary(&mut conn, target).await;
        }

        // Error pages escape the path and forbid everything active.
        let answer = conn
            .request("GET", "/%3Cscript%3Ealert(1)%3C/script%3E.html", "")
            .await
            .unwrap();
        assert_eq!(answer.status, 404);
        assert!(
            !answer.text().contains("<script>alert(1)"),
            "{}",
            answer.text()
        );
        let csp = answer.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("default-src 'none'"), "error page CSP: {csp}");
        canary(&mut conn, "an error page").await;
    }
}

#[tokio::test]
async fn ranges_are_capped_and_bad_validators_are_harmless() {
    let dir = site();
    for way in WAYS {
        let relive = start(dir.path(), way);
        let mut conn = Conn::open(relive.addr).await;

        let answer = conn
            .request("GET", "/big.txt", "Range: bytes=0-9\r\n")
            .await
            .unwrap();
        assert_eq!(answer.status, 206);
        assert_eq!(answer.text(), "0123456789");
        canary(&mut conn, "a range").await;

        // Many overlapping ranges must not multiply the file into a huge multipart answer.
        let many: Vec<String> = (0..200).map(|_| "0-9999".to_owned()).collect();
        let header = format!("Range: bytes={}\r\n", many.join(","));
        let answer = conn.request("GET", "/big.txt", &header).await.unwrap();
        assert!(
            answer.body.len() <= 10_000,
            "200 overlapping ranges gave {} bytes (status {})",
            answer.body.len(),
            answer.status
        );
        canary(&mut conn, "many ranges").await;

        for header in [
            "Range: bytes=99999-\r\n",
            "Range: bytes=-0\r\n",
            "Range: bytes=9-1\r\n",
            "Range: lines=1-2\r\n",
            "If-None-Match: \"unterminated\r\n",
            "If-Modified-Since: yesterday-ish\r\n",
            "If-Range: garbage\r\nRange: bytes=0-1\r\n",
        ] {
            let answer = conn
                .request("GET", "/big.txt", header)
                .await
                .unwrap_or_else(|| panic!("{header:?}: connection closed"));
            assert!(
                [200, 206, 416].contains(&answer.status),
                "{header:?} answered {}",
                answer.status
            );
            canary(&mut conn, header).await;
        }
    }
}

#[tokio::test]
async fn symlinks_are_followed_only_inside_the_root_and_never_to_a_hidden_file() {
    use std::os::unix::fs::symlink;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("notes.txt"), SECRET).unwrap();
    let dir = site();
    let root = dir.path();
    symlink(outside.path(), root.join("linked")).unwrap();
    symlink(outside.path().join("notes.txt"), root.join("notes.txt")).unwrap();
    // Relative links that climb out, loop, or lead to a dotfile.
    let outside_name = outside.path().file_name().unwrap().to_str().unwrap();
    let climbing = format!("../../{outside_name}/notes.txt");
    std::fs::create_dir(root.join("docs")).unwrap();
    symlink(&climbing, root.join("docs/climb.txt")).unwrap();
    symlink("loop.txt", root.join("loop.txt")).unwrap();
    symlink(".env", root.join("env.txt")).unwrap();
    // Relative links that stay inside are followed, through folders too.
    symlink("../index.html", root.join("docs/home.html")).unwrap();
    symlink("docs", root.join("manual")).unwrap();
    for way in WAYS {
        let relive = start(root, way);
        let mut conn = Conn::open(relive.addr).await;
        for target in [
            "/linked/notes.txt",
            "/notes.txt",
            "/linked/",
            "/docs/climb.txt",
            "/loop.txt",
            "/env.txt",
        ] {
            let answer = conn.request("GET", target, "").await.unwrap();
            assert_eq!(answer.status, 404, "{target} by {way}");
            assert!(
                !answer.text().contains(SECRET),
                "{target} leaked the secret"
            );
            canary(&mut conn, target).await;
        }
        for target in ["/docs/home.html", "/manual/home.html"] {
            let answer = conn.request("GET", target, "").await.unwrap();
            assert_eq!(answer.status, 200, "{target} by {way}");
            assert!(answer.text().contains("canary"), "{target} by {way}");
        }
    }
}
