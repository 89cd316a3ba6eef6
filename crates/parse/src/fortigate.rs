//! Fortinet FortiGate (FortiOS) key=value logs, per the FortiOS Log Message Reference.
//!
//! ```text
//! date=2024-10-14 time=13:46:40 eventtime=1728938800841267391 tz="-0700" logid="0000000013"
//! type="traffic" subtype="forward" srcip=… srcport=… srcintf="port1" dstip=… dstport=…
//! dstintf="wan1" proto=6 action="deny" policyid=0 sentbyte=… rcvdbyte=… transip=… transport=…
//! ```
//! For traffic logs FortiOS defines `action`: `deny` = blocked by policy, `start` = session start,
//! anything else = allowed (and says how the session ended).

use watchhouse_event::{Action, Event, Format};

use crate::fields::{epoch_ms, ip, opt_ip, opt_port, pairs, ports, proto};
use crate::syslog::{civil_ms, parse_offset, Envelope};
use crate::{clip, nat, Flow, Reason, TimeContext};

/// Parses a FortiGate message.
pub fn parse(env: &Envelope<'_>, raw: &str, ctx: &TimeContext) -> Result<Event, Reason> {
    let start = env
        .msg
        .find("date=")
        .or_else(|| env.msg.find("logid="))
        .unwrap_or(0);
    // One pass, keeping only the keys used (a FortiGate line has 30–60 pairs).
    const KEYS: [&str; 18] = [
        "type",
        "srcip",
        "dstip",
        "proto",
        "srcport",
        "dstport",
        "action",
        "eventtime",
        "tz",
        "date",
        "time",
        "srcintf",
        "dstintf",
        "policyid",
        "devname",
        "transip",
        "transport",
        "tranip",
    ];
    const MORE: [&str; 5] = ["tranport", "sentbyte", "rcvdbyte", "sentpkt", "rcvdpkt"];
    let mut vals: [Option<&str>; 23] = [None; 23];
    for (k, v) in pairs(&env.msg[start..]) {
        if let Some(i) = KEYS.iter().chain(MORE.iter()).position(|x| *x == k) {
            if vals[i].is_none() {
                vals[i] = Some(v);
            }
        }
    }
    let get = |k: &str| {
        KEYS.iter()
            .chain(MORE.iter())
            .position(|x| *x == k)
            .and_then(|i| vals[i])
    };
    let kind = get("type").unwrap_or("");
    if kind != "traffic" && kind != "utm" {
        return Err(Reason::NotTraffic);
    }
    if get("srcip").is_none() || get("dstip").is_none() {
        return Err(Reason::NotTraffic);
    }
    let src_ip = ip(get("srcip"), "missing_src", "bad_src")?;
    let dst_ip = ip(get("dstip"), "missing_dst", "bad_dst")?;
    let protocol = proto(get("proto"))?;
    let (src_port, dst_port) = ports(protocol, get("srcport"), get("dstport"))?;
    let act = get("action").ok_or(Reason::Malformed("missing_action"))?;
    let action = match act {
        "deny" | "blocked" | "block" => Action::Deny,
        "dropped" | "drop" => Action::Drop,
        "reset" | "reject" => Action::Reject,
        // Traffic logs: every other value means the policy allowed the session.
        _ if kind == "traffic" => Action::Allow,
        "pass" | "passthrough" | "monitored" | "detected" | "allow" => Action::Allow,
        _ => return Err(Reason::Malformed("unknown_action")),
    };
    let time_ms = get("eventtime")
        .and_then(epoch_ms)
        .or_else(|| {
            let tz = get("tz")
                .and_then(parse_offset)
                .unwrap_or_else(|| ctx.tz.clone());
            civil_ms(get("date")?, get("time")?, &tz)
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
    e.in_iface = get("srcintf").map(|s| clip(s, 64));
    e.out_iface = get("dstintf").map(|s| clip(s, 64));
    e.rule = get("policyid").map(|s| clip(s, 64));
    if let Some(dev) = get("devname") {
        e.device = Some(clip(dev, 128));
    }
    e.nat = nat(
        opt_ip(get("transip"))?,
        opt_port(get("transport"))?,
        opt_ip(get("tranip"))?,
        opt_port(get("tranport"))?,
    );
    let num = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
    e.bytes = crate::fields::sum_opt(num("sentbyte"), num("rcvdbyte"));
    e.packets = crate::fields::sum_opt(num("sentpkt"), num("rcvdpkt"));
    Ok(e)
}
