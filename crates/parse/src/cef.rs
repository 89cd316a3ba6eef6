//! ArcSight CEF and IBM QRadar LEEF, generic: whatever device sends them (UniFi, Palo Alto,
//! Sophos, Check Point, Barracuda, …) the traffic fields have standard keys.
//!
//! ```text
//! CEF:0|Vendor|Product|Version|SignatureID|Name|Severity|src=… spt=… dst=… dpt=… proto=… act=…
//! LEEF:1.0|Vendor|Product|Version|EventID|<TAB>src=…<TAB>dst=…
//! LEEF:2.0|Vendor|Product|Version|EventID|^|src=…^dst=…
//! ```
//! CEF header fields escape `|` and `\`; extension values escape `=` and `\` and may contain
//! spaces (a value runs to the space before the next `key=`).

use std::collections::HashMap;

use watchhouse_event::{Action, EventRef, Format};

use crate::fields::{epoch_ms, ip, opt_ip, opt_port, ports, proto};
use crate::syslog::{parse_rfc3339, Envelope};
use crate::{clip_copy, clip_owned, nat, Flow, Reason, TimeContext};

/// A CEF line whose `CEF:` prefix was lost: `0|Vendor|Product|Version|ID|Name|Severity|…`.
pub fn looks_like_headerless(msg: &str) -> bool {
    msg.starts_with("0|") && msg.bytes().filter(|&b| b == b'|').count() >= 7
}

/// Splits CEF's seven header fields and the extension, honouring `\|`.
fn cef_header(body: &str) -> Option<(Vec<String>, &str)> {
    let mut fields = Vec::with_capacity(7);
    let mut cur = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            // Only `\|` and `\\` are escapes in the header; any other backslash is kept as is.
            '\\' => match chars.next() {
                Some((_, n @ ('|' | '\\'))) => cur.push(n),
                Some((_, n)) => {
                    cur.push('\\');
                    cur.push(n);
                }
                None => cur.push('\\'),
            },
            '|' => {
                fields.push(std::mem::take(&mut cur));
                if fields.len() == 7 {
                    return Some((fields, &body[i + 1..]));
                }
            }
            _ => cur.push(c),
        }
    }
    None
}

