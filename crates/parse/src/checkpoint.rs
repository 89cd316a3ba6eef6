//! Check Point Log Exporter, "syslog" and "splunk" formats (sk122323). (CEF and LEEF exports go
//! through those parsers.)
//!
//! ```text
//! syslog: <134>1 2021-02-09T12:00:00Z gw-1 CheckPoint 1234 - [action:"Drop"; ifdir:"inbound"; ifname:"eth1"; src:"203.0.113.9"; dst:"198.51.100.10"; proto:"6"; s_port:"55555"; service:"22"; rule_name:"Cleanup rule"; …]
//! splunk: time=1557767758|hostname=r80test|product=Firewall|action=Accept|ifdir=inbound|ifname=eth0|dst=192.168.96.80|proto=6|s_port=63945|service=443|src=192.168.96.27|
//! ```

use std::collections::HashMap;

use watchhouse_event::{Action, EventRef, Format};

use crate::fields::{epoch_ms, ip, opt_ip, opt_port, ports, proto};
use crate::syslog::Envelope;
use crate::{clip, nat, Flow, Reason, TimeContext};

/// Cheap check.
pub fn looks_like(env: &Envelope<'_>) -> bool {
    env.app == Some("CheckPoint")
        || env
            .sd
            .is_some_and(|sd| sd.contains("action:\"") && sd.contains("origin:\""))
        || env.msg.contains("|product=") && env.msg.contains("|s_port=")
        || env.msg.starts_with("[action:\"")
}

/// `key:"value"; key:"value"` (values may contain `;` inside quotes).
fn colon_pairs(s: &str) -> HashMap<&str, &str> {
    let mut out = HashMap::new();
    let mut rest = s.trim_matches(['[', ']', ' ']);
    while let Some(colon) = rest.find(":\"") {
        let key = rest[..colon].trim_start_matches([';', ' ']);
        let after = &rest[colon + 2..];
        let b = after.as_bytes();
        let mut j = 0;
        while j < b.len() && b[j] != b'"' {
            if b[j] == b'\\' {
                j += 1;
            }
            j += 1;
        }
        let end = j.min(after.len());
        out.insert(key, &after[..end]);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out
}

fn action(s: &str) -> Option<Action> {
    Some(match s {
        "Accept" | "Allow" | "Detect" | "Inline" | "Encrypt" | "Decrypt" | "Key Install" => {
            Action::Allow
        }
        "Drop" | "Prevent" => Action::Drop,
        "Reject" => Action::Reject,
        "Block" | "Deny" => Action::Deny,
        _ => return None,
    })
}

/// Parses a Check Point Log Exporter record.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let x: HashMap<&str, &str> = if let Some(sd) = env.sd.filter(|sd| sd.contains(":\"")) {
        colon_pairs(sd)
    } else if let Some(i) = env
        .msg
        .find("[action:\"")
        .or_else(|| env.msg.find('[').filter(|_| env.msg.contains(":\"")))
    {
        colon_pairs(&env.msg[i..])
    } else {
        env.msg
            .split('|')
            .filter_map(|kv| kv.split_once('='))
            .collect()
    };
    let get = |k: &str| x.get(k).copied().filter(|v| !v.is_empty());
    if get("src").is_none() || get("dst").is_none() {
        return Err(Reason::NotTraffic);
    }
    let act = get("action").ok_or(Reason::Malformed("missing_action"))?;
    let Some(action) = action(act) else {
        // "Update", "Log Out" and the like are not verdicts on traffic.
        return Err(Reason::NotTraffic);
    };
    let src_ip = ip(get("src"), "missing_src", "bad_src")?;
    let dst_ip = ip(get("dst"), "missing_dst", "bad_dst")?;
    let protocol = proto(get("proto"))?;
    let (src_port, dst_port) = ports(protocol, get("s_port"), get("service").or(get("d_port")))?;
    let time_ms = get("time")
        .and_then(epoch_ms)
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
    .event(Format::CheckPoint, raw, env, time_ms);
    match get("ifdir") {
        Some("outbound") => e.out_iface = get("ifname").map(|s| clip(s, 64)),
        _ => e.in_iface = get("ifname").map(|s| clip(s, 64)),
    }
    e.rule = get("rule_name")
        .or(get("rule"))
        .or(get("match_id"))
        .map(|s| clip(s, 64));
    if let Some(h) = get("origin_sic_name").or(get("hostname")) {
        e.device = Some(clip(h, 128));
    }
    e.nat = nat(
        opt_ip(get("xlatesrc"))?,
        opt_port(get("xlatesport"))?,
        opt_ip(get("xlatedst"))?,
        opt_port(get("xlatedport"))?,
    );
    Ok(e)
}
