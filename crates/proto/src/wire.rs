//! A batch's events written as wire JSON directly: byte for byte what `serde_json` writes for
//! the event's derived `Serialize`, only faster.
//!
//! A collector encodes every event it ships, and most of an event's bytes are its original line.
//! `serde_json` escapes a string one byte at a time; here eight bytes are checked at once and
//! runs that need no escaping are copied whole. The property tests here and on
//! [`Batch::to_wire_json`](crate::Batch::to_wire_json) hold the output equal to
//! `serde_json::to_vec` for arbitrary events and batches, including every control character,
//! quotes, backslashes and non-ASCII text.

use std::net::IpAddr;
use std::sync::LazyLock;

use watchhouse_event::{Action, Direction, Event, Format, Nat};

/// `s` as a JSON string, escaped exactly as `serde_json` escapes it: `"` and `\` with a
/// backslash, the control characters U+0000–U+001F as `\b \t \n \f \r` or `\u00xx` (lower-case
/// hex), everything else (DEL and non-ASCII included) as it is.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Some byte of `w` may need escaping (false positives only; never a miss).
    let dirty = |w: u64| {
        let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        let q = w ^ (ONES * u64::from(b'"'));
        let bs = w ^ (ONES * u64::from(b'\\'));
        let quote = q.wrapping_sub(ONES) & !q & HIGHS;
        let backslash = bs.wrapping_sub(ONES) & !bs & HIGHS;
        below_space | quote | backslash != 0
    };
    let b = s.as_bytes();
    out.reserve(b.len() + 2);
    out.push(b'"');
    let (mut run, mut i) = (0, 0);
    while i < b.len() {
        if let Some(chunk) = b.get(i..i + 8) {
            let w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
            if !dirty(w) {
                i += 8;
                continue;
            }
        }
        let c = b[i];
        let short = match c {
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            0x08 => Some(b'b'),
            0x09 => Some(b't'),
            0x0a => Some(b'n'),
            0x0c => Some(b'f'),
            0x0d => Some(b'r'),
            _ => None,
        };
        if short.is_some() || c < 0x20 {
            out.extend_from_slice(&b[run..i]);
            match short {
                Some(e) => out.extend_from_slice(&[b'\\', e]),
                None => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.extend_from_slice(&[HEX[(c >> 4) as usize], HEX[(c & 0xf) as usize]]);
                }
            }
            run = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&b[run..]);
    out.push(b'"');
}

pub(crate) fn write_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn write_ip(out: &mut Vec<u8>, ip: &IpAddr) {
    out.push(b'"');
    match ip {
        IpAddr::V4(a) => {
            let [p, q, r, s] = a.octets();
            write_int(out, p);
            out.push(b'.');
            write_int(out, q);
            out.push(b'.');
            write_int(out, r);
            out.push(b'.');
            write_int(out, s);
        }
        IpAddr::V6(a) => {
            use std::io::Write;
            let _ = write!(out, "{a}");
        }
    }
    out.push(b'"');
}

/// The JSON string `serde_json` writes for each variant of a unit enum, computed once from the
/// derived `Serialize`, so a renamed variant can never drift from it.
fn names<T: serde::Serialize>(all: &[T]) -> Vec<Vec<u8>> {
    all.iter()
        .map(|v| serde_json::to_vec(v).unwrap_or_default())
        .collect()
}
const ACTION_ALL: [Action; 4] = [Action::Allow, Action::Deny, Action::Drop, Action::Reject];
const DIRECTION_ALL: [Direction; 4] = [
    Direction::Inbound,
    Direction::Outbound,
    Direction::Internal,
    Direction::Unknown,
];
static ACTIONS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| names(&ACTION_ALL));
static DIRECTIONS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| names(&DIRECTION_ALL));
static FORMATS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| names(Format::ALL));

