//! Cisco ASA and Firepower Threat Defense connection messages, per Cisco's "Syslog Messages"
//! reference. Only messages that carry a complete five-tuple become events; other ASA messages
//! are recognised and counted as not traffic.
//!
//! ```text
//! %ASA-4-106023: Deny tcp src outside:192.0.2.1/4444 dst inside:10.1.1.1/23 by access-group "outside_in" [0x0, 0x0]
//! %ASA-2-106001: Inbound TCP connection denied from 192.0.2.1/4444 to 10.1.1.1/23 flags SYN on interface outside
//! %ASA-2-106006: Deny inbound UDP from 192.0.2.1/53 to 10.1.1.1/53 on interface outside
//! %ASA-6-106015: Deny TCP (no connection) from 192.0.2.1/443 to 10.1.1.1/5000 flags RST on interface outside
//! %ASA-6-106100: access-list out_in denied tcp outside/192.0.2.1(4444) -> inside/10.1.1.1(23) hit-cnt 1 first hit [0x0, 0x0]
//! %ASA-6-302013: Built inbound TCP connection 7 for outside:192.0.2.1/4444 (192.0.2.1/4444) to inside:10.1.1.1/443 (203.0.113.5/443)
//! %ASA-3-710003: TCP access denied by ACL from 192.0.2.1/4444 to outside:203.0.113.5/22
//! ```

use std::borrow::Cow;
use std::net::IpAddr;

use watchhouse_event::{Action, EventRef, Format, IpProto};

use crate::fields::{parse_ip, proto};
use crate::syslog::Envelope;
use crate::{clip, clip_owned, nat, Flow, Reason, TimeContext};

/// `%ASA-`, `%FTD-` or `%PIX-` tag?
pub fn is_tag(s: &str) -> bool {
    s.starts_with("%ASA-") || s.starts_with("%FTD-") || s.starts_with("%PIX-")
}

/// Finds the `%ASA-l-nnnnnn:` tag in a message.
pub fn find(msg: &str) -> Option<usize> {
    ["%ASA-", "%FTD-", "%PIX-"]
        .iter()
        .filter_map(|t| msg.find(t))
        .min()
}

/// Whether a message's format names the interface before an endpoint's address, per Cisco's
/// reference: `src outside:192.0.2.1/4444` (106023, 302013, 710003's destination) or
/// `from 192.0.2.1/4444` (106001, 106006, 106015, 710003's source, 302013's mapped addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Iface {
    Named,
    Bare,
}

/// `[iface:]addr[/port]` into (interface, address, port). ICMP endpoints have no port.
fn endpoint(tok: &str, iface: Iface) -> Result<(Option<&str>, IpAddr, Option<u16>), Reason> {
    let mut tok = tok;
    while let [rest @ .., b',' | b';'] = tok.as_bytes() {
        tok = &tok[..rest.len()];
    }
    // Tokens are short: a plain reverse loop, not a library search.
    let (addr, port) = match tok.as_bytes().iter().rposition(|&c| c == b'/') {
        Some(p) => (&tok[..p], Some(&tok[p + 1..])),
        None => (tok, None),
    };
    let (iface, ip) = split_iface(addr, iface)?;
    let port = match port {
        Some(p) => Some(crate::fields::dec_u16(p).ok_or(Reason::Malformed("bad_port"))?),
        None => None,
    };
    Ok((iface, ip, port))
}

/// `[iface:]addr` into (interface, address). An interface name (ASA's `nameif`) holds no colon,
/// so a name is what precedes the first colon. IPv6 addresses have colons too, so where the
/// format names the interface, a name of hex digits ("dc") followed by an IPv6 address
/// ("dc:2001:db8::1") also reads whole as another address: such a token is refused as
/// ambiguous rather than read either way. Where the format names none, the token is read whole
/// first.
fn split_iface(s: &str, iface: Iface) -> Result<(Option<&str>, IpAddr), Reason> {
    const BAD: Reason = Reason::Malformed("bad_address");
    let named = |c: usize| (c > 0).then(|| parse_ip(&s[c + 1..])).flatten();
    let colon = s.bytes().position(|c| c == b':');
    match iface {
        Iface::Bare => match parse_ip(s) {
            Some(ip) => Ok((None, ip)),
            // Off the reference, but unambiguous: the whole is no address.
            None => {
                let c = colon.ok_or(BAD)?;
                Ok((Some(&s[..c]), named(c).ok_or(BAD)?))
            }
        },
        Iface::Named => {
            let Some(c) = colon else {
                // No colon: an IPv4 address with no name.
                return Ok((None, parse_ip(s).ok_or(BAD)?));
            };
            let name = &s[..c];
            let whole = if name.len() <= 4 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                parse_ip(s)
            } else {
                None
            };
            match (named(c), whole) {
                (Some(ip), None) => Ok((Some(name), ip)),
                (None, Some(ip)) => Ok((None, ip)),
                (Some(_), Some(_)) => Err(Reason::Malformed("ambiguous_address")),
                (None, None) => Err(BAD),
            }
        }
    }
}

