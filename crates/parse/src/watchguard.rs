//! WatchGuard Firebox (Fireware) traffic logs, per the Fireware "Log Catalog".
//!
//! ```text
//! firewall: msg_id="3000-0148" Deny 1-Trusted 0-External 52 udp 20 128 10.0.1.2 8.8.8.8 61232 53 (Unhandled Internal Packet-00)
//! firewall: msg_id="3000-0151" Allow 0-External 1-Trusted tcp 203.0.113.9 10.0.1.5 51022 443 offset 10 S 123 win 65535 (HTTPS-proxy-00)
//! ```
//! After the verdict come the source and destination interfaces, optionally the packet length,
//! the protocol, optionally header length and TTL, then the addresses and (TCP/UDP) the ports.

use std::net::IpAddr;

use watchhouse_event::{Action, EventRef, Format, IpProto};

use crate::syslog::Envelope;
use crate::{clip, Flow, Reason, TimeContext};

/// Cheap check: `msg_id="NNNN-NNNN"` followed by Allow/Deny.
pub fn looks_like(msg: &str) -> bool {
    msg.contains("msg_id=\"3000-") || msg.contains(" Allow ") || msg.contains(" Deny ")
}

/// Parses a Firebox traffic log line.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let i = env
        .msg
        .find("msg_id=\"")
        .ok_or(Reason::Malformed("no_msg_id"))?;
    let rest = &env.msg[i + 8..];
    let (_id, rest) = rest.split_once('"').ok_or(Reason::Malformed("no_msg_id"))?;
    let w: Vec<&str> = rest.split_whitespace().collect();
    let action = match w.first().copied() {
        Some("Allow") => Action::Allow,
        Some("Deny") => Action::Deny,
        _ => return Err(Reason::NotTraffic),
    };
    let (src_if, dst_if) = (w.get(1).copied(), w.get(2).copied());
    // The protocol is the first protocol name after the interfaces.
    let pi = (3..w.len().min(6))
        .find(|&i| {
            IpProto::parse(w[i]).is_some_and(|_| w[i].chars().all(|c| c.is_ascii_alphabetic()))
        })
        .ok_or(Reason::Malformed("missing_proto"))?;
    let protocol = IpProto::parse(w[pi]).ok_or(Reason::Malformed("bad_proto"))?;
    // Then the first two addresses.
    let ai = (pi + 1..w.len().min(pi + 5))
        .find(|&i| w[i].parse::<IpAddr>().is_ok())
        .ok_or(Reason::Malformed("missing_src"))?;
    let src_ip: IpAddr = w[ai].parse().map_err(|_| Reason::Malformed("bad_src"))?;
    let dst_ip: IpAddr = w
        .get(ai + 1)
        .ok_or(Reason::Malformed("missing_dst"))?
        .parse()
        .map_err(|_| Reason::Malformed("bad_dst"))?;
    let (src_port, dst_port) = if protocol.has_ports() {
        let p = |i: usize| -> Result<u16, Reason> {
            w.get(i)
                .ok_or(Reason::Malformed("missing_port"))?
                .parse()
                .map_err(|_| Reason::Malformed("bad_port"))
        };
        (Some(p(ai + 2)?), Some(p(ai + 3)?))
    } else {
        (None, None)
    };
    let policy = rest
        .rfind('(')
        .and_then(|s| rest[s + 1..].split(')').next());
    let time_ms = env.time_ms.unwrap_or(ctx.now_ms);
    let mut e = Flow {
        action,
        protocol,
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    }
    .event(Format::WatchGuard, raw, env, time_ms);
    e.in_iface = src_if.map(|s| clip(s, 64));
    e.out_iface = dst_if.map(|s| clip(s, 64));
    e.rule = policy.map(|s| clip(s, 64));
    Ok(e)
}
