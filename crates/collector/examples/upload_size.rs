//! How many bytes a collector uploads for a log file, against the file's raw size.
//!
//! Runs the collector's own pure pipeline — parse, edge filter, aggregation, batching as the
//! shipper seals them (5,000 events or 2 s), wire JSON, zstd level 3 as shipped — with event time standing in for
//! the clock. `bench/upload-size.sh` feeds it a generated day of botnet scanning.
//!
//!     cargo run --release -p watchhouse-collector --example upload_size -- FILE [WINDOW_SECS]

use std::io::BufRead;

use watchhouse_collector::aggregate::Aggregator;
use watchhouse_collector::edge::{EdgePolicy, Verdict};
use watchhouse_event::Event;
use watchhouse_parse::{parse_line, TimeContext};
use watchhouse_proto::{Batch, WIRE_VERSION};

fn zstd_len(b: &[u8]) -> usize {
    zstd::bulk::compress(b, 3).unwrap().len()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: upload_size FILE [WINDOW_SECS]");
    let window: i64 = args.next().map(|w| w.parse().unwrap()).unwrap_or(60);
    let file = std::fs::File::open(&path).unwrap();
    let ctx = TimeContext::utc(1_763_769_600_000); // the day after the generated day
    let (policy, _) = EdgePolicy::new(&["198.51.100.0/28".to_string()], false);
    let mut agg = Aggregator::new(window * 1000, 100_000);
    let (mut raw_bytes, mut lines, mut records, mut represented) = (0u64, 0u64, 0u64, 0u64);
    let (mut json_bytes, mut gz_bytes, mut batches) = (0u64, 0u64, 0u64);
    let mut batch: Vec<Event> = Vec::new();
    let mut batch_started: Option<i64> = None;
    let mut seal = |batch: &mut Vec<Event>| {
        if batch.is_empty() {
            return;
        }
        records += batch.len() as u64;
        represented += batch.iter().map(|e| e.count as u64).sum::<u64>();
        let b = Batch {
            version: WIRE_VERSION,
            batch_id: uuid::Uuid::now_v7(),
            collector_version: "bench".into(),
            sealed_at_ms: 0,
            events: std::mem::take(batch),
            stats: None,
        };
        let j = b.to_wire_json();
        json_bytes += j.len() as u64;
        gz_bytes += zstd_len(&j) as u64;
        batches += 1;
    };
    for line in std::io::BufReader::new(file).split(b'\n') {
        let line = line.unwrap();
        raw_bytes += line.len() as u64 + 1;
        lines += 1;
        let Ok(mut e) = parse_line(&line, &ctx, None) else {
            continue;
        };
        let now = e.time_ms;
        if let Verdict::Send(d) = policy.classify(&e) {
            e.direction = d;
            agg.push(e, false, &mut batch);
        }
        agg.flush_due(now, &mut batch);
        let started = *batch_started.get_or_insert(now);
        if batch.len() >= 5000 || now - started >= 2000 {
            seal(&mut batch);
            agg.sealed();
            batch_started = None;
        }
    }
    agg.flush_all(&mut batch);
    seal(&mut batch);
    let mb = |b: u64| b as f64 / 1e6;
    println!("| input | lines | raw MB | records sent | events represented | JSON MB | zstd MB (uploaded) | upload / raw |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {path} (window {window}s) | {lines} | {:.1} | {records} | {represented} | {:.1} | {:.2} | {:.1}% |",
        mb(raw_bytes),
        mb(json_bytes),
        mb(gz_bytes),
        100.0 * gz_bytes as f64 / raw_bytes as f64
    );
    eprintln!("{batches} batches");
    assert_eq!(
        represented, lines,
        "every line must be represented exactly once"
    );
}
