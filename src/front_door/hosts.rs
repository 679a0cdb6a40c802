//! hosts: the `Host` allow-list that keeps other sites' pages from reaching relive through a
//! DNS name that points at 127.0.0.1 (DNS rebinding).
//!
//! Allowed: `localhost` and `*.localhost`, any IP literal, and the names the user configured
//! (`--allowed-host`; a leading dot allows subdomains too). Case-insensitive; the port is
//! ignored. Must never: allow a name because it merely ends with an allowed one
//! (`evillocalhost` is not `localhost`).

/// The host part of a `Host` header or authority: no port, no IPv6 brackets, lower-cased.
/// `None` when it is empty or malformed.
pub fn host_of(authority: &str) -> Option<String> {
    let authority = authority.trim();
    let host = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        inside
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => {
                if !port.chars().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                host
            }
            Some(_) => return None,
            None => authority,
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    valid.then_some(host)
}

/// Whether `host` (from [`host_of`]) may talk to relive.
pub fn allowed(host: &str, configured: &[String]) -> bool {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    configured.iter().any(|name| {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        match name.strip_prefix('.') {
            // `.example.test` allows the name itself and every subdomain, on label boundaries.
            Some(base) => host == base || host.ends_with(&format!(".{base}")),
            None => host == name,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parsing_table() {
        let cases = [
            ("localhost:4500", Some("localhost")),
            ("LOCALHOST", Some("localhost")),
            ("127.0.0.1:80", Some("127.0.0.1")),
            ("[::1]:4500", Some("::1")),
            ("[::1]", Some("::1")),
            ("app.localhost.:4500", Some("app.localhost")),
            ("", None),
            (":4500", None),
            ("host:port", None),
            ("[::1]x", None),
            ("a b", None),
            ("evil.com/path", None),
        ];
        for (input, expected) in cases {
            assert_eq!(host_of(input).as_deref(), expected, "{input:?}");
        }
    }

    #[test]
    fn allow_list_table() {
        let configured = vec!["myapp.test".to_owned(), ".dev.example".to_owned()];
        let cases = [
            ("localhost", true),
            ("app.localhost", true),
            ("127.0.0.1", true),
            ("192.168.1.20", true),
            ("::1", true),
            ("myapp.test", true),
            ("dev.example", true),
            ("a.b.dev.example", true),
            ("evillocalhost", false),
            ("localhost.evil.com", false),
            ("attacker.com", false),
            ("notmyapp.test", false),
            ("evildev.example", false),
            ("myapp.test.evil.com", false),
        ];
        for (host, expected) in cases {
            assert_eq!(allowed(host, &configured), expected, "{host}");
        }
    }
}
