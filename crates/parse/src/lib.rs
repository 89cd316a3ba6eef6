//! Turning raw firewall log lines into [`Event`]s.
//!
//! Three layers, each pure (no IO, no clock, no async):
//!
//! 1. [`framing`] splits a TCP byte stream into messages (RFC 6587, both framings).
//! 2. [`syslog`] reads the envelope (RFC 5424, RFC 3164, header-less file lines).
//! 3. A vendor parser ([`netfilter`], [`filterlog`]) reads the body, chosen by
//!    [`detect`] per line or forced by the caller.
//!
//! **Invariant: a parser never guesses an address or a port.** If a field that matters cannot be
//! read exactly, the line is returned as [`Unparsed`] with a reason code, to be counted and
//! sampled by the caller; it never becomes an event with a wrong IP or port. And no input makes a
//! parser panic (fuzzed and property-tested).

pub mod asa;
pub mod barracuda;
pub mod cef;
pub mod checkpoint;
pub mod draytek;
pub mod fields;
pub mod filterlog;
pub mod fortigate;
pub mod framing;
pub mod juniper;
pub mod meraki;
pub mod mikrotik;
pub mod netfilter;
pub mod panos;
pub mod sonicwall;
pub mod sophos;
pub mod suricata;
pub mod syslog;
pub mod untangle;
pub mod watchguard;
pub mod zeek;

use std::borrow::Cow;
use std::net::IpAddr;

pub use syslog::TimeContext;
use watchhouse_event::{Action, Direction, Event, EventRef, Format, IpProto, Nat};

/// The five-tuple and verdict every parser must read; the rest of an [`Event`] is optional.
#[derive(Debug, Clone)]
pub(crate) struct Flow {
    pub action: Action,
    pub protocol: IpProto,
    pub src_ip: IpAddr,
    pub src_port: Option<u16>,
    pub dst_ip: IpAddr,
    pub dst_port: Option<u16>,
}

impl Flow {
    /// An event with the flow, the line, the device from the envelope and no optional fields.
    pub fn event<'a>(
        self,
        format: Format,
        raw: &'a str,
        env: &syslog::Envelope<'a>,
        time_ms: i64,
    ) -> EventRef<'a> {
        EventRef {
            time_ms,
            last_ms: time_ms,
            action: self.action,
            protocol: self.protocol,
            src_ip: self.src_ip,
            src_port: self.src_port,
            dst_ip: self.dst_ip,
            dst_port: self.dst_port,
            direction: Direction::Unknown,
            in_iface: None,
            out_iface: None,
            rule: None,
            device: env.hostname.map(Cow::Borrowed),
            format,
            bytes: None,
            packets: None,
            count: 1,
            raw,
            nat: None,
            product: None,
            host: None,
            url: None,
        }
    }
}

/// Builds a [`Nat`] from optional parts; `None` when nothing was translated.
pub(crate) fn nat(
    src_ip: Option<IpAddr>,
    src_port: Option<u16>,
    dst_ip: Option<IpAddr>,
    dst_port: Option<u16>,
) -> Option<Nat> {
    Nat {
        src_ip,
        src_port,
        dst_ip,
        dst_port,
    }
    .non_empty()
}

