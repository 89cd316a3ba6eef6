//! Fortinet FortiGate (FortiOS) key=value logs, per the FortiOS Log Message Reference.
//!
//! ```text
//! date=2024-10-14 time=13:46:40 eventtime=1728938800841267391 tz="-0700" logid="0000000013"
//! type="traffic" subtype="forward" srcip=… srcport=… srcintf="port1" dstip=… dstport=…
//! dstintf="wan1" proto=6 action="deny" policyid=0 sentbyte=… rcvdbyte=… transip=… transport=…
//! ```
//! For traffic logs FortiOS defines `action`: `deny` = blocked by policy, `start` = session start,
//! anything else = allowed (and says how the session ended).

use watchhouse_event::{Action, EventRef, Format};

use crate::fields::{epoch_ms, ip, opt_ip, opt_port, ports, proto};
use crate::syslog::{civil_ms, parse_offset, Envelope};
use crate::{clip, nat, Flow, Reason, TimeContext};

// The keys read, by slot.
const K_TYPE: usize = 0;
const K_SRCIP: usize = 1;
const K_DSTIP: usize = 2;
const K_PROTO: usize = 3;
const K_SRCPORT: usize = 4;
const K_DSTPORT: usize = 5;
const K_ACTION: usize = 6;
const K_EVENTTIME: usize = 7;
const K_TZ: usize = 8;
const K_DATE: usize = 9;
const K_TIME: usize = 10;
const K_SRCINTF: usize = 11;
const K_DSTINTF: usize = 12;
const K_POLICYID: usize = 13;
const K_DEVNAME: usize = 14;
const K_TRANSIP: usize = 15;
const K_TRANSPORT: usize = 16;
const K_TRANIP: usize = 17;
const K_TRANPORT: usize = 18;
const K_SENTBYTE: usize = 19;
const K_RCVDBYTE: usize = 20;
const K_SENTPKT: usize = 21;
const K_RCVDPKT: usize = 22;
const K_COUNT: usize = 23;

/// The first eight bytes of a key as a little-endian word (shorter keys zero-padded).
const fn word(k: &[u8]) -> u64 {
    let mut w = 0u64;
    let mut i = 0;
    while i < k.len() && i < 8 {
        w |= (k[i] as u64) << (8 * i);
        i += 1;
    }
    w
}

/// The first `N` bytes of `b` (which holds at least `N`) as a little-endian word.
#[inline]
fn packed<const N: usize>(b: &[u8]) -> u64 {
    let mut head = [0u8; 8];
    head[..N].copy_from_slice(&b[..N]);
    u64::from_le_bytes(head)
}