/// `s` without the double quotes at either end (`"outside_access_in"`).
fn unquote(mut s: &str) -> &str {
    while let [b'"', rest @ ..] = s.as_bytes() {
        s = &s[s.len() - rest.len()..];
    }
    while let [rest @ .., b'"'] = s.as_bytes() {
        s = &s[..rest.len()];
    }
    s
}

/// `iface/addr(port)` as 106100 writes it.
fn paren_endpoint(tok: &str) -> Result<(Option<&str>, IpAddr, Option<u16>), Reason> {
    let (iface, rest) = tok
        .split_once('/')
        .ok_or(Reason::Malformed("bad_address"))?;
    let (addr, port) = rest
        .split_once('(')
        .ok_or(Reason::Malformed("bad_address"))?;
    let ip: IpAddr = addr.parse().map_err(|_| Reason::Malformed("bad_address"))?;
    let port: u16 = port
        .trim_end_matches(')')
        .parse()
        .map_err(|_| Reason::Malformed("bad_port"))?;
    Ok((Some(iface), ip, Some(port)))
}

/// The words of a message, split at ASCII whitespace (ASA messages are ASCII).
fn words(text: &str) -> impl Iterator<Item = &str> {
    let b = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            return None;
        }
        let start = i;
        // The word's end, eight bytes at a time: every byte `is_ascii_whitespace` accepts.
        i = crate::fields::find_any(b, i, [b' ', b'\t', b'\n', b'\r', 0x0c]);
        Some(&text[start..i])
    })
}

/// Word 1 and the words after the first `src`, `dst` and `access-group` of a 106023 message,
/// in one pass: what [`after`] would find over the collected words.
type DenyWords<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);
fn deny_words(text: &str) -> DenyWords<'_> {
    let (mut p, mut src, mut dst, mut acl) = (None, None, None, None);
    let mut prev = "";
    for (n, word) in words(text).enumerate() {
        if n == 1 {
            p = Some(word);
        }
        if src.is_none() && prev.eq_ignore_ascii_case("src") {
            src = Some(word);
        }
        if dst.is_none() && prev.eq_ignore_ascii_case("dst") {
            dst = Some(word);
        }
        if acl.is_none() && prev.eq_ignore_ascii_case("access-group") {
            acl = Some(word);
        }
        if acl.is_some() && dst.is_some() && src.is_some() {
            break;
        }
        prev = word;
    }
    (p, src, dst, acl)
}

/// An endpoint as [`endpoint`] returns it: interface, address, port.
type Endpoint<'a> = (Option<&'a str>, IpAddr, Option<u16>);

/// What a 106023 deny yields: protocol, source, destination and the ACL's name.
type Deny<'a> = (IpProto, Endpoint<'a>, Endpoint<'a>, Option<&'a str>);

/// `Deny <proto> src <ep> dst <ep> … by access-group "<acl>"`, read by its words.
fn deny_general(text: &str) -> Result<Deny<'_>, Reason> {
    let (p, src, dst, acl) = deny_words(text);
    let p = proto(p)?;
    let s = endpoint(src.ok_or(Reason::Malformed("missing_src"))?, Iface::Named)?;
    let d = endpoint(dst.ok_or(Reason::Malformed("missing_dst"))?, Iface::Named)?;
    Ok((p, s, d, acl.map(unquote)))
}

/// The end of the token at `i`: visible ASCII bytes up to a space or the end of the text.
/// `None` for an empty token or one holding any other byte (whitespace of another kind,
/// control bytes, non-ASCII), which only the general reader takes.
fn visible_token(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    while let Some(&c) = b.get(j) {
        if c == b' ' {
            break;
        }
        if !c.is_ascii_graphic() {
            return None;
        }
        j += 1;
    }
    (j > i).then_some(j)
}

