//! One batch's per-source rollup for one member and day as a single value: every source the
//! batch saw that day with its event count. The PostgreSQL backend stores these as rows of
//! `rollup_src_blocks` instead of a row per member, day and source, because a row (and its
//! index entries) per source cost PostgreSQL 5–10 µs each, most of its ingest work on traffic
//! from many sources; readers sum the blocks of the days they ask about. Pure: no I/O.
//!
//! Format, version 1: the byte `1`, then per source a family byte (`4` or `6`), the address's
//! 4 or 16 bytes and the count as an unsigned LEB128 varint. No length prefix: the value ends
//! where its bytes end.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const VERSION: u8 = 1;

/// Encodes `(source, events)` pairs (counts below 1 are stored as 0; callers pass positive
/// sums).
pub fn encode<'a>(sources: impl IntoIterator<Item = (&'a IpAddr, &'a i64)>) -> Vec<u8> {
    let it = sources.into_iter();
    let mut out = Vec::with_capacity(1 + it.size_hint().0 * 7);
    out.push(VERSION);
    for (ip, n) in it {
        match ip {
            IpAddr::V4(a) => {
                out.push(4);
                out.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                out.push(6);
                out.extend_from_slice(&a.octets());
            }
        }
        let mut v = (*n).max(0) as u64;
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
    }
    out
}

/// Calls `f` with each `(source, events)` of a block, in the order they were encoded; an
/// error (and no further calls) on bytes that are not a version-1 block.
pub fn for_each(data: &[u8], mut f: impl FnMut(IpAddr, u64)) -> Result<(), String> {
    let (&v, mut rest) = data
        .split_first()
        .ok_or_else(|| "empty source block".to_string())?;
    if v != VERSION {
        return Err(format!(
            "source block version {v}, this build reads {VERSION}"
        ));
    }
    while let Some((&family, r)) = rest.split_first() {
        let (ip, r) = match family {
            4 if r.len() >= 4 => {
                let (a, r) = r.split_at(4);
                let a: [u8; 4] = a.try_into().map_err(|_| "short address".to_string())?;
                (IpAddr::V4(Ipv4Addr::from(a)), r)
            }
            6 if r.len() >= 16 => {
                let (a, r) = r.split_at(16);
                let a: [u8; 16] = a.try_into().map_err(|_| "short address".to_string())?;
                (IpAddr::V6(Ipv6Addr::from(a)), r)
            }
            4 | 6 => return Err("source block ends inside an address".into()),
            x => return Err(format!("source block has address family byte {x}")),
        };
        let (mut n, mut shift, mut i) = (0u64, 0u32, 0usize);
        loop {
            let b = *r
                .get(i)
                .ok_or_else(|| "source block ends inside a count".to_string())?;
            if shift > 63 || (shift == 63 && b > 1) {
                return Err("source block count overflows 64 bits".into());
            }
            n |= u64::from(b & 0x7f) << shift;
            i += 1;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        rest = &r[i..];
        f(ip, n);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(data: &[u8]) -> Result<Vec<(IpAddr, u64)>, String> {
        let mut v = Vec::new();
        for_each(data, |ip, n| v.push((ip, n)))?;
        Ok(v)
    }

    #[test]
    fn a_block_reads_back_in_order() {
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let data = encode([(&a, &1i64), (&b, &300), (&a, &i64::MAX)]);
        assert_eq!(data.len(), 1 + (5 + 1) + (17 + 2) + (5 + 9));
        assert_eq!(
            decode(&data).unwrap(),
            vec![(a, 1), (b, 300), (a, i64::MAX as u64)]
        );
        assert_eq!(decode(&encode([])).unwrap(), vec![]);
    }

    #[test]
    fn damaged_blocks_are_errors() {
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let good = encode([(&a, &200i64)]);
        assert!(decode(&[]).unwrap_err().contains("empty"));
        assert!(decode(&[2]).unwrap_err().contains("version 2"));
        assert!(decode(&[1, 9]).unwrap_err().contains("family byte 9"));
        assert!(decode(&good[..4])
            .unwrap_err()
            .contains("inside an address"));
        assert!(decode(&good[..good.len() - 1])
            .unwrap_err()
            .contains("inside a count"));
        let mut long = vec![1, 4, 1, 2, 3, 4];
        long.extend([0xff; 10]);
        long.push(1);
        assert!(decode(&long).unwrap_err().contains("overflows"));
    }

    proptest! {
        #[test]
        fn any_sources_round_trip(v in proptest::collection::vec((any::<bool>(), any::<u128>(), 0i64..=i64::MAX), 0..200)) {
            let pairs: Vec<(IpAddr, i64)> = v.iter().map(|(six, a, n)| {
                let ip = if *six { IpAddr::V6(Ipv6Addr::from(*a)) } else { IpAddr::V4(Ipv4Addr::from(*a as u32)) };
                (ip, *n)
            }).collect();
            let data = encode(pairs.iter().map(|(ip, n)| (ip, n)));
            let back = decode(&data).unwrap();
            prop_assert_eq!(back, pairs.iter().map(|(ip, n)| (*ip, *n as u64)).collect::<Vec<_>>());
        }

        #[test]
        fn arbitrary_bytes_are_read_or_refused(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            // Never a panic; what is read re-encodes to no more bytes than it came from.
            if let Ok(v) = decode(&data) {
                let n: Vec<(IpAddr, i64)> = v.iter().map(|(ip, n)| (*ip, (*n).min(i64::MAX as u64) as i64)).collect();
                prop_assert!(encode(n.iter().map(|(ip, n)| (ip, n))).len() <= data.len());
            }
        }
    }
}
