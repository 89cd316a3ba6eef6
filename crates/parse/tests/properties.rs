//! Property tests: hostile input never panics a parser, framing is independent of how the
//! stream is chunked, and a parser never invents an address or a port.

use proptest::prelude::*;
use watchhouse_parse::framing::{decode_all, Frame, FrameDecoder};
use watchhouse_parse::{parse_line, TimeContext};

const REAL: &[&str] = &[
    "Jun  8 14:34:33 sd-126005 kernel: [50028442.088484] IN=enp1s0 OUT= MAC=00:08:a2:0c:1f:12:00:c8:8b:e2:d6:87:08:00 SRC=195.54.160.107 DST=51.15.166.67 LEN=40 TOS=0x00 PREC=0x00 TTL=245 ID=37308 PROTO=TCP SPT=8080 DPT=8123 WINDOW=1024 RES=0x00 SYN URGP=0",
    "Sep 28 10:38:09 pfSense filterlog: 53,,,1000000301,em0,match,block,in,4,0x0,,64,420,0,none,6,tcp,460,10.0.2.2,10.0.2.15,53742,22,420,PA,29633380:29633800,3617062173,65535,,",
    "<134>1 2022-09-06T19:00:06+02:00 opnsense filterlog 57126 - [meta sequenceId=\"2667099\"] 98,,,881dd59a3e942966c90498ac104715a0,re0,match,pass,in,6,0x00,0x0ea87,51,udp,17,73,2008:8a0:702e:ce00:acc6:c7ee:fa01:2f8a,2c02:2454:ada:d900::1738,6881,51918,73",
    "101 1 tap101i0-IN 20/Jun/2022:13:13:32 +0200 PVEFW-reject: IN=fwbr101i0 OUT=fwbr101i0 PHYSIN=fwln101i0 PHYSOUT=tap101i0 MAC=24:8a:07:50:2c:ef:5e:29:c3:7c:13:a3:86:dd SRC=2a0a:1580::a DST=2a0a:1580::17 LEN=40 TC=0 FLOWLBL=634336 HOPLIMIT=64 PROTO=TCP SPT=59368 DPT=22 SEQ=3146558957 ACK=0 WINDOW=64800 SYN",
];

fn ctx() -> TimeContext {
    TimeContext::utc(1_664_582_400_000)
}

/// Every documented vendor line plus the real ones above.
fn corpus() -> Vec<String> {
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("fixtures/vendors.json")).unwrap();
    REAL.iter()
        .map(|s| s.to_string())
        .chain(
            cases
                .iter()
                .filter_map(|c| c["line"].as_str().map(str::to_owned)),
        )
        .collect()
}

/// Does some run of address characters in `line` parse to exactly `ip`?
fn line_has_ip(line: &str, ip: std::net::IpAddr) -> bool {
    if ip.is_ipv4() {
        return line
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .any(|t| t.parse::<std::net::IpAddr>().ok() == Some(ip));
    }
    line.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        .flat_map(|t| {
            let trimmed = t.trim_matches(':');
            let no_port = t.rsplit_once(':').map(|(a, _)| a).unwrap_or(t);
            let no_prefix = t.split_once(':').map(|(_, b)| b).unwrap_or(t);
            [t, trimmed, no_port, no_prefix]
        })
        .any(|t| t.parse::<std::net::IpAddr>().ok() == Some(ip))
}

fn line_has_number(line: &str, n: u16) -> bool {
    line.split(|c: char| !c.is_ascii_digit())
        .any(|t| t.parse::<u16>().ok() == Some(n))
}

fn mutate(base: &str, edits: &[(usize, u8)]) -> Vec<u8> {
    let mut b = base.as_bytes().to_vec();
    for (pos, byte) in edits {
        if b.is_empty() {
            break;
        }
        let i = pos % b.len();
        match byte % 3 {
            0 => b[i] = *byte,
            1 => {
                b.remove(i);
            }
            _ => b.insert(i, *byte),
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_line(&bytes, &ctx(), None);
        for f in watchhouse_event::Format::ALL {
            let _ = parse_line(&bytes, &ctx(), Some(*f));
        }
    }

    #[test]
    fn mutated_real_lines_never_yield_invented_addresses_or_ports(
        which in any::<usize>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
    ) {
        let lines = corpus();
        let bytes = mutate(&lines[which % lines.len()], &edits);
        if let Ok(e) = parse_line(&bytes, &ctx(), None) {
            let line = String::from_utf8(bytes).unwrap();
            prop_assert!(line_has_ip(&line, e.src_ip), "src {} not in {line}", e.src_ip);
            prop_assert!(line_has_ip(&line, e.dst_ip), "dst {} not in {line}", e.dst_ip);
            if let Some(p) = e.src_port { prop_assert!(line_has_number(&line, p), "sport {p} not in {line}"); }
            if let Some(p) = e.dst_port { prop_assert!(line_has_number(&line, p), "dport {p} not in {line}"); }
            // The line is kept as received, less the terminators a sender may append.
            prop_assert_eq!(e.raw.as_str(), line.trim_end_matches(['\r', '\n', '\0']));
        }
    }

    #[test]
    fn the_address_reader_agrees_with_the_standard_library(
        s in "[0-9.]{0,17}|[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}\\.[0-9]{1,4}|[0-9a-f:.]{0,40}|[ -~]{0,20}",
    ) {
        prop_assert_eq!(watchhouse_parse::fields::parse_ip(&s), s.parse::<std::net::IpAddr>().ok(), "{:?}", s);
    }

    #[test]
    fn framing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000), max in 1usize..200) {
        let frames = decode_all(&bytes, max);
        for m in frames.into_iter().flatten() {
            prop_assert!(m.len() <= max);
        }
    }

    #[test]
    fn framing_is_independent_of_chunking(
        msgs in proptest::collection::vec(("<[0-9]{1,3}>[ -~]{0,80}", any::<bool>()), 1..20),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut stream = Vec::new();
        for (m, counted) in &msgs {
            if *counted {
                stream.extend(format!("{} {m}", m.len()).as_bytes());
            } else {
                stream.extend(format!("{m}\n").as_bytes());
            }
        }
        let whole: Vec<Vec<u8>> = decode_all(&stream, 1024).into_iter().map(|r| r.unwrap()).collect();
        // The messages come back in order (trailing spaces aside, which LF framing keeps).
        let expect: Vec<Vec<u8>> = msgs.iter().map(|(m, _)| m.as_bytes().to_vec()).collect();
        prop_assert_eq!(&whole, &expect);

        // Feed the same stream in arbitrary pieces.
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
        points.push(stream.len());
        points.sort_unstable();
        let mut dec = FrameDecoder::new(1024);
        let mut buf: Vec<u8> = Vec::new();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut from = 0;
        for p in points {
            buf.extend_from_slice(&stream[from..p]);
            from = p;
            let mut pos = 0;
            loop {
                let d = dec.decode(&buf[pos..]);
                pos += d.consumed;
                match d.frame {
                    Some(Frame::Message(m)) => got.push(m.to_vec()),
                    Some(other) => prop_assert!(false, "unexpected {other:?}"),
                    None if d.consumed == 0 => break,
                    None => {}
                }
            }
            buf.drain(..pos);
        }
        if let Some(Frame::Message(m)) = dec.finish(&buf) {
            got.push(m.to_vec());
        }
        prop_assert_eq!(got, expect);
    }
}