/// The token at `i` read as `name:a.b.c.d/port` and ended by a space or the end of the text:
/// visible ASCII, a name that cannot be read as hex (so never part of an IPv6 address), a
/// dotted quad as std reads one and a port of plain digits, in one pass. Returns the endpoint
/// and where the token ends; `None` for any other shape.
fn named_v4_at(text: &str, mut i: usize) -> Option<(Endpoint<'_>, usize)> {
    let b = text.as_bytes();
    let start = i;
    let mut hex = true;
    loop {
        let c = *b.get(i)?;
        if c == b':' {
            break;
        }
        if !c.is_ascii_graphic() {
            return None;
        }
        hex &= c.is_ascii_hexdigit();
        i += 1;
    }
    let name = &text[start..i];
    if name.is_empty() || (name.len() <= 4 && hex) {
        return None;
    }
    i += 1;
    let (ip, end) = crate::fields::dotted_quad_at(b, i)?;
    i = end;
    if b.get(i) != Some(&b'/') {
        return None;
    }
    i += 1;
    let digits_at = i;
    let mut port = 0u32;
    while let Some(&c) = b.get(i) {
        if c == b' ' {
            break;
        }
        let d = c.wrapping_sub(b'0');
        if d > 9 || i - digits_at == 5 {
            return None;
        }
        port = port * 10 + u32::from(d);
        i += 1;
    }
    if i == digits_at {
        return None;
    }
    let port = u16::try_from(port).ok()?;
    Some(((Some(name), IpAddr::V4(ip), Some(port)), i))
}

/// A 106023 deny exactly as Cisco writes it, `Deny <proto> src <name>:<IPv4>/<port> dst
/// <name>:<IPv4>/<port> by access-group <acl>…`, single spaces and visible ASCII, read by
/// position in one pass. `None` for any other shape (IPv6, no port, another spacing, a name
/// that could be hex), which [`deny_general`] reads; where this answers, it answers what
/// `deny_general` would.
fn deny_fixed(text: &str) -> Option<Deny<'_>> {
    let b = text.as_bytes();
    let rest = text.strip_prefix("Deny ")?;
    let i = b.len() - rest.len();
    let e = visible_token(b, i)?;
    let p = IpProto::parse(&text[i..e])?;
    let i = e + b" src ".len();
    if !b[e..].starts_with(b" src ") {
        return None;
    }
    let (s, e) = named_v4_at(text, i)?;
    if !b[e..].starts_with(b" dst ") {
        return None;
    }
    let i = e + b" dst ".len();
    let (d, e) = named_v4_at(text, i)?;
    const BY: &[u8] = b" by access-group ";
    if !b[e..].starts_with(BY) {
        return None;
    }
    let i = e + BY.len();
    let e = visible_token(b, i)?;
    Some((p, s, d, Some(unquote(&text[i..e]))))
}

fn after<'a>(words: &[&'a str], w: &str) -> Option<&'a str> {
    words
        .iter()
        .position(|x| x.eq_ignore_ascii_case(w))
        .and_then(|i| words.get(i + 1).copied())
}

fn need_ports(
    p: IpProto,
    sp: Option<u16>,
    dp: Option<u16>,
) -> Result<(Option<u16>, Option<u16>), Reason> {
    if p.has_ports() {
        match (sp, dp) {
            (Some(a), Some(b)) => Ok((Some(a), Some(b))),
            _ => Err(Reason::Malformed("missing_port")),
        }
    } else {
        Ok((None, None))
    }
}

