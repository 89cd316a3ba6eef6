//! DrayTek Vigor (DrayOS) firewall syslog, per DrayTek's "Syslog about Firewall and Content
//! Security Management" knowledge-base article.
//!
//! ```text
//! [FILTER][Block][LAN/RT/VPN->WAN, 0:10:22 ][@S:R=2:2, 192.168.1.11->8.8.8.8][ICMP][HLen=20, TLen=60, Type=8, Code=0]
//! [FILTER][Pass][WAN->LAN/RT/VPN, 1:02:03 ][@S:R=13:1, 203.0.113.9:55555->192.168.1.20:443][TCP][HLen=20, TLen=60, Flag=S, …]
//! ```
//! Content-filter records (`[CSM_UF]`, `[CSM_WF]`, …) name a URL rather than an address and are
//! counted as not traffic.

use std::net::IpAddr;

use watchhouse_event::{Action, EventRef, Format, IpProto};

use crate::syslog::Envelope;
use crate::{clip, Flow, Reason, TimeContext};

/// Cheap check.
pub fn looks_like(msg: &str) -> bool {
    msg.contains("[FILTER][") || msg.contains("[CSM_")
}

fn brackets(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('[') {
        let Some(j) = rest[i..].find(']') else { break };
        out.push(&rest[i + 1..i + j]);
        rest = &rest[i + j + 1..];
    }
    out
}

fn endpoint(s: &str) -> Result<(IpAddr, Option<u16>), Reason> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    let (a, p) = s.rsplit_once(':').ok_or(Reason::Malformed("bad_address"))?;
    Ok((
        a.parse().map_err(|_| Reason::Malformed("bad_address"))?,
        Some(p.parse().map_err(|_| Reason::Malformed("bad_port"))?),
    ))
}

/// Parses a Vigor firewall record.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let start = env
        .msg
        .find("[FILTER][")
        .or_else(|| env.msg.find("[CSM_"))
        .ok_or(Reason::NotTraffic)?;
    let b = brackets(&env.msg[start..]);
    if b.first() != Some(&"FILTER") {
        return Err(Reason::NotTraffic);
    }
    let action = match b.get(1).copied() {
        Some("Block") => Action::Deny,
        Some("Pass") => Action::Allow,
        _ => return Err(Reason::Malformed("unknown_action")),
    };
    let direction = b.get(2).and_then(|d| d.split(',').next());
    let rule_flow = b
        .iter()
        .find(|x| x.starts_with("@S:R="))
        .ok_or(Reason::Malformed("missing_flow"))?;
    let (rule, flow) = rule_flow
        .split_once(", ")
        .ok_or(Reason::Malformed("missing_flow"))?;
    let (a, d) = flow
        .split_once("->")
        .ok_or(Reason::Malformed("missing_flow"))?;
    let (src_ip, sp) = endpoint(a)?;
    let (dst_ip, dp) = endpoint(d)?;
    let proto_idx = b
        .iter()
        .position(|x| x.starts_with("@S:R="))
        .map_or(0, |i| i + 1);
    let protocol = b
        .get(proto_idx)
        .and_then(|p| IpProto::parse(p))
        .ok_or(Reason::Malformed("missing_proto"))?;
    let (src_port, dst_port) = if protocol.has_ports() {
        (
            Some(sp.ok_or(Reason::Malformed("missing_port"))?),
            Some(dp.ok_or(Reason::Malformed("missing_port"))?),
        )
    } else {
        (None, None)
    };
    let time_ms = env.time_ms.unwrap_or(ctx.now_ms);
    let mut e = Flow {
        action,
        protocol,
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    }
    .event(Format::DrayTek, raw, env, time_ms);
    e.rule = Some(clip(rule.trim_start_matches('@'), 64));
    if let Some((from, to)) = direction.and_then(|d| d.split_once("->")) {
        e.in_iface = Some(clip(from.trim(), 64));
        e.out_iface = Some(clip(to.trim(), 64));
    }
    if let Some(len) = b
        .get(proto_idx + 1)
        .and_then(|h| h.split(", ").find_map(|kv| kv.strip_prefix("TLen=")))
    {
        e.bytes = len.parse().ok();
        e.packets = Some(1);
    }
    Ok(e)
}
