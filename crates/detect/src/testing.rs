//! Events and counts for the detections' unit tests.

use watchhouse_event::{Action, Direction, Event, Format, IpProto};

use crate::{AlertKind, Observation};

/// A time in November 2025, ms.
pub const T: i64 = 1_763_700_000_000;

/// An inbound TCP event from `src` to `dst:dport`.
pub fn ev(src: &str, dst: &str, dport: u16, action: Action, t: i64) -> Event {
    Event {
        time_ms: t,
        last_ms: t,
        action,
        protocol: IpProto::TCP,
        src_ip: src.parse().unwrap(),
        src_port: Some(40000),
        dst_ip: dst.parse().unwrap(),
        dst_port: Some(dport),
        direction: Direction::Inbound,
        in_iface: None,
        out_iface: None,
        rule: None,
        device: None,
        format: Format::Netfilter,
        bytes: None,
        packets: None,
        count: 1,
        raw: String::new(),
        nat: None,
        product: None,
        host: None,
        url: None,
    }
}

/// How many observations are of kind `k`.
pub fn kinds(obs: &[Observation], k: AlertKind) -> usize {
    obs.iter().filter(|o| o.kind == k).count()
}
