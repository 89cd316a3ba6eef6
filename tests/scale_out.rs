//! Scale-out, black box: one API node and two workers (real `watchhouse hub` processes) sharing
//! PostgreSQL and NATS JetStream. Workers are killed with SIGKILL while they hold batches,
//! between storing and acknowledging, and one is stopped in order (SIGINT); every event must end
//! up stored exactly once.

mod common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use common::*;
use watchhouse_event::{Action, Direction, Event, Format, IpProto};
use watchhouse_proto::Batch;

const NATS: &str = "nats://127.0.0.1:4222";
const BATCHES: usize = 40;
const PER_BATCH: usize = 2_500;
const MEMBERS: usize = 4;

fn batch(b: usize, now: i64) -> Batch {
    Batch {
        version: watchhouse_proto::WIRE_VERSION,
        batch_id: uuid::Uuid::new_v4(),
        collector_version: "scale-out-test".into(),
        sealed_at_ms: now,
        events: (0..PER_BATCH)
            .map(|i| Event {
                time_ms: now - (i as i64 % 1000),
                last_ms: 0,
                action: Action::Drop,
                protocol: IpProto::TCP,
                src_ip: format!("192.0.2.{}", i % 250 + 1).parse().unwrap(),
                src_port: Some(40_000 + (i % 1000) as u16),
                dst_ip: "198.51.100.1".parse().unwrap(),
                dst_port: Some(1 + (b % 100) as u16),
                direction: Direction::Inbound,
                in_iface: Some("wan".into()),
                out_iface: None,
                rule: None,
                device: Some("fw".into()),
                format: Format::Netfilter,
                bytes: Some(60),
                packets: Some(1),
                count: 1,
                // Unique per event, so a duplicate would show as a repeated line.
                raw: format!("batch {b} event {i}"),
                nat: None,
                product: None,
                host: None,
                url: None,
            })
            .collect(),
        stats: None,
    }
}

/// The sum of one counter over the workers' /metrics.
async fn metric(urls: &[String], name: &str) -> Result<u64> {
    let mut total = 0;
    for u in urls {
        let text = reqwest::get(format!("{u}/metrics")).await?.text().await?;
        total += text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

const STORED: &str = "watchhouse_ingest_batches_total{result=\"stored\"}";

/// Waits until the worker at `url` has stored more than `before` batches, then returns at once:
/// the failure-injection pause means the worker now holds a committed, unacknowledged batch.
/// `before` is read before the last batch for every member is posted, so the worker has new
/// work whichever two partitions it holds. On a timeout the error carries who held which
/// partition and the end of the worker's log.
async fn stored_after(db: &PgDb, worker: &Proc, url: &str, before: u64) -> Result<()> {
    let waited = eventually(
        Duration::from_secs(60),
        "the worker to store a batch",
        || async { Ok((metric(&[url.to_owned()], STORED).await? > before).then_some(())) },
    )
    .await;
    if let Err(e) = waited {
        let c = PgDb::connect(&db.url).await;
        let leases: Vec<String> = c
            .query(
                "SELECT name, holder, until_ms FROM leases ORDER BY name",
                &[],
            )
            .await?
            .iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    r.get::<_, &str>(0),
                    r.get::<_, &str>(1),
                    r.get::<_, i64>(2)
                )
            })
            .collect();
        let log = worker.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        anyhow::bail!(
            "{e}\nleases at {}: {leases:#?}\nworker log, last lines first:\n{}",
            watchhouse_hub::now_ms(),
            tail.join("\n")
        );
    }
    Ok(())
}

/// Waits until the four partitions are held two by each of two live workers. The first worker
/// to start takes all four and gives two up only at the end of a round; a batch posted before
/// then can be stored by the wrong worker, leaving the one the test means to kill with nothing
/// to store (the cause of a CI timeout).
async fn split_two_and_two(db: &PgDb) -> Result<()> {
    eventually(
        Duration::from_secs(60),
        "partitions split 2 + 2",
        || async {
            let live = "FROM leases WHERE name LIKE 'partition:%' \
                    AND until_ms > (extract(epoch FROM now()) * 1000)::bigint";
            let held = db.count(&format!("SELECT COUNT(*) {live}")).await;
            let holders = db
                .count(&format!("SELECT COUNT(DISTINCT holder) {live}"))
                .await;
            Ok((held == 4 && holders == 2).then_some(()))
        },
    )
    .await
}

