//! Palo Alto Networks PAN-OS syslog in the default CSV format (TRAFFIC and THREAT), per the
//! PAN-OS "Syslog Field Descriptions". (PAN-OS CEF goes through the CEF parser.)
//!
//! ```text
//! 1,2023/07/06 08:11:40,016401002737,THREAT,vulnerability,2561,2023/07/06 08:11:40,src,dst,
//!   natsrc,natdst,rule,srcuser,dstuser,app,vsys,from,to,inbound_if,outbound_if,log_action,
//!   time,session,repeat,sport,dport,natsport,natdport,flags,proto,action,…
//! ```
//! TRAFFIC continues with bytes, bytes sent, bytes received, packets, …

use watchhouse_event::{Action, EventRef, Format};

use crate::fields::{csv, ip, opt_ip, opt_port, ports, proto};
use crate::syslog::{civil_ms, Envelope};
use crate::{clip, nat, Flow, Reason, TimeContext};

/// Cheap check: `<digit>,YYYY/MM/DD HH:MM:SS,<serial>,<TYPE>,`.
pub fn looks_like(msg: &str) -> bool {
    let f = csv(msg, 5);
    f.len() == 5
        && f[0].len() <= 2
        && f[1].len() == 19
        && f[1].as_bytes().get(4) == Some(&b'/')
        && matches!(
            f[3],
            "TRAFFIC"
                | "THREAT"
                | "SYSTEM"
                | "CONFIG"
                | "HIP-MATCH"
                | "GLOBALPROTECT"
                | "USERID"
                | "DECRYPTION"
                | "AUTHENTICATION"
                | "TUNNEL"
                | "SCTP"
                | "CORRELATION"
        )
}

fn action(s: &str) -> Option<Action> {
    Some(match s {
        "allow" | "alert" => Action::Allow,
        "deny" => Action::Deny,
        "drop" | "drop-icmp" | "drop-all-packets" | "block-ip" | "block-url" | "block-continue"
        | "block-override" | "sinkhole" => Action::Drop,
        "reset-client" | "reset-server" | "reset-both" => Action::Reject,
        _ => return None,
    })
}

/// Parses a PAN-OS CSV record.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let f = csv(env.msg, 40);
    if f.len() < 4 {
        return Err(Reason::Malformed("too_few_fields"));
    }
    if f[3] != "TRAFFIC" && f[3] != "THREAT" {
        return Err(Reason::NotTraffic);
    }
    if f.len() < 31 {
        return Err(Reason::Malformed("too_few_fields"));
    }
    let src_ip = ip(Some(f[7]), "missing_src", "bad_src")?;
    let dst_ip = ip(Some(f[8]), "missing_dst", "bad_dst")?;
    let protocol = proto(Some(f[29]))?;
    let (src_port, dst_port) = ports(protocol, Some(f[24]), Some(f[25]))?;
    let action = action(f[30]).ok_or(Reason::Malformed("unknown_action"))?;
    // Prefer a zoned envelope time; the CSV's generated time is in the device's zone.
    let time_ms = env
        .time_ms
        .or_else(|| {
            let (d, t) = f[6].split_once(' ')?;
            civil_ms(d, t, &ctx.tz)
        })
        .unwrap_or(ctx.now_ms);
    let mut e = Flow {
        action,
        protocol,
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    }
    .event(Format::PanOs, raw, env, time_ms);
    e.rule = Some(clip(f[11], 64)).filter(|s| !s.is_empty());
    e.in_iface = Some(clip(f[18], 64)).filter(|s| !s.is_empty());
    e.out_iface = Some(clip(f[19], 64)).filter(|s| !s.is_empty());
    e.nat = nat(
        opt_ip(Some(f[9]))?,
        opt_port(Some(f[26]))?,
        opt_ip(Some(f[10]))?,
        opt_port(Some(f[27]))?,
    );
    e.count = f[23].parse::<u32>().ok().filter(|n| *n > 0).unwrap_or(1);
    if f[3] == "TRAFFIC" {
        e.bytes = f.get(31).and_then(|v| v.parse().ok());
        e.packets = f.get(34).and_then(|v| v.parse().ok());
    }
    Ok(e)
}
