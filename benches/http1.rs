//! Reading HTTP/1.1 responses off a keep-alive connection, for the benchmark clients.

/// When `buf` holds one whole response (sized by Content-Length, or chunked to its last chunk),
/// its head, lowercased; `None` while more bytes are needed.
pub fn complete_response(buf: &[u8]) -> Option<String> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let body = &buf[end + 4..];
    let complete = if head.contains("transfer-encoding: chunked") {
        body.ends_with(b"0\r\n\r\n")
    } else {
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        body.len() >= length
    };
    complete.then_some(head)
}
