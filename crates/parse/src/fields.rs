//! Small tokenizers shared by the vendor parsers: `key=value` pairs with quoted values, CSV with
//! quoted fields, and strict readers for addresses, ports and protocol names.
//!
//! The readers return `Reason::Malformed` codes so a parser can use `?` and never substitute a
//! guess for a field it could not read.

use std::net::IpAddr;

use watchhouse_event::IpProto;

use crate::Reason;

/// Iterates `key=value` pairs separated by whitespace. A value may be double-quoted (the quotes
/// are removed; `\"` inside is kept as written). Tokens without `=` are skipped.
pub fn pairs(s: &str) -> Pairs<'_> {
    Pairs { s, i: 0 }
}

/// See [`pairs`].
pub struct Pairs<'a> {
    s: &'a str,
    /// Byte offset of the next unread byte.
    i: usize,
}

/// Position of the first byte of `set` in `b` at or after `i`, or `b.len()`. Log tokens run
/// to tens of bytes, so eight bytes are tested at a time: a word XORed with a repeated set byte
/// has a zero byte where they match, and the lowest such byte the test reports is exact (its
/// false positives only ever lie above a true match).
#[inline]
pub(crate) fn find_any<const N: usize>(b: &[u8], mut i: usize, set: [u8; N]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let mut hits = 0;
        for c in set {
            let x = w ^ (ONES * u64::from(c));
            hits |= x.wrapping_sub(ONES) & !x & HIGHS;
        }
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !set.contains(&b[i]) {
        i += 1;
    }
    i.min(b.len())
}

/// Position of the first blank (space or tab) or byte of `set` in `b` at or after `i`, or
/// `b.len()`. As [`find_any`], with the two blanks found by one test (bytes below `!`, the
/// lowest of which the test reports exactly) instead of one each; a control byte it stops at
/// that is not a blank is stepped over.
#[inline]
pub(crate) fn find_blank_or<const N: usize>(b: &[u8], mut i: usize, set: [u8; N]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let is_delim = |c: u8| c == b' ' || c == b'\t' || set.contains(&c);
    loop {
        let Some(chunk) = b.get(i..i + 8) else {
            // Fewer than eight bytes left: one at a time.
            while i < b.len() {
                if is_delim(b[i]) {
                    return i;
                }
                i += 1;
            }
            return b.len();
        };
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let mut hits = w.wrapping_sub(ONES * 0x21) & !w & HIGHS;
        for c in set {
            let x = w ^ (ONES * u64::from(c));
            hits |= x.wrapping_sub(ONES) & !x & HIGHS;
        }
        if hits == 0 {
            i += 8;
            continue;
        }
        i += (hits.trailing_zeros() / 8) as usize;
        if is_delim(b[i]) {
            return i;
        }
        // Another control byte: not a delimiter.
        i += 1;
    }
}

/// Position of the first `needle` in `hay`, as `memchr::memmem::find` gives it: `memchr` for
/// its first byte, then a comparison. For a needle whose first byte is rare in the haystack
/// (netfilter's `SRC=` and the `EF:` of a CEF or LEEF header, in a netfilter line's first
/// hundred bytes) that costs a third of a general substring search, whose setup dominates on
/// so short a haystack.
#[inline]
pub(crate) fn find_short(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((&first, rest)) = needle.split_first() else {
        return Some(0);
    };
    memchr::memchr_iter(first, hay).find(|&at| hay[at + 1..].starts_with(rest))
}

/// Position of the first space or double quote in `b` at or after `i`, or `b.len()`: one test
/// a word (bytes below `#`, which takes in both), the few other such bytes stepped over.
#[inline]
pub(crate) fn find_space_or_quote(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    loop {
        let Some(chunk) = b.get(i..i + 8) else {
            while i < b.len() {
                if b[i] == b' ' || b[i] == b'"' {
                    return i;
                }
                i += 1;
            }
            return b.len();
        };
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        let hits = w.wrapping_sub(ONES * 0x23) & !w & HIGHS;
        if hits == 0 {
            i += 8;
            continue;
        }
        i += (hits.trailing_zeros() / 8) as usize;
        if b[i] == b' ' || b[i] == b'"' {
            return i;
        }
        i += 1;
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    #[inline]
    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let b = self.s.as_bytes();
        let n = b.len();
        let mut i = self.i;
        loop {
            while i < n && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            if i >= n {
                self.i = n;
                return None;
            }
            // The key runs to '=' unless a space comes first.
            let key_start = i;
            i = find_any(b, i, [b'=', b' ', b'\t']);
            if i >= n || b[i] != b'=' {
                // Not a pair: skip the token.
                continue;
            }
            let key = &self.s[key_start..i];
            i += 1;
            if i < n && b[i] == b'"' {
                let start = i + 1;
                let mut j = start;
                // To the closing quote; a backslash escapes the byte after it.
                loop {
                    j = find_any(b, j, [b'"', b'\\']);
                    if j < n && b[j] == b'\\' {
                        j += 2;
                    } else {
                        break;
                    }
                }
                let end = j.min(n);
                self.i = (end + 1).min(n);
                return Some((key, &self.s[start..end]));
            }
            let start = i;
            i = find_any(b, i, [b' ', b'\t']);
            self.i = i;
            return Some((key, &self.s[start..i]));
        }
    }
}