/// Parses an ASA / FTD message.
pub fn parse<'a>(
    env: &Envelope<'a>,
    raw: &'a str,
    ctx: &TimeContext,
) -> Result<EventRef<'a>, Reason> {
    // The tag may be the syslog TAG (then the text is the message) or inside the message.
    let (tag, text) = match env.app.filter(|a| is_tag(a)) {
        Some(a) => (a, env.msg),
        None => {
            let i = find(env.msg).ok_or(Reason::Malformed("no_asa_tag"))?;
            let rest = &env.msg[i..];
            let (t, m) = rest
                .split_once(": ")
                .ok_or(Reason::Malformed("no_asa_tag"))?;
            (t, m)
        }
    };
    // The message id follows the last '-' (`%ASA-4-106023`); a byte search, not a `Pattern`.
    let id = match tag.as_bytes().iter().rposition(|&c| c == b'-') {
        Some(p) => &tag[p + 1..],
        None => tag,
    };
    let time_ms = env.time_ms.unwrap_or(ctx.now_ms);
    let mut nat_parts = (None, None, None, None);
    // The commonest message (an ACL deny) is read in one pass over its words; the others
    // collect their words first.
    let w: Vec<&str> = if id == "106023" {
        Vec::new()
    } else {
        let mut w = Vec::with_capacity(32);
        w.extend(words(text));
        w
    };
    let (action, protocol, s, d, rule) = match id {
        "106023" => {
            // The shape Cisco writes is read by position; any other by its words.
            let (p, s, d, acl) = match deny_fixed(text) {
                Some(deny) => deny,
                None => deny_general(text)?,
            };
            (Action::Deny, p, s, d, acl)
        }
        "106001" | "106006" | "106007" | "106015" => {
            // … <PROTO> … from <addr/port> to <addr/port> … on interface <if>
            let p = w
                .iter()
                .find_map(|t| IpProto::parse(t).filter(|p| p.has_ports() || p.0 == 1))
                .ok_or(Reason::Malformed("missing_proto"))?;
            let iface = after(&w, "interface");
            let (_, sip, sp) = endpoint(
                after(&w, "from").ok_or(Reason::Malformed("missing_src"))?,
                Iface::Bare,
            )?;
            let (_, dip, dp) = endpoint(
                after(&w, "to").ok_or(Reason::Malformed("missing_dst"))?,
                Iface::Bare,
            )?;
            (Action::Deny, p, (iface, sip, sp), (None, dip, dp), None)
        }
        "106100" => {
            // access-list <acl> {permitted|denied|est-allowed} <proto> <if/addr(port)> -> <if/addr(port)>
            let acl = w.get(1).copied();
            let verdict = w.get(2).copied().unwrap_or("");
            let a = match verdict {
                "permitted" | "est-allowed" => Action::Allow,
                "denied" => Action::Deny,
                _ => return Err(Reason::Malformed("unknown_action")),
            };
            let p = proto(w.get(3).copied())?;
            let s = paren_endpoint(w.get(4).ok_or(Reason::Malformed("missing_src"))?)?;
            let d = paren_endpoint(w.get(6).ok_or(Reason::Malformed("missing_dst"))?)?;
            (a, p, s, d, acl)
        }
        "302013" | "302015" => {
            // Built {inbound|outbound} {TCP|UDP} connection <id> for <if:a/p> (<mapped>) to <if:a/p> (<mapped>)
            let dir = w.get(1).copied().unwrap_or("");
            let p = proto(w.get(2).copied())?;
            let first = endpoint(
                after(&w, "for").ok_or(Reason::Malformed("missing_src"))?,
                Iface::Named,
            )?;
            let first_mapped = w
                .iter()
                .position(|x| *x == "for")
                .and_then(|i| w.get(i + 2))
                .copied();
            let second = endpoint(
                after(&w, "to").ok_or(Reason::Malformed("missing_dst"))?,
                Iface::Named,
            )?;
            let second_mapped = w
                .iter()
                .position(|x| *x == "to")
                .and_then(|i| w.get(i + 2))
                .copied();
            let mapped = |t: Option<&str>| -> Result<(Option<IpAddr>, Option<u16>), Reason> {
                match t {
                    Some(t) if t.starts_with('(') => {
                        let (_, ip, port) = endpoint(t.trim_matches(['(', ')']), Iface::Bare)?;
                        Ok((Some(ip), port))
                    }
                    _ => Ok((None, None)),
                }
            };
            let (fm, sm) = (mapped(first_mapped)?, mapped(second_mapped)?);
            // Inbound: the initiator is "for"; outbound: the initiator is "to".
            let (s, d, sm, dm) = match dir {
                "inbound" => (first, second, fm, sm),
                "outbound" => (second, first, sm, fm),
                _ => return Err(Reason::Malformed("unknown_direction")),
            };
            let differs =
                |(ip, port): (Option<IpAddr>, Option<u16>), real: IpAddr, rp: Option<u16>| {
                    if ip == Some(real) && port == rp {
                        (None, None)
                    } else {
                        (ip, port)
                    }
                };
            let (nsi, nsp) = differs(sm, s.1, s.2);
            let (ndi, ndp) = differs(dm, d.1, d.2);
            nat_parts = (nsi, nsp, ndi, ndp);
            (Action::Allow, p, s, d, None)
        }
        "710003" => {
            // {TCP|UDP} access denied by ACL from <addr/port> to <if:addr/port>
            let p = proto(w.first().copied())?;
            let (_, sip, sp) = endpoint(
                after(&w, "from").ok_or(Reason::Malformed("missing_src"))?,
                Iface::Bare,
            )?;
            let d = endpoint(
                after(&w, "to").ok_or(Reason::Malformed("missing_dst"))?,
                Iface::Named,
            )?;
            (Action::Deny, p, (None, sip, sp), d, None)
        }
        _ => return Err(Reason::NotTraffic),
    };
    let (src_port, dst_port) = need_ports(protocol, s.2, d.2)?;
    let mut e = Flow {
        action,
        protocol,
        src_ip: s.1,
        src_port,
        dst_ip: d.1,
        dst_port,
    }
    .event(Format::CiscoAsa, raw, env, time_ms);
    e.in_iface = s.0.map(|i| clip(i, 64));
    e.out_iface = d.0.map(|i| clip(i, 64));
    e.rule = Some(match rule {
        Some(r) => {
            let mut s = String::with_capacity(id.len() + 1 + r.len());
            s.push_str(id);
            s.push(' ');
            s.push_str(r);
            clip_owned(s, 64)
        }
        None => Cow::Borrowed(id),
    });
    e.nat = nat(nat_parts.0, nat_parts.1, nat_parts.2, nat_parts.3);
    if tag.starts_with("%FTD-") {
        e.product = Some("Cisco|Firepower Threat Defense".into());
    }
    Ok(e)
}

