//! The request policy on arbitrary heads: a request target and headers from arbitrary bytes go
//! through relive's path checks and injection decisions without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let target = lines.next().unwrap_or("/");
    // The static folder's path check: decode once, refuse what may not be served.
    if let Ok(segments) = relive::origin::static_files::check_path(target) {
        for segment in segments {
            assert!(!segment.contains(['/', '\0', '\\']), "{segment:?}");
            assert!(segment != ".." && segment != ".");
        }
    }
    let mut request = http::HeaderMap::new();
    let mut response = http::HeaderMap::new();
    for (i, line) in lines.enumerate() {
        if let Some((name, value)) = line.split_once(':')
            && let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.trim().as_bytes()),
                http::HeaderValue::from_str(value.trim()),
            )
        {
            if i % 2 == 0 {
                request.append(name, value);
            } else {
                response.append(name, value);
            }
        }
    }
    let status = http::StatusCode::from_u16(200 + (data.len() % 300) as u16)
        .unwrap_or(http::StatusCode::OK);
    for method in [http::Method::GET, http::Method::HEAD, http::Method::POST] {
        let _ = relive::inject::policy::decide(&method, &request, status, &response);
        let _ = relive::inject::policy::wants_page(&method, &request);
    }
    let _ = relive::inject::policy::csp_nonce(&response);
    let _ = relive::inject::policy::csp_conflicts(&response);
    let _ = relive::inject::policy::charset(&response);
});
