//! Shared by the matcher benchmark and the memory example: the 1.01M-entry merged FireHOL list
//! and a realistic mix of probe addresses.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};

use watchhouse_intel::{Cidr, Indicator, IndicatorValue};

/// Path of the merged list: `WATCHHOUSE_MERGED_FEED`, or the shared data beside the repository.
pub fn merged_path() -> std::path::PathBuf {
    std::env::var_os("WATCHHOUSE_MERGED_FEED")
        .map(Into::into)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/data/feeds/firehol-threat-lists-merged-2018.txt.gz")
        })
}

/// Reads the merged list into indicators.
pub fn merged_indicators() -> Vec<Indicator> {
    let path = merged_path();
    let f = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set WATCHHOUSE_MERGED_FEED)", path.display()));
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut text)
        .unwrap();
    let (v, rep) =
        watchhouse_intel::formats::parse(watchhouse_intel::formats::FeedFormat::Netset, &text)
            .unwrap();
    assert_eq!(rep.skipped, 0);
    v
}

/// Deterministic xorshift.
pub struct Rng(pub u64);

impl Rng {
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Probes: `hit_pct`% listed addresses (hosts, and addresses inside listed blocks), the rest
/// random unicast internet addresses (which also hit when they fall in a listed block).
pub fn probes(ind: &[Indicator], n: usize, hit_pct: u64) -> Vec<IpAddr> {
    let mut r = Rng(0x2545_F491_4F6C_DD1D);
    let cidrs: Vec<Cidr> = ind
        .iter()
        .filter_map(|i| match i.value {
            IndicatorValue::Ip(c) => Some(c),
            _ => None,
        })
        .collect();
    (0..n)
        .map(|_| {
            if r.next_u64() % 100 < hit_pct {
                let c = cidrs[(r.next_u64() % cidrs.len() as u64) as usize];
                c.nth(r.next_u64())
            } else {
                loop {
                    let a = Ipv4Addr::from(r.next_u64() as u32);
                    let o = a.octets()[0];
                    if (1..224).contains(&o) && o != 10 && o != 127 {
                        break IpAddr::V4(a);
                    }
                }
            }
        })
        .collect()
}