/// What [`pairs`] yields, kept only for the keys `slot` knows: the value of the first pair
/// whose key `slot` maps to `k` lands in `vals[k]`. For the vendor formats with 30–60 pairs a
/// line, of which a parser reads a third: a key is looked up as bytes where it stands and only
/// a wanted value is cut out, so a skipped pair costs its scan and nothing more.
#[inline]
pub(crate) fn pairs_into<'a, const N: usize>(
    s: &'a str,
    slot: impl Fn(&[u8]) -> Option<usize>,
    vals: &mut [Option<&'a str>; N],
) {
    let b = s.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n {
        if b[i] == b' ' || b[i] == b'\t' {
            i += 1;
            continue;
        }
        let key_start = i;
        i = find_blank_or(b, i, [b'=']);
        if i >= n || b[i] != b'=' {
            // Not a pair: the loop steps over the blank that ended it.
            continue;
        }
        let k = slot(&b[key_start..i]);
        i += 1;
        let (start, end, next) = if i < n && b[i] == b'"' {
            // To the closing quote; a backslash escapes the byte after it.
            let mut j = i + 1;
            loop {
                j = find_any(b, j, [b'"', b'\\']);
                if j < n && b[j] == b'\\' {
                    j += 2;
                } else {
                    break;
                }
            }
            let end = j.min(n);
            (i + 1, end, end + 1)
        } else {
            let end = find_blank_or(b, i, []);
            // A value ends at a blank (or the end), which the next pair need not look at.
            (i, end, end + 1)
        };
        if let Some(v) = k.and_then(|k| vals.get_mut(k)) {
            if v.is_none() {
                *v = Some(&s[start..end]);
            }
        }
        i = next;
    }
}

/// Splits one CSV record, honouring double-quoted fields (`""` is an escaped quote, kept as
/// written). At most `max` fields are returned.
pub fn csv(s: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::with_capacity(64.min(max));
    let b = s.as_bytes();
    let mut i = 0;
    while out.len() < max {
        if i < b.len() && b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() {
                if b[j] == b'"' {
                    if b.get(j + 1) == Some(&b'"') {
                        j += 2;
                        continue;
                    }
                    break;
                }
                j += 1;
            }
            out.push(&s[i + 1..j.min(s.len())]);
            i = j + 1;
            if i < b.len() && b[i] == b',' {
                i += 1;
            } else {
                break;
            }
        } else {
            match memchr::memchr(b',', &b[i.min(b.len())..]) {
                Some(k) => {
                    out.push(&s[i..i + k]);
                    i += k + 1;
                }
                None => {
                    out.push(&s[i.min(s.len())..]);
                    break;
                }
            }
        }
    }
    out
}

/// Reads an address exactly as `str::parse::<IpAddr>` would, with a fast path for the common
/// dotted-quad IPv4 form: four groups of one to three digits, none over 255, no leading zero.
/// Anything else (IPv6, or text the fast path refuses) goes to the standard library's parser,
/// so the result is always what `parse` gives (property-tested).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    match dotted_quad(s.as_bytes()) {
        Some(a) => Some(IpAddr::V4(a)),
        None => s.parse().ok(),
    }
}

/// A dotted-quad IPv4 address, exactly as std's parser reads one (no leading zeros, each
/// octet at most 255).
pub(crate) fn dotted_quad(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    if !(7..=15).contains(&b.len()) {
        return None;
    }
    dotted_quad_at(b, 0).and_then(|(ip, end)| (end == b.len()).then_some(ip))
}