/// The slot of a key this parser reads, or `None` for the many it skips. A line has 30–60
/// keys, so a key is compared as its length and first eight bytes packed in one word (the
/// ninth byte of the two nine-byte keys checked apart) rather than byte by byte.
fn key_index(k: &[u8]) -> Option<usize> {
    const TYPE: u64 = word(b"type");
    const SRCIP: u64 = word(b"srcip");
    const DSTIP: u64 = word(b"dstip");
    const PROTO: u64 = word(b"proto");
    const SRCPORT: u64 = word(b"srcport");
    const DSTPORT: u64 = word(b"dstport");
    const ACTION: u64 = word(b"action");
    const EVENTTIM: u64 = word(b"eventtim");
    const TZ: u64 = word(b"tz");
    const DATE: u64 = word(b"date");
    const TIME: u64 = word(b"time");
    const SRCINTF: u64 = word(b"srcintf");
    const DSTINTF: u64 = word(b"dstintf");
    const POLICYID: u64 = word(b"policyid");
    const DEVNAME: u64 = word(b"devname");
    const TRANSIP: u64 = word(b"transip");
    const TRANSPOR: u64 = word(b"transpor");
    const TRANIP: u64 = word(b"tranip");
    const TRANPORT: u64 = word(b"tranport");
    const SENTBYTE: u64 = word(b"sentbyte");
    const RCVDBYTE: u64 = word(b"rcvdbyte");
    const SENTPKT: u64 = word(b"sentpkt");
    const RCVDPKT: u64 = word(b"rcvdpkt");
    let b = k;
    // A fixed-size copy per length: a variable one would be a `memcpy` call per key.
    let w = match b.len() {
        2 => packed::<2>(b),
        4 => packed::<4>(b),
        5 => packed::<5>(b),
        6 => packed::<6>(b),
        7 => packed::<7>(b),
        8 | 9 => packed::<8>(b),
        _ => return None,
    };
    let ninth = b.get(8).copied();
    Some(match (b.len(), w) {
        (2, TZ) => K_TZ,
        (4, TYPE) => K_TYPE,
        (4, DATE) => K_DATE,
        (4, TIME) => K_TIME,
        (5, SRCIP) => K_SRCIP,
        (5, DSTIP) => K_DSTIP,
        (5, PROTO) => K_PROTO,
        (6, ACTION) => K_ACTION,
        (6, TRANIP) => K_TRANIP,
        (7, SRCPORT) => K_SRCPORT,
        (7, DSTPORT) => K_DSTPORT,
        (7, SRCINTF) => K_SRCINTF,
        (7, DSTINTF) => K_DSTINTF,
        (7, DEVNAME) => K_DEVNAME,
        (7, TRANSIP) => K_TRANSIP,
        (7, SENTPKT) => K_SENTPKT,
        (7, RCVDPKT) => K_RCVDPKT,
        (8, POLICYID) => K_POLICYID,
        (8, TRANPORT) => K_TRANPORT,
        (8, SENTBYTE) => K_SENTBYTE,
        (8, RCVDBYTE) => K_RCVDBYTE,
        (9, EVENTTIM) if ninth == Some(b'e') => K_EVENTTIME,
        (9, TRANSPOR) if ninth == Some(b't') => K_TRANSPORT,
        _ => return None,
    })
}

/// Parses a FortiGate message.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    static DATE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("date="));
    static LOGID: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("logid="));
    let m = env.msg.as_bytes();
    // FortiOS opens its messages with `date=`; otherwise the pairs start at `date=` or
    // `logid=` wherever they are.
    let start = if m.starts_with(b"date=") {
        0
    } else {
        DATE.find(m).or_else(|| LOGID.find(m)).unwrap_or(0)
    };
    // One pass, keeping only the keys used (a FortiGate line has 30–60 pairs); the first
    // occurrence of a key wins.
    let mut vals: [Option<&str>; K_COUNT] = [None; K_COUNT];
    crate::fields::pairs_into(&env.msg[start..], key_index, &mut vals);
    let get = |k: usize| vals[k];
    let kind = get(K_TYPE).unwrap_or("");
    if kind != "traffic" && kind != "utm" {
        return Err(Reason::NotTraffic);
    }
    if get(K_SRCIP).is_none() || get(K_DSTIP).is_none() {
        return Err(Reason::NotTraffic);
    }
    let src_ip = ip(get(K_SRCIP), "missing_src", "bad_src")?;
    let dst_ip = ip(get(K_DSTIP), "missing_dst", "bad_dst")?;
    let protocol = proto(get(K_PROTO))?;
    let (src_port, dst_port) = ports(protocol, get(K_SRCPORT), get(K_DSTPORT))?;
    let act = get(K_ACTION).ok_or(Reason::Malformed("missing_action"))?;
    let action = match act {
        "deny" | "blocked" | "block" => Action::Deny,
        "dropped" | "drop" => Action::Drop,
        "reset" | "reject" => Action::Reject,
        // Traffic logs: every other value means the policy allowed the session.
        _ if kind == "traffic" => Action::Allow,
        "pass" | "passthrough" | "monitored" | "detected" | "allow" => Action::Allow,
        _ => return Err(Reason::Malformed("unknown_action")),
    };
    let time_ms = get(K_EVENTTIME)
        .and_then(epoch_ms)
        .or_else(|| {
            let tz = get(K_TZ)
                .and_then(parse_offset)
                .unwrap_or_else(|| ctx.tz.clone());
            civil_ms(get(K_DATE)?, get(K_TIME)?, &tz)
        })
        .or(env.time_ms)
        .unwrap_or(ctx.now_ms);
    let mut e = Flow {
        action,
        protocol,
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    }
    .event(Format::FortiGate, raw, env, time_ms);
    e.in_iface = get(K_SRCINTF).map(|s| clip(s, 64));
    e.out_iface = get(K_DSTINTF).map(|s| clip(s, 64));
    e.rule = get(K_POLICYID).map(|s| clip(s, 64));
    if let Some(dev) = get(K_DEVNAME) {
        e.device = Some(clip(dev, 128));
    }
    e.nat = nat(
        opt_ip(get(K_TRANSIP))?,
        opt_port(get(K_TRANSPORT))?,
        opt_ip(get(K_TRANIP))?,
        opt_port(get(K_TRANPORT))?,
    );
    let num = |k: usize| get(k).and_then(crate::fields::dec_u64);
    e.bytes = crate::fields::sum_opt(num(K_SENTBYTE), num(K_RCVDBYTE));
    e.packets = crate::fields::sum_opt(num(K_SENTPKT), num(K_RCVDPKT));
    Ok(e)
}

