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

// The keys read, by slot.
const K_TYPE: usize = 0;
const K_SRCIP: usize = 1;
const K_DSTIP: usize = 2;
const K_PROTO: usize = 3;
const K_SRCPORT: usize = 4;
const K_DSTPORT: usize = 5;
const K_ACTION: usize = 6;
const K_EVENTTIME: usize = 7;
const K_TZ: usize = 8;
const K_DATE: usize = 9;
const K_TIME: usize = 10;
const K_SRCINTF: usize = 11;
const K_DSTINTF: usize = 12;
const K_POLICYID: usize = 13;
const K_DEVNAME: usize = 14;
const K_TRANSIP: usize = 15;
const K_TRANSPORT: usize = 16;
const K_TRANIP: usize = 17;
const K_TRANPORT: usize = 18;
const K_SENTBYTE: usize = 19;
const K_RCVDBYTE: usize = 20;
const K_SENTPKT: usize = 21;
const K_RCVDPKT: usize = 22;
const K_COUNT: usize = 23;

/// The slot of a key this parser reads, or `None` for the many it skips.
fn key_index(k: &str) -> Option<usize> {
    Some(match k {
        "type" => K_TYPE,
        "srcip" => K_SRCIP,
        "dstip" => K_DSTIP,
        "proto" => K_PROTO,
        "srcport" => K_SRCPORT,
        "dstport" => K_DSTPORT,
        "action" => K_ACTION,
        "eventtime" => K_EVENTTIME,
        "tz" => K_TZ,
        "date" => K_DATE,
        "time" => K_TIME,
        "srcintf" => K_SRCINTF,
        "dstintf" => K_DSTINTF,
        "policyid" => K_POLICYID,
        "devname" => K_DEVNAME,
        "transip" => K_TRANSIP,
        "transport" => K_TRANSPORT,
        "tranip" => K_TRANIP,
        "tranport" => K_TRANPORT,
        "sentbyte" => K_SENTBYTE,
        "rcvdbyte" => K_RCVDBYTE,
        "sentpkt" => K_SENTPKT,
        "rcvdpkt" => K_RCVDPKT,
        _ => return None,
    })
}

/// Parses a FortiGate message.
pub fn parse(env: &Envelope<'_>, raw: &str, ctx: &TimeContext) -> Result<Event, Reason> {
    static DATE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("date="));
    static LOGID: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("logid="));
    let m = env.msg.as_bytes();
    let start = DATE.find(m).or_else(|| LOGID.find(m)).unwrap_or(0);
    // One pass, keeping only the keys used (a FortiGate line has 30–60 pairs); the first
    // occurrence of a key wins.
    let mut vals: [Option<&str>; K_COUNT] = [None; K_COUNT];
    for (k, v) in pairs(&env.msg[start..]) {
        if let Some(i) = key_index(k) {
            if vals[i].is_none() {
                vals[i] = Some(v);
            }
        }
    }
    let get = |k: usize| vals[k];
    let kind = get(K_TYPE).unwrap_or("");
    if kind != "traffic" && kind != "utm" {
        return Err(Reason::NotTraffic);
    }
    if get(K_SRCIP).is_none() || get(K_DSTIP).is_none() {
        return Err(Reason::NotTraffic);
    }
    let src_ip = ip(get(K_SRCIP), "missing_src", "bad_src")?;
    let dst_ip = ip(get(K_DSTIP), "missing_dst", "bad_dst")?;
    let protocol = proto(get(K_PROTO))?;
    let (src_port, dst_port) = ports(protocol, get(K_SRCPORT), get(K_DSTPORT))?;
    let act = get(K_ACTION).ok_or(Reason::Malformed("missing_action"))?;
    let action = match act {
        "deny" | "blocked" | "block" => Action::Deny,
        "dropped" | "drop" => Action::Drop,
        "reset" | "reject" => Action::Reject,
        // Traffic logs: every other value means the policy allowed the session.
        _ if kind == "traffic" => Action::Allow,
        "pass" | "passthrough" | "monitored" | "detected" | "allow" => Action::Allow,
        _ => return Err(Reason::Malformed("unknown_action")),
    };
    let time_ms = get(K_EVENTTIME)
        .and_then(epoch_ms)
        .or_else(|| {
            let tz = get(K_TZ)
                .and_then(parse_offset)
                .unwrap_or_else(|| ctx.tz.clone());
            civil_ms(get(K_DATE)?, get(K_TIME)?, &tz)
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
    e.in_iface = get(K_SRCINTF).map(|s| clip(s, 64));
    e.out_iface = get(K_DSTINTF).map(|s| clip(s, 64));
    e.rule = get(K_POLICYID).map(|s| clip(s, 64));
    if let Some(dev) = get(K_DEVNAME) {
        e.device = Some(clip(dev, 128));
    }
    e.nat = nat(
        opt_ip(get(K_TRANSIP))?,
        opt_port(get(K_TRANSPORT))?,
        opt_ip(get(K_TRANIP))?,
        opt_port(get(K_TRANPORT))?,
    );
    let num = |k: usize| get(k).and_then(|v| v.parse::<u64>().ok());
    e.bytes = crate::fields::sum_opt(num(K_SENTBYTE), num(K_RCVDBYTE));
    e.packets = crate::fields::sum_opt(num(K_SENTPKT), num(K_RCVDPKT));
    Ok(e)
}
