//! Linux netfilter `LOG` / `NFLOG` lines: iptables, ip6tables, UFW, nftables `log` statements and
//! the Proxmox VE firewall.
//!
//! ```text
//! [50028442.088484] IPTABLES-DROP: IN=enp1s0 OUT= MAC=… SRC=195.54.160.107 DST=51.15.166.67
//!   LEN=40 TOS=0x00 PREC=0x00 TTL=245 ID=37308 PROTO=TCP SPT=8080 DPT=8123 WINDOW=1024 SYN
//! ```
//!
//! The kernel writes no action: the operator's log prefix (`--log-prefix`, `[UFW BLOCK]`,
//! `policy DROP:`) says what the rule did. Without a recognisable word the event is recorded as
//! [`Action::Deny`], because a `LOG` rule almost always precedes a drop; see ARCHITECTURE.md.

use std::borrow::Cow;
use std::net::IpAddr;

use watchhouse_event::{Action, Direction, EventRef, Format, IpProto};

use crate::fields::{dec_u64, parse_ip, port};
use crate::syslog::{find_clf_time, Envelope};
use crate::Reason;

static DST: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new("DST="));

/// Cheap check for netfilter output (`SRC=` and `DST=` anywhere): where `SRC=` starts, or
/// `None` when the message does not look like netfilter's.
pub fn src_of(msg: &str) -> Option<usize> {
    let b = msg.as_bytes();
    let p = crate::fields::find_short(b, b"SRC=")?;
    // The kernel writes ` DST=` right after the source address: one short scan, not a search.
    let after = crate::fields::find_any(b, p, [b' ']);
    if b[after..].starts_with(b" DST=") {
        return Some(p);
    }
    // Anywhere else: after `SRC=` (usually), or before it.
    (DST.find(&b[p..]).is_some() || DST.find(&b[..p + 3]).is_some()).then_some(p)
}

/// Parses a netfilter message.
pub fn parse<'a>(env: &Envelope<'a>, raw: &'a str, now_ms: i64) -> Result<EventRef<'a>, Reason> {
    let msg = env.msg;
    // The prefix is everything before the first KEY= token.
    let kv_start = first_kv(msg).ok_or(Reason::Malformed("no_fields"))?;
    // Prefixes are ASCII in practice; trimming ASCII whitespace avoids a Unicode table walk.
    let mut prefix = msg[..kv_start].trim_ascii();
    let mut time_ms = env.time_ms;
    let mut rule: Option<&str> = None;
    // Proxmox VE: "VMID LEVEL CHAIN dd/Mon/yyyy:HH:MM:SS +zzzz [ACTION:] IN=…"
    if let Some((t, range)) = find_clf_time(prefix) {
        if time_ms.is_none() {
            time_ms = Some(t);
        }
        rule = prefix[..range.start].split_whitespace().nth(2);
        prefix = prefix[range.end..].trim_ascii();
    }
    // The kernel's uptime stamp, e.g. "[  203.842973]".
    if let Some(end) = uptime_stamp_end(prefix.as_bytes()) {
        prefix = prefix[end..].trim_ascii();
    }
    let w = words(prefix.as_bytes());
    // UniFi's bracketed rule names hold a dash; without one there is nothing to look for.
    let unifi = if w.dash { unifi_action(prefix) } else { None };
    let action = unifi.unwrap_or_else(|| w.action());
    let prefix = prefix.trim_end_matches(':').trim_ascii();
    if rule.is_none() && !prefix.is_empty() {
        rule = Some(prefix);
    }

    let pkt = match read_canonical(msg, kv_start) {
        Some(pkt) => pkt,
        None => read_tokens(msg, kv_start)?,
    };
    let nonempty = |s: Option<&'a str>| s.filter(|s| !s.is_empty()).map(Cow::Borrowed);
    let in_iface = nonempty(pkt.input);
    let out_iface = nonempty(pkt.output);
    let direction = match (&in_iface, &out_iface) {
        (Some(_), None) => Direction::Inbound,
        (None, Some(_)) => Direction::Outbound,
        _ => Direction::Unknown,
    };
    let time_ms = time_ms.unwrap_or(now_ms);
    Ok(EventRef {
        time_ms,
        last_ms: time_ms,
        action,
        protocol: pkt.protocol,
        src_ip: pkt.src_ip,
        src_port: pkt.src_port,
        dst_ip: pkt.dst_ip,
        dst_port: pkt.dst_port,
        direction,
        in_iface,
        out_iface,
        rule: rule.map(|r| crate::clip(r, 64)),
        device: env.hostname.map(Cow::Borrowed),
        format: Format::Netfilter,
        bytes: pkt.bytes,
        packets: Some(1),
        count: 1,
        raw,
        nat: None,
        product: (unifi.is_some() || pkt.descr).then_some(Cow::Borrowed("Ubiquiti|UniFi / EdgeOS")),
        host: None,
        url: None,
    })
}

