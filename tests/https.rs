//! HTTPS: the front door over TLS with relive's local authority (trusted by the test's client,
//! as a user's browser trusts it after the printed step), certificates reused across starts, the
//! user's own pair checked, HTTPS upstreams verified unless `--upstream-insecure`, and a real
//! Chromium reloading over HTTPS.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::{NAVIGATION, PATIENCE, Relive, parse_response, token_of};
use futures_util::StreamExt;
use pingora::tls::{TlsAcceptor, TlsConnector};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// A TLS client that trusts exactly the authority in `ca` (PEM).
fn client_trusting(ca: &Path) -> TlsConnector {
    relive::tls::install_provider();
    let mut roots = RootCertStore::empty();
    let pem = std::fs::read(ca).expect("the authority was written");
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.expect("PEM certificate")).expect("a CA");
    }
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

async fn tls_connect(
    connector: &TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> std::io::Result<pingora::tls::ClientTlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_owned()).expect("valid name");
    connector.connect(name, tcp).await
}

/// Sends one HTTP/1.1 request over `stream` (`Connection: close`) and returns the answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
) -> common::Response {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in NAVIGATION {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut bytes)).await;
    parse_response(&bytes, false)
}

/// `relive --https SITE` keeping its certificate authority in `data`.
fn start_https(site: &Path, data: &Path) -> Relive {
    Relive::start_with_env(
        &["--https", site.to_str().unwrap()],
        site,
        &[("RELIVE_DATA_DIR", data.to_str().unwrap())],
    )
}

#[tokio::test]
async fn https_front_door_serves_injected_pages_and_wss_with_its_local_authority() {
    let site = common::one_page_site();
    let data = tempfile::tempdir().unwrap();
    let relive = start_https(site.path(), data.path());
    let made = relive.wait_for_line("https_authority");
    assert!(
        made.contains("made a local certificate authority"),
        "{made}"
    );
    assert!(
        made.contains("certutil"),
        "the trust step is printed: {made}"
    );
    let ca = data.path().join("ca.pem");
    let connector = client_trusting(&ca);
    let host = format!("localhost:{}", relive.addr.port());

    // A page over HTTPS, injected, verified against the authority relive made.
    let stream = tls_connect(&connector, relive.addr, "localhost")
        .await
        .expect("the certificate verifies for localhost");
    let page = exchange(stream, &host, "/").await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        page.header("strict-transport-security"),
        None,
        "relive never sends HSTS (it would pin localhost to HTTPS in the browser)"
    );
    let token = token_of(&page.text());

    // The same for 127.0.0.1 (an IP address in the certificate).
    let stream = tls_connect(&connector, relive.addr, "127.0.0.1")
        .await
        .expect("the certificate verifies for 127.0.0.1");
    assert_eq!(exchange(stream, &host, "/").await.status, 200);

    // wss:// to relive's socket, then a change reaches it.
    let stream = tls_connect(&connector, relive.addr, "localhost")
        .await
        .unwrap();
    let url = format!("wss://{host}/__relive/ws?token={token}");
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    request
        .headers_mut()
        .insert("origin", format!("https://{host}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("the WebSocket opens over TLS");
    let mut next = async || loop {
        let message = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("an event in time")
            .expect("socket open")
            .expect("valid frame");
        if let Message::Text(text) = message {
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            if json["type"] != "ping" {
                return json;
            }
        }
    };
    assert_eq!(next().await["type"], "hello");
    std::fs::write(site.path().join("index.html"), "<p>changed</p>").unwrap();
    assert_eq!(next().await["type"], "morph");

    // A client that does not trust the authority is refused by its own TLS check.
    relive::tls::install_provider();
    let strict = TlsConnector::from(Arc::new(
        ClientConfig::builder()
            .with_root_certificates(RootCertStore::empty())
            .with_no_client_auth(),
    ));
    assert!(
        tls_connect(&strict, relive.addr, "localhost")
            .await
            .is_err(),
        "an untrusting client must not complete the handshake"
    );
}

#[tokio::test]
async fn the_local_authority_and_certificate_are_reused_on_the_next_start() {
    let site = common::one_page_site();
    let data = tempfile::tempdir().unwrap();
    let first = start_https(site.path(), data.path());
    first.wait_for_line("made a local certificate authority");
    let ca = std::fs::read(data.path().join("ca.pem")).unwrap();
    let leaf = std::fs::read(data.path().join("localhost.pem")).unwrap();
    drop(first);

    let second = start_https(site.path(), data.path());
    let line = second.wait_for_line("https_authority");
    assert!(
        !line.contains("made a local certificate authority"),
        "the second start must reuse the authority: {line}"
    );
    assert_eq!(std::fs::read(data.path().join("ca.pem")).unwrap(), ca);
    assert_eq!(
        std::fs::read(data.path().join("localhost.pem")).unwrap(),
        leaf
    );
    // And what it serves is that certificate: the first run's authority still verifies it.
    let stream = tls_connect(
        &client_trusting(&data.path().join("ca.pem")),
        second.addr,
        "localhost",
    )
    .await
    .expect("the reused certificate verifies");
    let host = format!("localhost:{}", second.addr.port());
    assert_eq!(exchange(stream, &host, "/").await.status, 200);
}

/// A self-signed certificate and key for `localhost` and 127.0.0.1, as PEM files in `dir`.
fn self_signed(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    (cert, key)
}

/// `--cert CERT --key KEY SITE`.
fn pair_args<'a>(cert: &'a Path, key: &'a Path, site: &'a Path) -> [&'a str; 5] {
    let text = |p: &'a Path| p.to_str().unwrap();
    ["--cert", text(cert), "--key", text(key), text(site)]
}

