//! Cisco Meraki MX syslog, per Meraki's "Syslog Event Types and Log Samples".
//!
//! ```text
//! 1 1374543986.038687615 MX60 flows src=192.168.1.186 dst=8.8.8.8 mac=58:1F:AA:CE:61:F2 protocol=udp sport=55719 dport=53 pattern: allow all
//! 1 1563249630.774247467 remote_DC1_appliance flows allow src=10.217.0.49 dst=8.8.8.8 protocol=udp sport=54321 dport=53
//! 1 1563249630.77 MX84 firewall src=10.0.0.5 dst=1.1.1.1 mac=… protocol=tcp sport=5555 dport=25 pattern: 1 all
//! 1 1563249630.77 MX84 ip_flow_start src=… dst=… protocol=tcp sport=… dport=… translated_src_ip=… translated_port=…
//! ```

use std::collections::HashMap;

use watchhouse_event::{Action, EventRef, Format};

use crate::fields::{epoch_ms, ip, opt_ip, opt_port, pairs, ports, proto};
use crate::syslog::Envelope;
use crate::{clip, nat, Flow, Reason, TimeContext};

const TYPES: &[&str] = &[
    "flows",
    "firewall",
    "vpn_firewall",
    "cellular_firewall",
    "ip_flow_start",
    "ip_flow_end",
];

/// Splits `[1 ]<epoch.frac> <device> <type> <rest>`.
fn header(msg: &str) -> Option<(&str, &str, &str, &str)> {
    let m = msg.strip_prefix("1 ").unwrap_or(msg);
    let mut it = m.splitn(4, ' ');
    let ts = it.next()?;
    let dev = it.next()?;
    let kind = it.next()?;
    let rest = it.next().unwrap_or("");
    let (secs, frac) = ts.split_once('.')?;
    if secs.len() != 10
        || !secs.bytes().all(|c| c.is_ascii_digit())
        || !frac.bytes().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    Some((ts, dev, kind, rest))
}

/// Cheap check.
pub fn looks_like(msg: &str) -> bool {
    header(msg).is_some_and(|(_, _, kind, _)| {
        TYPES.contains(&kind) || kind == "urls" || kind == "events" || kind == "ids-alerts"
    })
}

/// Parses a Meraki message.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let (ts, dev, kind, rest) = header(env.msg).ok_or(Reason::Malformed("bad_meraki_header"))?;
    if !TYPES.contains(&kind) {
        return Err(Reason::NotTraffic);
    }
    let (body, pattern) = match rest.find(" pattern: ") {
        Some(i) => (&rest[..i], Some(&rest[i + 10..])),
        None => (rest, None),
    };
    let x: HashMap<&str, &str> = pairs(body).collect();
    let get = |k: &str| x.get(k).copied();
    let first = body.split(' ').next().unwrap_or("");
    let action = match (first, pattern) {
        ("allow", _) => Action::Allow,
        ("deny", _) => Action::Deny,
        (_, Some(p)) if p.starts_with("allow") => Action::Allow,
        (_, Some(p)) if p.starts_with("deny") => Action::Deny,
        // "pattern: 1 all" (older firmware): 1 = allowed, 0 = denied.
        (_, Some(p)) if p.starts_with("1 ") || p == "1" => Action::Allow,
        (_, Some(p)) if p.starts_with("0 ") || p == "0" => Action::Deny,
        // Flow start/end records are connections the appliance passed.
        _ if kind.starts_with("ip_flow") => Action::Allow,
        _ => return Err(Reason::Malformed("unknown_action")),
    };
    let src_ip = ip(get("src"), "missing_src", "bad_src")?;
    let dst_ip = ip(get("dst"), "missing_dst", "bad_dst")?;
    let protocol = proto(get("protocol"))?;
    let (src_port, dst_port) = ports(protocol, get("sport"), get("dport"))?;
    let time_ms = epoch_ms(ts).or(env.time_ms).unwrap_or(ctx.now_ms);
    let mut e = Flow {
        action,
        protocol,
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    }
    .event(Format::Meraki, raw, env, time_ms);
    e.device = Some(clip(dev, 128));
    e.rule = pattern.map(|p| clip(p, 64));
    e.nat = nat(
        opt_ip(get("translated_src_ip"))?,
        opt_port(get("translated_port"))?,
        opt_ip(get("translated_dst_ip"))?,
        None,
    );
    Ok(e)
}