/// What the key=value part of a netfilter message says about the packet.
#[derive(Debug, PartialEq)]
struct Packet<'a> {
    input: Option<&'a str>,
    output: Option<&'a str>,
    src_ip: IpAddr,
    dst_ip: IpAddr,
    protocol: IpProto,
    src_port: Option<u16>,
    dst_port: Option<u16>,
    bytes: Option<u64>,
    /// A `DESCR=` token (UniFi's rule description) came before the fields read.
    descr: bool,
}

#[derive(Default)]
struct Fields<'a> {
    input: Option<&'a str>,
    output: Option<&'a str>,
    src: Option<&'a str>,
    dst: Option<&'a str>,
    len: Option<&'a str>,
    proto: Option<&'a str>,
    spt: Option<&'a str>,
    dpt: Option<&'a str>,
}

/// Reads the fields from the tokens at `kv_start` in any order: the definition of what a
/// netfilter message says, which [`read_canonical`] must agree with wherever it answers.
fn read_tokens(msg: &str, kv_start: usize) -> Result<Packet<'_>, Reason> {
    let mut f = Fields::default();
    // One forward pass over the space-separated tokens. The wanted keys are few and fixed, so a
    // token is matched by its first bytes (`SRC=` is a token whose key is `SRC`), and the rest of
    // a token is skipped eight bytes at a time. A quoted value (UniFi's `DESCR="…"`, written by
    // whoever named the rule) is skipped whole: `SRC=` inside it is not the packet's source.
    let b = msg.as_bytes();
    let mut i = kv_start;
    let mut descr = false;
    while i < b.len() {
        let t = &b[i..];
        let (slot, key_len) = match t[0] {
            b'D' if t.starts_with(b"DESCR=") => {
                descr = true;
                i = skip_token(b, i);
                continue;
            }
            b'I' if t.starts_with(b"IN=") => (&mut f.input, 3),
            b'O' if t.starts_with(b"OUT=") => (&mut f.output, 4),
            b'S' if t.starts_with(b"SRC=") => (&mut f.src, 4),
            b'S' if t.starts_with(b"SPT=") => (&mut f.spt, 4),
            b'D' if t.starts_with(b"DST=") => (&mut f.dst, 4),
            b'D' if t.starts_with(b"DPT=") => (&mut f.dpt, 4),
            b'L' if t.starts_with(b"LEN=") => (&mut f.len, 4),
            b'P' if t.starts_with(b"PROTO=") => (&mut f.proto, 6),
            _ => {
                i = skip_token(b, i);
                continue;
            }
        };
        let value_start = i + key_len;
        i = next_space(b, value_start);
        if slot.is_none() {
            *slot = Some(&msg[value_start..i]);
        }
        if f.dpt.is_some() {
            // Everything needed precedes DPT in the kernel's output.
            break;
        }
        i += 1;
    }
    let src_ip = parse_ip(f.src.ok_or(Reason::Malformed("missing_src"))?)
        .ok_or(Reason::Malformed("bad_src"))?;
    let dst_ip = parse_ip(f.dst.ok_or(Reason::Malformed("missing_dst"))?)
        .ok_or(Reason::Malformed("bad_dst"))?;
    let protocol = IpProto::parse(f.proto.ok_or(Reason::Malformed("missing_proto"))?)
        .ok_or(Reason::Malformed("bad_proto"))?;
    let (src_port, dst_port) = if protocol.has_ports() {
        (Some(port(f.spt)?), Some(port(f.dpt)?))
    } else {
        (None, None)
    };
    Ok(Packet {
        input: f.input,
        output: f.output,
        src_ip,
        dst_ip,
        protocol,
        src_port,
        dst_port,
        bytes: f.len.and_then(dec_u64),
        descr,
    })
}