fn kill9(p: &mut Proc) {
    // Child::kill sends SIGKILL: no shutdown code runs.
    p.child.kill().expect("kill worker");
    p.child.wait().expect("reap worker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_workers_mid_batch_loses_and_duplicates_nothing() -> Result<()> {
    let db = PgDb::new().await;
    let dir = tempfile::tempdir()?;
    let stream = format!("WH_TEST_{}", uuid::Uuid::new_v4().simple()).to_uppercase();
    let admin = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["admin", "--database", db.url.as_str()];
        all.extend_from_slice(args);
        run(&all, stdin)
    };
    admin(&["force", "add", "--name", "F", "--region", "R"], None)?;
    // Four members, one collector each: with four partitions, each member has its own, and the
    // two workers hold two each.
    let mut tokens = Vec::new();
    for m in 1..=MEMBERS {
        admin(
            &["member", "add", "--force", "1", "--name", &format!("M{m}")],
            None,
        )?;
        tokens.push(
            admin(&["token", "create", "--member", &m.to_string()], None)?
                .trim()
                .to_owned(),
        );
    }
    admin(
        &[
            "user",
            "add",
            "--email",
            "a@t.example",
            "--name",
            "A",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(&format!("{SITE_PASSWORD}\n")),
    )?;

    let envs = [
        ("WATCHHOUSE__HUB__QUEUE_STREAM", stream.as_str()),
        ("WATCHHOUSE__HUB__QUEUE_ACK_WAIT_SECS", "6"),
        ("WATCHHOUSE__HUB__QUEUE_PARTITIONS", "4"),
        ("WATCHHOUSE_FAILPOINT_WORKER_PAUSE_MS", "1200"),
    ];
    let start = |name: &str, role: &str| -> Result<(Proc, String)> {
        let addr = format!("127.0.0.1:{}", free_port());
        let data = dir.path().join(name);
        let p = spawn(
            dir.path(),
            name,
            &[
                "hub",
                "--role",
                role,
                "--database",
                &db.url,
                "--queue",
                NATS,
                "--listen",
                &addr,
                "--data-dir",
                data.to_str().unwrap(),
            ],
            &envs,
        )?;
        Ok((p, format!("http://{addr}")))
    };
    let (api, api_url) = start("api", "api")?;
    let (mut w1, w1_url) = start("worker1", "worker")?;
    let (mut w2, w2_url) = start("worker2", "worker")?;
    for u in [&api_url, &w1_url, &w2_url] {
        wait_healthy(u).await?;
    }
    // A worker serves only health and metrics.
    let r = reqwest::get(format!("{w1_url}/login")).await?;
    ensure!(r.status() == 404, "worker served {}", r.status());

    let http = reqwest::Client::new();
    let mut credentials = Vec::new();
    for token in &tokens {
        let enrol: serde_json::Value = http
            .post(format!("{api_url}/api/v1/enrol"))
            .json(&serde_json::json!({"token": token, "name": "fw", "version": "test"}))
            .send()
            .await?
            .json()
            .await?;
        credentials.push(
            enrol["credential"]
                .as_str()
                .context("credential")?
                .to_owned(),
        );
    }

    // Each worker must hold two members' partitions before the first batch goes in, so that the
    // batches posted before each kill give the worker to be killed something to store.
    split_two_and_two(&db).await?;

    let t0 = Instant::now();
    let now = watchhouse_hub::now_ms();
    let batches: Vec<Batch> = (0..BATCHES).map(|b| batch(b, now)).collect();
    let mut restarted = Vec::new();
    let (mut redelivered_before_stop, mut duplicates_before_stop) = (0, 0);
    // Where the two workers are killed mid-batch, and what each had stored just before the
    // batches leading up to its kill (one per member, so one per partition) were posted.
    const KILL_W1: usize = 12;
    const KILL_W2: usize = 26;
    let (mut w1_before, mut w2_before) = (0, 0);
    for (b, body) in batches.iter().enumerate() {
        if b + MEMBERS == KILL_W1 + 1 {
            w1_before = metric(std::slice::from_ref(&w1_url), STORED).await?;
        }
        if b + MEMBERS == KILL_W2 + 1 {
            w2_before = metric(std::slice::from_ref(&w2_url), STORED).await?;
        }
        let credential = &credentials[b % MEMBERS];
        let res = http
            .post(format!("{api_url}/api/v1/ingest"))
            .bearer_auth(credential)
            .json(body)
            .send()
            .await?;
        ensure!(res.status().is_success(), "batch {b}: {}", res.status());
        let v: serde_json::Value = res.json().await?;
        ensure!(v["accepted"] == PER_BATCH as u64, "batch {b}: {v}");
        // A collector that lost the answer sends the batch again.
        if b % 10 == 3 {
            let again: serde_json::Value = http
                .post(format!("{api_url}/api/v1/ingest"))
                .bearer_auth(credential)
                .json(body)
                .send()
                .await?
                .json()
                .await?;
            ensure!(again["duplicate"] == true, "resent batch {b}: {again}");
        }
        if b == KILL_W1 {
            stored_after(&db, &w1, &w1_url, w1_before).await?;
            kill9(&mut w1);
            let (p, u) = start("worker1b", "worker")?;
            restarted.push((p, u));
        }
        if b == KILL_W2 {
            stored_after(&db, &w2, &w2_url, w2_before).await?;
            kill9(&mut w2);
        }
        if b == 33 {
            // An orderly stop: the batch in hand is finished, the others go back at once.
            let w1b = [restarted[0].1.clone()];
            redelivered_before_stop = metric(&w1b, "watchhouse_queue_redelivered_total").await?;
            duplicates_before_stop = metric(
                &w1b,
                "watchhouse_ingest_batches_total{result=\"duplicate\"}",
            )
            .await?;
            let stopped = Instant::now();
            let status = restarted[0].0.interrupt(Duration::from_secs(20))?;
            ensure!(status.success(), "worker1b exited with {status}");
            ensure!(
                restarted[0].0.log().contains("worker stopped"),
                "{}",
                restarted[0].0.log()
            );
            eprintln!("worker1b stopped in {:?}", stopped.elapsed());
            let (p, u) = start("worker1c", "worker")?;
            restarted.push((p, u));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("{BATCHES} batches accepted in {:?}", t0.elapsed());
    // Worker 2 stays dead for a while: worker 1b carries on alone, then a new one joins.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (p, u) = start("worker2b", "worker")?;
    restarted.push((p, u));
    // The survivors (worker1b was stopped in order; its counters are gone with it).
    let urls: Vec<String> = restarted[1..].iter().map(|(_, u)| u.clone()).collect();
    for u in &urls {
        wait_healthy(u).await?;
    }

    let want = (BATCHES * PER_BATCH) as i64;
    eventually(Duration::from_secs(120), "every batch stored", || async {
        let n = db.count("SELECT COUNT(*) FROM ingest_batches").await;
        Ok((n == BATCHES as i64).then_some(()))
    })
    .await?;
    eprintln!(
        "all stored after {:?}; {} alerts, {} evidence links",
        t0.elapsed(),
        db.count("SELECT COUNT(*) FROM alerts").await,
        db.count("SELECT COUNT(*) FROM alert_events").await
    );
    // Redeliveries still in flight would show as extra rows: wait past the ack wait (6 s).
    tokio::time::sleep(Duration::from_secs(7)).await;
    let stored = db.stored_events().await;
    let rows = stored.len() as i64;
    let distinct = stored
        .iter()
        .map(|e| e.event.raw.as_str())
        .collect::<std::collections::HashSet<_>>()
        .len() as i64;
    let ids = stored
        .iter()
        .map(|e| e.id)
        .collect::<std::collections::HashSet<_>>()
        .len() as i64;
    assert_eq!(
        db.count("SELECT COALESCE(SUM(events), 0)::bigint FROM event_blocks")
            .await,
        rows,
        "the blocks' counts say what they hold"
    );
    assert_eq!(ids, rows, "every stored event has its own id");
    let rolled = db
        .count("SELECT SUM(events)::bigint FROM rollup_daily")
        .await;
    assert_eq!(rows, want, "every event stored");
    assert_eq!(distinct, want, "no event stored twice");
    assert_eq!(rolled, want, "rollups count each event once");

    // The kills happened while batches were held: some came back to the survivors, and at
    // least one of them had been stored before the kill (caught by the batch id).
    let redelivered =
        metric(&urls, "watchhouse_queue_redelivered_total").await? + redelivered_before_stop;
    let duplicates = metric(
        &urls,
        "watchhouse_ingest_batches_total{result=\"duplicate\"}",
    )
    .await?
        + duplicates_before_stop;
    assert!(
        redelivered > 0,
        "no batch was redelivered: the kills missed"
    );
    assert!(
        duplicates > 0,
        "no batch was stored before a kill and delivered again ({redelivered} redeliveries)"
    );
    eprintln!("redelivered {redelivered}, already stored {duplicates}");

    // The API node reads the same data.
    let mut c = Client::new(&api_url);
    c.login("a@t.example", SITE_PASSWORD).await?;
    let mut total = 0;
    for m in 1..=MEMBERS {
        let (_, v) = c.get_json(&format!("/api/v1/members/{m}/summary")).await?;
        total += v["total_events"].as_u64().context("total_events")?;
    }
    assert_eq!(total, want as u64);

    // Reports read the same rollups from the command line.
    let today = jiff::Timestamp::from_millisecond(now)?
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let period = format!("{}..{}", today.yesterday()?, today);
    let out = dir.path().join("report.json");
    run(
        &[
            "report",
            "--database",
            &db.url,
            "--member",
            "1",
            "--period",
            &period,
            "--format",
            "json",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    )?;
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&out)?)?;
    let member1 = db
        .count("SELECT COALESCE(SUM(events), 0)::bigint FROM event_blocks WHERE member_id = 1")
        .await;
    assert_eq!(j["totals"]["events"].as_i64(), Some(member1), "{j}");

    // Campaigns count members across workers. Once the two live workers hold two partitions
    // each (two members each), one internet source reaches the four members in turn, blocked
    // at the first two and let through by the last two: the third and fourth are told, though
    // no worker ever saw three of them.
    split_two_and_two(&db).await?;
    let scanner: std::net::IpAddr = "45.33.32.50".parse()?;
    for (m, credential) in credentials.iter().enumerate() {
        let mut b = batch(BATCHES + m, watchhouse_hub::now_ms());
        b.events.truncate(1);
        b.events[0].src_ip = scanner;
        b.events[0].action = if m < 2 { Action::Drop } else { Action::Allow };
        let stored_before = db.count("SELECT COUNT(*) FROM ingest_batches").await;
        let res = http
            .post(format!("{api_url}/api/v1/ingest"))
            .bearer_auth(credential)
            .json(&b)
            .send()
            .await?;
        ensure!(
            res.status().is_success(),
            "scanner batch {m}: {}",
            res.status()
        );
        eventually(Duration::from_secs(30), "scanner batch stored", || async {
            let n = db.count("SELECT COUNT(*) FROM ingest_batches").await;
            Ok((n > stored_before).then_some(()))
        })
        .await?;
    }
    let told = db
        .count(&format!(
            "SELECT COUNT(DISTINCT member_id) FROM alerts \
             WHERE kind = 'campaign' AND subject_ip = '{scanner}'"
        ))
        .await;
    assert_eq!(
        told, 2,
        "the third and fourth members hit are told of the campaign"
    );

    drop(api);
    drop(restarted);
    let q = watchhouse_queue::nats::NatsQueue::connect(
        NATS,
        &stream,
        Duration::from_secs(2),
        Duration::from_secs(60),
    )
    .await?;
    q.delete(&stream).await?;
    db.drop_db().await;
    Ok(())
}

#[tokio::test]
async fn roles_without_a_queue_or_shared_database_are_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("hub");
    let out = std::process::Command::new(bin())
        .args([
            "hub",
            "--role",
            "worker",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "a worker without a queue started");
    ensure!(err.contains("hub.queue"), "{err}");
    let out = std::process::Command::new(bin())
        .args([
            "hub",
            "--role",
            "api",
            "--queue",
            NATS,
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "an API node on SQLite started");
    ensure!(err.contains("postgres://"), "{err}");
    Ok(())
}
