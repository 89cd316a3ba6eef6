//! Known-bad address lists and the matcher the hub (and later the collectors) look addresses up in.
//!
//! Pure: lists arrive as text, the matcher is built in memory and is immutable once built, so the
//! caller can rebuild a new one off the hot path and swap it in atomically (`Arc` swap).
//!
//! **Invariant: a malformed entry never poisons a list.** [`parse_netset`] skips and counts it,
//! keeping a few samples for the operator; every well-formed entry is kept.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

pub mod asn;
pub mod formats;
pub mod indicator;
pub mod matcher;
pub mod stix;

pub use indicator::{Indicator, IndicatorValue, Tlp};
pub use matcher::{FeedId, FeedInfo, Label, ListInfo, Match, Matcher, MatcherBuilder, MAX_LISTS};

/// An address block: an address and a prefix length. Host bits are cleared on construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

/// Why a CIDR could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CidrError {}

impl serde::Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

pub(crate) fn v4_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

pub(crate) fn v6_mask(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

impl Cidr {
    /// A block from an address and prefix length; errors if the length is too long.
    pub fn new(addr: IpAddr, len: u8) -> Result<Cidr, CidrError> {
        match addr {
            IpAddr::V4(a) if len <= 32 => Ok(Cidr {
                addr: IpAddr::V4(Ipv4Addr::from(u32::from(a) & v4_mask(len))),
                len,
            }),
            IpAddr::V6(a) if len <= 128 => Ok(Cidr {
                addr: IpAddr::V6(Ipv6Addr::from(u128::from(a) & v6_mask(len))),
                len,
            }),
            _ => Err(CidrError(format!(
                "prefix length /{len} is too long for {addr}"
            ))),
        }
    }

    /// A single address.
    pub fn host(addr: IpAddr) -> Cidr {
        let len = if addr.is_ipv4() { 32 } else { 128 };
        Cidr { addr, len }
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Prefix length.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// True when the block is one address.
    pub fn is_host(&self) -> bool {
        self.len == if self.addr.is_ipv4() { 32 } else { 128 }
    }

    /// Does the block contain `ip`?
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => u32::from(a) & v4_mask(self.len) == u32::from(n),
            (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) & v6_mask(self.len) == u128::from(n),
            _ => false,
        }
    }

    /// The `i`-th address of the block (wrapping inside it); used by the demo simulator.
    pub fn nth(&self, i: u64) -> IpAddr {
        match self.addr {
            IpAddr::V4(n) => {
                let size = 1u64 << (32 - self.len as u32);
                IpAddr::V4(Ipv4Addr::from(u32::from(n) + (i % size) as u32))
            }
            IpAddr::V6(n) => {
                let bits = 128 - self.len as u32;
                let off = if bits >= 64 {
                    i as u128
                } else {
                    (i % (1u64 << bits)) as u128
                };
                IpAddr::V6(Ipv6Addr::from(u128::from(n) + off))
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_host() {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        match s.split_once('/') {
            None => s
                .parse::<IpAddr>()
                .map(Cidr::host)
                .map_err(|_| CidrError(format!("`{}` is not an IP address", clip(s)))),
            Some((a, l)) => {
                let addr = a
                    .parse::<IpAddr>()
                    .map_err(|_| CidrError(format!("`{}` is not an IP address", clip(a))))?;
                let len = l
                    .parse::<u8>()
                    .map_err(|_| CidrError(format!("`{}` is not a prefix length", clip(l))))?;
                Cidr::new(addr, len)
            }
        }
    }
}

pub(crate) fn clip(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What parsing a list produced besides its entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseReport {
    /// Entries accepted.
    pub accepted: usize,
    /// Non-comment lines that were not valid entries.
    pub skipped: usize,
    /// Up to [`ParseReport::MAX_SAMPLES`] of the skipped lines: (1-based line number, reason).
    pub samples: Vec<(usize, String)>,
}

impl ParseReport {
    /// How many skipped lines are kept as samples.
    pub const MAX_SAMPLES: usize = 10;
}

/// Parses a plain IP / CIDR list: FireHOL `.ipset` / `.netset`, Spamhaus DROP (`cidr ; SBL…`),
/// or any file with one address or block per line. `#` and `;` start comments.
pub fn parse_netset(text: &str) -> (Vec<Cidr>, ParseReport) {
    let mut out = Vec::new();
    let mut rep = ParseReport::default();
    for (i, line) in text.lines().enumerate() {
        let entry = line.split(['#', ';']).next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        match entry.parse::<Cidr>() {
            Ok(c) => {
                out.push(c);
                rep.accepted += 1;
            }
            Err(e) => {
                rep.skipped += 1;
                if rep.samples.len() < ParseReport::MAX_SAMPLES {
                    rep.samples.push((i + 1, e.to_string()));
                }
            }
        }
    }
    (out, rep)
}

/// Private, loopback, link-local, CGNAT and other non-internet ranges (RFC 1918, 6598, 3927,
/// 4193, …). The collector treats them as the member's own.
pub fn is_non_internet(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_broadcast()
                || a.is_multicast()
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped()
                    .is_some_and(|v4| is_non_internet(IpAddr::V4(v4)))
        }
    }
}

/// A set of blocks for membership tests (the member's own networks). Linear; members have few.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetSet(Vec<Cidr>);

impl NetSet {
    /// From blocks.
    pub fn new(v: Vec<Cidr>) -> Self {
        NetSet(v)
    }

    /// Does any block contain `ip`?
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The blocks.
    pub fn cidrs(&self) -> &[Cidr] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_firehol_and_spamhaus_lines() {
        let text = "# name\n1.2.3.4\n10.0.0.0/8\n 5.6.0.0/16 ; SBL123\nbogus\n1.2.3.0/33\n::1\n2001:db8::/32\n";
        let (v, rep) = parse_netset(text);
        assert_eq!(rep.accepted, 5);
        assert_eq!(rep.skipped, 2);
        assert_eq!(rep.samples[0].0, 5);
        assert!(v.contains(&"5.6.0.0/16".parse().unwrap()));
    }

    #[test]
    fn host_bits_are_cleared() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains("10.255.0.1".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        assert!(!c.contains("::1".parse().unwrap()));
    }

    #[test]
    fn non_internet_ranges() {
        for a in [
            "10.1.1.1",
            "192.168.0.1",
            "172.16.5.5",
            "127.0.0.1",
            "100.64.0.1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_non_internet(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "100.128.0.1", "2001:4860::1", "172.32.0.1"] {
            assert!(!is_non_internet(a.parse().unwrap()), "{a}");
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn parse_netset_never_panics(s in "\\PC{0,200}") {
                let (v, rep) = parse_netset(&s);
                prop_assert_eq!(v.len(), rep.accepted);
            }
        }
    }
}