/// The kernel's own layout, read by position: `IN= OUT= [MAC=] SRC= DST= LEN= … PROTO= SPT=
/// DPT=`, IPv4, a protocol with ports. Addresses and ports are read where they stand (no
/// token is cut out and parsed again) and the tokens between `LEN=` and `PROTO=` are skipped
/// without a key lookup. `None` for anything else, which [`read_tokens`] then reads; where
/// this answers, it answers as `read_tokens` does (property-tested).
fn read_canonical(msg: &str, kv_start: usize) -> Option<Packet<'_>> {
    let b = msg.as_bytes();
    // `KEY=` at `i`: where its value starts.
    let key = |i: usize, k: &[u8]| b.get(i..)?.starts_with(k).then_some(i + k.len());
    // A value read up to the next space: the value and where the next token starts.
    let word = |v: usize| {
        let end = next_space(b, v);
        (&msg[v..end], end + 1)
    };
    let (input, i) = word(key(kv_start, b"IN=")?);
    let (output, mut i) = word(key(i, b"OUT=")?);
    if key(i, b"MAC=").is_some() {
        i = skip_token(b, i);
    }
    let (src, end) = crate::fields::dotted_quad_at(b, key(i, b"SRC=")?)?;
    let (dst, end) = crate::fields::dotted_quad_at(b, key(end, b" DST=")?)?;
    if b.get(end) != Some(&b' ') {
        return None;
    }
    let (len, i) = word(key(end + 1, b"LEN=")?);
    let mut i = kernel_tokens(b, i);
    // TOS, PREC, TTL, ID and the flags, to PROTO. A token that `read_tokens` would read or
    // treat apart sends the line there.
    let proto_at = loop {
        let t = b.get(i..).filter(|t| !t.is_empty())?;
        match t[0] {
            b'P' if t.starts_with(b"PROTO=") => break i + 6,
            b'I' if t.starts_with(b"IN=") => return None,
            b'O' if t.starts_with(b"OUT=") => return None,
            b'S' if t.starts_with(b"SRC=") || t.starts_with(b"SPT=") => return None,
            b'D' if t.starts_with(b"DST=")
                || t.starts_with(b"DPT=")
                || t.starts_with(b"DESCR=") =>
            {
                return None
            }
            b'L' if t.starts_with(b"LEN=") => return None,
            _ => i = skip_token(b, i),
        }
    };
    let (proto, i) = word(proto_at);
    let protocol = IpProto::parse(proto).filter(|p| p.has_ports())?;
    let (sp, i) = port_at(b, key(i, b"SPT=")?)?;
    let (dp, _) = port_at(b, key(i, b"DPT=")?)?;
    Some(Packet {
        input: Some(input),
        output: Some(output),
        src_ip: IpAddr::V4(src),
        dst_ip: IpAddr::V4(dst),
        protocol,
        src_port: Some(sp),
        dst_port: Some(dp),
        bytes: dec_u64(len),
        descr: false,
    })
}

