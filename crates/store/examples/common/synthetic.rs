//! The synthetic firewall events both ingest benchmarks use (`ingest_throughput` here and the
//! HTTP load generator `examples/ingest_load.rs`), so their figures are about the same traffic.
//! Not an example of its own: a directory without `main.rs` is not built as one.

use std::net::{IpAddr, Ipv4Addr};

use watchhouse_event::{Action, Direction, Event, Format, IpProto};

/// Event `i` at time `t`: UFW-style, 10% allowed, ten ports, a few busy sources and a long tail.
pub fn event(i: u64, t: i64) -> Event {
    // A skewed source population: a few busy scanners, a long tail.
    let h = i.wrapping_mul(2_654_435_761);
    let pool = if h % 4 == 0 { 200 } else { 100_000 };
    let src = IpAddr::V4(Ipv4Addr::from(0x2d21_0000u32 + ((h >> 8) % pool) as u32));
    let port = [22, 23, 80, 443, 445, 3389, 8080, 5060, 1433, 3306][(h % 10) as usize];
    Event {
        time_ms: t,
        last_ms: t,
        action: if i % 10 == 0 { Action::Allow } else { Action::Deny },
        protocol: IpProto::TCP,
        src_ip: src,
        src_port: Some(1024 + (i % 60_000) as u16),
        dst_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)),
        dst_port: Some(port),
        direction: Direction::Inbound,
        in_iface: Some("eth0".into()),
        out_iface: None,
        rule: None,
        device: Some("fw".into()),
        format: Format::Netfilter,
        bytes: Some(44),
        packets: Some(1),
        count: 1,
        raw: format!("Nov 21 06:00:00 fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC={src} DST=198.51.100.10 LEN=44 PROTO=TCP SPT={} DPT={port} ID={i}", 1024 + i % 60_000),
        nat: None,
        product: None,
        host: None,
        url: None,
    }
}
