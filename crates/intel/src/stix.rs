//! STIX 2.1 building blocks, pure: indicator patterns (reading the subset Watchhouse can match,
//! writing its own), timestamps, deterministic ids and the TLP 2.0 marking definitions.

use serde_json::{json, Value};

use crate::indicator::{normalise_domain, normalise_url, IndicatorValue, Tlp};
use crate::Cidr;

/// The TLP 2.0 extension definition (OASIS, cti-stix-common-objects).
pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

/// The fixed ids of the OASIS TLP 2.0 marking definitions.
pub const TLP2_IDS: &[(Tlp, &str)] = &[
    (
        Tlp::Clear,
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    ),
    (
        Tlp::Green,
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    ),
    (
        Tlp::Amber,
        "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    ),
    (
        Tlp::AmberStrict,
        "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    ),
    (
        Tlp::Red,
        "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
    ),
];

/// The TLP 1.0 marking definitions STIX 2.1 predefines (read, never written).
pub const TLP1_IDS: &[(Tlp, &str)] = &[
    (
        Tlp::Clear,
        "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    ),
    (
        Tlp::Green,
        "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    ),
    (
        Tlp::Amber,
        "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    ),
    (
        Tlp::Red,
        "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
    ),
];

/// The id of a TLP level's marking definition.
pub fn tlp_marking_id(t: Tlp) -> &'static str {
    TLP2_IDS
        .iter()
        .find(|(x, _)| *x == t)
        .map(|(_, id)| *id)
        .unwrap_or(TLP2_IDS[4].1)
}

/// The TLP 2.0 marking-definition object for a level, exactly as OASIS publishes it.
pub fn tlp_marking(t: Tlp) -> Value {
    let level = match t {
        Tlp::Clear => "clear",
        Tlp::Green => "green",
        Tlp::Amber => "amber",
        Tlp::AmberStrict => "amber+strict",
        Tlp::Red => "red",
    };
    json!({
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": tlp_marking_id(t),
        "created": "2022-10-01T00:00:00.000Z",
        "name": t.label(),
        "extensions": {
            TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": level}
        }
    })
}

/// A deterministic STIX id: the same `key` always gives the same id, so re-exports merge and
/// TAXII consumers see versions of one object. STIX 2.1 asks domain objects for UUIDv4 ids, so
/// the id has the version-4 layout, filled from a SHA-256 of the type and key instead of from a
/// random source.
pub fn stable_id(object_type: &str, key: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(format!("watchhouse\u{0}{object_type}\u{0}{key}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    let u = uuid::Builder::from_random_bytes(b).into_uuid();
    format!("{object_type}--{u}")
}

/// A STIX timestamp with millisecond precision (`2026-11-21T08:45:09.123Z`).
pub fn timestamp(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Reads an RFC 3339 timestamp to ms since the epoch.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if s.len() > 64 {
        return None;
    }
    s.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// Writes a pattern for one value: `[ipv4-addr:value = '…']`, `ISSUBSET` for blocks,
/// `domain-name` and `url` with quotes and backslashes escaped.
pub fn pattern_for(v: &IndicatorValue) -> String {
    match v {
        IndicatorValue::Ip(c) => {
            let ty = if c.addr().is_ipv4() {
                "ipv4-addr"
            } else {
                "ipv6-addr"
            };
            if c.is_host() {
                format!("[{ty}:value = '{}']", c.addr())
            } else {
                format!("[{ty}:value ISSUBSET '{c}']")
            }
        }
        IndicatorValue::Domain(d) => format!("[domain-name:value = '{}']", escape(d)),
        IndicatorValue::Url(u) => format!("[url:value = '{}']", escape(u)),
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}

/// Longest pattern read.
pub const MAX_PATTERN: usize = 16 * 1024;

/// Reads the patterns Watchhouse can match: one or more observation expressions joined by `OR`,
/// each one or more comparisons joined by `OR`, each `<type>:value = '<v>'` or
/// `<type>:value ISSUBSET '<block>'` over `ipv4-addr`, `ipv6-addr`, `domain-name` or `url`.
/// Anything else (`AND`, `FOLLOWEDBY`, qualifiers, other object types) is refused with a
/// reason, because matching only part of it would be wrong.
pub fn parse_pattern(p: &str) -> Result<Vec<IndicatorValue>, String> {
    if p.len() > MAX_PATTERN {
        return Err("pattern too long".into());
    }
    let mut t = Tokens { s: p, i: 0 };
    let mut out = Vec::new();
    loop {
        t.expect('[')?;
        loop {
            out.push(comparison(&mut t)?);
            if t.keyword("OR") {
                continue;
            }
            if t.keyword("AND") {
                return Err("`AND` patterns are not matched".into());
            }
            t.expect(']')?;
            break;
        }
        t.ws();
        if t.i == t.s.len() {
            return Ok(out);
        }
        if !t.keyword("OR") {
            return Err(format!(
                "unsupported pattern syntax near `{}`",
                crate::clip(&t.s[t.i..])
            ));
        }
    }
}

fn comparison(t: &mut Tokens<'_>) -> Result<IndicatorValue, String> {
    t.ws();
    let start = t.i;
    while t.i < t.s.len()
        && (t.s.as_bytes()[t.i].is_ascii_alphanumeric() || b"-_:.'".contains(&t.s.as_bytes()[t.i]))
    {
        t.i += 1;
    }
    let path = &t.s[start..t.i];
    let (ty, prop) = path
        .split_once(':')
        .ok_or_else(|| format!("`{}` is not an object path", crate::clip(path)))?;
    if prop != "value" {
        return Err(format!("`{}` is not matched", crate::clip(path)));
    }
    t.ws();
    let subset = if t.s[t.i..].starts_with('=') {
        t.i += 1;
        false
    } else if t.keyword("ISSUBSET") {
        true
    } else {
        return Err(format!(
            "unsupported operator near `{}`",
            crate::clip(&t.s[t.i..])
        ));
    };
    let v = t.string()?;
    match ty {
        "ipv4-addr" | "ipv6-addr" => {
            let c: Cidr = v.parse().map_err(|e: crate::CidrError| e.to_string())?;
            if c.addr().is_ipv4() != (ty == "ipv4-addr") {
                return Err(format!("`{}` is not an {ty}", crate::clip(&v)));
            }
            let _ = subset;
            Ok(IndicatorValue::Ip(c))
        }
        "domain-name" if !subset => normalise_domain(&v)
            .map(IndicatorValue::Domain)
            .ok_or_else(|| format!("`{}` is not a domain name", crate::clip(&v))),
        "url" if !subset => normalise_url(&v)
            .map(IndicatorValue::Url)
            .ok_or_else(|| format!("`{}` is not a usable URL", crate::clip(&v))),
        other => Err(format!(
            "object type `{}` is not matched",
            crate::clip(other)
        )),
    }
}

struct Tokens<'a> {
    s: &'a str,
    i: usize,
}

impl Tokens<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s.as_bytes()[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.ws();
        if self.s[self.i..].starts_with(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!(
                "expected `{c}` near `{}`",
                crate::clip(&self.s[self.i..])
            ))
        }
    }

    fn keyword(&mut self, k: &str) -> bool {
        self.ws();
        let rest = &self.s[self.i..];
        let ok = rest.len() >= k.len()
            && rest.as_bytes()[..k.len()].eq_ignore_ascii_case(k.as_bytes())
            && rest
                .as_bytes()
                .get(k.len())
                .is_none_or(|b| b.is_ascii_whitespace() || *b == b'[' || *b == b'\'');
        if ok {
            self.i += k.len();
        }
        ok
    }

    fn string(&mut self) -> Result<String, String> {
        self.ws();
        if !self.s[self.i..].starts_with('\'') {
            return Err("expected a quoted string".into());
        }
        self.i += 1;
        let mut out = String::new();
        let mut chars = self.s[self.i..].char_indices();
        while let Some((k, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e @ ('\\' | '\''))) => out.push(e),
                    _ => return Err("bad escape in string".into()),
                },
                '\'' => {
                    self.i += k + 1;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err("unterminated string".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_round_trip() {
        for v in [
            "198.51.100.7",
            "198.51.100.0/24",
            "2001:db8::1",
            "2001:db8::/32",
            "c2.example",
            "http://bad.example/it's\\here",
        ] {
            let v = IndicatorValue::parse(v).unwrap();
            let p = pattern_for(&v);
            assert_eq!(parse_pattern(&p).unwrap(), vec![v], "{p}");
        }
    }

    #[test]
    fn supported_and_refused_patterns() {
        let v = parse_pattern(
            "[ipv4-addr:value = '1.2.3.4' OR ipv4-addr:value = '5.6.7.8'] OR [domain-name:value='x.example']",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        for bad in [
            "[ipv4-addr:value = '1.2.3.4' AND ipv4-addr:value = '5.6.7.8']",
            "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '5.6.7.8']",
            "[ipv4-addr:value = '1.2.3.4'] WITHIN 5 SECONDS",
            "[file:hashes.'SHA-256' = 'abc']",
            "[network-traffic:dst_ref.value = '1.2.3.4']",
            "[ipv4-addr:value = '2001:db8::1']",
            "[ipv4-addr:value != '1.2.3.4']",
            "[ipv4-addr:value = '1.2.3.4'",
            "[url:value = 'unterminated]",
            "",
        ] {
            assert!(parse_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_and_times() {
        assert_eq!(stable_id("indicator", "a"), stable_id("indicator", "a"));
        assert_ne!(stable_id("indicator", "a"), stable_id("indicator", "b"));
        assert!(stable_id("indicator", "a").starts_with("indicator--"));
        let u = uuid::Uuid::parse_str(&stable_id("indicator", "a")[11..]).unwrap();
        assert_eq!(u.get_version_num(), 4);
        assert_eq!(timestamp(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20.123Z"),
            Some(1_700_000_000_123)
        );
        assert_eq!(tlp_marking(Tlp::Red)["name"], "TLP:RED");
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn pattern_reader_never_panics(s in "\\PC{0,120}") {
                let _ = parse_pattern(&s);
            }

            #[test]
            fn url_patterns_round_trip(path in "[a-zA-Z0-9/'\\\\._~-]{0,40}") {
                let v = IndicatorValue::Url(normalise_url(&format!("http://h.example/{path}")).unwrap());
                prop_assert_eq!(parse_pattern(&pattern_for(&v)).unwrap(), vec![v]);
            }
        }
    }
}
