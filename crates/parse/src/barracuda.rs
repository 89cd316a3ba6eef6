//! Barracuda CloudGen Firewall activity log (box_Firewall_Activity), per Barracuda Campus
//! "Firewall Activity Log".
//!
//! ```text
//! Block: type=FWD|proto=UDP|srcIF=eth0|srcIP=10.17.34.12|srcPort=54915|srcMAC=18:db:f2:13:ca:9c|dstIP=10.17.34.255|dstPort=54915|dstService=|dstIF=|rule=BLOCKALL|info=Block by Rule|srcNAT=0.0.0.0|dstNAT=0.0.0.0|duration=0|count=1|receivedBytes=0|sentBytes=0|receivedPackets=0|sentPackets=0|user=|protocol=|application=|target=|content=|urlcat=
//! ```

use std::collections::HashMap;

use watchhouse_event::{Action, EventRef, Format};

use crate::fields::{ip, opt_ip, ports, proto};
use crate::syslog::Envelope;
use crate::{clip, nat, Flow, Reason, TimeContext};

/// Cheap check.
pub fn looks_like(msg: &str) -> bool {
    msg.contains("type=") && msg.contains("|srcIP=") && msg.contains("|dstIP=")
}

/// Parses an activity-log record.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let i = env.msg.find("type=").ok_or(Reason::NotTraffic)?;
    let head = env.msg[..i].trim_end();
    let verb = head.rsplit(' ').next().unwrap_or("").trim_end_matches(':');
    let x: HashMap<&str, &str> = env.msg[i..]
        .split('|')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let get = |k: &str| x.get(k).copied().filter(|v| !v.is_empty());
    let action = match verb {
        "Allow" | "Remove" | "Change" | "Start" => Action::Allow,
        "Block" | "Deny" => Action::Deny,
        "Drop" => Action::Drop,
        "Reset" | "Reject" => Action::Reject,
        _ => return Err(Reason::Malformed("unknown_action")),
    };
    let src_ip = ip(get("srcIP"), "missing_src", "bad_src")?;
    let dst_ip = ip(get("dstIP"), "missing_dst", "bad_dst")?;
    let protocol = proto(get("proto"))?;
    let (src_port, dst_port) = ports(protocol, get("srcPort"), get("dstPort"))?;
    let time_ms = env.time_ms.unwrap_or(ctx.now_ms);
    let mut e = Flow {
        action,
        protocol,
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    }
    .event(Format::Barracuda, raw, env, time_ms);
    e.in_iface = get("srcIF").map(|s| clip(s, 64));
    e.out_iface = get("dstIF").map(|s| clip(s, 64));
    e.rule = get("rule").map(|s| clip(s, 64));
    e.nat = nat(opt_ip(get("srcNAT"))?, None, opt_ip(get("dstNAT"))?, None);
    let num = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
    e.bytes = num("receivedBytes")
        .zip(num("sentBytes"))
        .map(|(a, b)| a + b)
        .filter(|n| *n > 0);
    e.packets = num("receivedPackets")
        .zip(num("sentPackets"))
        .map(|(a, b)| a + b)
        .filter(|n| *n > 0);
    e.count = get("count")
        .and_then(|c| c.parse().ok())
        .filter(|c| *c > 0)
        .unwrap_or(1);
    Ok(e)
}
