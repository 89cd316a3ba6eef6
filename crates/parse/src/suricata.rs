//! Suricata EVE JSON: `flow`, `netflow`, `alert` and `drop` records (Suricata "EVE JSON Output").
//! Other event types (dns, http, tls, stats, …) are recognised and counted as not traffic.
//!
//! ```text
//! {"timestamp":"2022-07-10T23:50:05.533101+0000","flow_id":…,"in_iface":"bond0","event_type":"alert",
//!  "src_ip":"1.2.3.4","src_port":52812,"dest_ip":"10.0.0.1","dest_port":80,"proto":"TCP",
//!  "alert":{"action":"allowed","signature_id":2024468,"signature":"ET …",…}}
//! ```

use serde_json::Value;
use watchhouse_event::{Action, EventRef, Format, IpProto};

use crate::syslog::{parse_rfc3339, Envelope};
use crate::{clip_copy, Flow, Reason, TimeContext};

/// Parses one EVE record.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let start = env.msg.find('{').ok_or(Reason::Malformed("bad_json"))?;
    let v: Value =
        serde_json::from_str(&env.msg[start..]).map_err(|_| Reason::Malformed("bad_json"))?;
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let kind = s("event_type").ok_or(Reason::Malformed("missing_event_type"))?;
    let action = match kind {
        "flow" | "netflow" => Action::Allow,
        "drop" => Action::Drop,
        "alert" => match v.pointer("/alert/action").and_then(Value::as_str) {
            Some("allowed") => Action::Allow,
            Some("blocked") => Action::Deny,
            _ => return Err(Reason::Malformed("unknown_action")),
        },
        _ => return Err(Reason::NotTraffic),
    };
    let src_ip = s("src_ip")
        .ok_or(Reason::Malformed("missing_src"))?
        .parse()
        .map_err(|_| Reason::Malformed("bad_src"))?;
    let dst_ip = s("dest_ip")
        .ok_or(Reason::Malformed("missing_dst"))?
        .parse()
        .map_err(|_| Reason::Malformed("bad_dst"))?;
    let protocol = IpProto::parse(s("proto").ok_or(Reason::Malformed("missing_proto"))?)
        .ok_or(Reason::Malformed("bad_proto"))?;
    let port = |k: &str| -> Result<u16, Reason> {
        let n = v
            .get(k)
            .and_then(Value::as_u64)
            .ok_or(Reason::Malformed("missing_port"))?;
        u16::try_from(n).map_err(|_| Reason::Malformed("bad_port"))
    };
    let (src_port, dst_port) = if protocol.has_ports() {
        (Some(port("src_port")?), Some(port("dest_port")?))
    } else {
        (None, None)
    };
    let time_ms = s("timestamp")
        .and_then(parse_rfc3339)
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
    .event(Format::Suricata, raw, env, time_ms);
    e.in_iface = s("in_iface").map(|s| clip_copy(s, 64));
    if kind == "alert" {
        e.rule = v
            .pointer("/alert/signature")
            .and_then(Value::as_str)
            .map(|s| clip_copy(s, 128));
    }
    // Host names and URLs, where the event carries them (alert events with app-layer metadata,
    // or http/tls/dns events logged as alerts). Only well-formed ones are kept.
    let host = v
        .pointer("/http/hostname")
        .or_else(|| v.pointer("/tls/sni"))
        .or_else(|| v.pointer("/dns/rrname"))
        .or_else(|| v.pointer("/dns/query/0/rrname"))
        .and_then(Value::as_str)
        .and_then(watchhouse_event::names::normalise_domain);
    e.url = match (
        host.as_deref(),
        v.pointer("/http/url").and_then(Value::as_str),
    ) {
        (Some(h), Some(path)) if path.starts_with('/') => {
            let scheme = if e.dst_port == Some(443) {
                "https"
            } else {
                "http"
            };
            watchhouse_event::names::normalise_url(&format!("{scheme}://{h}{path}"))
                .map(std::borrow::Cow::Owned)
        }
        _ => None,
    };
    e.host = host.map(std::borrow::Cow::Owned);
    let sum = |a: &str, b: &str| {
        let x = v.pointer(a).and_then(Value::as_u64);
        let y = v.pointer(b).and_then(Value::as_u64);
        (x.is_some() || y.is_some()).then(|| x.unwrap_or(0) + y.unwrap_or(0))
    };
    e.bytes = sum("/flow/bytes_toserver", "/flow/bytes_toclient")
        .or_else(|| sum("/netflow/bytes", "/netflow/none"));
    e.packets = sum("/flow/pkts_toserver", "/flow/pkts_toclient")
        .or_else(|| sum("/netflow/pkts", "/netflow/none"));
    Ok(e)
}

#[cfg(test)]
mod tests {
    use crate::{parse_str, TimeContext};

    #[test]
    fn host_names_and_urls_are_kept_when_present() {
        let ctx = TimeContext::utc(1_763_700_000_000);
        let line = r#"{"timestamp":"2025-11-21T06:00:00.000000+0000","event_type":"alert","src_ip":"192.168.1.5","src_port":50000,"dest_ip":"203.0.113.80","dest_port":80,"proto":"TCP","alert":{"action":"allowed","signature":"ET MALWARE beacon"},"http":{"hostname":"C2.Evil.Example","url":"/gate.php?id=1"}}"#;
        let e = parse_str(line, &ctx, None).unwrap();
        assert_eq!(e.host.as_deref(), Some("c2.evil.example"));
        assert_eq!(
            e.url.as_deref(),
            Some("http://c2.evil.example/gate.php?id=1")
        );
        let tls = r#"{"timestamp":"2025-11-21T06:00:00.000000+0000","event_type":"alert","src_ip":"192.168.1.5","src_port":50000,"dest_ip":"203.0.113.80","dest_port":443,"proto":"TCP","alert":{"action":"allowed"},"tls":{"sni":"pay.evil.example"}}"#;
        let e = parse_str(tls, &ctx, None).unwrap();
        assert_eq!(
            (e.host.as_deref(), e.url.as_deref()),
            (Some("pay.evil.example"), None)
        );
        let bad = r#"{"timestamp":"2025-11-21T06:00:00.000000+0000","event_type":"alert","src_ip":"192.168.1.5","src_port":50000,"dest_ip":"203.0.113.80","dest_port":80,"proto":"TCP","alert":{"action":"allowed"},"http":{"hostname":"not a host!","url":"/x"}}"#;
        let e = parse_str(bad, &ctx, None).unwrap();
        assert_eq!(
            (e.host, e.url),
            (None, None),
            "malformed names are dropped, not guessed"
        );
    }
}
