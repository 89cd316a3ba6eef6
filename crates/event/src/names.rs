//! Host names and URLs as indicators and logs carry them, normalised the same way everywhere so
//! that matching is exact: lower-case host names without a trailing dot, URLs with scheme and
//! host lower-cased and default ports and fragments removed. Pure.

/// Longest domain name (RFC 1035).
const MAX_DOMAIN: usize = 253;
/// Longest URL kept; longer ones are refused rather than truncated.
pub const MAX_URL: usize = 2048;

/// Lower-cases a domain, drops one trailing dot, and checks it is a plausible host name
/// (at least two labels, LDH characters and `_`, labels of 1–63 bytes). `None` if not.
pub fn normalise_domain(s: &str) -> Option<String> {
    let s = s.trim().trim_end_matches('.');
    if s.is_empty() || s.len() > MAX_DOMAIN || !s.contains('.') {
        return None;
    }
    let d = s.to_ascii_lowercase();
    for label in d.split('.') {
        if label.is_empty()
            || label.len() > 63
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
    }
    // A name made only of digits and dots is an (invalid) address, not a domain.
    if d.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    Some(d)
}

/// Normalises a URL for exact matching: scheme and host lower-cased, default port and fragment
/// removed, an empty path written as `/`. Only `http`, `https` and `ftp` are accepted. `None` if
/// it is not such a URL or is longer than [`MAX_URL`].
pub fn normalise_url(s: &str) -> Option<String> {
    let s = s.trim();
    if s.len() > MAX_URL || s.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return None;
    }
    let (scheme, rest) = s.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        "ftp" => "21",
        _ => return None,
    };
    let rest = rest.split('#').next().unwrap_or("");
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    // Credentials in the authority are dropped: they never identify the resource.
    let host_port = authority.rsplit('@').next().unwrap_or("");
    if host_port.is_empty() {
        return None;
    }
    let host_port = host_port.to_ascii_lowercase();
    let (host, port) = if host_port.starts_with('[') {
        match host_port.find(']') {
            Some(i) => (
                &host_port[..=i],
                host_port[i + 1..].strip_prefix(':').unwrap_or(""),
            ),
            None => return None,
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, p),
            None => (host_port.as_str(), ""),
        }
    };
    if host.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut out = String::with_capacity(s.len());
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(host.trim_end_matches('.'));
    if !port.is_empty() && port != default_port {
        out.push(':');
        out.push_str(port);
    }
    if path.is_empty() || path.starts_with('?') {
        out.push('/');
    }
    out.push_str(path);
    Some(out)
}
