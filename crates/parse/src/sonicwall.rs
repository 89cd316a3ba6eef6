//! SonicWall SonicOS "Default" syslog format: space-separated key=value pairs, per the SonicOS Log
//! Events reference.
//!
//! ```text
//! id=firewall sn=0017C5178994 time="2018-02-06 16:11:09" fw=64.107.153.15 pri=6 c=1024 m=537
//!   msg="Connection Closed" f=2 n=11782330 src=192.168.97.214:60622:X0-V999
//!   dst=172.27.14.5:53:X0-V51 proto=udp/dns sent=56 rcvd=146
//! ```
//! `src`/`dst` are `address[:port[:interface[:name]]]`; `proto` is `tcp/https`, `udp/dns`, `icmp`…

use std::collections::HashMap;
use std::net::IpAddr;

use watchhouse_event::{Action, EventRef, Format, IpProto};

use crate::fields::{pairs, ports};
use crate::syslog::{civil_ms, parse_offset, Envelope};
use crate::{clip, nat, Flow, Reason, TimeContext};

/// `addr[:port[:iface[:name]]]` (IPv4 only in this notation).
fn endpoint(v: &str) -> Result<(IpAddr, Option<&str>, Option<&str>), Reason> {
    let mut it = v.split(':');
    let ip: IpAddr = it
        .next()
        .unwrap_or("")
        .parse()
        .map_err(|_| Reason::Malformed("bad_address"))?;
    Ok((ip, it.next(), it.next()))
}

fn action(fw_action: Option<&str>, msg: &str) -> Option<Action> {
    match fw_action.map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("drop") => return Some(Action::Drop),
        Some("deny") | Some("block") => return Some(Action::Deny),
        Some("reject") => return Some(Action::Reject),
        Some("forward") | Some("allow") => return Some(Action::Allow),
        _ => {}
    }
    let m = msg.to_ascii_lowercase();
    if m.contains("dropped") || m.contains("drop") {
        Some(Action::Drop)
    } else if m.contains("blocked") || m.contains("denied") {
        Some(Action::Deny)
    } else if m.contains("connection opened")
        || m.contains("connection closed")
        || m.contains("allowed")
    {
        Some(Action::Allow)
    } else {
        None
    }
}

/// Parses a SonicWall message.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let x: HashMap<&str, &str> = pairs(env.msg).collect();
    let get = |k: &str| x.get(k).copied();
    let (Some(src), Some(dst)) = (get("src"), get("dst")) else {
        return Err(Reason::NotTraffic);
    };
    if src.is_empty() || dst.is_empty() {
        return Err(Reason::NotTraffic);
    }
    let (src_ip, sp, sif) = endpoint(src)?;
    let (dst_ip, dp, dif) = endpoint(dst)?;
    let proto_field = get("proto").ok_or(Reason::Malformed("missing_proto"))?;
    let protocol = IpProto::parse(proto_field.split('/').next().unwrap_or(""))
        .ok_or(Reason::Malformed("bad_proto"))?;
    let (src_port, dst_port) = ports(protocol, sp, dp)?;
    let action = action(get("fw_action"), get("msg").unwrap_or(""))
        .ok_or(Reason::Malformed("unknown_action"))?;
    let time_ms = get("time")
        .and_then(|t| {
            let mut it = t.split(' ');
            let (d, tm) = (it.next()?, it.next()?);
            let tz = it
                .next()
                .and_then(parse_offset)
                .unwrap_or_else(|| ctx.tz.clone());
            civil_ms(d, tm, &tz)
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
    .event(Format::SonicWall, raw, env, time_ms);
    e.in_iface = sif.map(|s| clip(s, 64));
    e.out_iface = dif.map(|s| clip(s, 64));
    e.rule = get("rule").map(|s| clip(s, 64));
    let ep = |k: &str| -> Result<(Option<IpAddr>, Option<u16>), Reason> {
        match get(k) {
            Some(v) if !v.is_empty() => {
                let (ip, p, _) = endpoint(v)?;
                let p = match p {
                    Some(p) => Some(
                        p.parse::<u16>()
                            .map_err(|_| Reason::Malformed("bad_nat_port"))?,
                    ),
                    None => None,
                };
                Ok((Some(ip), p))
            }
            _ => Ok((None, None)),
        }
    };
    let (ns, nsp) = ep("natSrc")?;
    let (nd, ndp) = ep("natDst")?;
    e.nat = nat(ns, nsp, nd, ndp);
    let num = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
    e.bytes = crate::fields::sum_opt(num("sent"), num("rcvd"));
    Ok(e)
}