/// Skips what the kernel writes between `LEN=` and `PROTO=` when it has its usual shape
/// (`TOS=0xHH PREC=0xHH TTL=n ID=n `, each optional, in that order) and returns where the
/// next token starts. A token it passes holds no quote and ends at a space, so it ends where
/// [`skip_token`] says; anything else is left for the caller's token loop.
fn kernel_tokens(b: &[u8], mut i: usize) -> usize {
    // Default type of service and precedence, as 54 of the 65 real lines in the fixtures have.
    if b.get(i..i + 19) == Some(b"TOS=0x00 PREC=0x00 ") {
        i += 19;
    } else {
        for (k, n) in [(&b"TOS=0x"[..], 6), (&b"PREC=0x"[..], 7)] {
            if b.get(i..).is_some_and(|t| t.starts_with(k))
                && b.get(i + n..i + n + 2)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
                && b.get(i + n + 2) == Some(&b' ')
            {
                i += n + 3;
            }
        }
    }
    if b.get(i..i + 4) == Some(b"TTL=") {
        i = digits_then_space(b, i, 4);
    }
    if b.get(i..i + 3) == Some(b"ID=") {
        i = digits_then_space(b, i, 3);
    }
    i
}

/// After a `KEY=` of `key_len` bytes at `i`: past the space that ends one or more digits, or
/// `i` itself when the token is not digits and a space.
#[inline(always)]
fn digits_then_space(b: &[u8], i: usize, key_len: usize) -> usize {
    let mut j = i + key_len;
    while b.get(j).is_some_and(u8::is_ascii_digit) {
        j += 1;
    }
    if j > i + key_len && b.get(j) == Some(&b' ') {
        j + 1
    } else {
        i
    }
}

/// A port as [`read_tokens`] reads one, at `v`: digits to a space (or the end), at most 65535;
/// the port and where the next token starts.
#[inline(always)]
fn port_at(b: &[u8], v: usize) -> Option<(u16, usize)> {
    let mut n = 0u32;
    let mut j = v;
    while let Some(d) = b.get(j).map(|c| c.wrapping_sub(b'0')).filter(|d| *d < 10) {
        n = n * 10 + u32::from(d);
        if n > u32::from(u16::MAX) {
            return None;
        }
        j += 1;
    }
    (j > v && (j == b.len() || b[j] == b' ')).then_some((n as u16, j + 1))
}

/// Where the token at `i` ends, plus one (`b.len() + 1` when it runs to the end): at the first
/// space, unless a double quote comes first, in which case the quoted text (to the next quote,
/// or the end of the line) is part of the token, spaces and all.
fn skip_token(b: &[u8], i: usize) -> usize {
    let mut j = crate::fields::find_space_or_quote(b, i);
    while j < b.len() && b[j] == b'"' {
        let close = crate::fields::find_any(b, j + 1, [b'"']);
        if close >= b.len() {
            return b.len() + 1;
        }
        j = crate::fields::find_space_or_quote(b, close + 1);
    }
    j + 1
}

/// Position of the first space in `b` at or after `i`, or `b.len()`.
fn next_space(b: &[u8], i: usize) -> usize {
    crate::fields::find_any(b, i, [b' '])
}

/// Byte offset of the first `KEY=` token whose key is upper-case ASCII.
fn first_kv(msg: &str) -> Option<usize> {
    let b = msg.as_bytes();
    let mut i = 0;
    while let Some(eq) = memchr::memchr(b'=', &b[i..]).map(|e| e + i) {
        let start = b[..eq]
            .iter()
            .rposition(|&c| c == b' ')
            .map_or(0, |p| p + 1);
        let key = &b[start..eq];
        if !key.is_empty()
            && key
                .iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
        {
            return Some(start);
        }
        i = eq + 1;
    }
    None
}

/// Where a leading kernel uptime stamp (`[  203.842973]`: digits, dots and spaces in brackets)
/// ends, just past its `]`; `None` when the prefix does not start with one.
fn uptime_stamp_end(b: &[u8]) -> Option<usize> {
    if b.first() != Some(&b'[') {
        return None;
    }
    for (i, &c) in b.iter().enumerate().skip(1) {
        match c {
            b']' => return Some(i + 1),
            b'0'..=b'9' | b'.' | b' ' => {}
            _ => return None,
        }
    }
    None
}

