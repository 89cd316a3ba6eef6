//! Syslog envelopes: RFC 5424, RFC 3164 (BSD) and the header-less lines found in log files.
//!
//! [`parse_envelope`] never fails: whatever it cannot recognise stays in [`Envelope::msg`], and the
//! vendor parser decides. Time is never read from the clock: RFC 3164 timestamps carry neither
//! year nor zone, so the caller passes [`TimeContext`] (now, and the device's time zone) and the
//! year is inferred as the one that puts the timestamp closest to, and not far after, now.

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

/// What a parser needs to know about time: the present and the device's zone.
#[derive(Debug, Clone)]
pub struct TimeContext {
    /// Receive time, milliseconds since the epoch. Used when a line has no timestamp, and to
    /// infer RFC 3164's missing year.
    pub now_ms: i64,
    /// Zone the device writes zone-less timestamps in.
    pub tz: TimeZone,
    /// `now_ms`'s year in `tz`, computed once.
    now_year: i16,
    /// The zone's offset in seconds when it is fixed (UTC, `+01:00`): civil times then convert
    /// by arithmetic instead of a zone lookup.
    fixed_offset: Option<i64>,
}

impl TimeContext {
    /// A context for "now" in the given zone.
    pub fn new(now_ms: i64, tz: TimeZone) -> Self {
        let now_year = Timestamp::from_millisecond(now_ms)
            .map(|t| t.to_zoned(tz.clone()).year())
            .unwrap_or(1970);
        let fixed_offset = tz.to_fixed_offset().ok().map(|o| o.seconds() as i64);
        TimeContext {
            now_ms,
            tz,
            now_year,
            fixed_offset,
        }
    }

    /// A UTC context.
    pub fn utc(now_ms: i64) -> Self {
        Self::new(now_ms, TimeZone::UTC)
    }
}

/// The syslog header around a message, as far as it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// PRI value (facility × 8 + severity).
    pub pri: Option<u8>,
    /// Timestamp from the header, milliseconds since the epoch.
    pub time_ms: Option<i64>,
    /// HOSTNAME field.
    pub hostname: Option<&'a str>,
    /// APP-NAME (5424) or TAG without its `[pid]` (3164).
    pub app: Option<&'a str>,
    /// MSGID (5424).
    pub msgid: Option<&'a str>,
    /// STRUCTURED-DATA (5424), raw, when present.
    pub sd: Option<&'a str>,
    /// The message body.
    pub msg: &'a str,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn month(s: &str) -> Option<i8> {
    let b = s.as_bytes();
    if b.len() != 3 {
        return None;
    }
    // OR-ing 0x20 lower-cases a letter and never turns any other byte into a letter, so the
    // three bytes compare case-blind as one word.
    let key = u32::from_le_bytes([b[0] | 0x20, b[1] | 0x20, b[2] | 0x20, 0]);
    const fn word(m: &[u8; 3]) -> u32 {
        u32::from_le_bytes([m[0] | 0x20, m[1], m[2], 0])
    }
    const WORDS: [u32; 12] = {
        let mut w = [0u32; 12];
        let mut i = 0;
        while i < 12 {
            let m = MONTHS[i].as_bytes();
            w[i] = word(&[m[0], m[1], m[2]]);
            i += 1;
        }
        w
    };
    WORDS.iter().position(|&w| w == key).map(|i| i as i8 + 1)
}

/// `<PRI>` at the start of a line: one to three digits (a `+` before them, as `u8`'s reader
/// takes, is allowed) and at most 191. Returns the value and the text after `>`.
fn pri(line: &str) -> Option<(u8, &str)> {
    let b = line.as_bytes();
    if b.first() != Some(&b'<') {
        return None;
    }
    let end = 1 + b.iter().skip(1).take(4).position(|&c| c == b'>')?;
    let digits = match &b[1..end] {
        [b'+', d @ ..] => d,
        d => d,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0u32, |v, &d| v * 10 + u32::from(d - b'0'));
    (v <= 191).then(|| (v as u8, &line[end + 1..]))
}