/// The longest prefix of `s` no longer than `max` bytes that ends on a character boundary.
pub(crate) fn prefix_within(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Truncates a vendor text field to a storable length on a character boundary (borrowed: no
/// copy until the event is made owned).
pub(crate) fn clip(s: &str, max: usize) -> Cow<'_, str> {
    Cow::Borrowed(prefix_within(s, max))
}

/// [`clip`] as an owned copy, for text that does not live in the line (an unescaped value).
pub(crate) fn clip_copy<'a>(s: &str, max: usize) -> Cow<'a, str> {
    Cow::Owned(prefix_within(s, max).to_owned())
}

/// [`clip`] for a string already owned: truncated in place, no copy.
pub(crate) fn clip_owned<'a>(mut s: String, max: usize) -> Cow<'a, str> {
    let end = prefix_within(&s, max).len();
    s.truncate(end);
    Cow::Owned(s)
}

/// Why a line did not become an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Nothing but whitespace.
    Empty,
    /// Not valid UTF-8.
    InvalidUtf8,
    /// Longer than the message size limit.
    Oversize,
    /// Broken RFC 6587 octet-count prefix.
    BadFraming,
    /// No parser recognised the line.
    UnknownFormat,
    /// The format was recognised but a required field was missing or invalid.
    Malformed(&'static str),
    /// Recognised, but not a traffic record (a login event, a statistics record, a header).
    NotTraffic,
}

impl Reason {
    /// Stable snake_case code, used in counters and shown to operators.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Empty => "empty",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::Oversize => "oversize",
            Reason::BadFraming => "bad_framing",
            Reason::UnknownFormat => "unknown_format",
            Reason::NotTraffic => "not_traffic",
            Reason::Malformed(c) => c,
        }
    }
}

/// A line that did not become an event, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unparsed {
    /// The format the line was attributed to, if any.
    pub format: Option<Format>,
    /// Why it failed.
    pub reason: Reason,
}

impl std::fmt::Display for Unparsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.format {
            Some(fmt) => write!(f, "{}: {}", fmt, self.reason.code()),
            None => f.write_str(self.reason.code()),
        }
    }
}

/// Picks the parser for a message from its envelope: the syslog tag first, then the body's
/// shape. Checks are ordered from the most to the least distinctive marker.
pub fn detect(env: &syslog::Envelope<'_>) -> Option<Format> {
    let msg = env.msg;
    let has = |needle: &str| memchr::memmem::find(msg.as_bytes(), needle.as_bytes()).is_some();
    static LOGID: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("logid="));
    static DEVID: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("devid="));
    static TYPE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("type="));
    static DATE: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("date="));
    static EF: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("EF:"));
    // The commonest small-business formats first, by their cheapest distinctive marks.
    if env.app == Some("filterlog") {
        return Some(Format::Filterlog);
    }
    if msg.starts_with('{') {
        if has("\"event_type\"") {
            return Some(Format::Suricata);
        }
        if has("\"id.orig_h\"") {
            return Some(Format::Zeek);
        }
    }
    // An ASA / FTD syslog tag (`%ASA-4-106023:`) names the format outright.
    if env.app.is_some_and(asa::is_tag) {
        return Some(Format::CiscoAsa);
    }
    // FortiOS starts its messages with `date=`: such a line is decided before the scans for
    // other formats' marks run over its 500-odd bytes (and needs no search for `date=`).
    let opens_with_date = msg.starts_with("date=");
    let fortigate = || {
        LOGID.find(msg.as_bytes()).is_some()
            && (DEVID.find(msg.as_bytes()).is_some() || TYPE.find(msg.as_bytes()).is_some())
            && (opens_with_date || DATE.find(msg.as_bytes()).is_some())
    };
    if opens_with_date && fortigate() {
        return Some(Format::FortiGate);
    }
    // `CEF:` and `LEEF:` share `EF:`: one search tells whether either may be present. A CEF
    // or LEEF header precedes its fields, so in a line with netfilter's `SRC=` only the text
    // before it is searched: a `CEF:` after it is text inside a netfilter line.
    let maybe_cef_or_leef = match netfilter::src_of(msg) {
        Some(src) => {
            let header = fields::find_short(&msg.as_bytes()[..src], b"EF:").is_some();
            if !(header && (has("CEF:") || has("LEEF:"))) {
                return Some(Format::Netfilter);
            }
            true
        }
        None => EF.find(msg.as_bytes()).is_some(),
    };
    // A `date=` message was asked above already.
    if !opens_with_date && fortigate() {
        return Some(Format::FortiGate);
    }
    if asa::find(msg).is_some() {
        return Some(Format::CiscoAsa);
    }
    if untangle::looks_like(msg) {
        return Some(Format::Untangle);
    }
    if (maybe_cef_or_leef && has("CEF:")) || cef::looks_like_headerless(msg) {
        return Some(Format::Cef);
    }
    if maybe_cef_or_leef && has("LEEF:") {
        return Some(Format::Leef);
    }
    if checkpoint::looks_like(env) {
        return Some(Format::CheckPoint);
    }
    if draytek::looks_like(msg) {
        return Some(Format::DrayTek);
    }
    if barracuda::looks_like(msg) {
        return Some(Format::Barracuda);
    }
    if env.app.is_some_and(|a| a.starts_with("RT_FLOW")) || has("RT_FLOW_SESSION") {
        return Some(Format::JuniperSrx);
    }
    if has("id=firewall") && has(" sn=") || (has(" m=") && has(" c=") && has(" pri=")) {
        return Some(Format::SonicWall);
    }
    if has("log_component=")
        || has("device=\"SFW\"")
        || (has("sys=\"SecureNet\"") && has("sub=\"packetfilter\""))
    {
        return Some(Format::Sophos);
    }
    if has("msg_id=\"") && watchguard::looks_like(msg) {
        return Some(Format::WatchGuard);
    }
    if mikrotik::looks_like(msg) {
        return Some(Format::MikroTik);
    }
    if meraki::looks_like(msg) {
        return Some(Format::Meraki);
    }
    if panos::looks_like(msg) {
        return Some(Format::PanOs);
    }
    if filterlog::looks_like(msg) {
        return Some(Format::Filterlog);
    }
    if zeek::looks_like_tsv(msg) {
        return Some(Format::Zeek);
    }
    None
}

