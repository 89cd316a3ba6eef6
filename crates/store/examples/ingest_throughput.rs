//! Sustained ingest into the embedded store (SQLite, WAL), one writer: batches of firewall
//! events as collectors send them (varied sources, ports and actions), with the rollups the
//! reports use, no alerts. Prints events/s per round, the median, and bytes on disk per event.
//!
//! `cargo run --release -p watchhouse-store --example ingest_throughput [EVENTS] [BATCH]`

use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use watchhouse_event::{Action, Direction, Event, Format, IpProto};
use watchhouse_proto::Batch;

fn event(i: u64, t: i64) -> Event {
    let src = IpAddr::V4(Ipv4Addr::from(
        0x2d21_0000u32 + (i.wrapping_mul(2_654_435_761) % 60_000) as u32,
    ));
    Event {
        time_ms: t,
        last_ms: t,
        action: if i % 10 == 0 { Action::Allow } else { Action::Deny },
        protocol: IpProto::TCP,
        src_ip: src,
        src_port: Some(1024 + (i % 60_000) as u16),
        dst_ip: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)),
        dst_port: Some([22, 23, 80, 443, 445, 3389, 8080, 5060][(i % 8) as usize]),
        direction: Direction::Inbound,
        in_iface: Some("eth0".into()),
        out_iface: None,
        rule: None,
        device: Some("fw".into()),
        format: Format::Netfilter,
        bytes: Some(44),
        packets: Some(1),
        count: 1,
        raw: format!("Nov 21 06:00:00 fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC={src} DST=198.51.100.10 LEN=44 PROTO=TCP SPT={} DPT=22 ID={i}", 1024 + i % 60_000),
        nat: None,
        product: None,
        host: None,
        url: None,
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let total: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let per_batch: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("bench.db");
    let store = watchhouse_store::open(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let f = store.create_force("F", "R").await.unwrap();
    let m = store
        .create_member(f.id, "M", &["198.51.100.0/24".into()], false)
        .await
        .unwrap();
    let now = 1_763_700_000_000i64;
    store
        .create_enrolment_token(m.id, "t", now, now + 86_400_000)
        .await
        .unwrap();
    let col = store
        .redeem_enrolment_token("t", "fw", "c", now)
        .await
        .unwrap()
        .unwrap();
    let mut rates = Vec::new();
    let mut i = 0u64;
    let started = Instant::now();
    while i < total {
        let events: Vec<Event> = (i..i + per_batch)
            .map(|k| event(k, now + k as i64))
            .collect();
        let batch = Batch {
            version: watchhouse_proto::WIRE_VERSION,
            batch_id: uuid::Uuid::new_v4(),
            collector_version: "bench".into(),
            sealed_at_ms: now,
            events: events.clone(),
            stats: None,
        };
        let t = Instant::now();
        store
            .ingest(&col, &batch, &events, &[], 86_400_000, now)
            .await
            .unwrap();
        rates.push(per_batch as f64 / t.elapsed().as_secs_f64());
        i += per_batch;
    }
    let secs = started.elapsed().as_secs_f64();
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let size: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("events: {total} in batches of {per_batch}, {secs:.1} s");
    println!(
        "events/s per batch: min {:.0}, median {:.0}, max {:.0}; overall {:.0}",
        rates[0],
        rates[rates.len() / 2],
        rates[rates.len() - 1],
        total as f64 / secs
    );
    println!(
        "bytes on disk per event (database + WAL): {:.0}",
        size as f64 / total as f64
    );
}