/// Reads the envelope of one line. Never fails.
pub fn parse_envelope<'a>(line: &'a str, ctx: &TimeContext) -> Envelope<'a> {
    let mut env = Envelope {
        pri: None,
        time_ms: None,
        hostname: None,
        app: None,
        msgid: None,
        sd: None,
        msg: line,
    };
    let mut rest = line;
    if let Some((p, after)) = pri(line) {
        env.pri = Some(p);
        rest = after;
    }
    if env.pri.is_some() {
        if let Some(r) = rest.strip_prefix("1 ") {
            if let Some(e) = parse_5424(r) {
                return Envelope { pri: env.pri, ..e };
            }
        }
    }
    if let Some((t, r)) = parse_3164_time(rest, ctx) {
        env.time_ms = Some(t);
        let (host, app, msg) = split_host_tag(r);
        env.hostname = host;
        env.app = app;
        env.msg = msg;
        return env;
    }
    // No timestamp: maybe "host tag: msg" or just "tag: msg", or a bare body.
    env.msg = rest;
    if env.pri.is_some() {
        if let Some((app, msg)) = split_tag(rest) {
            env.app = Some(app);
            env.msg = msg;
        }
    }
    env
}

fn next_token(s: &str) -> Option<(&str, &str)> {
    let skip = s.bytes().take_while(|&c| c == b' ').count();
    let s = &s[skip..];
    if s.is_empty() {
        return None;
    }
    // Header tokens are a few bytes long: a plain loop beats a vectorised search here.
    match s.bytes().position(|c| c == b' ') {
        Some(i) => Some((&s[..i], &s[i + 1..])),
        None => Some((s, "")),
    }
}

fn nil(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

fn parse_5424(s: &str) -> Option<Envelope<'_>> {
    let (ts, r) = next_token(s)?;
    let (host, r) = next_token(r)?;
    let (app, r) = next_token(r)?;
    let (_procid, r) = next_token(r)?;
    let (msgid, r) = next_token(r)?;
    let r = r.trim_start_matches(' ');
    let (sd, msg) = if let Some(r2) = r.strip_prefix('-') {
        (None, r2)
    } else if r.starts_with('[') {
        let rest = skip_structured_data(r)?;
        (Some(&r[..r.len() - rest.len()]), rest)
    } else {
        return None;
    };
    let msg = msg.strip_prefix(' ').unwrap_or(msg);
    // A BOM may precede UTF-8 messages.
    let msg = msg.strip_prefix('\u{feff}').unwrap_or(msg);
    let time_ms = nil(ts).and_then(|t| match fixed_rfc3339(t) {
        Some(fast) => fast,
        None => t.parse::<Timestamp>().ok().map(|t| t.as_millisecond()),
    });
    Some(Envelope {
        pri: None,
        time_ms,
        hostname: nil(host),
        app: nil(app),
        msgid: nil(msgid),
        sd,
        msg,
    })
}

/// Skips one or more `[id k="v" …]` elements, honouring `\"`, `\]` and `\\` inside values.
fn skip_structured_data(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i] == b'[' {
        let mut in_quotes = false;
        i += 1;
        loop {
            let c = *b.get(i)?;
            match c {
                b'\\' if in_quotes => i += 1,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
            i += 1;
        }
        i += 1;
    }
    Some(&s[i..])
}

/// `Mmm dd hh:mm:ss`, `Mmm dd yyyy hh:mm:ss` or an RFC 3339 timestamp at the start of `s`.
fn parse_3164_time<'a>(s: &'a str, ctx: &TimeContext) -> Option<(i64, &'a str)> {
    let first = s.as_bytes().first()?;
    if first.is_ascii_digit() {
        // rsyslog's high-precision format puts an RFC 3339 stamp here.
        let (tok, rest) = next_token(s)?;
        if tok.len() >= 20 && tok.as_bytes().get(4) == Some(&b'-') {
            let t = parse_rfc3339(tok)?;
            return Some((t, rest));
        }
        return None;
    }
    if let Some(fast) = fixed_3164_time(s, ctx) {
        return fast;
    }
    general_3164_time(s, ctx)
}

