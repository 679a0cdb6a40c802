//! One kept-alive HTTP/1.1 connection, for tests that send raw requests one after another on
//! the same connection (a refusal, then a canary) and read each answer by its framing.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::PATIENCE;

/// One answer: status, head (status line and headers) and the body as its framing delimits.
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// How many relive client tags the body carries.
    pub fn tags(&self) -> usize {
        self.text().matches("data-relive").count()
    }
}

/// A connection that keeps its unread bytes across requests.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// `localhost:PORT`, for `Host`.
    pub host: String,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
            host: format!("localhost:{}", addr.port()),
        }
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut chunk))
            .await
            .expect("an answer in time")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// `METHOD target` with `Host` and the `extra` header lines; one answer, or `None` when the
    /// connection closed first (or mid-body).
    pub async fn request(&mut self, method: &str, target: &str, extra: &str) -> Option<Answer> {
        let request = format!(
            "{method} {target} HTTP/1.1\r\nHost: {}\r\n{extra}\r\n",
            self.host
        );
        self.stream.write_all(request.as_bytes()).await.ok()?;
        let end = loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut answer = Answer {
            status,
            head,
            body: Vec::new(),
        };
        if method == "HEAD" || status == 304 || status == 204 {
            return Some(answer);
        }
        if let Some(length) = answer.header("content-length") {
            let length: usize = length.parse().unwrap();
            while self.buf.len() < length {
                if !self.fill().await {
                    return None;
                }
            }
            answer.body = self.buf.drain(..length).collect();
        } else if answer
            .header("transfer-encoding")
            .is_some_and(|te| te.contains("chunked"))
        {
            loop {
                if let Some(body) = relive::front_door::tunnel::dechunk(&self.buf) {
                    let end = self.buf.windows(5).position(|w| w == b"0\r\n\r\n").unwrap();
                    self.buf.drain(..end + 5);
                    answer.body = body;
                    break;
                }
                if !self.fill().await {
                    return None;
                }
            }
        } else {
            panic!("{target}: an answer without framing: {}", answer.head);
        }
        Some(answer)
    }
}
