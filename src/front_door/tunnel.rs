//! tunnel: forwards HTTP/1.1 upgrade requests (WebSockets: relive's own, Vite's and Next's HMR,
//! any user socket) from the front door to their peer and pipes bytes both ways.
//!
//! pingora 0.9 proxies upgrades itself but tears a tunnel down right after the `101` when the
//! peer answers before pingora has forwarded the request's empty body (cloudflare/pingora#946;
//! a fast local peer on a busy machine hits it), so the front door hands upgrades here instead.
//! The request goes out exactly as it came in (target, headers, header case), with relive's
//! `X-Forwarded-*`; the peer's answer comes back exactly as sent.
//!
//! Must never: open a tunnel before the peer answered `101`, or forward more than one request
//! on the peer connection.

use std::net::SocketAddr;

use bytes::{BufMut, Bytes, BytesMut};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// TLS to an HTTPS peer: the name to verify and the client settings.
pub struct PeerTls {
    pub name: rustls_pki_types::ServerName<'static>,
    pub config: std::sync::Arc<rustls::ClientConfig>,
}

/// The connection to the peer, plain or TLS.
trait PeerStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PeerStream for T {}
type Peer = Box<dyn PeerStream>;

/// The most a peer's response head may take.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;

/// An error on the peer's side, of `etype`, explained by `context`.
fn peer_error(etype: ErrorType, context: String) -> Box<Error> {
    Error::create(
        etype,
        pingora::ErrorSource::Upstream,
        Some(context.into()),
        None,
    )
}

/// A failure after the peer accepted the connection: the peer is up, so this is not a reason
/// to show the waiting page (only failures to connect are).
fn upstream_error(context: &str, cause: impl std::fmt::Display) -> Box<Error> {
    peer_error(ErrorType::ReadError, format!("{context}: {cause}"))
}

/// The request head as it goes to the peer: the original method, target and headers.
pub fn request_head(request: &RequestHeader) -> BytesMut {
    let mut head = BytesMut::with_capacity(512);
    head.put_slice(request.method.as_str().as_bytes());
    head.put_slice(b" ");
    head.put_slice(request.raw_path());
    head.put_slice(b" HTTP/1.1\r\n");
    request.header_to_h1_wire(&mut head);
    head.put_slice(b"\r\n");
    head
}

/// Parses a response head; returns it and how many bytes of `buf` it took, or `None` when
/// more bytes are needed.
pub fn parse_response_head(buf: &[u8]) -> Result<Option<(ResponseHeader, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(buf) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(upstream_error("malformed response head from the peer", e)),
    };
    let status = response.code.unwrap_or(502);
    let mut head = ResponseHeader::build(status, Some(response.headers.len()))?;
    if let Some(reason) = response.reason {
        head.set_reason_phrase(Some(reason))?;
    }
    for header in response.headers.iter() {
        head.append_header(header.name.to_owned(), header.value)?;
    }
    Ok(Some((head, length)))
}

/// Connects to the first address that answers, and makes the TLS handshake when `tls`.
async fn connect(addrs: &[SocketAddr], tls: Option<PeerTls>) -> Result<(Peer, SocketAddr)> {
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let Some(tls) = tls else {
                    return Ok((Box::new(stream), *addr));
                };
                let connector = pingora::tls::TlsConnector::from(tls.config);
                return match connector.connect(tls.name, stream).await {
                    Ok(stream) => Ok((Box::new(stream), *addr)),
                    Err(error) => Err(peer_error(
                        ErrorType::TLSHandshakeFailure,
                        format!("tls connect error: {error}"),
                    )),
                };
            }
            Err(error) => last_error = Some(error),
        }
    }
    let error = last_error.map_or_else(|| "no address".to_owned(), |e| e.to_string());
    Err(peer_error(ErrorType::ConnectRefused, error))
}

/// Sends `request` to one of `addrs` and relays the exchange: the peer's response head, and
/// then either the upgraded byte stream both ways or the peer's refusal with its body.
/// Returns the address that answered.
pub async fn forward(
    session: &mut Session,
    request: &RequestHeader,
    addrs: &[SocketAddr],
    tls: Option<PeerTls>,
) -> Result<SocketAddr> {
    let (mut peer, addr) = connect(addrs, tls).await?;
    peer.write_all(&request_head(request))
        .await
        .map_err(|e| upstream_error("sending the upgrade request", e))?;

    let mut buf = BytesMut::with_capacity(8 * 1024);
    let (head, length) = loop {
        if peer
            .read_buf(&mut buf)
            .await
            .map_err(|e| upstream_error("reading the upgrade response", e))?
            == 0
        {
            return Err(upstream_error(
                "upgrade response",
                "the peer closed the connection",
            ));
        }
        if let Some(parsed) = parse_response_head(&buf)? {
            break parsed;
        }
        if buf.len() > MAX_HEAD {
            return Err(upstream_error("upgrade response", "head too large"));
        }
    };
    let rest = buf.split_off(length);
    // One exchange per peer connection, and the downstream connection ends with the tunnel.
    session.set_keepalive(None);
    if head.status.as_u16() != 101 {
        // A refusal (403 from a host check, 404…): a small page, read whole and re-framed.
        return relay_refusal(session, head, rest, peer)
            .await
            .map(|()| addr);
    }
    session.write_response_header(Box::new(head), false).await?;
    if !rest.is_empty() {
        session
            .write_response_body(Some(rest.freeze()), false)
            .await?;
    }
    pipe(session, peer).await;
    Ok(addr)
}

