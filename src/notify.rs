//! notify: the `relive notify` command, which finds a running relive through its state file
//! (or `--url`/`--token`) and posts a signal to `/__relive/notify`.
//!
//! Uses: app, config, tls.
//!
//! Must never: send the token anywhere but the loopback or LAN address relive itself wrote.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};

use crate::app::state;
use crate::config::UpstreamUrl;
use crate::config::cli::{NotifyArgs, SignalArg};

/// The JSON body for a signal.
pub fn body(signal: &SignalArg) -> serde_json::Value {
    match signal {
        SignalArg::Reload { reason } => serde_json::json!({ "type": "reload", "reason": reason }),
        SignalArg::Css { paths } => serde_json::json!({ "type": "css", "paths": paths }),
        SignalArg::Image { paths } => serde_json::json!({ "type": "image", "paths": paths }),
        SignalArg::Message { text } => {
            serde_json::json!({ "type": "message", "text": text.join(" ") })
        }
    }
}

/// Sends `request` and reads the answer (at most 64 KiB) until relive closes the connection.
/// A close without TLS's `close_notify` still ends the answer; only no answer at all is an
/// error.
fn exchange(stream: &mut (impl Read + Write), request: &str) -> std::io::Result<String> {
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    match stream.take(64 * 1024).read_to_string(&mut response) {
        Err(error) if response.is_empty() => Err(error),
        _ => Ok(response),
    }
}

/// Runs `relive notify`; returns what to print on success.
pub fn run(args: &NotifyArgs, cwd: &Path) -> anyhow::Result<String> {
    let (url, token, pin) = match (&args.url, &args.token) {
        (Some(url), Some(token)) => (url.clone(), token.clone(), None),
        _ => {
            let dir =
                state::dir().ok_or_else(|| anyhow!("cannot find the state folder (no HOME)"))?;
            let instance = state::pick(&state::list(&dir), cwd).ok_or_else(|| {
                anyhow!(
                    "no running relive found (looked in {}); start one, or pass --url and --token",
                    dir.display()
                )
            })?;
            (
                instance.url,
                args.token.clone().unwrap_or(instance.control_token),
                instance.cert_sha256,
            )
        }
    };
    let target = UpstreamUrl::parse(&url).map_err(|e| anyhow!("--url {e}"))?;
    let signal = args
        .signal
        .clone()
        .unwrap_or(SignalArg::Reload { reason: None });
    let payload = body(&signal).to_string();
    let request = format!(
        "POST /__relive/notify HTTP/1.1\r\nHost: {}:{}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        target.host,
        target.port,
        payload.len()
    );
    let mut stream = TcpStream::connect((target.host.as_str(), target.port))
        .with_context(|| format!("cannot reach relive at {url}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let response = if target.tls {
        let config = crate::tls::relive_client(pin);
        let name = crate::tls::server_name(&target.host).map_err(|e| anyhow!(e))?;
        let connection = rustls::ClientConnection::new(config, name)?;
        exchange(&mut rustls::StreamOwned::new(connection, stream), &request).with_context(
            || {
                format!(
                    "cannot reach relive at {url} over HTTPS (without --url, notify trusts the \
                 certificate the running relive published; with it, the certificate must be \
                 trusted by this system or be relive's local authority's)"
                )
            },
        )?
    } else {
        exchange(&mut stream, &request)
            .with_context(|| format!("no answer from relive at {url}"))?
    };
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("relive at {url} sent no HTTP answer"))?;
    let answer = response.split("\r\n\r\n").nth(1).unwrap_or("").trim();
    if status != 202 {
        let detail = serde_json::from_str::<serde_json::Value>(answer)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| answer.to_owned());
        bail!("relive at {url} refused the signal ({status}): {detail}");
    }
    Ok(format!(
        "sent {} to {url}",
        body(&signal)["type"].as_str().unwrap_or("signal")
    ))
}
