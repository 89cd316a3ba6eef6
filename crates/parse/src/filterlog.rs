//! pfSense and OPNsense `filterlog` lines (the pf packet filter's CSV log).
//!
//! ```text
//! rule,subrule,anchor,tracker,iface,reason,action,dir,ipver,…
//! IPv4: tos,ecn,ttl,id,offset,flags,proto_id,proto,length,src,dst[,sport,dport,datalen[,tcp…]]
//! IPv6: class,flowlabel,hoplimit,proto,proto_id,length,src,dst[,sport,dport,datalen[,tcp…]]
//! ```
//! Layout from the pfSense documentation ("Raw Filter Log Format").

use std::net::IpAddr;

use std::borrow::Cow;

use watchhouse_event::{Action, Direction, EventRef, Format, IpProto};

use crate::fields::{dec_u16, dec_u64, parse_ip};
use crate::syslog::Envelope;
use crate::Reason;

/// Cheap check for a filterlog body when the syslog tag is missing.
pub fn looks_like(msg: &str) -> bool {
    let mut it = msg.splitn(9, ',');
    let first = it.next().unwrap_or("");
    if first.is_empty() || !first.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    let f: Vec<&str> = it.take(7).collect();
    f.len() == 7 && matches!(f[5], "pass" | "block" | "reject") && matches!(f[6], "in" | "out")
}

/// Parses a filterlog CSV body.
pub fn parse<'a>(env: &Envelope<'a>, raw: &'a str, now_ms: i64) -> Result<EventRef<'a>, Reason> {
    let mut f: [&str; 24] = [""; 24];
    let mut n = 0;
    // Split at commas with a plain loop: the fields are a few bytes each.
    let m = env.msg;
    let mut start = 0;
    for (i, c) in m.bytes().enumerate() {
        if c == b',' {
            f[n] = &m[start..i];
            n += 1;
            start = i + 1;
            if n == f.len() {
                break;
            }
        }
    }
    if n < f.len() {
        f[n] = &m[start..];
        n += 1;
    }
    if n < 9 {
        return Err(Reason::Malformed("too_few_fields"));
    }
    let action = match f[6] {
        "pass" => Action::Allow,
        "block" => Action::Deny,
        "reject" => Action::Reject,
        _ => return Err(Reason::Malformed("unknown_action")),
    };
    let hint = match f[7] {
        "in" => Direction::Inbound,
        "out" => Direction::Outbound,
        _ => Direction::Unknown,
    };
    // Index of proto id, length, src; and where the protocol-specific part starts.
    let (proto_id_ix, len_ix, src_ix) = match f[8] {
        "4" => (15, 17, 18),
        "6" => (13, 14, 15),
        _ => return Err(Reason::Malformed("bad_ip_version")),
    };
    if n < src_ix + 2 {
        return Err(Reason::Malformed("too_few_fields"));
    }
    let protocol = f[proto_id_ix]
        .parse::<u8>()
        .map(IpProto)
        .map_err(|_| Reason::Malformed("bad_proto"))?;
    let src_ip: IpAddr = parse_ip(f[src_ix]).ok_or(Reason::Malformed("bad_src"))?;
    let dst_ip: IpAddr = parse_ip(f[src_ix + 1]).ok_or(Reason::Malformed("bad_dst"))?;
    let want_v4 = f[8] == "4";
    if src_ip.is_ipv4() != want_v4 || dst_ip.is_ipv4() != want_v4 {
        return Err(Reason::Malformed("ip_version_mismatch"));
    }
    let (src_port, dst_port) = if protocol.has_ports() {
        if n < src_ix + 4 {
            return Err(Reason::Malformed("missing_port"));
        }
        let sp = dec_u16(f[src_ix + 2]).ok_or(Reason::Malformed("bad_port"))?;
        let dp = dec_u16(f[src_ix + 3]).ok_or(Reason::Malformed("bad_port"))?;
        (Some(sp), Some(dp))
    } else {
        (None, None)
    };
    let iface = (!f[4].is_empty()).then(|| Cow::Borrowed(f[4]));
    let (in_iface, out_iface) = match hint {
        Direction::Outbound => (None, iface),
        _ => (iface, None),
    };
    let rule = if !f[3].is_empty() { f[3] } else { f[0] };
    let time_ms = env.time_ms.unwrap_or(now_ms);
    Ok(EventRef {
        time_ms,
        last_ms: time_ms,
        action,
        protocol,
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        direction: hint,
        in_iface,
        out_iface,
        rule: (!rule.is_empty()).then_some(Cow::Borrowed(rule)),
        device: env.hostname.map(Cow::Borrowed),
        format: Format::Filterlog,
        bytes: dec_u64(f[len_ix]),
        packets: Some(1),
        count: 1,
        raw,
        nat: None,
        product: None,
        host: None,
        url: None,
    })
}