/// Parses one line (one syslog message or one file line, without its terminator).
///
/// `format` forces a parser; `None` auto-detects per line.
pub fn parse_line(
    line: &[u8],
    ctx: &TimeContext,
    format: Option<Format>,
) -> Result<Event, Unparsed> {
    parse_line_ref(line, ctx, format).map(EventRef::into_event)
}

/// [`parse_line`] for text already known to be UTF-8.
pub fn parse_str(text: &str, ctx: &TimeContext, format: Option<Format>) -> Result<Event, Unparsed> {
    parse_str_ref(text, ctx, format).map(EventRef::into_event)
}

/// [`parse_line`], the event borrowing its text from the line: nothing is allocated unless
/// a field had to be rewritten. For callers that count, filter or fold most lines away.
pub fn parse_line_ref<'a>(
    line: &'a [u8],
    ctx: &TimeContext,
    format: Option<Format>,
) -> Result<EventRef<'a>, Unparsed> {
    // SIMD validation: the whole line is checked once, and it is most of the bytes read.
    let text = simdutf8::basic::from_utf8(line).map_err(|_| Unparsed {
        format,
        reason: Reason::InvalidUtf8,
    })?;
    parse_str_ref(text, ctx, format)
}

/// [`parse_str`], the event borrowing its text from `text` ([`parse_line_ref`]).
pub fn parse_str_ref<'a>(
    text: &'a str,
    ctx: &TimeContext,
    format: Option<Format>,
) -> Result<EventRef<'a>, Unparsed> {
    // Byte loops, not `char` patterns: this runs for every line.
    let mut end = text.len();
    while end > 0 && matches!(text.as_bytes()[end - 1], b'\r' | b'\n' | b'\0') {
        end -= 1;
    }
    // Only ASCII bytes were cut: `end` is a character boundary.
    let text = &text[..end];
    // A line that opens with a visible ASCII byte is not blank; only others need the full test.
    let opens_visible = text
        .as_bytes()
        .first()
        .is_some_and(|c| c.is_ascii_graphic());
    if !opens_visible && text.trim().is_empty() {
        return Err(Unparsed {
            format,
            reason: Reason::Empty,
        });
    }
    let env = syslog::parse_envelope(text, ctx);
    let fmt = match format.or_else(|| detect(&env)) {
        Some(f) => f,
        None => {
            return Err(Unparsed {
                format: None,
                reason: Reason::UnknownFormat,
            })
        }
    };
    let r = match fmt {
        Format::Netfilter => netfilter::parse(&env, text, ctx.now_ms),
        Format::Filterlog => filterlog::parse(&env, text, ctx.now_ms),
        Format::Cef => cef::parse_cef(&env, text, ctx),
        Format::Leef => cef::parse_leef(&env, text, ctx),
        Format::FortiGate => fortigate::parse(&env, text, ctx),
        Format::CiscoAsa => asa::parse(&env, text, ctx),
        Format::Meraki => meraki::parse(&env, text, ctx),
        Format::PanOs => panos::parse(&env, text, ctx),
        Format::SonicWall => sonicwall::parse(&env, text, ctx),
        Format::Sophos => sophos::parse(&env, text, ctx),
        Format::WatchGuard => watchguard::parse(&env, text, ctx),
        Format::MikroTik => mikrotik::parse(&env, text, ctx),
        Format::JuniperSrx => juniper::parse(&env, text, ctx),
        Format::Zeek => zeek::parse(&env, text, ctx),
        Format::Suricata => suricata::parse(&env, text, ctx),
        Format::CheckPoint => checkpoint::parse(&env, text, ctx),
        Format::DrayTek => draytek::parse(&env, text, ctx),
        Format::Barracuda => barracuda::parse(&env, text, ctx),
        Format::Untangle => untangle::parse(&env, text, ctx),
    };
    r.map_err(|reason| Unparsed {
        format: Some(fmt),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use watchhouse_event::{Action, Direction, IpProto};

    fn ctx() -> TimeContext {
        TimeContext::utc(1_664_496_000_000)
    }

    #[test]
    fn iptables_line() {
        let l = "Jun  8 14:34:33 sd-126005 kernel: [50028442.088484] IN=enp1s0 OUT= MAC=00:08:a2:0c:1f:12:00:c8:8b:e2:d6:87:08:00 SRC=195.54.160.107 DST=51.15.166.67 LEN=40 TOS=0x00 PREC=0x00 TTL=245 ID=37308 PROTO=TCP SPT=8080 DPT=8123 WINDOW=1024 RES=0x00 SYN URGP=0";
        let e = parse_str(l, &ctx(), None).unwrap();
        assert_eq!(e.format, Format::Netfilter);
        assert_eq!(e.src_ip.to_string(), "195.54.160.107");
        assert_eq!(e.dst_port, Some(8123));
        assert_eq!(e.src_port, Some(8080));
        assert_eq!(e.protocol, IpProto::TCP);
        assert_eq!(e.direction, Direction::Inbound);
        assert_eq!(e.in_iface.as_deref(), Some("enp1s0"));
        assert_eq!(e.device.as_deref(), Some("sd-126005"));
        assert_eq!(e.action, Action::Deny);
        assert_eq!(e.bytes, Some(40));
    }

    #[test]
    fn ufw_actions() {
        let base = "Jun  8 14:34:33 h kernel: [1.2] [UFW {}] IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 LEN=40 PROTO=TCP SPT=1 DPT=22";
        for (w, a) in [
            ("BLOCK", Action::Deny),
            ("ALLOW", Action::Allow),
            ("AUDIT", Action::Deny),
        ] {
            let e = parse_str(&base.replace("{}", w), &ctx(), None).unwrap();
            assert_eq!(e.action, a, "{w}");
            assert_eq!(e.rule.as_deref(), Some(format!("[UFW {w}]").as_str()));
        }
    }

    #[test]
    fn filterlog_v4_and_v6() {
        let l = "Sep 28 10:38:09 pfSense filterlog: 53,,,1000000301,em0,match,block,in,4,0x0,,64,420,0,none,6,tcp,460,10.0.2.2,10.0.2.15,53742,22,420,PA,29633380:29633800,3617062173,65535,,";
        let e = parse_str(l, &ctx(), None).unwrap();
        assert_eq!((e.src_port, e.dst_port), (Some(53742), Some(22)));
        assert_eq!(e.action, Action::Deny);
        assert_eq!(e.rule.as_deref(), Some("1000000301"));
        let l6 = "<134>1 2022-09-06T19:00:06+02:00 opnsense filterlog 57126 - [meta sequenceId=\"2667099\"] 98,,,881dd59a3e942966c90498ac104715a0,re0,match,pass,in,6,0x00,0x0ea87,51,udp,17,73,2008:8a0:702e:ce00:acc6:c7ee:fa01:2f8a,2c02:2454:ada:d900::1738,6881,51918,73";
        let e = parse_str(l6, &ctx(), None).unwrap();
        assert_eq!(e.action, Action::Allow);
        assert_eq!(e.protocol, IpProto::UDP);
        assert_eq!(e.dst_ip.to_string(), "2c02:2454:ada:d900::1738");
        assert_eq!(e.dst_port, Some(51918));
    }

    #[test]
    fn malformed_lines_are_unparsed_not_guessed() {
        let cases = [
            ("kernel: IN=eth0 SRC=1.2.3.999 DST=5.6.7.8 PROTO=TCP SPT=1 DPT=2", "bad_src"),
            ("kernel: IN=eth0 SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP SPT=1 DPT=70000", "bad_port"),
            ("kernel: IN=eth0 SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP SPT=1", "missing_port"),
            ("kernel: IN=eth0 SRC=1.2.3.4 DST=5.6.7.8 SPT=1 DPT=2", "missing_proto"),
            ("filterlog: 53,,,1,em0,match,block,in,4,0x0,,64,1,0,none,6,tcp,40,10.0.2.2", "too_few_fields"),
            ("filterlog: 53,,,1,em0,match,block,in,4,0x0,,64,1,0,none,6,tcp,40,10.0.2.2,::1,1,2", "ip_version_mismatch"),
            ("filterlog: 53,,,1,em0,match,block,in,4,0x0,,64,1,0,none,6,tcp,40,10.0.2.2,10.0.0.1,x,2", "bad_port"),
        ];
        for (line, code) in cases {
            let line = format!("<4>Jun  8 14:34:33 host {line}");
            let err = parse_str(&line, &ctx(), None).unwrap_err();
            assert_eq!(err.reason.code(), code, "{line}");
        }
        assert_eq!(
            parse_line(b"\xff\xfe SRC=", &ctx(), None)
                .unwrap_err()
                .reason,
            Reason::InvalidUtf8
        );
        assert_eq!(
            parse_str("hello world", &ctx(), None).unwrap_err().reason,
            Reason::UnknownFormat
        );
        assert_eq!(
            parse_str("  ", &ctx(), None).unwrap_err().reason,
            Reason::Empty
        );
    }

    #[test]
    fn forced_format_overrides_detection() {
        let l = "Jun  8 14:34:33 h kernel: IN=eth0 SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP SPT=1 DPT=2";
        let err = parse_str(l, &ctx(), Some(Format::Filterlog)).unwrap_err();
        assert_eq!(err.format, Some(Format::Filterlog));
    }

    #[test]
    fn cef_text_after_the_kernel_fields_does_not_hide_a_netfilter_line() {
        let l = r#"Jun  8 14:34:33 h kernel: [WAN_IN-2-D] IN=eth0 OUT= SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP SPT=1 DPT=2 note=CEF:1"#;
        let env = syslog::parse_envelope(l, &ctx());
        assert_eq!(detect(&env), Some(Format::Netfilter));
        let l = "Jun  8 14:34:33 h kernel: IN=eth0 SRC=1.2.3.4 DST=5.6.7.8 PROTO=TCP SPT=1 DPT=2 msg=LEEF:2.0";
        let env = syslog::parse_envelope(l, &ctx());
        assert_eq!(detect(&env), Some(Format::Netfilter));
        // A CEF header before fields that happen to read like the kernel's stays CEF.
        let l = "Jun  8 14:34:33 h CEF:0|Vendor|Product|1|100|Deny|5|cs1=SRC=1.2.3.4 DST=5.6.7.8 src=1.2.3.4 dst=5.6.7.8";
        let env = syslog::parse_envelope(l, &ctx());
        assert_eq!(detect(&env), Some(Format::Cef));
    }
}
