//! Untangle NG Firewall / Arista Edge Threat Management syslog events: one JSON object per
//! message, per the Untangle wiki's "Event Definitions" (SessionEvent, FirewallEvent).
//!
//! ```text
//! uvm[0]: {"timeStamp":"…","class":"class com.untangle.uvm.app.SessionEvent","protocol":6,"CClientAddr":"/192.168.1.100","CClientPort":51000,"CServerAddr":"/93.184.216.34","CServerPort":443,"SClientAddr":"/203.0.113.1","SClientPort":40123,…}
//! uvm[0]: {"class":"class com.untangle.app.firewall.FirewallEvent","blocked":true,"ruleId":3,"sessionEvent":{…}}
//! ```
//! Addresses are Java `InetAddress` strings (`host/address` or `/address`).

use std::net::IpAddr;

use serde_json::Value;
use watchhouse_event::{Action, EventRef, Format, IpProto};

use crate::syslog::Envelope;
use crate::{nat, Flow, Reason, TimeContext};

/// Cheap check.
pub fn looks_like(msg: &str) -> bool {
    msg.contains("\"class\":\"class com.untangle.")
}

fn addr(v: Option<&Value>) -> Result<Option<IpAddr>, Reason> {
    match v.and_then(Value::as_str) {
        None | Some("") => Ok(None),
        Some(s) => s
            .rsplit('/')
            .next()
            .unwrap_or("")
            .parse()
            .map(Some)
            .map_err(|_| Reason::Malformed("bad_address")),
    }
}

fn port(v: Option<&Value>) -> Result<Option<u16>, Reason> {
    match v.and_then(Value::as_u64) {
        None => Ok(None),
        Some(p) => u16::try_from(p)
            .map(Some)
            .map_err(|_| Reason::Malformed("bad_port")),
    }
}

/// Parses one event.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let start = env.msg.find('{').ok_or(Reason::Malformed("bad_json"))?;
    let v: Value =
        serde_json::from_str(&env.msg[start..]).map_err(|_| Reason::Malformed("bad_json"))?;
    let class = v.get("class").and_then(Value::as_str).unwrap_or("");
    let (session, action, rule) = if class.ends_with("FirewallEvent") {
        let blocked = v
            .get("blocked")
            .and_then(Value::as_bool)
            .ok_or(Reason::Malformed("missing_action"))?;
        (
            v.get("sessionEvent")
                .ok_or(Reason::Malformed("missing_session"))?,
            if blocked { Action::Deny } else { Action::Allow },
            v.get("ruleId")
                .and_then(Value::as_i64)
                .map(|r| r.to_string()),
        )
    } else if class.ends_with(".SessionEvent") {
        (&v, Action::Allow, None)
    } else {
        return Err(Reason::NotTraffic);
    };
    let src_ip = addr(session.get("CClientAddr"))?.ok_or(Reason::Malformed("missing_src"))?;
    let dst_ip = addr(session.get("CServerAddr"))?.ok_or(Reason::Malformed("missing_dst"))?;
    let protocol = session
        .get("protocol")
        .and_then(Value::as_u64)
        .and_then(|p| u8::try_from(p).ok())
        .map(IpProto)
        .ok_or(Reason::Malformed("missing_proto"))?;
    let (src_port, dst_port) = if protocol.has_ports() {
        (
            Some(port(session.get("CClientPort"))?.ok_or(Reason::Malformed("missing_port"))?),
            Some(port(session.get("CServerPort"))?.ok_or(Reason::Malformed("missing_port"))?),
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
    .event(Format::Untangle, raw, env, time_ms);
    e.rule = rule.map(std::borrow::Cow::Owned);
    let (sc, scp) = (
        addr(session.get("SClientAddr"))?,
        port(session.get("SClientPort"))?,
    );
    let (ss, ssp) = (
        addr(session.get("SServerAddr"))?,
        port(session.get("SServerPort"))?,
    );
    let s = (sc != Some(src_ip) || scp != src_port).then_some((sc, scp));
    let d = (ss != Some(dst_ip) || ssp != dst_port).then_some((ss, ssp));
    e.nat = nat(
        s.and_then(|x| x.0),
        s.and_then(|x| x.1),
        d.and_then(|x| x.0),
        d.and_then(|x| x.1),
    );
    Ok(e)
}
