//! Sustained ingest into a store, then the reports' queries over what was loaded.
//!
//! Batches of firewall events as collectors send them (varied sources, ports and actions,
//! spread over members and four weeks), stored with the rollups the reports use; no alerts
//! (detection is measured elsewhere). With `--writers 2` two tasks ingest at once, as two hub
//! workers would. On PostgreSQL, `--copy-baseline` first runs a raw binary COPY of the same
//! events into a plain table of the same shape (same writers), the floor our ingest is
//! compared with.
//!
//! ```text
//! cargo run --release -p watchhouse-store --example ingest_throughput -- \
//!     [--database sqlite://PATH|postgres://…] [--events N] [--batch N] [--members N] \
//!     [--writers N] [--copy-baseline]
//! ```
//!
//! Without `--database`, a temporary SQLite file. Prints events/s, bytes stored per event and
//! the median time of each report query (5 runs).

use std::sync::Arc;
use std::time::Instant;

use watchhouse_event::Event;
use watchhouse_proto::Batch;
use watchhouse_store::{day_of, Collector, Scope, Store};

const DAY: i64 = 86_400_000;

#[path = "common/synthetic.rs"]
mod synthetic;
use synthetic::event;

struct Args {
    database: Option<String>,
    events: u64,
    batch: u64,
    members: u64,
    writers: u64,
    copy_baseline: bool,
}

