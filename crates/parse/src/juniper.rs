//! Juniper SRX `RT_FLOW` session logs, in both forms the SRX sends (Junos "System Log Explorer",
//! RT_FLOW_SESSION_CREATE / CLOSE / DENY).
//!
//! ```text
//! BSD:        RT_FLOW: RT_FLOW_SESSION_DENY: session denied 203.0.113.9/55555->198.51.100.10/22 0x0 junos-ssh 6(0) default-deny untrust trust …
//!             RT_FLOW: RT_FLOW_SESSION_CREATE: session created 10.0.0.5/5000->8.8.8.8/53 0x0 junos-dns-udp 203.0.113.1/6000->8.8.8.8/53 0x0 src-nat N/A 17 allow-out trust untrust …
//! Structured: RT_FLOW_SESSION_DENY [junos@2636.1.1.1.2.40 source-address="203.0.113.9" source-port="55555" destination-address="…" destination-port="22" protocol-id="6" policy-name="default-deny" …]
//! ```

use std::collections::HashMap;
use std::net::IpAddr;

use watchhouse_event::{Action, EventRef, Format, IpProto};

use crate::fields::{ip, opt_ip, opt_port, pairs, ports, proto};
use crate::syslog::Envelope;
use crate::{clip, nat, Flow, Reason, TimeContext};

fn kind_action(kind: &str) -> Option<Action> {
    match kind {
        "RT_FLOW_SESSION_DENY" => Some(Action::Deny),
        "RT_FLOW_SESSION_CREATE" | "RT_FLOW_SESSION_CLOSE" => Some(Action::Allow),
        _ => None,
    }
}

/// An address and port.
type Ep = (IpAddr, u16);

/// `a/p->b/p`.
fn pair(s: &str) -> Result<(Ep, Ep), Reason> {
    let (a, b) = s
        .split_once("->")
        .ok_or(Reason::Malformed("missing_flow"))?;
    let one = |x: &str| -> Result<Ep, Reason> {
        let (i, p) = x.rsplit_once('/').ok_or(Reason::Malformed("bad_address"))?;
        Ok((
            i.parse().map_err(|_| Reason::Malformed("bad_address"))?,
            p.parse().map_err(|_| Reason::Malformed("bad_port"))?,
        ))
    };
    Ok((one(a)?, one(b)?))
}

/// Parses an SRX session log.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let time_ms = env.time_ms.unwrap_or(ctx.now_ms);
    // Structured-data form.
    if let Some(sd) = env.sd.filter(|sd| sd.contains("source-address=")) {
        let kind = env.msgid.unwrap_or("");
        let action = kind_action(kind).ok_or(Reason::NotTraffic)?;
        let x: HashMap<&str, &str> = pairs(sd.trim_matches(['[', ']'])).collect();
        let get = |k: &str| x.get(k).copied();
        let src_ip = ip(get("source-address"), "missing_src", "bad_src")?;
        let dst_ip = ip(get("destination-address"), "missing_dst", "bad_dst")?;
        let protocol = proto(get("protocol-id"))?;
        let (src_port, dst_port) = ports(protocol, get("source-port"), get("destination-port"))?;
        let mut e = Flow {
            action,
            protocol,
            src_ip,
            src_port,
            dst_ip,
            dst_port,
        }
        .event(Format::JuniperSrx, raw, env, time_ms);
        e.rule = get("policy-name").map(|s| clip(s, 64));
        e.in_iface = get("packet-incoming-interface").map(|s| clip(s, 64));
        e.nat = nat(
            opt_ip(get("nat-source-address"))?,
            opt_port(get("nat-source-port"))?,
            opt_ip(get("nat-destination-address"))?,
            opt_port(get("nat-destination-port"))?,
        );
        let num = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
        e.bytes = num("bytes-from-client")
            .zip(num("bytes-from-server"))
            .map(|(a, b)| a + b);
        e.packets = num("packets-from-client")
            .zip(num("packets-from-server"))
            .map(|(a, b)| a + b);
        return Ok(e);
    }
    // BSD form.
    let i = env.msg.find("RT_FLOW_SESSION_").ok_or(Reason::NotTraffic)?;
    let rest = &env.msg[i..];
    let (kind, text) = rest
        .split_once(": ")
        .ok_or(Reason::Malformed("bad_rt_flow"))?;
    let action = kind_action(kind).ok_or(Reason::NotTraffic)?;
    let w: Vec<&str> = text.split_whitespace().collect();
    // The first "a/p->b/p" token is the session; for CREATE/CLOSE the second is after NAT.
    let flows: Vec<usize> = w
        .iter()
        .enumerate()
        .filter(|(_, t)| t.contains("->") && t.contains('/'))
        .map(|(i, _)| i)
        .collect();
    let first = *flows.first().ok_or(Reason::Malformed("missing_flow"))?;
    let ((src_ip, sp), (dst_ip, dp)) = pair(w[first])?;
    // DENY: "… 0x0 <service> <proto>(<icmp>) <policy> <from-zone> <to-zone> …"
    // CREATE/CLOSE: "… <nat flow> 0x0 <src-nat-rule> <dst-nat-rule> <proto> <policy> <from> <to> …"
    let (protocol, policy, nat_flow) = if kind == "RT_FLOW_SESSION_DENY" {
        let p = w.get(first + 3).ok_or(Reason::Malformed("missing_proto"))?;
        let num = p.split('(').next().unwrap_or("");
        (
            IpProto::parse(num).ok_or(Reason::Malformed("bad_proto"))?,
            w.get(first + 4).copied(),
            None,
        )
    } else {
        let second = *flows.get(1).ok_or(Reason::Malformed("missing_nat_flow"))?;
        let p = w
            .get(second + 4)
            .ok_or(Reason::Malformed("missing_proto"))?;
        (
            IpProto::parse(p).ok_or(Reason::Malformed("bad_proto"))?,
            w.get(second + 5).copied(),
            Some(pair(w[second])?),
        )
    };
    let (src_port, dst_port) = if protocol.has_ports() {
        (Some(sp), Some(dp))
    } else {
        (None, None)
    };
    let mut e = Flow {
        action,
        protocol,
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    }
    .event(Format::JuniperSrx, raw, env, time_ms);
    e.rule = policy.map(|s| clip(s, 64));
    if let Some(((nsi, nsp), (ndi, ndp))) = nat_flow {
        let s = (nsi != src_ip || Some(nsp) != src_port).then_some((nsi, nsp));
        let d = (ndi != dst_ip || Some(ndp) != dst_port).then_some((ndi, ndp));
        e.nat = nat(
            s.map(|x| x.0),
            s.map(|x| x.1),
            d.map(|x| x.0),
            d.map(|x| x.1),
        );
    }
    Ok(e)
}
