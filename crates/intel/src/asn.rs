//! Country and network of an address, from an IP-to-ASN table in the iptoasn.com TSV format
//! (`range_start  range_end  AS_number  country_code  AS_description`, IPv4 or IPv6), which an
//! operator downloads and points the hub at. Nothing is fetched by Watchhouse itself.

use std::net::IpAddr;

use crate::formats::{Report, MAX_LINE};

/// What the table says of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsnInfo {
    /// Autonomous system number.
    pub asn: u32,
    /// ISO country code as the registry gives it (`US`, `GB`…), or empty.
    pub country: String,
    /// The network's name.
    pub name: String,
}

impl AsnInfo {
    /// `AS13335 CLOUDFLARENET (US)`.
    pub fn describe(&self) -> String {
        if self.country.is_empty() || self.country == "None" {
            format!("AS{} {}", self.asn, self.name)
        } else {
            format!("AS{} {} ({})", self.asn, self.name, self.country)
        }
    }
}

/// Sorted, non-overlapping ranges.
#[derive(Debug, Default)]
pub struct AsnTable {
    v4: Vec<(u32, u32, u32)>,
    v6: Vec<(u128, u128, u32)>,
    info: Vec<AsnInfo>,
}

impl AsnTable {
    /// Reads the TSV. Malformed lines are skipped and counted; unrouted ranges (AS 0) are left
    /// out. Overlapping ranges keep the first.
    pub fn parse(bytes: &[u8]) -> (AsnTable, Report) {
        let mut t = AsnTable::default();
        let mut rep = Report::default();
        let mut names: std::collections::HashMap<(u32, String, String), u32> = Default::default();
        for (n, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            if raw.is_empty() {
                continue;
            }
            if raw.len() > MAX_LINE {
                rep.skip(format_args!("line {}", n + 1), "line too long");
                continue;
            }
            let line = String::from_utf8_lossy(raw);
            let f: Vec<&str> = line.trim_end_matches('\r').split('\t').collect();
            if f.len() < 5 {
                rep.skip(
                    format_args!("line {}", n + 1),
                    "expected 5 tab-separated fields",
                );
                continue;
            }
            let (Ok(a), Ok(b), Ok(asn)) = (
                f[0].parse::<IpAddr>(),
                f[1].parse::<IpAddr>(),
                f[2].parse::<u32>(),
            ) else {
                rep.skip(format_args!("line {}", n + 1), "bad address or AS number");
                continue;
            };
            if asn == 0 {
                continue;
            }
            let key = (asn, f[3].to_owned(), crate::clip(f[4]).to_owned());
            let next = t.info.len() as u32;
            let idx = *names.entry(key.clone()).or_insert_with(|| {
                t.info.push(AsnInfo {
                    asn: key.0,
                    country: key.1.clone(),
                    name: key.2.clone(),
                });
                next
            });
            match (a, b) {
                (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => t.v4.push((a.into(), b.into(), idx)),
                (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => t.v6.push((a.into(), b.into(), idx)),
                _ => {
                    rep.skip(
                        format_args!("line {}", n + 1),
                        "range ends before it starts, or mixes families",
                    );
                    continue;
                }
            }
            rep.accepted += 1;
        }
        t.v4.sort_unstable_by_key(|r| r.0);
        t.v6.sort_unstable_by_key(|r| r.0);
        t.v4.dedup_by(|b, a| b.0 <= a.1);
        t.v6.dedup_by(|b, a| b.0 <= a.1);
        (t, rep)
    }

    /// Ranges held.
    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The network of `ip`, if the table knows it.
    pub fn lookup(&self, ip: IpAddr) -> Option<&AsnInfo> {
        fn find<T: Ord + Copy>(v: &[(T, T, u32)], x: T) -> Option<u32> {
            let i = v.partition_point(|r| r.0 <= x);
            let r = v.get(i.checked_sub(1)?)?;
            (x <= r.1).then_some(r.2)
        }
        let idx = match ip {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(a)),
            },
        }?;
        self.info.get(idx as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_looks_up() {
        let tsv = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n1.0.1.0\t1.0.3.255\t0\tNone\tNot routed\n\
                   45.33.32.0\t45.33.32.255\t63949\tUS\tAKAMAI-LINODE-AP Akamai Connected Cloud\n\
                   2001:db8::\t2001:db8::ffff\t64500\tGB\tEXAMPLE-NET\nbad line\n9.9.9.9\t1.1.1.1\t1\tX\tY\n";
        let (t, rep) = AsnTable::parse(tsv.as_bytes());
        assert_eq!((t.len(), rep.skipped), (3, 2));
        assert_eq!(
            t.lookup("1.0.0.7".parse().unwrap()).unwrap().describe(),
            "AS13335 CLOUDFLARENET (US)"
        );
        assert_eq!(
            t.lookup("45.33.32.156".parse().unwrap()).unwrap().asn,
            63949
        );
        assert!(t.lookup("1.0.2.1".parse().unwrap()).is_none(), "not routed");
        assert!(t.lookup("8.8.8.8".parse().unwrap()).is_none());
        assert_eq!(
            t.lookup("2001:db8::5".parse().unwrap()).unwrap().country,
            "GB"
        );
        assert_eq!(
            t.lookup("::ffff:1.0.0.1".parse().unwrap()).unwrap().asn,
            13335
        );
    }
}