/// The dotted quad that starts at `i` (read as [`dotted_quad`] reads one) and where it ends;
/// what follows it is the caller's to check. Octet by octet: the known shape (one to three
/// digits, then a dot) compiles to fewer instructions than a byte loop with state.
// Inlined into both readers: as a call it cost ASA 2% and iptables 1% more instructions a line.
#[inline(always)]
pub(crate) fn dotted_quad_at(b: &[u8], mut i: usize) -> Option<(std::net::Ipv4Addr, usize)> {
    let digit = |i: usize| b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d < 10);
    let mut octets = [0u8; 4];
    for (k, octet) in octets.iter_mut().enumerate() {
        if k > 0 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
        let mut v = u32::from(digit(i)?);
        i += 1;
        if v != 0 {
            // No leading zero: a second and third digit only after a non-zero first.
            for _ in 0..2 {
                match digit(i) {
                    Some(d) => {
                        v = v * 10 + u32::from(d);
                        i += 1;
                    }
                    None => break,
                }
            }
        }
        *octet = u8::try_from(v).ok()?;
    }
    Some((octets.into(), i))
}

/// A decimal `u16` read exactly as `str::parse::<u16>` reads one (an optional `+`, then one or
/// more ASCII digits, leading zeros allowed, at most 65535), without the standard library's
/// radix-generic loop: ports are read twice a line (property-tested against `parse`).
#[inline]
pub(crate) fn dec_u16(s: &str) -> Option<u16> {
    let b = s.as_bytes();
    let b = b.strip_prefix(b"+").unwrap_or(b);
    if b.is_empty() {
        return None;
    }
    let mut v = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + u32::from(d);
        if v > u32::from(u16::MAX) {
            return None;
        }
    }
    Some(v as u16)
}

/// A decimal `u64` read exactly as `str::parse::<u64>` reads one (property-tested).
#[inline]
pub(crate) fn dec_u64(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let b = b.strip_prefix(b"+").unwrap_or(b);
    if b.is_empty() {
        return None;
    }
    let mut v = 0u64;
    for (k, &c) in b.iter().enumerate() {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        // Nineteen digits always fit; past them, every step is checked.
        v = if k < 19 {
            v * 10 + u64::from(d)
        } else {
            v.checked_mul(10)?.checked_add(u64::from(d))?
        };
    }
    Some(v)
}

/// Reads an address; `what` names the field in the reason code.
pub fn ip(v: Option<&str>, missing: &'static str, bad: &'static str) -> Result<IpAddr, Reason> {
    let v = v.ok_or(Reason::Malformed(missing))?;
    // Brackets (`[2001:db8::1]`) are rare: the trim runs only when one is at either end.
    let v = if v.starts_with('[') || v.ends_with(']') {
        v.trim_matches(['[', ']'])
    } else {
        v
    };
    parse_ip(v).ok_or(Reason::Malformed(bad))
}

/// Reads a port.
pub fn port(v: Option<&str>) -> Result<u16, Reason> {
    dec_u16(v.ok_or(Reason::Malformed("missing_port"))?).ok_or(Reason::Malformed("bad_port"))
}

/// Ports for protocols that have them: both must be present and valid. For others, `None`.
pub fn ports(
    proto: IpProto,
    sp: Option<&str>,
    dp: Option<&str>,
) -> Result<(Option<u16>, Option<u16>), Reason> {
    if proto.has_ports() {
        Ok((Some(port(sp)?), Some(port(dp)?)))
    } else {
        Ok((None, None))
    }
}

/// Reads a protocol name or number.
pub fn proto(v: Option<&str>) -> Result<IpProto, Reason> {
    let v = v.ok_or(Reason::Malformed("missing_proto"))?;
    IpProto::parse(v.trim()).ok_or(Reason::Malformed("bad_proto"))
}

/// An optional address that must be valid if present; empty, `0.0.0.0` and `::` mean absent.
pub fn opt_ip(v: Option<&str>) -> Result<Option<IpAddr>, Reason> {
    match v.map(str::trim) {
        None | Some("") | Some("0.0.0.0") | Some("::") | Some("N/A") => Ok(None),
        Some(s) => parse_ip(s.trim_matches(['[', ']']))
            .map(Some)
            .ok_or(Reason::Malformed("bad_nat_address")),
    }
}

/// An optional port that must be valid if present; empty and `0` mean absent.
pub fn opt_port(v: Option<&str>) -> Result<Option<u16>, Reason> {
    match v.map(str::trim) {
        None | Some("") | Some("0") => Ok(None),
        Some(s) => dec_u16(s)
            .map(Some)
            .ok_or(Reason::Malformed("bad_nat_port")),
    }
}

/// The sum of two optional counters (bytes each way, packets each way): `None` only when both
/// are absent.
pub fn sum_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
    }
}

