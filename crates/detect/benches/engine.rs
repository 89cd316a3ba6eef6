//! The stateful detections ([`Engine::observe`]) on the ingest benchmarks' synthetic traffic
//! (`crates/store/examples/common/synthetic.rs`: a few busy scanners, a long tail of 100,000
//! sources, ten ports): nanoseconds per event for batches of 5,000 from 8 members, the engine's
//! memory in its steady state (full, forgetting the oldest source for each new one) and, beside
//! it, with room for every source. The per-batch indicator match (`detect`) is not included.
//! Run: `cargo bench -p watchhouse-detect --bench engine`.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use watchhouse_detect::engine::{Engine, Thresholds};
use watchhouse_event::Event;

#[path = "../../store/examples/common/synthetic.rs"]
mod synthetic;

const BATCH: u64 = 5_000;
const MEMBERS: u64 = 8;
const T0: i64 = 1_763_700_000_000;

/// Batch `b` of the stream: member `b % 8`, events one millisecond apart.
fn batch(b: u64) -> Vec<Event> {
    (b * BATCH..(b + 1) * BATCH)
        .map(|k| synthetic::event(k, T0 + k as i64))
        .collect()
}

fn bench(c: &mut Criterion) {
    let batches: Vec<Vec<Event>> = (0..64).map(batch).collect();
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(BATCH));
    for (name, max_sources) in [("full_200k", 200_000), ("room_for_all", 2_000_000)] {
        let mut e = Engine::new(Thresholds {
            max_sources,
            ..Thresholds::default()
        });
        // Warm up to the steady state: every batch once.
        for (b, evs) in batches.iter().enumerate() {
            e.observe(b as i64 % MEMBERS as i64, 1, &format!("warm-{b}"), evs);
        }
        let mut n = 0u64;
        g.bench_function(format!("observe_5000/{name}"), |bch| {
            bch.iter_batched(
                || {
                    n += 1;
                    (n, format!("b{n}"))
                },
                |(n, id)| {
                    let evs = &batches[(n % batches.len() as u64) as usize];
                    black_box(e.observe((n % MEMBERS) as i64, 1, &id, evs))
                },
                BatchSize::SmallInput,
            )
        });
        eprintln!("{name}: {} sources remembered", e.tracked_sources());
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
