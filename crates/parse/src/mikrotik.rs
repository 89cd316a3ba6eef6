//! MikroTik RouterOS firewall logging (a rule with `action=log` or `log=yes`), per the RouterOS
//! manual ("Firewall / Filter", "Log").
//!
//! ```text
//! firewall,info drop-in input: in:ether1-WAN out:(unknown 0), connection-state:new src-mac 00:17:10:88:bc:02, proto UDP, 186.26.78.68:44355->81.82.202.145:53, len 65
//! firewall,info forward: in:WAN out:LAN, connection-state:new proto TCP (SYN), [2001:db8::1]:40384->[2001:db8::2]:20461, len 24
//! firewall,info srcnat: in:bridge out:ether1, proto TCP (SYN), 192.168.88.2:51736->142.250.74.46:443, NAT (192.168.88.2:51736->10.0.0.2:51736)->142.250.74.46:443, len 60
//! ```
//! RouterOS writes no verdict; the optional log prefix (here `drop-in`) is the operator's. A
//! prefix naming drop/reject/accept decides; without one the event is recorded as `deny`, as for
//! netfilter (see ARCHITECTURE.md).

use std::net::IpAddr;

use watchhouse_event::{Action, EventRef, Format, IpProto};

use crate::syslog::Envelope;
use crate::{clip, clip_owned, nat, Flow, Reason, TimeContext};

/// RouterOS log topics that start a message (`firewall,info`, `system,error,critical`, …).
const TOPICS: &[&str] = &[
    "firewall",
    "system",
    "info",
    "error",
    "warning",
    "critical",
    "debug",
    "account",
    "dhcp",
    "interface",
    "wireless",
    "ppp",
    "pppoe",
    "ipsec",
    "l2tp",
    "ovpn",
    "script",
    "dns",
    "hotspot",
    "bridge",
    "route",
    "ospf",
    "bgp",
    "caps",
    "certificate",
    "ntp",
    "web-proxy",
    "health",
    "e-mail",
];

/// Cheap check: the first token is a comma-separated list of RouterOS topics including
/// `firewall` or `system`, or the body has RouterOS's connection arrow and interfaces.
pub fn looks_like(msg: &str) -> bool {
    let first = msg.split(' ').next().unwrap_or("");
    let topics = first.contains(',') && first.split(',').all(|t| TOPICS.contains(&t));
    topics || (msg.contains(" proto ") && msg.contains("->") && msg.contains("in:"))
}

/// `a.b.c.d:port`, `[v6]:port` or a bare address.
fn endpoint(s: &str) -> Result<(IpAddr, Option<u16>), Reason> {
    let s = s.trim();
    if let Some(r) = s.strip_prefix('[') {
        let (a, p) = r.split_once(']').ok_or(Reason::Malformed("bad_address"))?;
        let ip = a.parse().map_err(|_| Reason::Malformed("bad_address"))?;
        return match p.strip_prefix(':') {
            Some(p) => Ok((
                ip,
                Some(p.parse().map_err(|_| Reason::Malformed("bad_port"))?),
            )),
            None => Ok((ip, None)),
        };
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    let (a, p) = s.rsplit_once(':').ok_or(Reason::Malformed("bad_address"))?;
    Ok((
        a.parse().map_err(|_| Reason::Malformed("bad_address"))?,
        Some(p.parse().map_err(|_| Reason::Malformed("bad_port"))?),
    ))
}

fn prefix_action(p: &str) -> Action {
    let p = p.to_ascii_lowercase();
    if p.contains("reject") {
        Action::Reject
    } else if p.contains("drop") {
        Action::Drop
    } else if p.contains("block") || p.contains("deny") {
        Action::Deny
    } else if p.contains("accept") || p.contains("allow") || p.contains("pass") {
        Action::Allow
    } else {
        Action::Deny
    }
}

/// Parses a RouterOS firewall message.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let msg = env.msg;
    if !msg.contains("->") || !msg.contains(" proto ") {
        return Err(Reason::NotTraffic);
    }
    // "<topics> [prefix] <chain>: in:… out:…, …"
    let colon = msg
        .find(": in:")
        .or_else(|| msg.find(": "))
        .ok_or(Reason::Malformed("no_chain"))?;
    let head: Vec<&str> = msg[..colon].split(' ').collect();
    let body = &msg[colon + 2..];
    let chain = head.last().copied().unwrap_or("");
    let prefix = if head.len() >= 3 {
        head[1..head.len() - 1].join(" ")
    } else {
        String::new()
    };
    let parts: Vec<&str> = body.split(", ").collect();
    let mut in_iface = None;
    let mut out_iface = None;
    let mut protocol = None;
    let mut flow = None;
    let mut nat_part = None;
    let mut len = None;
    for p in &parts {
        if let Some(r) = p.strip_prefix("in:") {
            let (i, o) = match r.split_once(" out:") {
                Some((i, o)) => (i, Some(o)),
                None => (r, None),
            };
            in_iface = Some(i);
            out_iface = o.filter(|o| !o.starts_with("(unknown"));
        } else if let Some(r) = p.strip_prefix("proto ") {
            let name = r.split(' ').next().unwrap_or("");
            protocol = Some(IpProto::parse(name).ok_or(Reason::Malformed("bad_proto"))?);
        } else if p.starts_with("NAT ") {
            nat_part = Some(*p);
        } else if let Some(r) = p.strip_prefix("len ") {
            len = r.trim().parse::<u64>().ok();
        } else if p.contains("->") && flow.is_none() {
            flow = Some(*p);
        } else if let Some(i) = p.find("proto ") {
            // "connection-state:new proto TCP (SYN)" when src-mac is absent.
            let name = p[i + 6..].split(' ').next().unwrap_or("");
            protocol = Some(IpProto::parse(name).ok_or(Reason::Malformed("bad_proto"))?);
        }
    }
    let protocol = protocol.ok_or(Reason::Malformed("missing_proto"))?;
    let (a, b) = flow
        .ok_or(Reason::Malformed("missing_flow"))?
        .split_once("->")
        .ok_or(Reason::Malformed("missing_flow"))?;
    let (src_ip, sp) = endpoint(a)?;
    let (dst_ip, dp) = endpoint(b)?;
    let (src_port, dst_port) = if protocol.has_ports() {
        (
            Some(sp.ok_or(Reason::Malformed("missing_port"))?),
            Some(dp.ok_or(Reason::Malformed("missing_port"))?),
        )
    } else {
        (None, None)
    };
    let time_ms = env.time_ms.unwrap_or(ctx.now_ms);
    let action = prefix_action(&prefix);
    let mut e = Flow {
        action,
        protocol,
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    }
    .event(Format::MikroTik, raw, env, time_ms);
    e.in_iface = in_iface.map(|s| clip(s, 64));
    e.out_iface = out_iface.map(|s| clip(s, 64));
    e.rule = Some(if prefix.is_empty() {
        clip(chain, 64)
    } else {
        clip_owned(prefix, 64)
    });
    e.bytes = len;
    e.packets = Some(1);
    // "NAT (orig_src->translated_src)->dst": only a well-formed pair is kept.
    if let Some(n) = nat_part {
        if let Some(inner) = n.strip_prefix("NAT (").and_then(|r| r.split_once(")->")) {
            if let Some((_, translated)) = inner.0.split_once("->") {
                if let Ok((ip, port)) = endpoint(translated) {
                    if ip != src_ip || port != src_port {
                        e.nat = nat(Some(ip), port, None, None);
                    }
                }
            }
        }
    }
    Ok(e)
}