/// UniFi and EdgeOS name rules `[CHAIN-RULE-X]` or `[CHAIN-X-RULE]` where X is `A` (accept),
/// `D` (drop) or `R` (reject).
fn unifi_action(prefix: &str) -> Option<Action> {
    let b = prefix.as_bytes();
    let start = b.iter().position(|&c| c == b'[')?;
    // One pass to the closing bracket, noting a dash on the way: most prefixes (`[UFW BLOCK]`)
    // have none and need no split.
    let mut dash = false;
    let mut end = start + 1;
    loop {
        match b.get(end)? {
            b']' => break,
            b'-' => dash = true,
            _ => {}
        }
        end += 1;
    }
    if !dash {
        return None;
    }
    prefix[start + 1..end].split('-').find_map(|seg| match seg {
        "A" => Some(Action::Allow),
        "D" => Some(Action::Drop),
        "R" => Some(Action::Reject),
        _ => None,
    })
}

/// The verdict words a log prefix may carry, found in one pass ignoring ASCII case.
#[derive(Default)]
struct Words {
    reject: bool,
    drop: bool,
    deny: bool,
    allow: bool,
    /// The prefix holds a `-` (noted on the same pass, for [`unifi_action`]).
    dash: bool,
}

fn words(p: &[u8]) -> Words {
    let mut w = Words::default();
    // `c & 0xDF` is the upper-case letter for either case of an ASCII letter, and no other byte
    // becomes one; every verdict word is letters only.
    let at = |i: usize, word: &[u8]| {
        p.get(i..i + word.len())
            .is_some_and(|s| s.iter().zip(word).all(|(c, u)| c & 0xDF == *u))
    };
    for (i, c) in p.iter().enumerate() {
        // Only positions that could start a word are compared.
        match c & 0xDF {
            b'R' => w.reject |= at(i, b"REJECT"),
            b'D' => {
                w.drop |= at(i, b"DROP");
                w.deny |= at(i, b"DENY") || at(i, b"DENIED");
            }
            b'B' => w.deny |= at(i, b"BLOCK"),
            b'A' => w.allow |= at(i, b"ACCEPT") || at(i, b"ALLOW"),
            b'P' => w.allow |= at(i, b"PASS"),
            0x0D => w.dash |= *c == b'-',
            _ => {}
        }
    }
    w
}