#[cfg(test)]
mod one_pass_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn the_one_pass_deny_reader_agrees_with_collected_words(
            ws in proptest::collection::vec(
                "src|SRC|dst|access-group|Deny|tcp|a:1.2.3.4/5|x|\"acl\"", 0..12),
            sep in "[ \t]{1,2}",
        ) {
            let text = ws.join(&sep);
            let w: Vec<&str> = words(&text).collect();
            let expect = (w.get(1).copied(), after(&w, "src"), after(&w, "dst"), after(&w, "access-group"));
            prop_assert_eq!(deny_words(&text), expect);
        }

        /// Where the fixed-shape reader answers, the general reader agrees; on the shape Cisco
        /// writes, it answers.
        #[test]
        fn the_fixed_deny_reader_agrees_with_the_general_one(
            ws in proptest::collection::vec(
                "Deny|deny|tcp|TCP|udp|icmp|src|dst|by|access-group|\"acl\"|acl|outside:1.2.3.4/5|inside:10.0.0.1/65535|dc:1.2.3.4/5|o:1.2.3.4/70000|o:1.2.3.4/|o:1.2.3.4|o:01.2.3.4/5|o:2001:db8::1/5|in:1.2.3.4/5,|x\u{e9}|\t|", 0..12),
            sep in "( |  |\t)",
        ) {
            let text = ws.join(&sep);
            if let Some(fixed) = deny_fixed(&text) {
                prop_assert_eq!(Ok(fixed), deny_general(&text), "{:?}", text);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// The same near the shape Cisco writes: each slot of the canonical message mostly
        /// holds what Cisco writes and otherwise something close to it, so most cases reach
        /// deep into both readers.
        #[test]
        fn the_fixed_deny_reader_agrees_near_the_canonical_shape(
            verb in slot("Deny", "deny|src|dst|access-group|Deny "),
            p in slot("tcp", "udp|icmp|6|src|dst|xyz|tcp\t|TCP"),
            k1 in slot("src", "SRC|dst|access-group"),
            ep1 in slot("outside:1.2.3.4/5", "dmz-1:255.255.255.255/65535|dc:1.2.3.4/5|o:1.2.3.4/70000|o:1.2.3.4/|o:1.2.3.4|o:1.2.3.04/5|o:2001:db8::1/5|o:1.2.3.4/5,|o/x:1.2.3.4/5|1.2.3.4/5|:1.2.3.4/5|dst|access-group"),
            k2 in slot("dst", "DST|src|access-group"),
            ep2 in slot("inside:10.0.0.1/22", "inside:10.0.0.1/+22|inside:10.0.0.256/22|access-group|inside:10.0.0.1/22;|src"),
            by in slot(" by access-group ", "  by access-group | by access-group\t| by ACCESS-GROUP | access-group | by access-group| by access-group src "),
            acl in slot("\"outside_in\"", "outside_in|\"\"|\"a\u{e9}\"|src|"),
            tail in slot(" [0x0, 0x0]", "| src x| access-group y"),
        ) {
            let text = format!("{verb} {p} {k1} {ep1} {k2} {ep2}{by}{acl}{tail}");
            if let Some(fixed) = deny_fixed(&text) {
                prop_assert_eq!(Ok(fixed), deny_general(&text), "{:?}", text);
            }
        }
    }

    /// Mostly `good`, sometimes a string matching the regex `bad`.
    fn slot(good: &'static str, bad: &'static str) -> impl Strategy<Value = String> {
        prop_oneof![
            3 => Just(good.to_string()),
            1 => proptest::string::string_regex(bad).expect("a valid regex"),
        ]
    }

    proptest! {
        #[test]
        fn the_fixed_deny_reader_takes_what_cisco_writes(
            p in "tcp|udp|TCP",
            a: [u8; 4],
            sp: u16,
            b: [u8; 4],
            dp: u16,
            si in "[a-z][a-z0-9_-]{4,12}",
            di in "[a-z][a-z0-9_-]{4,12}",
            acl in "[A-Za-z0-9_-]{1,20}",
        ) {
            let (sa, da) = (std::net::Ipv4Addr::from(a), std::net::Ipv4Addr::from(b));
            let text = format!("Deny {p} src {si}:{sa}/{sp} dst {di}:{da}/{dp} by access-group \"{acl}\" [0x0, 0x0]");
            let fixed = deny_fixed(&text);
            prop_assert!(fixed.is_some(), "{}", text);
            prop_assert_eq!(Ok(fixed.unwrap()), deny_general(&text));
        }

        #[test]
        fn unquote_is_trim_matches(s in "[\"a\u{e9},;]{0,8}") {
            prop_assert_eq!(unquote(&s), s.trim_matches('"'));
        }

        /// Every token is read exactly (interface, address, port) or refused; never read as
        /// another address. Named endpoints with a name that is not hex, and bare endpoints
        /// where the format names none, are always read.
        #[test]
        fn an_endpoint_is_read_exactly_or_refused(
            name in "(outside|inside|dmz|dmz-1|beef|2001|dc|fe80)?",
            named in any::<bool>(),
            v6 in any::<bool>(),
            a in any::<[u16; 8]>(),
            zeros in 0usize..8,
            port in proptest::option::of(any::<u16>()),
            tail in "[,;]{0,2}",
        ) {
            let mut a = a;
            // Runs of zero groups, so that `::` appears often.
            for g in a.iter_mut().skip(zeros).take(3) {
                *g = 0;
            }
            let ip: IpAddr = if v6 {
                std::net::Ipv6Addr::from(a).into()
            } else {
                std::net::Ipv4Addr::new(a[0] as u8, a[1] as u8, a[2] as u8, a[3] as u8).into()
            };
            let mut tok = if name.is_empty() { String::new() } else { format!("{name}:") };
            tok.push_str(&ip.to_string());
            if let Some(p) = port {
                tok.push_str(&format!("/{p}"));
            }
            tok.push_str(&tail);
            let mode = if named { Iface::Named } else { Iface::Bare };
            let mut want = ((!name.is_empty()).then_some(name.as_str()), ip);
            if mode == Iface::Bare {
                // Where the format names no interface, text that reads whole as an address is
                // that address (the documented reading).
                if let Ok(whole) = format!("{name}:{ip}").parse::<IpAddr>() {
                    want = (None, whole);
                }
            }
            match endpoint(&tok, mode) {
                Ok(got) => prop_assert_eq!(got, (want.0, want.1, port), "{} {:?}", tok, mode),
                Err(r) => {
                    let hexname = !name.is_empty() && name.len() <= 4
                        && name.bytes().all(|b| b.is_ascii_hexdigit());
                    let bare_v6 = name.is_empty() && v6;
                    // Refused only where the reading is ambiguous: a hex name before an IPv6
                    // address, or a bare IPv6 address where a name was due (or read whole
                    // where none was due).
                    prop_assert!(
                        (mode == Iface::Named && (hexname || bare_v6))
                            || (mode == Iface::Bare && !name.is_empty()),
                        "{} {:?} refused: {:?}", tok, mode, r
                    );
                }
            }
        }
    }
}