/// Writes `v`'s JSON string: its place in `all` picks it from `names`, which [`names`] computed
/// over the same `all`. A variant missing from `all` (one added to the enum later) is written by
/// serde_json itself, so the output stays exact.
fn write_name<T: PartialEq + serde::Serialize>(
    out: &mut Vec<u8>,
    all: &[T],
    names: &[Vec<u8>],
    v: &T,
) {
    match all.iter().position(|x| x == v).and_then(|i| names.get(i)) {
        Some(n) => out.extend_from_slice(n),
        None => {
            if serde_json::to_writer(&mut *out, v).is_err() {
                out.extend_from_slice(b"null");
            }
        }
    }
}

/// Writes `,"key":` (or `{"key":` for the first field).
fn key(out: &mut Vec<u8>, first: &mut bool, k: &str) {
    out.push(if std::mem::take(first) { b'{' } else { b',' });
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

fn write_nat(out: &mut Vec<u8>, n: &Nat) {
    let mut first = true;
    for (ip, port, ip_key, port_key) in [
        (&n.src_ip, n.src_port, "src_ip", "src_port"),
        (&n.dst_ip, n.dst_port, "dst_ip", "dst_port"),
    ] {
        if let Some(ip) = ip {
            key(out, &mut first, ip_key);
            write_ip(out, ip);
        }
        if let Some(p) = port {
            key(out, &mut first, port_key);
            write_int(out, p);
        }
    }
    if first {
        out.push(b'{');
    }
    out.push(b'}');
}

/// `,"key":"value"` for each optional text that is present (serde's `skip_serializing_if`).
fn write_texts(out: &mut Vec<u8>, fields: &[(&[u8], &Option<String>)]) {
    for (k, v) in fields {
        if let Some(v) = v {
            out.extend_from_slice(k);
            write_str(out, v);
        }
    }
}

/// Appends `e`'s wire JSON to `out`: the same bytes as `serde_json::to_vec(e)`. Every key is
/// written with its punctuation as one constant (`time_ms`, always present, opens the object,
/// so every later key starts with a comma).
pub fn write_event(out: &mut Vec<u8>, e: &Event) {
    out.extend_from_slice(b"{\"time_ms\":");
    write_int(out, e.time_ms);
    out.extend_from_slice(b",\"last_ms\":");
    write_int(out, e.last_ms);
    out.extend_from_slice(b",\"action\":");
    write_name(out, &ACTION_ALL, &ACTIONS, &e.action);
    out.extend_from_slice(b",\"protocol\":");
    write_int(out, e.protocol.0);
    out.extend_from_slice(b",\"src_ip\":");
    write_ip(out, &e.src_ip);
    if let Some(p) = e.src_port {
        out.extend_from_slice(b",\"src_port\":");
        write_int(out, p);
    }
    out.extend_from_slice(b",\"dst_ip\":");
    write_ip(out, &e.dst_ip);
    if let Some(p) = e.dst_port {
        out.extend_from_slice(b",\"dst_port\":");
        write_int(out, p);
    }
    out.extend_from_slice(b",\"direction\":");
    write_name(out, &DIRECTION_ALL, &DIRECTIONS, &e.direction);
    write_texts(
        out,
        &[
            (b",\"in_iface\":", &e.in_iface),
            (b",\"out_iface\":", &e.out_iface),
            (b",\"rule\":", &e.rule),
            (b",\"device\":", &e.device),
        ],
    );
    out.extend_from_slice(b",\"format\":");
    write_name(out, Format::ALL, &FORMATS, &e.format);
    if let Some(n) = e.bytes {
        out.extend_from_slice(b",\"bytes\":");
        write_int(out, n);
    }
    if let Some(n) = e.packets {
        out.extend_from_slice(b",\"packets\":");
        write_int(out, n);
    }
    out.extend_from_slice(b",\"count\":");
    write_int(out, e.count);
    if let Some(n) = &e.nat {
        out.extend_from_slice(b",\"nat\":");
        write_nat(out, n);
    }
    write_texts(
        out,
        &[
            (b",\"product\":", &e.product),
            (b",\"host\":", &e.host),
            (b",\"url\":", &e.url),
        ],
    );
    out.extend_from_slice(b",\"raw\":");
    write_str(out, &e.raw);
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use watchhouse_event::IpProto;

    fn text() -> impl Strategy<Value = String> {
        // Every escape class, runs longer than eight bytes, and non-ASCII.
        proptest::collection::vec(
            prop_oneof![
                4 => "[a-zA-Z0-9 =.:/-]{0,12}",
                1 => "[\"\\\\]",
                1 => "[\u{0}-\u{1f}\u{7f}]",
                1 => "[é€😀\u{80}-\u{ff}]",
            ],
            0..12,
        )
        .prop_map(|parts| parts.concat())
    }

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u16; 8]>().prop_map(IpAddr::from),
            (any::<u16>(), any::<u16>())
                .prop_map(|(a, b)| IpAddr::from([0, 0, 0, 0, 0, 0xffff, a, b])),
        ]
    }

    prop_compose! {
        fn nat()(src_ip in proptest::option::of(ip()), src_port in any::<Option<u16>>(),
                 dst_ip in proptest::option::of(ip()), dst_port in any::<Option<u16>>()) -> Nat {
            Nat { src_ip, src_port, dst_ip, dst_port }
        }
    }

    prop_compose! {
        fn event()(
            (time_ms, last_ms) in (any::<i64>(), any::<i64>()),
            action in 0usize..4, direction in 0usize..4, format in 0..Format::ALL.len(),
            protocol in any::<u8>(),
            (src_ip, dst_ip) in (ip(), ip()),
            (src_port, dst_port) in (any::<Option<u16>>(), any::<Option<u16>>()),
            in_iface in proptest::option::of(text()), out_iface in proptest::option::of(text()),
            rule in proptest::option::of(text()), device in proptest::option::of(text()),
            (bytes, packets, count) in (any::<Option<u64>>(), any::<Option<u64>>(), any::<u32>()),
            nat in proptest::option::of(nat()),
            product in proptest::option::of(text()), host in proptest::option::of(text()),
            url in proptest::option::of(text()), raw in text(),
        ) -> Event {
            Event {
                time_ms, last_ms,
                action: ACTION_ALL[action],
                protocol: IpProto(protocol), src_ip, src_port, dst_ip, dst_port,
                direction: DIRECTION_ALL[direction],
                in_iface, out_iface, rule, device, format: Format::ALL[format],
                bytes, packets, count, nat, product, host, url, raw,
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn wire_json_is_what_serde_json_writes(e in event()) {
            let mut ours = Vec::new();
            write_event(&mut ours, &e);
            prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(&e).unwrap());
        }

        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(s in text(), t in any::<String>()) {
            for s in [&s, &t] {
                let mut ours = Vec::new();
                write_str(&mut ours, s);
                prop_assert_eq!(String::from_utf8(ours).unwrap(), serde_json::to_string(s).unwrap());
            }
        }
    }

    #[test]
    fn a_variant_missing_from_the_list_is_still_written_exactly() {
        let mut out = Vec::new();
        write_name(&mut out, &ACTION_ALL[..2], &ACTIONS[..2], &Action::Reject);
        assert_eq!(out, b"\"reject\"");
    }

    #[test]
    fn every_byte_below_0x80_is_escaped_as_serde_json_escapes_it() {
        for c in 0u8..0x80 {
            // At every offset within an eight-byte chunk, and after it.
            for pad in 0..10 {
                let s = format!("{}{}{}", "x".repeat(pad), c as char, "y".repeat(9));
                let mut ours = Vec::new();
                write_str(&mut ours, &s);
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    serde_json::to_string(&s).unwrap(),
                    "byte {c:#x} at {pad}"
                );
            }
        }
    }
}