#[tokio::test]
async fn the_users_own_pair_is_served_and_a_mismatched_pair_is_a_clear_error() {
    let site = common::one_page_site();
    let files = tempfile::tempdir().unwrap();
    let (cert_a, key_a) = self_signed(files.path(), "a");
    let (_, key_b) = self_signed(files.path(), "b");

    let failure = Relive::try_start(&pair_args(&cert_a, &key_b, site.path()), site.path())
        .err()
        .expect("a mismatched pair must not start");
    assert_eq!(
        failure.status.code(),
        Some(2),
        "bad input: {}",
        failure.stderr
    );
    assert!(
        failure.stderr.contains("do not belong together")
            && failure.stderr.contains("a.pem")
            && failure.stderr.contains("b-key.pem"),
        "the error names both files: {}",
        failure.stderr
    );

    let missing = Relive::try_start(
        &pair_args(&files.path().join("nope.pem"), &key_a, site.path()),
        site.path(),
    )
    .err()
    .expect("a missing certificate must not start");
    assert!(
        missing.stderr.contains("nope.pem"),
        "the error names the file: {}",
        missing.stderr
    );

    let relive = Relive::start(&pair_args(&cert_a, &key_a, site.path()), site.path());
    let stream = tls_connect(&client_trusting(&cert_a), relive.addr, "localhost")
        .await
        .expect("relive serves the user's certificate");
    let host = format!("localhost:{}", relive.addr.port());
    let page = exchange(stream, &host, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("data-relive"), "{}", page.text());
}

/// An HTTPS dev server with a self-signed certificate: pages, and an upgrade that echoes.
/// Returns its address and how many TLS handshakes it completed.
async fn self_signed_upstream(dir: &Path) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let (cert, key) = self_signed(dir, "upstream");
    relive::tls::install_provider();
    let chain = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = handshakes.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = tls.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    buf.drain(..end + 4);
                    if head.contains("upgrade: websocket") {
                        let _ = tls
                            .write_all(
                                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                            )
                            .await;
                        // Echo everything from here on.
                        if !buf.is_empty() {
                            let _ = tls.write_all(&buf).await;
                        }
                        loop {
                            match tls.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => {
                                    if tls.write_all(&chunk[..n]).await.is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    }
                    let body = format!(
                        "<!doctype html><html><body><p>secure upstream</p><p>{}</p></body></html>",
                        head.lines()
                            .find(|l| l.starts_with("x-forwarded-proto"))
                            .unwrap_or("")
                    );
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if tls.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, handshakes)
}