/// `Mmm dd [yyyy] hh:mm:ss[.frac][:]` with any spacing.
fn general_3164_time<'a>(s: &'a str, ctx: &TimeContext) -> Option<(i64, &'a str)> {
    let (mon, r) = next_token(s)?;
    let mon = month(mon)?;
    let (day, r) = next_token(r)?;
    let day: i8 = day.parse().ok()?;
    let (mut tok, mut r) = next_token(r)?;
    let mut year = None;
    if tok.len() == 4 && tok.bytes().all(|c| c.is_ascii_digit()) {
        year = tok.parse::<i16>().ok();
        (tok, r) = next_token(r)?;
    }
    let (h, m, sec, nanos) = parse_hms(tok.strip_suffix(':').unwrap_or(tok))?;
    let (y, explicit) = match year {
        Some(y) => (y, true),
        None => (ctx.now_year, false),
    };
    let mut t = civil_to_ms(ctx, y, mon, day, h, m, sec, nanos)?;
    if !explicit && t > ctx.now_ms + 7 * 86_400_000 {
        // A December line read in January belongs to last year.
        t = civil_to_ms(ctx, y - 1, mon, day, h, m, sec, nanos)?;
    }
    Some((t, r))
}

/// The common fixed-width shapes, `Mmm dd hh:mm:ss ` and `Mmm dd yyyy hh:mm:ss[:] ` (the day
/// space-padded or zero-padded), read by position. `None` when the text has another shape, so
/// the general reader decides; `Some(None)` when the shape matches but the date is invalid,
/// which the general reader would refuse too.
fn fixed_3164_time<'a>(s: &'a str, ctx: &TimeContext) -> Option<Option<(i64, &'a str)>> {
    let b = s.as_bytes();
    let digit = |i: usize| {
        b.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| (c - b'0') as i8)
    };
    if b.len() < 16 || b[3] != b' ' || b[6] != b' ' {
        return None;
    }
    let day = match (b[4], digit(5)?) {
        (b' ', d) => d,
        (_, d) => digit(4)? * 10 + d,
    };
    // An explicit year: four digits and a space before the time.
    let (year, t) = match (digit(7), digit(8), digit(9), digit(10), b.get(11)) {
        (Some(a), Some(c), Some(d), Some(e), Some(b' ')) => {
            let y = a as i16 * 1000 + c as i16 * 100 + d as i16 * 10 + e as i16;
            (Some(y), 12)
        }
        _ => (None, 7),
    };
    let hms = s.get(t..t + 8)?;
    let mut end = t + 8;
    if year.is_some() && b.get(end) == Some(&b':') {
        end += 1; // ASA writes `hh:mm:ss: %ASA-…`
    }
    if b.get(end).is_some_and(|&c| c != b' ') {
        return None;
    }
    let mon = month(s.get(..3)?)?;
    let (h, m, sec, _) = parse_hms(hms)?;
    let rest = s.get(end + 1..).unwrap_or("");
    let (y, explicit) = match year {
        Some(y) => (y, true),
        None => (ctx.now_year, false),
    };
    let Some(mut t) = civil_to_ms(ctx, y, mon, day, h, m, sec, 0) else {
        return Some(None);
    };
    if !explicit && t > ctx.now_ms + 7 * 86_400_000 {
        // A December line read in January belongs to last year.
        let Some(prev) = civil_to_ms(ctx, y - 1, mon, day, h, m, sec, 0) else {
            return Some(None);
        };
        t = prev;
    }
    Some(Some((t, rest)))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` read by position, as milliseconds: the shape
/// RFC 5424 senders write. `None` when the text has another shape or falls outside what this
/// reader decides alone (leap seconds, times before 1970), so jiff's parser decides;
/// `Some(None)` when the shape matches but the date is invalid, which jiff refuses too.
fn fixed_rfc3339(s: &str) -> Option<Option<i64>> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let d = |i: usize| {
        b.get(i)
            .map(|c| c.wrapping_sub(b'0'))
            .filter(|d| *d < 10)
            .map(i64::from)
    };
    let two = |i: usize| Some(d(i)? * 10 + d(i + 1)?);
    let year = two(0)? * 100 + two(2)?;
    let (mo, day, h, mi, sec) = (two(5)?, two(8)?, two(11)?, two(14)?, two(17)?);
    let mut i = 19;
    let mut ms = 0;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                ms = ms * 10 + d(i)?;
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 || digits > 9 {
            return None;
        }
        for _ in digits..3 {
            ms *= 10;
        }
    }
    let offset = match b.get(i..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (oh, om) = (two(i + 1)?, two(i + 4)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    if sec > 59 {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let dim = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Some(None),
    };
    if day < 1 || day > dim || h > 23 || mi > 59 {
        return Some(None);
    }
    let secs = days_from_civil(year, mo, day) * 86_400 + h * 3600 + mi * 60 + sec - offset;
    if secs < 0 {
        return None;
    }
    Some(Some(secs * 1000 + ms))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A civil time in the context's zone as epoch milliseconds; arithmetic for fixed offsets.
#[allow(clippy::too_many_arguments)]
fn civil_to_ms(
    ctx: &TimeContext,
    y: i16,
    mo: i8,
    d: i8,
    h: i8,
    mi: i8,
    s: i8,
    nanos: i32,
) -> Option<i64> {
    match ctx.fixed_offset {
        Some(off) => {
            // Validate the same way jiff would (day of month, leap years, ranges).
            if !(1..=12).contains(&mo)
                || !(0..=23).contains(&h)
                || !(0..=59).contains(&mi)
                || !(0..=59).contains(&s)
            {
                return None;
            }
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            let dim = [
                31,
                if leap { 29 } else { 28 },
                31,
                30,
                31,
                30,
                31,
                31,
                30,
                31,
                30,
                31,
            ][(mo - 1) as usize];
            if d < 1 || d > dim {
                return None;
            }
            let days = days_from_civil(y as i64, mo as i64, d as i64);
            let secs = days * 86_400 + h as i64 * 3600 + mi as i64 * 60 + s as i64 - off;
            Some(secs * 1000 + (nanos / 1_000_000) as i64)
        }
        None => {
            let dt = DateTime::new(y, mo, d, h, mi, s, nanos).ok()?;
            Some(ctx.tz.to_timestamp(dt).ok()?.as_millisecond())
        }
    }
}

fn parse_hms(s: &str) -> Option<(i8, i8, i8, i32)> {
    let b = s.as_bytes();
    // The common case, `HH:MM:SS` with no fraction, read in place.
    if let [h1, h2, b':', m1, m2, b':', s1, s2] = *b {
        let d = |a: u8, c: u8| -> Option<i8> {
            (a.is_ascii_digit() && c.is_ascii_digit()).then(|| ((a - b'0') * 10 + (c - b'0')) as i8)
        };
        return Some((d(h1, h2)?, d(m1, m2)?, d(s1, s2)?, 0));
    }
    let (hms, frac) = match b.iter().position(|&c| c == b'.') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    // HH:MM:SS, each field one or two digits.
    let b = hms.as_bytes();
    let two = |x: &[u8]| -> Option<i8> {
        match x {
            [a] if a.is_ascii_digit() => Some((a - b'0') as i8),
            [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => {
                Some(((a - b'0') * 10 + (c - b'0')) as i8)
            }
            _ => None,
        }
    };
    let c1 = b.iter().position(|&c| c == b':')?;
    let c2 = c1 + 1 + b[c1 + 1..].iter().position(|&c| c == b':')?;
    if b[c2 + 1..].contains(&b':') {
        return None;
    }
    let (h, m, sec) = (two(&b[..c1])?, two(&b[c1 + 1..c2])?, two(&b[c2 + 1..])?);
    let nanos = match frac {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => {
            let n: i32 = f.parse().ok()?;
            n * 10i32.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
        None => 0,
    };
    Some((h, m, sec, nanos))
}

/// An RFC 3339 / ISO 8601 timestamp with an offset, also accepting offsets without a colon
/// (`+0200`, as Suricata writes them). Milliseconds since the epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t.as_millisecond());
    }
    let b = s.as_bytes();
    if b.len() > 5
        && matches!(b[b.len() - 5], b'+' | b'-')
        && b[b.len() - 4..].iter().all(u8::is_ascii_digit)
    {
        let fixed = format!("{}:{}", &s[..s.len() - 2], &s[s.len() - 2..]);
        return fixed.parse::<Timestamp>().ok().map(|t| t.as_millisecond());
    }
    None
}

/// A civil date and time (`2024-10-14`, `13:46:40`) in a zone, as milliseconds.
pub fn civil_ms(date: &str, time: &str, tz: &TimeZone) -> Option<i64> {
    let date = date.replace('/', "-");
    let mut d = date.split('-');
    let y: i16 = d.next()?.parse().ok()?;
    let mo: i8 = d.next()?.parse().ok()?;
    let da: i8 = d.next()?.parse().ok()?;
    let (h, m, sec, nanos) = parse_hms(time)?;
    let dt = DateTime::new(y, mo, da, h, m, sec, nanos).ok()?;
    Some(tz.to_timestamp(dt).ok()?.as_millisecond())
}

/// A fixed offset written `+0200`, `-07:00` or `Z`.
pub fn parse_offset(s: &str) -> Option<TimeZone> {
    if s == "Z" || s.eq_ignore_ascii_case("utc") {
        return Some(TimeZone::UTC);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = digits[2..].parse().ok()?;
    Some(TimeZone::fixed(
        Offset::from_seconds(sign * (h * 3600 + m * 60)).ok()?,
    ))
}

/// `TAG:` or `TAG[pid]:` at the start of `s`, returning the tag without pid and the message.
fn split_tag(s: &str) -> Option<(&str, &str)> {
    let (tok, rest) = next_token(s)?;
    Some((as_tag(tok)?, rest))
}

/// A header token as a tag: `app:` or `app[pid]:`, the name at most 48 bytes.
fn as_tag(tok: &str) -> Option<&str> {
    let tag = tok.strip_suffix(':')?;
    let tag = match tag.bytes().position(|c| c == b'[') {
        Some(i) if tag.ends_with(']') => &tag[..i],
        Some(_) => return None,
        None => tag,
    };
    (!tag.is_empty() && tag.len() <= 48).then_some(tag)
}

/// After a 3164 timestamp: `HOST TAG: msg`, `TAG: msg` (no host) or `HOST msg`.
fn split_host_tag(s: &str) -> (Option<&str>, Option<&str>, &str) {
    let Some((first, rest)) = next_token(s) else {
        return (None, None, s);
    };
    if let Some(tag) = as_tag(first) {
        // The first token is a tag: this device wrote no host name (`Jun 8 … kernel: …`).
        // Unless the token after it is also a tag, e.g. `fw1: kernel: …` — rare; keep it simple.
        return (None, Some(tag), rest);
    }
    match split_tag(rest) {
        Some((tag, msg)) => (Some(first), Some(tag), msg),
        None => (Some(first), None, rest),
    }
}

/// Finds a Common Log Format time (`20/Jun/2022:13:09:14 +0200`) as a whole token in `s`,
/// as Proxmox VE's firewall writes it. Returns the time and the byte range it occupied.
pub fn find_clf_time(s: &str) -> Option<(i64, std::ops::Range<usize>)> {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'/', &b[from..]).map(|i| i + from) {
        from = i + 1;
        if i < 2 || b.len() < i + 24 {
            continue;
        }
        let start = i - 2;
        if start > 0 && b[start - 1] != b' ' {
            continue;
        }
        let Some(tok) = s.get(start..start + 26) else {
            continue;
        };
        if let Some(t) = parse_clf(tok) {
            return Some((t, start..start + 26));
        }
    }
    None
}

fn parse_clf(tok: &str) -> Option<i64> {
    // dd/Mon/yyyy:HH:MM:SS +zzzz
    if tok.len() != 26 || !tok.is_char_boundary(3) || !tok.is_char_boundary(20) {
        return None;
    }
    let day: i8 = tok.get(0..2)?.parse().ok()?;
    let mon = month(tok.get(3..6)?)?;
    let year: i16 = tok.get(7..11)?.parse().ok()?;
    let (h, m, sec, _) = parse_hms(tok.get(12..20)?)?;
    let off = tok.get(21..26)?;
    let sign = match off.as_bytes()[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let oh: i32 = off.get(1..3)?.parse().ok()?;
    let om: i32 = off.get(3..5)?.parse().ok()?;
    let offset = Offset::from_seconds(sign * (oh * 3600 + om * 60)).ok()?;
    let dt = DateTime::new(year, mon, day, h, m, sec, 0).ok()?;
    Some(offset.to_timestamp(dt).ok()?.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TimeContext {
        // 2022-09-30T00:00:00Z
        TimeContext::utc(1_664_496_000_000)
    }

    proptest::proptest! {
        #[test]
        fn the_pri_reader_agrees_with_the_u8_reader(body in "[<>+0-9a ]{0,7}") {
            let line = format!("<{body}");
            let reference = line.strip_prefix('<').and_then(|after| {
                let end = after.bytes().take(4).position(|c| c == b'>')?;
                let p = after[..end].parse::<u8>().ok().filter(|p| *p <= 191)?;
                Some((p, &after[end + 1..]))
            });
            proptest::prop_assert_eq!(pri(&line), reference);
        }

        #[test]
        fn the_month_reader_is_case_blind_and_exact(m in "[a-zA-Z\\x00-\\x7f\u{e9}]{0,4}") {
            let reference = MONTHS.iter().position(|x| x.eq_ignore_ascii_case(&m)).map(|i| i as i8 + 1);
            proptest::prop_assert_eq!(month(&m), reference);
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fixed_width_time_reader_agrees_with_the_general_one(
            s in "(Jan|Feb|nov|Dec|Xyz|Nov) ( [0-9]|[0-9]{2}|[0-9]|x[0-9]) ([0-9]{4} |[0-9]{3} )?[0-9]{1,2}:[0-9]{2}:[0-9]{2}(:|\\.[0-9]{1,3}|x)?( [a-z: ]{0,6})?",
            now in 1_600_000_000_000i64..1_800_000_000_000,
        ) {
            let ctx = TimeContext::utc(now);
            if let Some(fast) = fixed_3164_time(&s, &ctx) {
                proptest::prop_assert_eq!(fast, general_3164_time(&s, &ctx), "{:?}", s);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fixed_width_rfc3339_reader_agrees_with_jiff(
            s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?(Z|z|[+-][0-9]{2}:[0-9]{2}|[+-][0-9]{4}|)",
        ) {
            if let Some(fast) = fixed_rfc3339(&s) {
                let jiff = s.parse::<Timestamp>().ok().map(|t| t.as_millisecond());
                proptest::prop_assert_eq!(fast, jiff, "{:?}", s);
            }
        }

        #[test]
        fn the_fixed_width_rfc3339_reader_agrees_with_jiff_on_plausible_times(
            y in 1970i64..2100, mo in 1i64..13, d in 1i64..32, h in 0i64..24, mi in 0i64..60,
            sec in 0i64..61, frac in "(\\.[0-9]{1,9})?", off in "(Z|[+-](0[0-9]|1[0-4]):(00|30|45))",
        ) {
            let s = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{sec:02}{frac}{off}");
            let jiff = s.parse::<Timestamp>().ok().map(|t| t.as_millisecond());
            match fixed_rfc3339(&s) {
                Some(fast) => proptest::prop_assert_eq!(fast, jiff, "{:?}", s),
                None => proptest::prop_assert!(sec == 60 || jiff.is_none_or(|t| t < 0), "{:?} fell through", s),
            }
        }
    }

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn every_spelling_of_every_month_is_read() {
        for (i, m) in MONTHS.iter().enumerate() {
            for mask in 0..8u32 {
                let spelled: String = m
                    .chars()
                    .enumerate()
                    .map(|(k, c)| {
                        if mask >> k & 1 == 1 {
                            c.to_ascii_uppercase()
                        } else {
                            c.to_ascii_lowercase()
                        }
                    })
                    .collect();
                assert_eq!(month(&spelled), Some(i as i8 + 1), "{spelled}");
            }
        }
        for bad in ["Ja", "Janu", "J@n", "Jan ", "\u{e9}an", "Jbn", "Mai"] {
            assert_eq!(month(bad), None, "{bad}");
        }
    }

    #[test]
    fn bsd_with_host_and_tag() {
        let e = parse_envelope("Sep 28 10:38:09 pfSense filterlog: 53,,,x", &ctx());
        assert_eq!(e.hostname, Some("pfSense"));
        assert_eq!(e.app, Some("filterlog"));
        assert_eq!(e.msg, "53,,,x");
        assert_eq!(e.time_ms, Some(ms("2022-09-28T10:38:09Z")));
    }

    #[test]
    fn bsd_padded_day_and_pri() {
        let e = parse_envelope("<4>Jun  8 14:34:33 sd-126005 kernel: [1.0] IN=a", &ctx());
        assert_eq!(e.pri, Some(4));
        assert_eq!(e.hostname, Some("sd-126005"));
        assert_eq!(e.app, Some("kernel"));
        assert_eq!(e.msg, "[1.0] IN=a");
        assert_eq!(e.time_ms, Some(ms("2022-06-08T14:34:33Z")));
    }

    #[test]
    fn bsd_without_host() {
        let e = parse_envelope("Jun  8 14:34:33 kernel: DENY: IN=a", &ctx());
        assert_eq!(e.hostname, None);
        assert_eq!(e.app, Some("kernel"));
        assert_eq!(e.msg, "DENY: IN=a");
    }

    #[test]
    fn year_rolls_back_for_december_lines_in_january() {
        let jan = TimeContext::utc(ms("2023-01-02T00:00:00Z"));
        let e = parse_envelope("Dec 31 23:59:59 h k: x", &jan);
        assert_eq!(e.time_ms, Some(ms("2022-12-31T23:59:59Z")));
    }

    #[test]
    fn zone_is_applied_to_bsd_time() {
        let tz = TimeZone::fixed(Offset::from_hours(2).unwrap());
        let c = TimeContext::new(ms("2022-09-30T00:00:00Z"), tz);
        let e = parse_envelope("Sep 28 10:38:09 h k: x", &c);
        assert_eq!(e.time_ms, Some(ms("2022-09-28T08:38:09Z")));
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let line = r#"<134>1 2022-09-06T18:37:34+02:00 opnsense filterlog 69805 - [meta sequenceId="2633353" x="a\]b"] 10,,,x"#;
        let e = parse_envelope(line, &ctx());
        assert_eq!(e.pri, Some(134));
        assert_eq!(e.hostname, Some("opnsense"));
        assert_eq!(e.app, Some("filterlog"));
        assert_eq!(e.msg, "10,,,x");
        assert_eq!(e.time_ms, Some(ms("2022-09-06T16:37:34Z")));
    }

    #[test]
    fn rfc5424_nil_sd() {
        let e = parse_envelope(
            "<134>1 2025-11-06T11:32:42.868451+00:00 firewall.lan filterlog 92653 - - 7,,,1",
            &ctx(),
        );
        assert_eq!(e.msg, "7,,,1");
        assert_eq!(e.time_ms, Some(ms("2025-11-06T11:32:42.868Z")));
    }

    #[test]
    fn unterminated_structured_data_falls_back() {
        let e = parse_envelope("<1>1 - h a - - [x=\"", &ctx());
        assert!(e.time_ms.is_none());
    }

    #[test]
    fn fixed_offset_arithmetic_agrees_with_jiff() {
        // Every day of a leap and a common year, at a few times, in UTC and at +05:30.
        for tz in [
            TimeZone::UTC,
            TimeZone::fixed(Offset::from_seconds(5 * 3600 + 1800).unwrap()),
        ] {
            let ctx = TimeContext::new(0, tz.clone());
            assert!(ctx.fixed_offset.is_some());
            for y in [2023i16, 2024, 1999, 2100] {
                for mo in 1..=12i8 {
                    for d in [1i8, 15, 28, 29, 30, 31] {
                        let jiff = DateTime::new(y, mo, d, 23, 59, 58, 250_000_000)
                            .ok()
                            .and_then(|dt| tz.to_timestamp(dt).ok())
                            .map(|t| t.as_millisecond());
                        assert_eq!(
                            civil_to_ms(&ctx, y, mo, d, 23, 59, 58, 250_000_000),
                            jiff,
                            "{y}-{mo}-{d}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn clf_time() {
        let s = "0 3 PVEFW-HOST-IN 20/Jun/2022:13:09:14 +0200 policy DROP: IN=x";
        let (t, r) = find_clf_time(s).unwrap();
        assert_eq!(t, ms("2022-06-20T11:09:14Z"));
        assert_eq!(&s[r], "20/Jun/2022:13:09:14 +0200");
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "",
            "<",
            "<999>",
            "<1>",
            "Jan",
            "Jan 99 1:2:3 x",
            "\u{feff}",
            "<1>1 ",
            "99/Xyz/",
        ] {
            let _ = parse_envelope(s, &ctx());
            let _ = find_clf_time(s);
        }
    }
}
