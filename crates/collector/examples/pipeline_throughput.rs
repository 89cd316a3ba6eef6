//! End-to-end collector throughput on one core: file lines → parse → edge filter → aggregate →
//! batch (wire JSON, gzip) → durable spool (fsync per batch). Shipping is not included.
//!
//!     cargo run --release -p watchhouse-collector --example pipeline_throughput -- FILE

use std::io::{BufRead, Write};
use std::time::Instant;

use watchhouse_collector::aggregate::Aggregator;
use watchhouse_collector::edge::{EdgePolicy, Verdict};
use watchhouse_collector::spool::Spool;
use watchhouse_event::Event;
use watchhouse_parse::{parse_line, TimeContext};
use watchhouse_proto::{Batch, WIRE_VERSION};

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: pipeline_throughput FILE");
    let level: u32 = std::env::args()
        .nth(2)
        .map(|l| l.parse().unwrap())
        .unwrap_or(6);
    let codec = std::env::args().nth(3).unwrap_or_else(|| "gzip".into());
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
    let ctx = TimeContext::utc(1_763_769_600_000);
    let (policy, _) = EdgePolicy::new(&["198.51.100.0/28".to_string()], false);
    let mut agg = Aggregator::new(60_000, 100_000);
    let mut batch: Vec<Event> = Vec::new();
    let (mut lines, mut spooled_bytes, mut batches) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    let mut seal = |batch: &mut Vec<Event>, spool: &mut Spool| {
        let b = Batch {
            version: WIRE_VERSION,
            batch_id: uuid::Uuid::now_v7(),
            collector_version: "bench".into(),
            sealed_at_ms: 0,
            events: std::mem::take(batch),
            stats: None,
        };
        let json = b.to_wire_json();
        let z = if codec == "zstd" {
            zstd::bulk::compress(&json, level as i32).unwrap()
        } else {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            e.write_all(&json).unwrap();
            e.finish().unwrap()
        };
        spooled_bytes += z.len() as u64;
        spool.push(&z, "{}").unwrap();
        batches += 1;
    };
    let file = std::fs::File::open(&path).unwrap();
    for line in std::io::BufReader::with_capacity(1 << 20, file).split(b'\n') {
        let line = line.unwrap();
        lines += 1;
        let Ok(mut e) = parse_line(&line, &ctx, None) else {
            continue;
        };
        if let Verdict::Send(d) = policy.classify(&e) {
            e.direction = d;
            agg.push(e, true, &mut batch);
        }
        if batch.len() >= 5000 {
            agg.flush_files(&mut batch);
            seal(&mut batch, &mut spool);
            agg.sealed();
        }
    }
    agg.flush_all(&mut batch);
    seal(&mut batch, &mut spool);
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{lines} lines in {secs:.2} s: {:.0} lines/s end to end ({codec} level {level}); {batches} batches, {:.1} MB spooled",
        lines as f64 / secs,
        spooled_bytes as f64 / 1e6
    );
}
