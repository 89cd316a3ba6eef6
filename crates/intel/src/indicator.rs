//! The indicator model: what a feed lists and the metadata that travels with it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Cidr;

/// Traffic Light Protocol 2.0 level: how far an indicator may be shared.
///
/// Ordered from least to most restricted, so `tlp <= allowed` is the sharing test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tlp {
    /// `TLP:CLEAR` — may be shared publicly.
    Clear,
    /// `TLP:GREEN` — within the community.
    Green,
    /// `TLP:AMBER` — recipients' organisations and their clients, on a need-to-know basis.
    Amber,
    /// `TLP:AMBER+STRICT` — the recipient's organisation only.
    AmberStrict,
    /// `TLP:RED` — named recipients only; never leaves Watchhouse.
    Red,
}

impl Tlp {
    /// Every level, least restricted first.
    pub const ALL: &'static [Tlp] = &[
        Tlp::Clear,
        Tlp::Green,
        Tlp::Amber,
        Tlp::AmberStrict,
        Tlp::Red,
    ];

    /// Stable lower-case name, as in configuration (`clear`, `green`, `amber`, `amber_strict`, `red`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber_strict",
            Tlp::Red => "red",
        }
    }

    /// The label as people write it (`TLP:AMBER+STRICT`).
    pub fn label(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }

    /// Reads a level from configuration, a MISP tag (`tlp:amber`) or a STIX label, in any case;
    /// `white` is TLP 1.0's name for `clear`.
    pub fn from_name(s: &str) -> Option<Tlp> {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix("tlp:").unwrap_or(&s);
        Some(match s {
            "clear" | "white" => Tlp::Clear,
            "green" => Tlp::Green,
            "amber" => Tlp::Amber,
            "amber+strict" | "amber_strict" | "amber-strict" => Tlp::AmberStrict,
            "red" => Tlp::Red,
            _ => return None,
        })
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What an indicator points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum IndicatorValue {
    /// An IPv4/IPv6 address or block.
    Ip(Cidr),
    /// A domain name (matches its subdomains too), lower case, without a trailing dot.
    Domain(String),
    /// A URL, normalised with [`normalise_url`].
    Url(String),
}

impl IndicatorValue {
    /// Reads an address, block, domain or URL typed by a person or found in a feed.
    pub fn parse(s: &str) -> Result<IndicatorValue, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty indicator".into());
        }
        if let Ok(c) = s.parse::<Cidr>() {
            return Ok(IndicatorValue::Ip(c));
        }
        if s.contains("://") {
            return normalise_url(s)
                .map(IndicatorValue::Url)
                .ok_or_else(|| format!("`{}` is not a usable URL", crate::clip(s)));
        }
        normalise_domain(s)
            .map(IndicatorValue::Domain)
            .ok_or_else(|| {
                format!(
                    "`{}` is not an IP address, CIDR block, domain or URL",
                    crate::clip(s)
                )
            })
    }

    /// Short type name: `ip`, `domain`, `url`.
    pub fn kind(&self) -> &'static str {
        match self {
            IndicatorValue::Ip(_) => "ip",
            IndicatorValue::Domain(_) => "domain",
            IndicatorValue::Url(_) => "url",
        }
    }
}

impl fmt::Display for IndicatorValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndicatorValue::Ip(c) => write!(f, "{c}"),
            IndicatorValue::Domain(d) | IndicatorValue::Url(d) => f.write_str(d),
        }
    }
}

impl FromStr for IndicatorValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        IndicatorValue::parse(s)
    }
}

pub use watchhouse_event::names::{normalise_domain, normalise_url, MAX_URL};

/// One entry of a feed, with the metadata the feed gave it. Fields left `None` take the feed's
/// defaults (its category, confidence and TLP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Indicator {
    /// What is listed.
    pub value: IndicatorValue,
    /// What it is, e.g. `botnet_c2`, `malware_download`, `attacks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// 0–100, how sure the source is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<u8>,
    /// Sharing restriction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tlp: Option<Tlp>,
    /// When the source first listed it (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_seen_ms: Option<i64>,
    /// After this it is no longer used (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until_ms: Option<i64>,
    /// Free text from the source: malware family, SBL reference, threat name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The source's own identifier (STIX id, MISP attribute UUID, ThreatFox id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
}

impl Indicator {
    /// An indicator with no metadata of its own.
    pub fn new(value: IndicatorValue) -> Indicator {
        Indicator {
            value,
            category: None,
            confidence: None,
            tlp: None,
            first_seen_ms: None,
            valid_until_ms: None,
            description: None,
            source_id: None,
        }
    }

    /// True if it has expired at `now_ms`.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.valid_until_ms.is_some_and(|t| t <= now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlp_names_and_order() {
        assert_eq!(Tlp::from_name("TLP:WHITE"), Some(Tlp::Clear));
        assert_eq!(Tlp::from_name("tlp:amber+strict"), Some(Tlp::AmberStrict));
        assert_eq!(Tlp::from_name("amber_strict"), Some(Tlp::AmberStrict));
        assert_eq!(Tlp::from_name("purple"), None);
        assert!(
            Tlp::Clear < Tlp::Green && Tlp::Amber < Tlp::AmberStrict && Tlp::AmberStrict < Tlp::Red
        );
        for t in Tlp::ALL {
            assert_eq!(Tlp::from_name(t.as_str()), Some(*t));
            assert_eq!(Tlp::from_name(t.label()), Some(*t));
        }
    }

    #[test]
    fn values_are_classified_and_normalised() {
        assert_eq!(
            IndicatorValue::parse("192.0.2.7").unwrap(),
            IndicatorValue::Ip("192.0.2.7".parse().unwrap())
        );
        assert_eq!(
            IndicatorValue::parse("Evil.Example.COM.").unwrap(),
            IndicatorValue::Domain("evil.example.com".into())
        );
        assert_eq!(
            IndicatorValue::parse("HTTP://User:pw@Bad.Example:80/x/Y?q=1#frag").unwrap(),
            IndicatorValue::Url("http://bad.example/x/Y?q=1".into())
        );
        assert_eq!(
            normalise_url("https://[2001:DB8::1]:8443").unwrap(),
            "https://[2001:db8::1]:8443/"
        );
        assert_eq!(
            normalise_url("http://h.example?x").unwrap(),
            "http://h.example/?x"
        );
        for bad in [
            "",
            "localhost",
            "1.2.3.999",
            "exa mple.com",
            "javascript://x",
            "http://",
            "http://h:xx/",
            "a..b",
            "-.",
        ] {
            assert!(IndicatorValue::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IndicatorValue::parse(&format!("http://a.example/{}", "x".repeat(3000))).is_err());
    }
}