/// The most of a refusal's body relayed, and how long the peer may take to send it.
const MAX_REFUSAL: usize = 1024 * 1024;
const REFUSAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How a refusal's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

fn framing(head: &ResponseHeader) -> Framing {
    let chunked = head
        .headers
        .get(http::header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = crate::hub::routes::declared_length(&head.headers);
    match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(length)) => Framing::Length(length),
        (false, None) => Framing::UntilClose,
    }
}

/// Decodes a complete chunked body; `None` while more bytes are needed.
pub fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Reads a refusal's body (bounded in size and time) and sends it with a plain length, so the
/// browser gets a complete answer even from a peer that keeps its connection open.
async fn relay_refusal(
    session: &mut Session,
    mut head: ResponseHeader,
    mut body: BytesMut,
    mut peer: Peer,
) -> Result<()> {
    let framing = framing(&head);
    let read = async {
        loop {
            let complete = match framing {
                Framing::Length(length) => body.len() >= length,
                Framing::Chunked => dechunk(&body).is_some(),
                Framing::UntilClose => false,
            };
            if complete || body.len() > MAX_REFUSAL {
                return;
            }
            match peer.read_buf(&mut body).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, read).await;
    let body = match framing {
        Framing::Length(length) => {
            body.truncate(length);
            body.to_vec()
        }
        Framing::Chunked => dechunk(&body).unwrap_or_default(),
        Framing::UntilClose => body.to_vec(),
    };
    head.remove_header(&http::header::TRANSFER_ENCODING);
    head.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    let is_head = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(head), is_head)
        .await?;
    if !is_head {
        session
            .write_response_body(Some(Bytes::from(body)), true)
            .await?;
    }
    Ok(())
}

/// Copies bytes both ways until either side closes. Errors here are just disconnects.
async fn pipe(session: &mut Session, peer: Peer) {
    let (mut from_peer, mut to_peer) = tokio::io::split(peer);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        // Both reads are cancel-safe: the one that loses the race has consumed nothing.
        let step = tokio::select! {
            read = from_peer.read(&mut buf) => Step::FromPeer(read),
            body = session.read_request_body() => Step::FromClient(body),
        };
        let ok = match step {
            Step::FromPeer(Ok(n)) if n > 0 => session
                .write_response_body(Some(Bytes::copy_from_slice(&buf[..n])), false)
                .await
                .is_ok(),
            Step::FromClient(Ok(Some(data))) => to_peer.write_all(&data).await.is_ok(),
            _ => false,
        };
        if !ok {
            break;
        }
    }
    let _ = to_peer.shutdown().await;
    let _ = session.write_response_body(None, true).await;
}

enum Step {
    FromPeer(std::io::Result<usize>),
    FromClient(Result<Option<Bytes>>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_head_keeps_target_and_headers_exactly() {
        let mut request = RequestHeader::build("GET", b"/ws/%2e%2e/hmr?token=a%20b", None).unwrap();
        request.append_header("Host", "localhost:5173").unwrap();
        request
            .append_header("Sec-WebSocket-Protocol", "vite-hmr")
            .unwrap();
        let head = request_head(&request);
        let text = String::from_utf8(head.to_vec()).unwrap();
        assert!(
            text.starts_with("GET /ws/%2e%2e/hmr?token=a%20b HTTP/1.1\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Sec-WebSocket-Protocol: vite-hmr\r\n"),
            "{text}"
        );
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn chunked_refusals_are_decoded_once_complete() {
        assert_eq!(dechunk(b"5\r\nhello\r\n0\r\n\r\n"), Some(b"hello".to_vec()));
        assert_eq!(dechunk(b"5\r\nhel"), None);
        assert_eq!(dechunk(b"5\r\nhello\r\n"), None);
    }

    #[test]
    fn response_head_parses_in_pieces() {
        let raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc\r\n\r\n\x81\x02hi";
        assert!(parse_response_head(&raw[..20]).unwrap().is_none());
        let (head, length) = parse_response_head(raw).unwrap().unwrap();
        assert_eq!(head.status.as_u16(), 101);
        assert_eq!(head.headers.get("sec-websocket-accept").unwrap(), "abc");
        assert_eq!(&raw[length..], b"\x81\x02hi");
        assert!(parse_response_head(b"HTTP/1.1 abc\r\n\r\n").is_err());
    }
}
