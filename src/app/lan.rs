//! lan: the machine's own network addresses, for `--host 0.0.0.0` (phones and other computers
//! on the network), and a QR code of the URL for the terminal.
//!
//! Must never: list loopback or link-local addresses (nobody else can use them).

use std::net::{IpAddr, SocketAddr};

/// The addresses other devices can reach this machine at, for a listener bound to `bound`:
/// every up interface's IPv4 (and, for an IPv6 wildcard, global IPv6) address.
pub fn addresses(bound: IpAddr) -> Vec<IpAddr> {
    if !bound.is_unspecified() {
        return Vec::new();
    }
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut found: Vec<IpAddr> = Vec::new();
    for interface in interfaces {
        let Some(address) = interface.address else {
            continue;
        };
        let ip = if let Some(v4) = address.as_sockaddr_in() {
            IpAddr::V4(v4.ip())
        } else if let Some(v6) = address.as_sockaddr_in6() {
            IpAddr::V6(v6.ip())
        } else {
            continue;
        };
        let usable = match ip {
            IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local() && !v4.is_unspecified(),
            // An IPv4 wildcard does not accept IPv6; unicast-global-ish IPv6 only.
            IpAddr::V6(v6) => {
                bound.is_ipv6()
                    && !v6.is_loopback()
                    && !v6.is_unicast_link_local()
                    && !v6.is_unspecified()
            }
        };
        if usable && !found.contains(&ip) {
            found.push(ip);
        }
    }
    found
}

/// The URL for `ip` on `port`.
pub fn url(ip: IpAddr, port: u16, https: bool) -> String {
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}/", SocketAddr::new(ip, port))
}

/// `text` as a QR code drawn with half blocks, light on dark (as terminals show it best).
pub fn qr(text: &str) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_wildcard_bind_lists_addresses() {
        assert!(addresses("127.0.0.1".parse().unwrap()).is_empty());
        for ip in addresses("0.0.0.0".parse().unwrap()) {
            assert!(!ip.is_loopback() && ip.is_ipv4(), "{ip}");
        }
    }

    #[test]
    fn urls_and_qr_codes() {
        assert_eq!(
            url("192.168.1.5".parse().unwrap(), 4500, false),
            "http://192.168.1.5:4500/"
        );
        assert_eq!(
            url("fd00::5".parse().unwrap(), 4500, true),
            "https://[fd00::5]:4500/"
        );
        let code = qr("http://192.168.1.5:4500/").unwrap();
        assert!(code.lines().count() > 10);
        assert!(code.contains('█') || code.contains('▀') || code.contains('▄'));
    }
}
