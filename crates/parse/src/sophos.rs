//! Sophos Firewall (XG / XGS, SFOS) and Sophos UTM packet-filter logs, both key=value.
//!
//! ```text
//! XG:  device="SFW" date=2017-01-31 time=18:50:55 timezone="GMT" device_name="XG230" log_id=010101600001
//!      log_type="Firewall" log_component="Firewall Rule" log_subtype="Denied" status="Deny" fw_rule_id=3
//!      in_interface="Port2" out_interface="" src_ip=… src_port=… dst_ip=… dst_port=… protocol="TCP"
//!      sent_bytes=0 recv_bytes=0 tran_src_ip="" tran_src_port=0 tran_dst_ip="" tran_dst_port=0
//! UTM: 2013:03:19-12:39:40 utm ulogd[4567]: id="2001" severity="info" sys="SecureNet" sub="packetfilter"
//!      name="Packet dropped" action="drop" fwrule="60001" initf="eth1" srcip=… dstip=… proto="6"
//!      srcport=… dstport=…
//! ```

use std::collections::HashMap;

use jiff::civil::DateTime;
use watchhouse_event::{Action, EventRef, Format};

use crate::cef::action_word;
use crate::fields::{ip, opt_ip, opt_port, pairs, ports, proto};
use crate::syslog::{civil_ms, Envelope};
use crate::{clip, nat, Flow, Reason, TimeContext};

/// UTM's `2013:03:19-12:39:40` in the device's zone.
fn utm_time(s: &str, ctx: &TimeContext) -> Option<i64> {
    let tok = s.split(' ').next()?;
    let (d, t) = tok.split_once('-')?;
    let mut it = d.split(':');
    let (y, mo, da) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    let mut it = t.split(':');
    let (h, mi, se) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    let dt = DateTime::new(y, mo, da, h, mi, se, 0).ok()?;
    Some(ctx.tz.to_timestamp(dt).ok()?.as_millisecond())
}

/// Parses a Sophos XG or UTM message.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let x: HashMap<&str, &str> = pairs(env.msg).collect();
    let get = |k: &str| x.get(k).copied().filter(|v| !v.is_empty());
    let mut e = if get("log_type").is_some() || get("device").is_some() {
        // Sophos Firewall (XG / XGS).
        if get("log_type").is_some_and(|t| t != "Firewall") || get("src_ip").is_none() {
            return Err(Reason::NotTraffic);
        }
        let src_ip = ip(get("src_ip"), "missing_src", "bad_src")?;
        let dst_ip = ip(get("dst_ip"), "missing_dst", "bad_dst")?;
        let protocol = proto(get("protocol"))?;
        let (src_port, dst_port) = ports(protocol, get("src_port"), get("dst_port"))?;
        let action = get("status")
            .and_then(action_word)
            .or_else(|| match get("log_subtype")? {
                "Allowed" => Some(Action::Allow),
                "Denied" => Some(Action::Deny),
                "Dropped" => Some(Action::Drop),
                _ => None,
            })
            .ok_or(Reason::Malformed("unknown_action"))?;
        let time_ms = get("date")
            .zip(get("time"))
            .and_then(|(d, t)| civil_ms(d, t, &ctx.tz))
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
        .event(Format::Sophos, raw, env, time_ms);
        e.in_iface = get("in_interface").map(|s| clip(s, 64));
        e.out_iface = get("out_interface").map(|s| clip(s, 64));
        e.rule = get("fw_rule_id").map(|s| clip(s, 64));
        if let Some(d) = get("device_name") {
            e.device = Some(clip(d, 128));
        }
        e.nat = nat(
            opt_ip(get("tran_src_ip"))?,
            opt_port(get("tran_src_port"))?,
            opt_ip(get("tran_dst_ip"))?,
            opt_port(get("tran_dst_port"))?,
        );
        let num = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
        e.bytes = num("sent_bytes").zip(num("recv_bytes")).map(|(a, b)| a + b);
        e.packets = num("sent_pkts").zip(num("recv_pkts")).map(|(a, b)| a + b);
        e.product = Some("Sophos|Sophos Firewall".into());
        e
    } else {
        // Sophos UTM packet filter.
        if get("sub") != Some("packetfilter") || get("srcip").is_none() {
            return Err(Reason::NotTraffic);
        }
        let src_ip = ip(get("srcip"), "missing_src", "bad_src")?;
        let dst_ip = ip(get("dstip"), "missing_dst", "bad_dst")?;
        let protocol = proto(get("proto"))?;
        let (src_port, dst_port) = ports(protocol, get("srcport"), get("dstport"))?;
        let action = get("action")
            .and_then(action_word)
            .ok_or(Reason::Malformed("unknown_action"))?;
        let time_ms = env
            .time_ms
            .or_else(|| utm_time(env.msg, ctx))
            .unwrap_or(ctx.now_ms);
        let mut e = Flow {
            action,
            protocol,
            src_ip,
            src_port,
            dst_ip,
            dst_port,
        }
        .event(Format::Sophos, raw, env, time_ms);
        e.in_iface = get("initf").map(|s| clip(s, 64));
        e.out_iface = get("outitf").map(|s| clip(s, 64));
        e.rule = get("fwrule").map(|s| clip(s, 64));
        e.bytes = get("length").and_then(|v| v.parse().ok());
        e.packets = Some(1);
        e.product = Some("Sophos|UTM".into());
        e
    };
    e.count = e.count.max(1);
    Ok(e)
}
