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

use watchhouse_event::{Action, Direction, EventRef, Format, IpProto};

use crate::fields::parse_ip;
use crate::syslog::{find_clf_time, Envelope};
use crate::Reason;

static SRC: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new("SRC="));
static DST: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new("DST="));

/// Cheap check for netfilter output (`SRC=` and `DST=` anywhere): where `SRC=` starts, or
/// `None` when the message does not look like netfilter's.
pub fn src_of(msg: &str) -> Option<usize> {
    let b = msg.as_bytes();
    let p = SRC.find(b)?;
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
    if let Some(rest) = prefix.strip_prefix('[') {
        if let Some(end) = rest.bytes().position(|c| c == b']') {
            if rest[..end]
                .bytes()
                .all(|c| c.is_ascii_digit() || c == b'.' || c == b' ')
            {
                prefix = rest[end + 1..].trim_ascii();
            }
        }
    }
    let unifi = unifi_action(prefix);
    let action = unifi.unwrap_or_else(|| action_from_prefix(prefix));
    let prefix = prefix.trim_end_matches(':').trim_ascii();
    if rule.is_none() && !prefix.is_empty() {
        rule = Some(prefix);
    }

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
        let sp = f
            .spt
            .ok_or(Reason::Malformed("missing_port"))?
            .parse::<u16>()
            .map_err(|_| Reason::Malformed("bad_port"))?;
        let dp = f
            .dpt
            .ok_or(Reason::Malformed("missing_port"))?
            .parse::<u16>()
            .map_err(|_| Reason::Malformed("bad_port"))?;
        (Some(sp), Some(dp))
    } else {
        (None, None)
    };
    let nonempty = |s: Option<&'a str>| s.filter(|s| !s.is_empty()).map(Cow::Borrowed);
    let in_iface = nonempty(f.input);
    let out_iface = nonempty(f.output);
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
        protocol,
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        direction,
        in_iface,
        out_iface,
        rule: rule.map(|r| crate::clip(r, 64)),
        device: env.hostname.map(Cow::Borrowed),
        format: Format::Netfilter,
        bytes: f.len.and_then(|l| l.parse().ok()),
        packets: Some(1),
        count: 1,
        raw,
        nat: None,
        product: (unifi.is_some() || descr).then_some(Cow::Borrowed("Ubiquiti|UniFi / EdgeOS")),
        host: None,
        url: None,
    })
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

/// Where the token at `i` ends, plus one (`b.len() + 1` when it runs to the end): at the first
/// space, unless a double quote comes first, in which case the quoted text (to the next quote,
/// or the end of the line) is part of the token, spaces and all.
fn skip_token(b: &[u8], i: usize) -> usize {
    let mut j = crate::fields::find_any(b, i, [b' ', b'"']);
    while j < b.len() && b[j] == b'"' {
        let close = crate::fields::find_any(b, j + 1, [b'"']);
        if close >= b.len() {
            return b.len() + 1;
        }
        j = crate::fields::find_any(b, close + 1, [b' ', b'"']);
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

/// UniFi and EdgeOS name rules `[CHAIN-RULE-X]` or `[CHAIN-X-RULE]` where X is `A` (accept),
/// `D` (drop) or `R` (reject).
fn unifi_action(prefix: &str) -> Option<Action> {
    let b = prefix.as_bytes();
    let start = b.iter().position(|&c| c == b'[')?;
    let end = b[start..].iter().position(|&c| c == b']')? + start;
    let tag = &prefix[start + 1..end];
    if !tag.as_bytes().contains(&b'-') {
        return None;
    }
    tag.split('-').find_map(|seg| match seg {
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
}

fn words(p: &[u8]) -> Words {
    let mut w = Words::default();
    let at = |i: usize, word: &[u8]| {
        p.get(i..i + word.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(word))
    };
    for (i, c) in p.iter().enumerate() {
        // Only positions that could start a word are compared.
        match c.to_ascii_uppercase() {
            b'R' => w.reject |= at(i, b"REJECT"),
            b'D' => {
                w.drop |= at(i, b"DROP");
                w.deny |= at(i, b"DENY") || at(i, b"DENIED");
            }
            b'B' => w.deny |= at(i, b"BLOCK"),
            b'A' => w.allow |= at(i, b"ACCEPT") || at(i, b"ALLOW"),
            b'P' => w.allow |= at(i, b"PASS"),
            _ => {}
        }
    }
    w
}

fn action_from_prefix(p: &str) -> Action {
    let w = words(p.as_bytes());
    if w.reject {
        Action::Reject
    } else if w.drop {
        Action::Drop
    } else if w.deny {
        Action::Deny
    } else if w.allow {
        Action::Allow
    } else {
        Action::Deny
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