#[cfg(test)]
mod key_tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain definition the packed comparison must agree with.
    fn reference(k: &str) -> Option<usize> {
        KEYS.iter().find(|(name, _)| *name == k).map(|(_, i)| *i)
    }

    const KEYS: [(&str, usize); K_COUNT] = [
        ("type", K_TYPE),
        ("srcip", K_SRCIP),
        ("dstip", K_DSTIP),
        ("proto", K_PROTO),
        ("srcport", K_SRCPORT),
        ("dstport", K_DSTPORT),
        ("action", K_ACTION),
        ("eventtime", K_EVENTTIME),
        ("tz", K_TZ),
        ("date", K_DATE),
        ("time", K_TIME),
        ("srcintf", K_SRCINTF),
        ("dstintf", K_DSTINTF),
        ("policyid", K_POLICYID),
        ("devname", K_DEVNAME),
        ("transip", K_TRANSIP),
        ("transport", K_TRANSPORT),
        ("tranip", K_TRANIP),
        ("tranport", K_TRANPORT),
        ("sentbyte", K_SENTBYTE),
        ("rcvdbyte", K_RCVDBYTE),
        ("sentpkt", K_SENTPKT),
        ("rcvdpkt", K_RCVDPKT),
    ];

    #[test]
    fn every_key_read_has_its_own_slot() {
        for (k, i) in KEYS {
            assert_eq!(key_index(k.as_bytes()), Some(i), "{k}");
        }
        let mut slots: Vec<usize> = KEYS.iter().map(|(_, i)| *i).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), K_COUNT);
    }

    /// Every wanted key with each byte changed to every other value, cut short at every
    /// length, lengthened by a byte at every place, and padded with a NUL (which the
    /// zero-padded word must not confuse with a shorter key).
    #[test]
    fn the_packed_comparison_agrees_on_every_near_miss() {
        let mut tried = 0;
        for (k, _) in KEYS {
            let b = k.as_bytes();
            let mut check = |v: Vec<u8>| {
                let s = String::from_utf8_lossy(&v).into_owned();
                assert_eq!(key_index(s.as_bytes()), reference(&s), "{s:?}");
                tried += 1;
            };
            for at in 0..b.len() {
                for byte in 0..=255u8 {
                    let mut v = b.to_vec();
                    v[at] = byte;
                    check(v);
                }
                check(b[..at].to_vec());
            }
            for at in 0..=b.len() {
                for byte in [0u8, b'e', b't', b'x', b'_'] {
                    let mut v = b.to_vec();
                    v.insert(at, byte);
                    check(v);
                }
            }
        }
        assert!(tried > 35_000, "{tried}");
    }

    proptest! {
        #[test]
        fn the_packed_comparison_agrees_with_plain_string_equality(
            k in prop_oneof!["[a-z\\x00]{0,11}", any::<String>()]
        ) {
            prop_assert_eq!(key_index(k.as_bytes()), reference(&k));
        }
    }
}
