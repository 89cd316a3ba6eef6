//! Zeek `conn.log`, as TSV (Zeek's default writer) or JSON (`LogAscii::use_json`).
//!
//! TSV columns (Zeek's documented default for conn.log): `ts uid id.orig_h id.orig_p id.resp_h
//! id.resp_p proto service duration orig_bytes resp_bytes conn_state local_orig local_resp
//! missed_bytes history orig_pkts orig_ip_bytes resp_pkts resp_ip_bytes tunnel_parents …`.
//! Header lines (`#fields`, `#types`, …) are recognised and counted as not traffic.
//!
//! Zeek observes rather than filters, so every connection is recorded as `allow`: it reached the
//! network Zeek watches.

use std::net::IpAddr;

use serde_json::Value;
use watchhouse_event::{Action, EventRef, Format, IpProto};

use crate::fields::epoch_ms;
use crate::syslog::{parse_rfc3339, Envelope};
use crate::{Flow, Reason, TimeContext};

/// Cheap check for a TSV record: a float timestamp, a `C…` uid and an address.
pub fn looks_like_tsv(msg: &str) -> bool {
    if msg.starts_with("#separator") || msg.starts_with("#fields") {
        return true;
    }
    let mut it = msg.split('\t');
    let (Some(ts), Some(uid), Some(orig)) = (it.next(), it.next(), it.next()) else {
        return false;
    };
    ts.contains('.')
        && ts.split('.').all(|p| p.bytes().all(|c| c.is_ascii_digit()))
        && uid.starts_with('C')
        && orig.parse::<IpAddr>().is_ok()
}

struct Conn<'a> {
    ts: Option<i64>,
    orig: &'a str,
    orig_p: &'a str,
    resp: &'a str,
    resp_p: &'a str,
    proto: &'a str,
    orig_bytes: Option<u64>,
    resp_bytes: Option<u64>,
    orig_pkts: Option<u64>,
    resp_pkts: Option<u64>,
    state: Option<&'a str>,
}

fn build<'a>(
    c: Conn<'_>,
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let src_ip: IpAddr = c.orig.parse().map_err(|_| Reason::Malformed("bad_src"))?;
    let dst_ip: IpAddr = c.resp.parse().map_err(|_| Reason::Malformed("bad_dst"))?;
    let protocol = match c.proto {
        "tcp" => IpProto::TCP,
        "udp" => IpProto::UDP,
        "icmp" => {
            if src_ip.is_ipv4() {
                IpProto::ICMP
            } else {
                IpProto::ICMPV6
            }
        }
        _ => return Err(Reason::Malformed("bad_proto")),
    };
    let (src_port, dst_port) = if protocol.has_ports() {
        (
            Some(
                c.orig_p
                    .parse::<u16>()
                    .map_err(|_| Reason::Malformed("bad_port"))?,
            ),
            Some(
                c.resp_p
                    .parse::<u16>()
                    .map_err(|_| Reason::Malformed("bad_port"))?,
            ),
        )
    } else {
        (None, None)
    };
    let time_ms = c.ts.or(env.time_ms).unwrap_or(ctx.now_ms);
    let mut e = Flow {
        action: Action::Allow,
        protocol,
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    }
    .event(Format::Zeek, raw, env, time_ms);
    e.bytes = crate::fields::sum_opt(c.orig_bytes, c.resp_bytes);
    e.packets = crate::fields::sum_opt(c.orig_pkts, c.resp_pkts);
    e.rule = c.state.map(|s| format!("conn_state {s}").into());
    Ok(e)
}

/// Parses a conn.log record.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let msg = env.msg;
    if msg.starts_with('#') {
        return Err(Reason::NotTraffic);
    }
    if msg.starts_with('{') {
        let v: Value = serde_json::from_str(msg).map_err(|_| Reason::Malformed("bad_json"))?;
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        let n = |k: &str| v.get(k).and_then(Value::as_u64);
        let ts = match v.get("ts") {
            Some(Value::Number(x)) => x.as_f64().map(|f| (f * 1000.0) as i64),
            Some(Value::String(t)) => parse_rfc3339(t).or_else(|| epoch_ms(t)),
            _ => None,
        };
        let port = |k: &str| n(k).map(|p| p.to_string()).unwrap_or_default();
        let (op, rp) = (port("id.orig_p"), port("id.resp_p"));
        return build(
            Conn {
                ts,
                orig: s("id.orig_h").ok_or(Reason::Malformed("missing_src"))?,
                orig_p: &op,
                resp: s("id.resp_h").ok_or(Reason::Malformed("missing_dst"))?,
                resp_p: &rp,
                proto: s("proto").ok_or(Reason::Malformed("missing_proto"))?,
                orig_bytes: n("orig_bytes"),
                resp_bytes: n("resp_bytes"),
                orig_pkts: n("orig_pkts"),
                resp_pkts: n("resp_pkts"),
                state: s("conn_state"),
            },
            env,
            raw,
            ctx,
        );
    }
    let f: Vec<&str> = msg.split('\t').collect();
    if f.len() < 20 {
        return Err(Reason::Malformed("too_few_fields"));
    }
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    build(
        Conn {
            ts: epoch_ms(f[0]),
            orig: f[2],
            orig_p: f[3],
            resp: f[4],
            resp_p: f[5],
            proto: f[6],
            orig_bytes: num(9),
            resp_bytes: num(10),
            orig_pkts: num(16),
            resp_pkts: num(18),
            state: Some(f[11]).filter(|s| *s != "-"),
        },
        env,
        raw,
        ctx,
    )
}
