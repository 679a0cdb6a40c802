//! listen: chooses the front door's port before pingora binds it.
//!
//! pingora retries a busy port for half a minute and then panics in its own thread, and it
//! cannot report the port it got for port 0; so relive probes the port itself, moves on to
//! the next ones when allowed, and hands pingora an address it just saw free.
//!
//! Must never: silently pick a different port than asked without saying so.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpListener};

/// How many ports after the requested one are tried.
pub const FALLBACK_PORTS: u16 = 100;

/// Why no port could be had.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error(
        "port {port} is in use (by another process); pass another --port or drop --strict-port"
    )]
    Busy { port: u16 },
    #[error("ports {first} to {last} are all in use; pass another --port (0 picks any free port)")]
    AllBusy { first: u16, last: u16 },
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
}

/// The ports to try, in order: the requested one, then (unless strict) the next 100.
/// Port 0 is a single candidate: the OS picks.
pub fn candidates(port: u16, strict: bool) -> impl Iterator<Item = u16> {
    let extra = if strict || port == 0 {
        0
    } else {
        FALLBACK_PORTS
    };
    (0..=extra).map_while(move |i| port.checked_add(i))
}

/// Finds a free port on `host`: `port` itself, or (unless `strict`) the next free one after it;
/// `port` 0 asks the OS for any. The caller compares the result with `port` to say it moved.
pub fn choose(host: IpAddr, port: u16, strict: bool) -> Result<SocketAddr, PortError> {
    let mut last = port;
    for candidate in candidates(port, strict) {
        last = candidate;
        let addr = SocketAddr::new(host, candidate);
        match TcpListener::bind(addr) {
            Ok(listener) => {
                let addr = listener.local_addr().map_err(|source| PortError::Bind {
                    addr,
                    source,
                    hint: "",
                })?;
                return Ok(addr);
            }
            Err(e) if e.kind() == ErrorKind::AddrInUse => continue,
            Err(source) => {
                let hint = match source.kind() {
                    ErrorKind::PermissionDenied => {
                        " (ports below 1024 need privileges; pick a higher --port)"
                    }
                    ErrorKind::AddrNotAvailable => {
                        " (that address is not one of this machine's; try --host 127.0.0.1)"
                    }
                    _ => "",
                };
                return Err(PortError::Bind { addr, source, hint });
            }
        }
    }
    if strict || port == 0 {
        Err(PortError::Busy { port })
    } else {
        Err(PortError::AllBusy { first: port, last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_follow_the_rules() {
        assert_eq!(candidates(4500, true).collect::<Vec<_>>(), vec![4500]);
        assert_eq!(candidates(0, false).collect::<Vec<_>>(), vec![0]);
        let loose: Vec<u16> = candidates(4500, false).collect();
        assert_eq!(loose.len(), 101);
        assert_eq!((loose[0], loose[100]), (4500, 4600));
        assert_eq!(candidates(65535, false).count(), 1, "never wraps around");
    }

    #[test]
    fn busy_port_moves_on_or_fails_when_strict() {
        let localhost = IpAddr::from([127, 0, 0, 1]);
        let held = TcpListener::bind((localhost, 0)).unwrap();
        let busy = held.local_addr().unwrap().port();
        match choose(localhost, busy, true) {
            Err(PortError::Busy { port }) => assert_eq!(port, busy),
            other => panic!("expected Busy, got {other:?}"),
        }
        if busy < u16::MAX {
            let chosen = choose(localhost, busy, false).unwrap();
            assert!(chosen.port() > busy);
        }
        assert_ne!(choose(localhost, 0, false).unwrap().port(), 0);
    }
}
