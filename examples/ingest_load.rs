//! Load generator for the hub's ingest over HTTP, as many collectors would send: compressed
//! batches with idempotency keys, several in flight. Used by `bench/scale-out.sh`.
//!
//! It enrols one collector per token, prepares every batch body before the clock starts, posts
//! them with `--concurrency` requests in flight, then waits until the processes that store
//! (`--metrics URL`, repeatable: the embedded hub, or the workers) have counted every event in
//! `watchhouse_events_ingested_total`. Prints the accepted and the stored (sustained) rate.
//!
//! ```text
//! cargo run --release --example ingest_load -- --hub URL --tokens FILE --metrics URL \
//!     [--metrics URL…] [--events N] [--batch N] [--concurrency N] [--days D] [--encoding E]
//! ```
//!
//! `--encoding zstd` (the default) compresses each body as Watchhouse's collector does (zstd,
//! level 3); `--encoding gzip` as a third-party sender with gzip would (flate2, fast).
//!
//! `--days 1` (the default) is live traffic: every batch is from the last hour, so a member's
//! batches add to the same day's rollups, as on a running service. `--days 27` spreads the
//! batches over four weeks (batch b on day b % 27, member b % 8): then every batch of a
//! 1,000,000-event run is a member-day of its own, the worst case for the per-source rollup
//! (a backfill, or a service with as many members as batches).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use watchhouse_proto::{Batch, EnrolResponse};

struct Args {
    hub: String,
    tokens: String,
    metrics: Vec<String>,
    events: u64,
    batch: u64,
    concurrency: usize,
    days: u64,
    encoding: String,
}

fn args() -> Args {
    let mut a = Args {
        hub: String::new(),
        tokens: String::new(),
        metrics: Vec::new(),
        events: 2_000_000,
        batch: 5_000,
        concurrency: 4,
        days: 1,
        encoding: "zstd".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--hub" => a.hub = v(),
            "--tokens" => a.tokens = v(),
            "--metrics" => a.metrics.push(v()),
            "--events" => a.events = v().replace('_', "").parse().expect("--events N"),
            "--batch" => a.batch = v().parse().expect("--batch N"),
            "--concurrency" => a.concurrency = v().parse().expect("--concurrency N"),
            "--days" => a.days = v().parse::<u64>().expect("--days D").max(1),
            "--encoding" => {
                a.encoding = v();
                assert!(
                    a.encoding == "zstd" || a.encoding == "gzip",
                    "--encoding is zstd or gzip"
                );
            }
            "--help" | "-h" => {
                println!("ingest_load --hub URL --tokens FILE --metrics URL [--metrics URL…] [--events N] [--batch N] [--concurrency N] [--days D] [--encoding zstd|gzip]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}; try --help"),
        }
    }
    assert!(
        !a.hub.is_empty() && !a.tokens.is_empty() && !a.metrics.is_empty(),
        "--hub, --tokens and --metrics are required"
    );
    a
}

#[path = "../crates/store/examples/common/synthetic.rs"]
mod synthetic;
use synthetic::event;

async fn stored(http: &reqwest::Client, urls: &[String]) -> u64 {
    let mut total = 0;
    for u in urls {
        if let Ok(r) = http.get(format!("{u}/metrics")).send().await {
            if let Ok(t) = r.text().await {
                total += t
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("watchhouse_events_ingested_total ")?
                            .trim()
                            .parse::<u64>()
                            .ok()
                    })
                    .unwrap_or(0);
            }
        }
    }
    total
}

#[tokio::main]
async fn main() {
    let a = args();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let tokens: Vec<String> = std::fs::read_to_string(&a.tokens)
        .expect("tokens file")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let mut creds = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        let r: EnrolResponse = http
            .post(format!("{}/api/v1/enrol", a.hub))
            .json(&serde_json::json!({"token": t, "name": format!("load-{i}"), "version": "bench"}))
            .send()
            .await
            .expect("enrol")
            .error_for_status()
            .expect("enrolment refused")
            .json()
            .await
            .expect("enrol response");
        creds.push(r.credential);
    }
    let now = watchhouse_hub::now_ms();
    let batches = a.events / a.batch;
    eprint!("preparing {batches} batches of {} events", a.batch);
    let bodies: Vec<(usize, String, Vec<u8>)> = (0..batches)
        .map(|b| {
            if b % 50 == 0 {
                eprint!(".");
            }
            // Batch b: collector b % K, day b % D of the last D days (D = 1: all from the last
            // hour).
            let day0 = now - (b % a.days) as i64 * 86_400_000 - 3_600_000;
            let batch = Batch {
                version: watchhouse_proto::WIRE_VERSION,
                batch_id: uuid::Uuid::new_v4(),
                collector_version: "bench".into(),
                sealed_at_ms: now,
                events: (b * a.batch..(b + 1) * a.batch)
                    .map(|k| event(k, day0 + (k % a.batch) as i64))
                    .collect(),
                stats: None,
            };
            let json = serde_json::to_vec(&batch).unwrap();
            let body = if a.encoding == "zstd" {
                zstd::bulk::compress(&json, 3).unwrap()
            } else {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&json).unwrap();
                gz.finish().unwrap()
            };
            ((b as usize) % creds.len(), batch.batch_id.to_string(), body)
        })
        .collect();
    let wire: usize = bodies.iter().map(|b| b.2.len()).sum();
    eprintln!(" {:.1} MB compressed ({})", wire as f64 / 1e6, a.encoding);
    let before = stored(&http, &a.metrics).await;
    let bodies = Arc::new(bodies);
    let creds = Arc::new(creds);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (bodies, creds, next, http, hub, encoding) = (
            bodies.clone(),
            creds.clone(),
            next.clone(),
            http.clone(),
            a.hub.clone(),
            a.encoding.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((c, id, body)) = bodies.get(i) else {
                    return;
                };
                loop {
                    let r = http
                        .post(format!("{hub}/api/v1/ingest"))
                        .bearer_auth(&creds[*c])
                        .header("Content-Type", "application/json")
                        .header("Content-Encoding", encoding.as_str())
                        .header("Idempotency-Key", id.as_str())
                        .body(body.clone())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => break,
                        Ok(r) => eprintln!("batch {i}: {} (retrying)", r.status()),
                        Err(e) => eprintln!("batch {i}: {e} (retrying)"),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let accepted_s = started.elapsed().as_secs_f64();
    let total = batches * a.batch;
    loop {
        let n = stored(&http, &a.metrics).await.saturating_sub(before);
        if n >= total {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            panic!("only {n} of {total} events stored after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stored_s = started.elapsed().as_secs_f64();
    println!(
        "events {total} in {batches} batches of {}, {} collectors, {} in flight",
        a.batch,
        creds.len(),
        a.concurrency
    );
    println!(
        "accepted over HTTP in {accepted_s:.1} s ({:.0} events/s); all stored after {stored_s:.1} s: {:.0} events/s sustained",
        total as f64 / accepted_s,
        total as f64 / stored_s
    );
}
