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

use watchhouse_event::{Action, Direction, Event, Format, IpProto};

use crate::syslog::{find_clf_time, Envelope};
use crate::Reason;

static SRC: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new("SRC="));
static DST: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new("DST="));

/// Cheap check: does this message look like netfilter output?
pub fn looks_like(msg: &str) -> bool {
    let b = msg.as_bytes();
    SRC.find(b).is_some() && DST.find(b).is_some()
}

/// Parses a netfilter message.
pub fn parse(env: &Envelope<'_>, raw: &str, now_ms: i64) -> Result<Event, Reason> {
    let msg = env.msg;
    // The prefix is everything before the first KEY= token.
    let kv_start = first_kv(msg).ok_or(Reason::Malformed("no_fields"))?;
    let mut prefix = msg[..kv_start].trim();
    let mut time_ms = env.time_ms;
    let mut rule: Option<&str> = None;
    // Proxmox VE: "VMID LEVEL CHAIN dd/Mon/yyyy:HH:MM:SS +zzzz [ACTION:] IN=…"
    if let Some((t, range)) = find_clf_time(prefix) {
        if time_ms.is_none() {
            time_ms = Some(t);
        }
        rule = prefix[..range.start].split_whitespace().nth(2);
        prefix = prefix[range.end..].trim();
    }
    // The kernel's uptime stamp, e.g. "[  203.842973]".
    if let Some(rest) = prefix.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            if rest[..end]
                .bytes()
                .all(|c| c.is_ascii_digit() || c == b'.' || c == b' ')
            {
                prefix = rest[end + 1..].trim();
            }
        }
    }
    let unifi = unifi_action(prefix);
    let action = unifi.unwrap_or_else(|| action_from_prefix(prefix));
    let prefix = prefix.trim_end_matches(':').trim();
    if rule.is_none() && !prefix.is_empty() {
        rule = Some(prefix);
    }

    let mut f = Fields::default();
    // A byte-level scan of `KEY=value` tokens: the keys are short and fixed, so they are
    // matched as byte patterns rather than string comparisons.
    let b = msg.as_bytes();
    let mut i = kv_start;
    while i < b.len() {
        let end = memchr::memchr(b' ', &b[i..]).map_or(b.len(), |p| i + p);
        if let Some(eq) = memchr::memchr(b'=', &b[i..end]) {
            let v = &msg[i + eq + 1..end];
            let slot = match &b[i..i + eq] {
                b"IN" => &mut f.input,
                b"OUT" => &mut f.output,
                b"SRC" => &mut f.src,
                b"DST" => &mut f.dst,
                b"LEN" => &mut f.len,
                b"PROTO" => &mut f.proto,
                b"SPT" => &mut f.spt,
                b"DPT" => &mut f.dpt,
                _ => {
                    i = end + 1;
                    continue;
                }
            };
            if slot.is_none() {
                *slot = Some(v);
            }
            if f.dpt.is_some() {
                // Everything needed precedes DPT in the kernel's output.
                break;
            }
        }
        i = end + 1;
    }
    let src_ip = f
        .src
        .ok_or(Reason::Malformed("missing_src"))?
        .parse()
        .map_err(|_| Reason::Malformed("bad_src"))?;
    let dst_ip = f
        .dst
        .ok_or(Reason::Malformed("missing_dst"))?
        .parse()
        .map_err(|_| Reason::Malformed("bad_dst"))?;
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
    let nonempty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
    let in_iface = nonempty(f.input);
    let out_iface = nonempty(f.output);
    let direction = match (&in_iface, &out_iface) {
        (Some(_), None) => Direction::Inbound,
        (None, Some(_)) => Direction::Outbound,
        _ => Direction::Unknown,
    };
    let time_ms = time_ms.unwrap_or(now_ms);
    Ok(Event {
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
        rule: rule.map(|r| truncate(r, 64).to_owned()),
        device: env.hostname.map(str::to_owned),
        format: Format::Netfilter,
        bytes: f.len.and_then(|l| l.parse().ok()),
        packets: Some(1),
        count: 1,
        raw: raw.to_owned(),
        nat: None,
        product: (unifi.is_some() || msg.contains("DESCR="))
            .then(|| "Ubiquiti|UniFi / EdgeOS".to_owned()),
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
    let start = prefix.find('[')?;
    let end = prefix[start..].find(']')? + start;
    let tag = &prefix[start + 1..end];
    if !tag.contains('-') {
        return None;
    }
    tag.split('-').find_map(|seg| match seg {
        "A" => Some(Action::Allow),
        "D" => Some(Action::Drop),
        "R" => Some(Action::Reject),
        _ => None,
    })
}

/// Case-insensitive substring test without allocating.
fn contains_ci(hay: &str, needle: &str) -> bool {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

fn action_from_prefix(p: &str) -> Action {
    let has = |w: &str| contains_ci(p, w);
    if has("REJECT") {
        Action::Reject
    } else if has("DROP") {
        Action::Drop
    } else if has("BLOCK") || has("DENY") || has("DENIED") {
        Action::Deny
    } else if has("ACCEPT") || has("ALLOW") || has("PASS") {
        Action::Allow
    } else {
        Action::Deny
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