/// Epoch seconds, milliseconds, microseconds or nanoseconds (by magnitude) as milliseconds.
pub fn epoch_ms(v: &str) -> Option<i64> {
    let b = v.as_bytes();
    let dot = b.iter().position(|&c| c == b'.').unwrap_or(b.len());
    let (int, frac) = (&b[..dot], b.get(dot + 1..).unwrap_or(&[]));
    if int.is_empty() || int.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &c in int {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    scale_epoch(i64::try_from(n).ok()?, int.len(), frac)
}

/// An epoch of `digits` integer digits (`n`, with `frac` the bytes after its dot) as
/// milliseconds, by magnitude.
fn scale_epoch(n: i64, digits: usize, frac: &[u8]) -> Option<i64> {
    let ms = match digits {
        0..=11 => {
            // Milliseconds from the first three fraction digits, padded with zeros.
            let mut f = 0i64;
            for k in 0..3 {
                let d = match frac.get(k) {
                    Some(c) if c.is_ascii_digit() => i64::from(c - b'0'),
                    Some(_) => return None,
                    None => 0,
                };
                f = f * 10 + d;
            }
            n.checked_mul(1000)?.checked_add(f)?
        }
        12..=14 => n,
        15..=17 => n / 1000,
        _ => n / 1_000_000,
    };
    Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The first definition of `epoch_ms`'s reading, through `str::split_once` and `str::parse`.
    fn reference_epoch_ms(v: &str) -> Option<i64> {
        let (int, frac) = v.split_once('.').unwrap_or((v, ""));
        if int.is_empty() || !int.bytes().all(|c| c.is_ascii_digit()) || int.len() > 19 {
            return None;
        }
        let n: i64 = int.parse().ok()?;
        scale_epoch(n, int.len(), frac.as_bytes())
    }

    /// The plain definition of `pairs`, re-slicing the text token by token.
    fn reference_pairs(mut s: &str) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        loop {
            s = s.trim_start_matches([' ', '\t']);
            if s.is_empty() {
                return out;
            }
            let i = s.find(['=', ' ', '\t']).unwrap_or(s.len());
            if !s[i..].starts_with('=') {
                s = &s[i..];
                continue;
            }
            let (key, rest) = (&s[..i], &s[i + 1..]);
            if let Some(q) = rest.strip_prefix('"') {
                let qb = q.as_bytes();
                let mut j = 0;
                while j < qb.len() && qb[j] != b'"' {
                    j += if qb[j] == b'\\' { 2 } else { 1 };
                }
                let end = j.min(q.len());
                out.push((key, &q[..end]));
                s = q.get(end + 1..).unwrap_or("");
            } else {
                let end = rest.find([' ', '\t']).unwrap_or(rest.len());
                out.push((key, &rest[..end]));
                s = &rest[end..];
            }
        }
    }

    proptest! {
        #[test]
        fn find_any_agrees_with_a_byte_loop(
            b in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'='), Just(0x20 ^ 0x80), any::<u8>()], 0..40),
            i in 0usize..45,
        ) {
            let expect = b.iter().enumerate().skip(i).find(|(_, c)| **c == b' ' || **c == b'=').map_or(b.len(), |(p, _)| p);
            prop_assert_eq!(find_any(&b, i, [b' ', b'=']), expect);
        }

        #[test]
        fn find_short_agrees_with_memmem(
            hay in proptest::collection::vec(prop_oneof![Just(b'S'), Just(b'R'), Just(b'C'), Just(b'='), Just(b'E'), Just(b'F'), Just(b':'), any::<u8>()], 0..60),
            needle in prop_oneof![Just(b"SRC=".to_vec()), Just(b"EF:".to_vec()), Just(b"S".to_vec()), Just(Vec::new()), proptest::collection::vec(prop_oneof![Just(b'S'), Just(b'R'), Just(b'=')], 0..4)],
        ) {
            prop_assert_eq!(find_short(&hay, &needle), memchr::memmem::find(&hay, &needle));
        }

        #[test]
        fn find_space_or_quote_agrees_with_a_byte_loop(
            b in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'"'), Just(b'!'), 0u8..0x24, Just(0xA2), any::<u8>()], 0..40),
            i in 0usize..45,
        ) {
            let expect = b.iter().enumerate().skip(i).find(|(_, c)| matches!(**c, b' ' | b'"')).map_or(b.len(), |(p, _)| p);
            prop_assert_eq!(find_space_or_quote(&b, i), expect);
        }

        #[test]
        fn find_blank_or_agrees_with_a_byte_loop(
            b in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'\t'), Just(b'='), 0u8..0x22, Just(0xA0), any::<u8>()], 0..40),
            i in 0usize..45,
        ) {
            let expect = b.iter().enumerate().skip(i).find(|(_, c)| matches!(**c, b' ' | b'\t' | b'=')).map_or(b.len(), |(p, _)| p);
            prop_assert_eq!(find_blank_or(&b, i, [b'=']), expect);
            let expect = b.iter().enumerate().skip(i).find(|(_, c)| matches!(**c, b' ' | b'\t')).map_or(b.len(), |(p, _)| p);
            prop_assert_eq!(find_blank_or(&b, i, []), expect);
        }

        #[test]
        fn epoch_ms_agrees_with_its_first_definition(v in "[0-9]{0,21}(\\.[0-9a.]{0,4})?|[0-9+.-]{0,6}|\\PC{0,4}") {
            prop_assert_eq!(epoch_ms(&v), reference_epoch_ms(&v));
        }

        #[test]
        fn the_decimal_readers_agree_with_std(s in "\\+?[0-9]{0,22}|[0-9+ a-]{0,8}|\\PC{0,6}") {
            prop_assert_eq!(dec_u16(&s), s.parse::<u16>().ok());
            prop_assert_eq!(dec_u64(&s), s.parse::<u64>().ok());
        }

        #[test]
        fn the_decimal_readers_read_every_value(a: u16, b: u64, zeros in 0usize..4) {
            let pad = "0".repeat(zeros);
            prop_assert_eq!(dec_u16(&format!("{pad}{a}")), Some(a));
            prop_assert_eq!(dec_u64(&format!("{pad}{b}")), Some(b));
        }

        #[test]
        fn the_dotted_quad_reader_agrees_with_std(s in "([0-9]{1,4}|\\.|[0a:x]){0,9}") {
            prop_assert_eq!(dotted_quad(s.as_bytes()), s.parse::<std::net::Ipv4Addr>().ok());
        }

        #[test]
        fn the_dotted_quad_reader_reads_every_address(a: u8, b: u8, c: u8, d: u8) {
            let ip = std::net::Ipv4Addr::new(a, b, c, d);
            prop_assert_eq!(dotted_quad(ip.to_string().as_bytes()), Some(ip));
        }

        #[test]
        fn pairs_into_keeps_the_first_value_pairs_gives_for_each_wanted_key(
            s in "([a-c]{0,3}|=|\"|\\\\| |\t|é){0,30}"
        ) {
            const WANTED: [&str; 4] = ["a", "bb", "abc", ""];
            let slot = |k: &[u8]| WANTED.iter().position(|w| w.as_bytes() == k);
            let mut vals = [None; 4];
            pairs_into(&s, slot, &mut vals);
            let mut expect = [None; 4];
            for (k, v) in pairs(&s) {
                if let Some(i) = slot(k.as_bytes()) {
                    expect[i].get_or_insert(v);
                }
            }
            prop_assert_eq!(vals, expect);
        }

        #[test]
        fn pairs_agree_with_the_plain_definition(s in "([a-z]{0,3}|=|\"|\\\\| |\t|é){0,30}") {
            prop_assert_eq!(pairs(&s).collect::<Vec<_>>(), reference_pairs(&s));
        }
    }

    #[test]
    fn pairs_with_quotes_and_junk() {
        let v: Vec<_> = pairs(r#"a=1 b="two words" junk c="q\"x" d= e=5"#).collect();
        assert_eq!(
            v,
            vec![
                ("a", "1"),
                ("b", "two words"),
                ("c", r#"q\"x"#),
                ("d", ""),
                ("e", "5")
            ]
        );
        let v: Vec<_> = pairs(r#"x="unterminated"#).collect();
        assert_eq!(v, vec![("x", "unterminated")]);
        assert_eq!(pairs("=== = =").count(), 3);
    }

    #[test]
    fn csv_with_quotes() {
        assert_eq!(
            csv(r#"a,"b,c",,"d""e",f"#, 99),
            vec!["a", "b,c", "", r#"d""e"#, "f"]
        );
        assert_eq!(csv("a,b,c", 2), vec!["a", "b"]);
        assert_eq!(csv("", 5), vec![""]);
        assert_eq!(csv(r#""open"#, 5), vec!["open"]);
    }

    #[test]
    fn epochs_by_magnitude() {
        assert_eq!(epoch_ms("1728938800"), Some(1_728_938_800_000));
        assert_eq!(epoch_ms("1728938800.5"), Some(1_728_938_800_500));
        assert_eq!(epoch_ms("1728938800841"), Some(1_728_938_800_841));
        assert_eq!(epoch_ms("1728938800841267391"), Some(1_728_938_800_841));
        assert_eq!(epoch_ms("abc"), None);
        assert_eq!(epoch_ms("99999999999999999999999"), None);
    }
}
