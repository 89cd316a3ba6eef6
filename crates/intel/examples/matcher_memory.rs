//! Resident memory of the matcher built from the 1.01M-entry merged list: RSS before and after
//! the build (input indicators freed first), and the build time.
//! Run: `cargo run --release -p watchhouse-intel --example matcher_memory`.

use std::time::Instant;
use watchhouse_intel::{FeedInfo, MatcherBuilder};

#[path = "../benches/common.rs"]
#[allow(dead_code)]
mod common;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let before = rss_kib();
    let ind = common::merged_indicators();
    let loaded = rss_kib();
    let t = Instant::now();
    let mut b = MatcherBuilder::new();
    let f = b.add_feed(FeedInfo::new("merged", "attacks")).unwrap();
    for i in &ind {
        b.add(f, i);
    }
    let m = b.build();
    let took = t.elapsed();
    let n = ind.len();
    drop(ind);
    // Give freed pages back so RSS shows what the matcher holds.
    let after = rss_kib();
    println!("indicators: {n}");
    println!("entries in matcher: {}", m.len());
    println!("build: {:.0} ms", took.as_secs_f64() * 1e3);
    println!("tables (computed): {:.1} MB", m.heap_bytes() as f64 / 1e6);
    println!(
        "RSS: {:.1} MB at start, {:.1} MB with the indicators loaded, {:.1} MB with only the matcher ({:+.1} MB over start)",
        before as f64 / 1024.0,
        loaded as f64 / 1024.0,
        after as f64 / 1024.0,
        (after as f64 - before as f64) / 1024.0
    );
}
