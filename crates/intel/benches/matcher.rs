//! Matcher benchmark on the 1.01M-entry merged FireHOL list (971k addresses, 41k blocks):
//! nanoseconds per lookup for a realistic mix, all-listed and all-random probes, and the time
//! to rebuild the whole matcher. Run: `cargo bench -p watchhouse-intel --bench matcher`.

// criterion_group! generates an undocumented function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use watchhouse_intel::{FeedInfo, MatcherBuilder};

#[path = "common.rs"]
mod common;

fn bench(c: &mut Criterion) {
    let ind = common::merged_indicators();
    let build = || {
        let mut b = MatcherBuilder::new();
        let f = b.add_feed(FeedInfo::new("merged", "attacks")).unwrap();
        for i in &ind {
            b.add(f, i);
        }
        b.build()
    };
    let m = build();
    let mut g = c.benchmark_group("matcher");
    for (name, pct) in [
        ("mixed_20pct_listed", 20),
        ("all_listed", 100),
        ("random", 0),
    ] {
        let probes = common::probes(&ind, 65_536, pct);
        let hits = probes.iter().filter(|p| m.contains(**p)).count();
        eprintln!(
            "{name}: {:.1}% of probes are listed",
            hits as f64 * 100.0 / probes.len() as f64
        );
        g.throughput(Throughput::Elements(probes.len() as u64));
        g.bench_function(format!("lookup/{name}"), |b| {
            b.iter(|| {
                let mut n = 0u32;
                for p in &probes {
                    n += m.lookup(black_box(*p)).is_some() as u32;
                }
                n
            })
        });
    }
    g.throughput(Throughput::Elements(ind.len() as u64));
    g.sample_size(10);
    g.bench_function("rebuild_1.01M", |b| b.iter(build));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