#[tokio::test]
async fn a_self_signed_https_upstream_needs_upstream_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, handshakes) = self_signed_upstream(dir.path()).await;
    let target = format!("https://127.0.0.1:{}", upstream.port());

    // Verified by default: the self-signed certificate is refused, with the way out named.
    let strict = Relive::start(&["--proxy", &target, "--no-watch"], dir.path());
    let page = common::get(strict.addr, "/", NAVIGATION).await;
    assert_eq!(page.status, 502, "{}", page.text());
    assert!(
        page.text().contains("--upstream-insecure"),
        "the page names the flag: {}",
        page.text()
    );
    assert!(
        page.text()
            .contains("invalid peer certificate: UnknownIssuer"),
        "the page says what was wrong with the certificate: {}",
        page.text()
    );
    assert_eq!(
        handshakes.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "no TLS session may be completed with an unverified upstream"
    );
    drop(strict);

    // With --upstream-insecure: the page arrives, injected, and relive says so at start.
    let relive = Relive::start(
        &["--proxy", &target, "--no-watch", "--upstream-insecure"],
        dir.path(),
    );
    relive.wait_for_line("accepting any certificate");
    let page = common::get(relive.addr, "/", NAVIGATION).await;
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("secure upstream"), "{}", page.text());
    assert!(page.text().contains("data-relive"), "{}", page.text());
    assert!(
        page.text().contains("x-forwarded-proto: http"),
        "{}",
        page.text()
    );

    // An upgrade is tunnelled to the HTTPS upstream too: bytes come back through TLS.
    let mut socket = TcpStream::connect(relive.addr).await.unwrap();
    let head = format!(
        "GET /hmr HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        relive.addr
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(PATIENCE, socket.read(&mut chunk))
            .await
            .expect("the 101 in time")
            .unwrap();
        assert!(
            n > 0,
            "closed before the 101: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    socket.write_all(b"ping-through-tls").await.unwrap();
    let mut echoed = vec![0u8; 16];
    tokio::time::timeout(PATIENCE, socket.read_exact(&mut echoed))
        .await
        .expect("the echo in time")
        .unwrap();
    assert_eq!(&echoed, b"ping-through-tls");
}

#[tokio::test]
async fn chromium_trusting_the_authority_updates_pages_over_https() {
    let certutil_present = std::process::Command::new("certutil")
        .arg("-H")
        .output()
        .is_ok();
    if !common::require_tool("certutil (libnss3-tools)", certutil_present) {
        return;
    }
    let site = common::one_page_site();
    let data = tempfile::tempdir().unwrap();
    let relive = start_https(site.path(), data.path());
    let line = relive.wait_for_line("https_authority");
    let json: serde_json::Value = serde_json::from_str(&line).expect("a JSON log line");
    let message = json["message"]
        .as_str()
        .or(json["fields"]["message"].as_str());
    let message = message.unwrap_or_else(|| panic!("a message in {line}"));
    let command = message
        .lines()
        .last()
        .expect("the trust step is the last line")
        .trim();
    assert!(command.contains("certutil"), "{command}");

    // The printed trust step, run as a user would, in a home of the test's own.
    let home = tempfile::tempdir().unwrap();
    let trusted = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("HOME", home.path())
        .output()
        .expect("sh runs");
    assert!(
        trusted.status.success(),
        "the printed trust step works: {}",
        String::from_utf8_lossy(&trusted.stderr)
    );

    let Some(mut browser) =
        common::browser::Browser::launch_with_env(&[("HOME", home.path())]).await
    else {
        return;
    };
    let url = format!("https://localhost:{}/", relive.addr.port());
    browser.open(&url).await;
    browser.wait_connected().await;
    assert_eq!(
        browser.eval("location.protocol").await,
        serde_json::json!("https:"),
        "the page loaded over HTTPS without a certificate error"
    );
    assert_eq!(
        browser.eval("globalThis.__relive.transport").await,
        serde_json::json!("websocket"),
        "the client is connected over wss://, not the event-stream fallback"
    );
    assert_eq!(
        browser
            .eval("performance.getEntriesByType('navigation')[0].nextHopProtocol")
            .await,
        serde_json::json!("h2"),
        "the page came over HTTP/2 while the socket uses its own HTTP/1.1 connection"
    );
    browser.eval("window.marker = 1").await;
    std::fs::write(
        site.path().join("index.html"),
        "<!doctype html><html><body><h1 id=changed>changed</h1></body></html>",
    )
    .unwrap();
    browser
        .wait_until("document.getElementById('changed') !== null && window.marker === 1")
        .await;
}

#[tokio::test]
async fn relive_notify_reaches_an_https_relive_by_its_published_certificate() {
    let site = common::one_page_site();
    let data = tempfile::tempdir().unwrap();
    let relive = start_https(site.path(), data.path());
    let (status, stderr) = common::run_to_exit_with(
        &["notify", "message", "over TLS"],
        site.path(),
        relive.runtime_dir.path(),
    );
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("sent message to https://"), "{stderr}");

    // Given only a URL, the certificate must verify, and relive's authority lives in a data
    // folder this notify does not know: it refuses rather than send the token unverified.
    let url = format!("https://localhost:{}", relive.addr.port());
    let (status, stderr) = common::run_to_exit(
        &["notify", "--url", &url, "--token", "t", "reload"],
        site.path(),
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("UnknownIssuer") || stderr.contains("certificate"),
        "{stderr}"
    );
}

#[tokio::test]
async fn relive_check_reaches_a_self_signed_https_dev_server_with_upstream_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let (upstream, _) = self_signed_upstream(dir.path()).await;
    let target = format!("https://127.0.0.1:{}", upstream.port());
    let check = |extra: &'static [&'static str]| {
        let target = target.clone();
        let cwd = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let mut args = vec![
                "check",
                "--no-browser",
                "--timeout",
                "10",
                "--proxy",
                &target,
            ];
            args.extend(extra);
            args.push("/");
            common::run_to_exit(&args, &cwd)
        })
    };
    let (status, stderr) = check(&[]).await.unwrap();
    assert_eq!(status.code(), Some(1), "unverified must fail: {stderr}");
    let (status, stderr) = check(&["--upstream-insecure"]).await.unwrap();
    assert!(status.success(), "{stderr}");
}