impl Words {
    /// The verdict the words say, the strongest first; none at all is recorded as a deny
    /// (see the module notes).
    fn action(&self) -> Action {
        if self.reject {
            Action::Reject
        } else if self.drop {
            Action::Drop
        } else if self.deny {
            Action::Deny
        } else if self.allow {
            Action::Allow
        } else {
            Action::Deny
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The plain definition the one-pass readers must agree with.
    fn naive_contains_ci(hay: &str, needle: &str) -> bool {
        hay.to_ascii_uppercase().contains(needle)
    }

    #[test]
    fn an_address_inside_a_quoted_rule_description_is_not_the_source() {
        let ctx = crate::TimeContext::utc(1_664_496_000_000);
        let l = "Jun 13 23:29:15 UDMP [WAN_LOCAL-D-2000] DESCR=\"Block SRC=9.9.9.9 DST=8.8.8.8 DPT=1\" IN=eth8 OUT= SRC=192.0.2.7 DST=198.51.100.25 LEN=40 PROTO=TCP SPT=5 DPT=443";
        let e = crate::parse_str(l, &ctx, None).unwrap();
        assert_eq!(e.src_ip.to_string(), "192.0.2.7");
        assert_eq!(e.dst_ip.to_string(), "198.51.100.25");
        assert_eq!((e.src_port, e.dst_port), (Some(5), Some(443)));
        assert_eq!(e.product.as_deref(), Some("Ubiquiti|UniFi / EdgeOS"));
        // A description never closed hides the rest of the line: refused, not guessed.
        let open = "Jun 13 23:29:15 UDMP [WAN_LOCAL-D-2000] DESCR=\"Block SRC=9.9.9.9 IN=eth8 OUT= SRC=192.0.2.7 DST=198.51.100.25 LEN=40 PROTO=TCP SPT=5 DPT=443";
        assert!(crate::parse_str(open, &ctx, None).is_err());
    }

    /// A canonical value three times in four, otherwise text from `bad`.
    fn slot(good: &'static str, bad: &'static str) -> impl Strategy<Value = String> {
        prop_oneof![
            3 => Just(good.to_string()),
            1 => proptest::string::string_regex(bad).expect("a valid regex"),
        ]
    }

    /// The kernel's layout with every token optionally replaced by something near it.
    fn near_canonical() -> impl Strategy<Value = String> {
        (
            (
                slot("IN=eth0 ", "(IN=|OUT=|DESCR=\"a b\" |IN=\"x y\" |IN= )"),
                slot("OUT= ", "(OUT=eth1 |OUT=|  OUT= |SRC=1.2.3.4 )"),
                slot("MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 ", "(MAC= |MAC=\"a b\" |MAC=x SPT=9 |)"),
                slot("SRC=203.0.1.1 ", "SRC=([0-9]{1,4}\\.){0,4}[0-9a-f:]{0,6} {0,2}"),
                slot("DST=198.51.100.10 ", "DST=([0-9]{1,4}\\.){0,4}[0-9a-f:]{0,6}( |\"|)"),
                slot("LEN=44 ", "LEN=[0-9+x\"]{0,22} {0,2}"),
            ),
            (
                slot("TOS=0x00 ", "(TOS=0x[0-9a-g\"]{0,3} |TOS=0x00|)"),
                slot("PREC=0x00 ", "(PREC=0x[0-9a-g]{0,3} |PREC=0x00  |)"),
                slot("TTL=49 ", "(TTL=[0-9\"]{0,4} |)"),
                slot("ID=0 ", "(ID=[0-9a]{0,6} |ID=\"1 2\" |IN=eth9 |)"),
                slot("", "(DF |CE MF |SPT=7 |DPT=8 |DESCR=\"x SRC=9.9.9.9\" |LEN=1 |SRC=8.8.8.8 |DST=8.8.4.4 |OUT=x |\"q |PROTO=UDP )"),
                slot("PROTO=TCP ", "PROTO=(TCP|UDP|ICMP|6|17|tcp|SCTP|x|) {0,2}"),
                slot("SPT=1024 ", "(SPT=[0-9+]{0,7} {0,2}|DPT=1 |)"),
                slot("DPT=22", "(DPT=[0-9+]{0,7}|DPT=22 x|SPT=3)"),
                slot(" WINDOW=1024 RES=0x00 SYN URGP=0", "( DESCR=\"a\"| DPT=9| SPT=1|)"),
            ),
        )
            .prop_map(|(a, b)| {
                [a.0, a.1, a.2, a.3, a.4, a.5, b.0, b.1, b.2, b.3, b.4, b.5, b.6, b.7, b.8].concat()
            })
    }

    #[test]
    fn the_positional_reader_takes_what_the_kernel_writes() {
        for msg in [
            "IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=203.0.1.1 DST=198.51.100.10 LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=0 PROTO=TCP SPT=1024 DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0",
            "IN=enp1s0 OUT= MAC= SRC=195.54.160.107 DST=51.15.166.67 LEN=40 TOS=0x08 PREC=0x20 TTL=245 ID=37308 DF PROTO=UDP SPT=8080 DPT=8123 LEN=20",
            "IN= OUT=eth0 SRC=10.0.0.2 DST=192.0.2.1 LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=5 CE DF MF PROTO=TCP SPT=1 DPT=65535",
        ] {
            let fast = read_canonical(msg, 0);
            assert!(fast.is_some(), "{msg}");
            assert_eq!(Ok(fast.unwrap()), read_tokens(msg, 0), "{msg}");
        }
        // IPv6, ICMP and a quoted description go the long way.
        for msg in [
            "IN=eth0 OUT= SRC=2001:db8::1 DST=2001:db8::2 LEN=60 PROTO=TCP SPT=1 DPT=2",
            "IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2 LEN=84 TOS=0x00 PREC=0x00 TTL=64 ID=0 PROTO=ICMP TYPE=8 CODE=0",
            "IN=eth0 OUT= SRC=192.0.2.1 DST=192.0.2.2 LEN=84 DESCR=\"SPT=1 DPT=2\" PROTO=TCP SPT=3 DPT=4",
        ] {
            assert_eq!(read_canonical(msg, 0), None, "{msg}");
            assert!(read_tokens(msg, 0).is_ok(), "{msg}");
        }
    }

    #[test]
    fn an_uptime_stamp_is_digits_dots_and_spaces_in_brackets() {
        assert_eq!(uptime_stamp_end(b"[  203.842973] IPTABLES"), Some(14));
        assert_eq!(uptime_stamp_end(b"[] x"), Some(2));
        assert_eq!(uptime_stamp_end(b"[UFW BLOCK]"), None);
        assert_eq!(uptime_stamp_end(b"[203.8"), None);
        assert_eq!(uptime_stamp_end(b"203.8]"), None);
    }

    /// Wherever the positional reader answers, the token walk gives the same packet; and it
    /// does answer for a good share of the near misses (the check is not vacuous).
    #[test]
    fn the_positional_reader_agrees_with_the_token_walk() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = near_canonical();
        let (mut answered, mut refused) = (0, 0);
        for _ in 0..20_000 {
            let msg = strategy.new_tree(&mut runner).unwrap().current();
            match read_canonical(&msg, 0) {
                Some(fast) => {
                    assert_eq!(Ok(fast), read_tokens(&msg, 0), "{msg}");
                    answered += 1;
                }
                None => refused += 1,
            }
        }
        assert!(
            answered > 1000 && refused > 5000,
            "{answered} answered, {refused} refused"
        );
    }

    proptest! {
        #[test]
        fn verdict_words_match_a_plain_case_insensitive_search(
            p in "([a-zA-Z \\[\\]:-]|REJECT|reject|DROP|Deny|DENIED|BLOCK|accept|Allow|PASS){0,12}",
        ) {
            let w = words(p.as_bytes());
            prop_assert_eq!(w.reject, naive_contains_ci(&p, "REJECT"));
            prop_assert_eq!(w.drop, naive_contains_ci(&p, "DROP"));
            prop_assert_eq!(w.deny, ["BLOCK", "DENY", "DENIED"].iter().any(|n| naive_contains_ci(&p, n)));
            prop_assert_eq!(w.allow, ["ACCEPT", "ALLOW", "PASS"].iter().any(|n| naive_contains_ci(&p, n)));
            prop_assert_eq!(w.dash, p.contains('-'));
        }

        #[test]
        fn a_token_ends_at_a_space_outside_quotes(b in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'"'), any::<u8>()], 0..40), i in 0usize..40) {
            let i = i.min(b.len());
            // The plain definition: walk byte by byte, toggling "inside quotes" at each quote.
            let mut quoted = false;
            let mut end = b.len();
            for (k, c) in b.iter().enumerate().skip(i) {
                match c {
                    b'"' => quoted = !quoted,
                    b' ' if !quoted => {
                        end = k;
                        break;
                    }
                    _ => {}
                }
            }
            prop_assert_eq!(skip_token(&b, i), end + 1);
        }

        #[test]
        fn the_space_finder_agrees_with_a_byte_loop(b in proptest::collection::vec(prop_oneof![Just(b' '), any::<u8>()], 0..40), i in 0usize..40) {
            let i = i.min(b.len());
            let expect = b[i..].iter().position(|&c| c == b' ').map_or(b.len(), |p| p + i);
            prop_assert_eq!(next_space(&b, i), expect);
        }
    }
}