fn args() -> Args {
    let mut a = Args {
        database: None,
        events: 2_000_000,
        batch: 10_000,
        members: 20,
        writers: 1,
        copy_baseline: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut num = |what: &str| -> u64 {
            it.next()
                .and_then(|v| v.replace('_', "").parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match k.as_str() {
            "--events" => a.events = num("--events"),
            "--batch" => a.batch = num("--batch").min(20_000),
            "--members" => a.members = num("--members").max(1),
            "--writers" => a.writers = num("--writers").max(1),
            "--database" => a.database = it.next(),
            "--copy-baseline" => a.copy_baseline = true,
            "--help" | "-h" => {
                println!("ingest_throughput [--database URL] [--events N] [--batch N] [--members N] [--writers N] [--copy-baseline]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}; try --help"),
        }
    }
    a
}

/// The batches: batch `b` belongs to member `b % members` and to day `b % 28` before `now`.
fn batch_events(a: &Args, b: u64, now: i64) -> Vec<Event> {
    let day0 = now - (b % 28) as i64 * DAY - DAY / 2;
    (b * a.batch..(b + 1) * a.batch)
        .map(|k| event(k, day0 + (k % a.batch) as i64 * 3))
        .collect()
}

async fn copy_baseline(url: &str, a: &Args, now: i64) -> f64 {
    use tokio_postgres::types::Type;
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    c.batch_execute(
        // A row per event, as raw events were stored before they went into blocks.
        "DROP TABLE IF EXISTS copy_baseline; CREATE TABLE copy_baseline (id BIGINT NOT NULL, \
         member_id BIGINT NOT NULL, collector_id BIGINT NOT NULL, time_ms BIGINT NOT NULL, \
         last_ms BIGINT NOT NULL, action TEXT NOT NULL, protocol SMALLINT NOT NULL, src_ip INET NOT NULL, \
         src_port INTEGER, dst_ip INET NOT NULL, dst_port INTEGER, direction TEXT NOT NULL, \
         in_iface TEXT, out_iface TEXT, rule TEXT, device TEXT, format TEXT NOT NULL, bytes BIGINT, \
         packets BIGINT, count BIGINT NOT NULL, raw TEXT NOT NULL, nat TEXT, product TEXT, host TEXT, \
         url TEXT, PRIMARY KEY (member_id, time_ms, id))",
    )
    .await
    .unwrap();
    let batches = a.events / a.batch;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..a.writers {
        let url = url.to_owned();
        let (per, writers) = (a.batch, a.writers);
        let members = a.members;
        tasks.push(tokio::spawn(async move {
            let (c, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let types = [
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::TEXT,
                Type::INT2,
                Type::INET,
                Type::INT4,
                Type::INET,
                Type::INT4,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT8,
                Type::TEXT,
            ];
            let a = Args {
                database: None,
                events: 0,
                batch: per,
                members,
                writers,
                copy_baseline: true,
            };
            for b in (w..batches).step_by(writers as usize) {
                let events = batch_events(&a, b, now);
                let sink = c
                    .copy_in(
                        "COPY copy_baseline (id, member_id, collector_id, time_ms, last_ms, action, protocol, src_ip, \
                         src_port, dst_ip, dst_port, direction, in_iface, device, format, count, raw) FROM STDIN (FORMAT binary)",
                    )
                    .await
                    .unwrap();
                let wr = tokio_postgres::binary_copy::BinaryCopyInWriter::new(sink, &types);
                let mut wr = std::pin::pin!(wr);
                for (i, e) in events.iter().enumerate() {
                    let id = (b * per + i as u64) as i64;
                    let member = (b % members) as i64 + 1;
                    wr.as_mut()
                        .write(&[
                            &id,
                            &member,
                            &member,
                            &e.time_ms,
                            &e.last_ms,
                            &e.action.as_str(),
                            &(e.protocol.0 as i16),
                            &e.src_ip,
                            &e.src_port.map(i32::from),
                            &e.dst_ip,
                            &e.dst_port.map(i32::from),
                            &e.direction.as_str(),
                            &e.in_iface,
                            &e.device,
                            &e.format.as_str(),
                            &(e.count as i64),
                            &e.raw,
                        ])
                        .await
                        .unwrap();
                }
                wr.finish().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let rate = (batches * a.batch) as f64 / started.elapsed().as_secs_f64();
    let size: i64 = c
        .query_one("SELECT pg_total_relation_size('copy_baseline')", &[])
        .await
        .unwrap()
        .get(0);
    println!(
        "raw COPY baseline: {} events, {:.0} events/s, {:.0} bytes per event",
        batches * a.batch,
        rate,
        size as f64 / (batches * a.batch) as f64
    );
    c.batch_execute("DROP TABLE copy_baseline").await.unwrap();
    rate
}

async fn bytes_stored(url: &str, dir: Option<&std::path::Path>) -> u64 {
    if let Some(d) = dir {
        return std::fs::read_dir(d)
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum();
    }
    let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let n: i64 = c
        .query_one(
            "SELECT (SELECT COALESCE(SUM(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits \
             WHERE inhparent = 'event_blocks'::regclass)::bigint \
             + pg_total_relation_size('rollup_daily') + pg_total_relation_size('rollup_src_blocks') \
             + pg_total_relation_size('rollup_port') + pg_total_relation_size('ingest_batches')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    n as u64
}

async fn time<F, Fut, T>(name: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut ms: Vec<f64> = (0..5).map(|_| 0.0).collect::<Vec<_>>();
    for m in ms.iter_mut() {
        let t = Instant::now();
        std::hint::black_box(f().await);
        *m = t.elapsed().as_secs_f64() * 1000.0;
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "  {name:<46} median {:>8.2} ms (min {:.2}, max {:.2})",
        ms[2], ms[0], ms[4]
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let tmp = tempfile::tempdir().unwrap();
    let url = a
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", tmp.path().join("bench.db").display()));
    let sqlite_dir = url
        .strip_prefix("sqlite://")
        .map(|p| std::path::Path::new(p).parent().unwrap().to_owned());
    let now = 1_763_700_000_000i64;
    let store = watchhouse_store::open(&url).await.unwrap();
    if a.copy_baseline && url.starts_with("postgres") {
        copy_baseline(&url, &a, now).await;
    }
    let f = store.create_force("Bench", "R").await.unwrap();
    let mut collectors: Vec<Collector> = Vec::new();
    for m in 0..a.members {
        let mem = store
            .create_member(
                f.id,
                &format!("Member {m}"),
                &["198.51.100.0/24".into()],
                false,
            )
            .await
            .unwrap();
        let tok = format!("bench-{}-{m}", uuid::Uuid::new_v4());
        store
            .create_enrolment_token(mem.id, &tok, now, now + DAY)
            .await
            .unwrap();
        collectors.push(
            store
                .redeem_enrolment_token(&tok, "fw", &tok, now)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    let collectors = Arc::new(collectors);
    let batches = a.events / a.batch;
    // Events are made by a separate task (as request decoding would run beside the writer),
    // a few batches ahead; only the writers' time is the store's.
    let (tx, rx) = tokio::sync::mpsc::channel::<(u64, Vec<Event>)>(4);
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    {
        let (per, members) = (a.batch, a.members);
        tokio::task::spawn_blocking(move || {
            let a = Args {
                database: None,
                events: 0,
                batch: per,
                members,
                writers: 1,
                copy_baseline: false,
            };
            for b in 0..batches {
                if tx.blocking_send((b, batch_events(&a, b, now))).is_err() {
                    return;
                }
            }
        });
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.writers {
        let (store, collectors, rx) = (store.clone(), collectors.clone(), rx.clone());
        let (per, members) = (a.batch, a.members);
        tasks.push(tokio::spawn(async move {
            let mut rates = Vec::new();
            loop {
                let Some((b, events)) = rx.lock().await.recv().await else {
                    return rates;
                };
                let col = &collectors[(b % members) as usize];
                let batch = Batch {
                    version: watchhouse_proto::WIRE_VERSION,
                    batch_id: uuid::Uuid::new_v4(),
                    collector_version: "bench".into(),
                    sealed_at_ms: now,
                    events: Vec::new(),
                    stats: None,
                };
                let t = Instant::now();
                store
                    .ingest(col, &batch, events, Vec::new(), DAY, now)
                    .await
                    .unwrap();
                rates.push(per as f64 / t.elapsed().as_secs_f64());
            }
        }));
    }
    let mut rates = Vec::new();
    for t in tasks {
        rates.extend(t.await.unwrap());
    }
    let secs = started.elapsed().as_secs_f64();
    let total = batches * a.batch;
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "{backend}: {total} events, {} members, batches of {}, {} writer(s): {secs:.1} s",
        a.members, a.batch, a.writers
    );
    println!(
        "  events/s per batch: median {:.0}; overall {:.0} events/s",
        rates[rates.len() / 2],
        total as f64 / secs
    );
    let bytes = bytes_stored(&url, sqlite_dir.as_deref()).await;
    println!(
        "  bytes stored per event (events, indexes, rollups): {:.0}",
        bytes as f64 / total as f64
    );

    // The reports' queries, over everything loaded: one member's month, the area view, the
    // national sightings.
    println!("report queries over {total} events (median of 5):");
    let all = Scope::All;
    let member = collectors[0].member_id;
    let d1 = day_of(now);
    let d0 = d1 - 30;
    let s: &Arc<dyn Store> = &store;
    time("member: daily counts, 31 days", || {
        s.daily_counts(&all, member, d0, d1)
    })
    .await;
    time("member: top 10 sources, 31 days", || {
        s.top_sources_between(&all, member, d0, d1, 10)
    })
    .await;
    time("member: top 10 ports, 31 days", || {
        s.top_ports_between(&all, member, d0, d1, 10)
    })
    .await;
    time("member: total events", || s.event_total(&all, member)).await;
    time("member: 50 most recent events", || {
        s.recent_events(&all, member, 50)
    })
    .await;
    time("peers: event totals of every member, 31 days", || {
        s.member_event_totals(d0, d1)
    })
    .await;
    time("area: evidence of need, 31 days, all members", || {
        s.evidence(&all, d0 * DAY, (d1 + 1) * DAY)
    })
    .await;
    time("national: sources seen at 3+ members, 7 days", || {
        s.widespread_sources(d1 - 7, 3, 100)
    })
    .await;
}