/// Parses a CEF extension into unescaped key → value.
fn cef_extension(ext: &str) -> HashMap<&str, String> {
    let b = ext.as_bytes();
    // Positions of unescaped '=' that end a key.
    let mut keys: Vec<(usize, usize)> = Vec::new(); // (key start, '=' position)
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'=' => {
                let mut k = i;
                while k > 0
                    && (b[k - 1].is_ascii_alphanumeric()
                        || matches!(b[k - 1], b'_' | b'.' | b'[' | b']'))
                {
                    k -= 1;
                }
                if k < i && (k == 0 || b[k - 1] == b' ') {
                    keys.push((k, i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut out = HashMap::with_capacity(keys.len());
    for (n, &(ks, eq)) in keys.iter().enumerate() {
        let end = keys.get(n + 1).map_or(ext.len(), |&(next, _)| next);
        let raw = ext[eq + 1..end].trim_end_matches(' ');
        let mut v = String::with_capacity(raw.len());
        let mut it = raw.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                // CEF escapes in values: `\\`, `\=`, `\n`, `\r`. Any other backslash is kept,
                // so `2\03.0.113.9` stays unreadable instead of becoming an address.
                match it.next() {
                    Some('n') => v.push('\n'),
                    Some('r') => v.push('\r'),
                    Some(o @ ('\\' | '=')) => v.push(o),
                    Some(o) => {
                        v.push('\\');
                        v.push(o);
                    }
                    None => v.push('\\'),
                }
            } else {
                v.push(c);
            }
        }
        out.insert(&ext[ks..eq], v);
    }
    out
}

/// Maps the common action words of CEF `act`, LEEF `action` and similar fields.
pub(crate) fn action_word(s: &str) -> Option<Action> {
    let s = s.trim().to_ascii_lowercase();
    Some(match s.as_str() {
        "allow" | "allowed" | "accept" | "accepted" | "permit" | "permitted" | "pass"
        | "passed" | "forward" | "forwarded" | "alert" | "close" | "closed" | "start"
        | "detected" => Action::Allow,
        "deny" | "denied" | "block" | "blocked" | "blocked-ip" | "blocked-url" => Action::Deny,
        "drop" | "dropped" | "drop-icmp" | "discard" | "discarded" => Action::Drop,
        "reject" | "rejected" | "reset" | "reset-both" | "reset-client" | "reset-server" => {
            Action::Reject
        }
        _ => return None,
    })
}

/// When no action field exists, the event name sometimes says it ("Threat Detected and Blocked").
fn action_from_name(name: &str) -> Option<Action> {
    let n = name.to_ascii_lowercase();
    if n.contains("blocked") || n.contains("denied") {
        Some(Action::Deny)
    } else if n.contains("dropped") {
        Some(Action::Drop)
    } else if n.contains("rejected") {
        Some(Action::Reject)
    } else if n.contains("allowed") || n.contains("accepted") || n.contains("permitted") {
        Some(Action::Allow)
    } else {
        None
    }
}

fn time_field(v: &str, ctx: &TimeContext) -> Option<i64> {
    epoch_ms(v).or_else(|| parse_rfc3339(v)).or_else(|| {
        // "MMM dd yyyy HH:mm:ss" in the device's zone.
        let line = format!("{v} x: y");
        crate::syslog::parse_envelope(&line, ctx).time_ms
    })
}

/// Parses a CEF message.
pub fn parse_cef<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let msg = env.msg;
    let body = match msg.find("CEF:") {
        Some(i) => msg[i + 4..].trim_start(),
        None if looks_like_headerless(msg) => msg,
        None => return Err(Reason::Malformed("no_cef_header")),
    };
    let (h, ext) = cef_header(body).ok_or(Reason::Malformed("bad_cef_header"))?;
    let x = cef_extension(ext);
    let get = |k: &str| x.get(k).map(String::as_str);
    let src = get("src").or(get("c6a2"));
    let dst = get("dst").or(get("c6a3"));
    // Events about a person or the device itself (an admin sign-in names only a source).
    if dst.is_none() && get("dpt").is_none() {
        return Err(Reason::NotTraffic);
    }
    let src_ip = ip(src, "missing_src", "bad_src")?;
    let dst_ip = ip(dst, "missing_dst", "bad_dst")?;
    let protocol = proto(get("proto"))?;
    let (src_port, dst_port) = ports(protocol, get("spt"), get("dpt"))?;
    let action = get("act")
        .and_then(action_word)
        .or_else(|| action_from_name(&h[5]))
        .ok_or(Reason::Malformed("unknown_action"))?;
    let time_ms = get("rt")
        .and_then(|v| time_field(v, ctx))
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
    .event(Format::Cef, raw, env, time_ms);
    e.product = Some(clip_owned(format!("{}|{}", h[1], h[2]), 128));
    e.in_iface = get("deviceInboundInterface").map(|s| clip_copy(s, 64));
    e.out_iface = get("deviceOutboundInterface").map(|s| clip_copy(s, 64));
    e.rule = get("cs1")
        .filter(|_| get("cs1Label").is_some_and(|l| l.to_ascii_lowercase().contains("rule")))
        .or(Some(h[4].as_str()))
        .filter(|s| !s.is_empty())
        .map(|s| clip_copy(s, 64));
    e.nat = nat(
        opt_ip(get("sourceTranslatedAddress"))?,
        opt_port(get("sourceTranslatedPort"))?,
        opt_ip(get("destinationTranslatedAddress"))?,
        opt_port(get("destinationTranslatedPort"))?,
    );
    let bytes_in = get("in").and_then(|v| v.parse::<u64>().ok());
    let bytes_out = get("out").and_then(|v| v.parse::<u64>().ok());
    e.bytes = crate::fields::sum_opt(bytes_in, bytes_out);
    if let Some(dev) = get("dvchost") {
        e.device = Some(clip_copy(dev, 128));
    }
    Ok(e)
}

/// Parses a LEEF 1.0 or 2.0 message.
pub fn parse_leef<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    let msg = env.msg;
    let i = msg
        .find("LEEF:")
        .ok_or(Reason::Malformed("no_leef_header"))?;
    let body = &msg[i + 5..];
    let mut parts = body.splitn(6, '|');
    let version = parts.next().ok_or(Reason::Malformed("bad_leef_header"))?;
    let vendor = parts.next().ok_or(Reason::Malformed("bad_leef_header"))?;
    let product = parts.next().ok_or(Reason::Malformed("bad_leef_header"))?;
    let _ver = parts.next().ok_or(Reason::Malformed("bad_leef_header"))?;
    let event_id = parts.next().ok_or(Reason::Malformed("bad_leef_header"))?;
    let mut rest = parts.next().unwrap_or("");
    let mut delim = '\t';
    if version.starts_with('2') {
        // LEEF 2.0: one more header field names the delimiter: a character or x09 / 0x09.
        let (d, r) = rest
            .split_once('|')
            .ok_or(Reason::Malformed("bad_leef_header"))?;
        delim = match d {
            "" => '\t',
            d if d.len() == 1 => d.chars().next().unwrap_or('\t'),
            d => {
                let hex = d.trim_start_matches("0x").trim_start_matches('x');
                u32::from_str_radix(hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or(Reason::Malformed("bad_leef_delimiter"))?
            }
        };
        rest = r;
    }
    let x: HashMap<&str, &str> = rest
        .split(delim)
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let get = |k: &str| x.get(k).copied();
    if get("src").is_none() && get("dst").is_none() {
        return Err(Reason::NotTraffic);
    }
    let src_ip = ip(get("src"), "missing_src", "bad_src")?;
    let dst_ip = ip(get("dst"), "missing_dst", "bad_dst")?;
    let protocol = proto(get("proto"))?;
    let (src_port, dst_port) = ports(protocol, get("srcPort"), get("dstPort"))?;
    let action = get("action")
        .or(get("act"))
        .and_then(action_word)
        .or_else(|| action_from_name(event_id))
        .ok_or(Reason::Malformed("unknown_action"))?;
    let time_ms = get("devTime")
        .and_then(|v| time_field(v, ctx))
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
    .event(Format::Leef, raw, env, time_ms);
    e.product = Some(clip_owned(format!("{vendor}|{product}"), 128));
    e.rule = Some(clip_copy(event_id, 64)).filter(|s| !s.is_empty());
    e.nat = nat(
        opt_ip(get("srcPostNAT"))?,
        opt_port(get("srcPostNATPort"))?,
        opt_ip(get("dstPostNAT"))?,
        opt_port(get("dstPostNATPort"))?,
    );
    e.bytes = get("srcBytes")
        .and_then(|v| v.parse::<u64>().ok())
        .map(|a| {
            a + get("dstBytes")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        });
    Ok(e)
}
