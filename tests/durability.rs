//! Nothing lost, nothing stored twice — with the real binaries:
//!
//! - the collector is killed with SIGKILL mid-shipment, twice, and restarted;
//! - the hub is stopped for a while and started again, while the firewall keeps logging.
//!
//! Each time the hub must end with every line's event exactly once.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{eventually, Client, Site};

fn line(i: usize) -> String {
    // Distinct flows (no two lines aggregate), all inbound to the member.
    format!(
        "Nov 21 06:{:02}:{:02} fw kernel: [{i}.000001] [UFW BLOCK] IN=eth0 OUT= SRC=198.18.{}.{} DST=198.51.100.{} LEN=44 PROTO=TCP SPT={} DPT={} WINDOW=1024 SYN\n",
        (i / 60) % 60,
        i % 60,
        (i / 250) % 250,
        i % 250 + 1,
        1 + i % 14,
        1024 + i % 60000,
        1 + (i / 7) % 65000
    )
}

fn append(path: &Path, from: usize, to: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let mut buf = String::new();
    for i in from..to {
        buf.push_str(&line(i));
    }
    f.write_all(buf.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

fn collector(s: &Site, log: &Path) -> anyhow::Result<common::Proc> {
    s.start_collector(
        &["--file", log.to_str().unwrap()],
        &[("WATCHHOUSE__COLLECTOR__BATCH_MAX_EVENTS", "2000")],
    )
}

/// Waits until the hub holds exactly `n`, failing at once on more.
async fn exactly(c: &Client, n: u64, within: Duration) -> anyhow::Result<()> {
    eventually(within, &format!("{n} events at the hub"), || async {
        let t = Site::total(c).await?;
        assert!(
            t <= n,
            "the hub stored {t} events for {n} lines: something was stored twice"
        );
        Ok((t == n).then_some(()))
    })
    .await?;
    // And it stays there.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(Site::total(c).await?, n);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_killed_mid_shipment_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let s = Site::new()?;
    let log = s.dir.path().join("fw.log");
    const N: usize = 120_000;
    append(&log, 0, N);
    let _hub = s.start_hub(&[], &[]).await?;
    let c = s.admin().await?;
    let mut kills = 0;
    for round in 0..2 {
        let mut col = collector(&s, &log)?;
        // Kill it as soon as it has shipped something but not everything.
        let seen = eventually(Duration::from_secs(120), "shipping to start", || async {
            let t = Site::total(&c).await?;
            Ok((t > (round as u64) * 10_000 && t < N as u64).then_some(t))
        })
        .await;
        match seen {
            Ok(t) => {
                col.child.kill()?; // SIGKILL
                col.child.wait()?;
                kills += 1;
                println!("round {round}: killed the collector with {t} of {N} events at the hub");
            }
            Err(e) => anyhow::bail!("{e}; collector log:\n{}", col.log()),
        }
    }
    assert_eq!(kills, 2);
    let col = collector(&s, &log)?;
    exactly(&c, N as u64, Duration::from_secs(180))
        .await
        .map_err(|e| anyhow::anyhow!("{e}; collector log:\n{}", col.log()))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_outage_is_ridden_out_by_the_spool() -> anyhow::Result<()> {
    let s = Site::new()?;
    let log = s.dir.path().join("fw.log");
    append(&log, 0, 1_000);
    let mut hub = s.start_hub(&[], &[]).await?;
    let c = s.admin().await?;
    let col = collector(&s, &log)?;
    exactly(&c, 1_000, Duration::from_secs(60)).await?;

    // The hub goes away; the firewall keeps logging.
    let status = hub.interrupt(Duration::from_secs(20))?;
    assert!(status.success(), "hub stopped cleanly");
    append(&log, 1_000, 6_000);
    let spool = s.dir.path().join("collector/spool");
    eventually(
        Duration::from_secs(30),
        "batches waiting in the spool",
        || {
            let spool = spool.clone();
            async move {
                let n = std::fs::read_dir(&spool)?
                    .flatten()
                    .filter(|e| e.path().extension().is_some_and(|x| x == "batch"))
                    .count();
                Ok((n >= 1).then_some(n))
            }
        },
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        col.log().contains("cannot reach the hub"),
        "the collector noticed the outage"
    );

    // The hub comes back: everything arrives, once.
    let _hub = s.start_hub(&[], &[]).await?;
    let c = s.admin().await?;
    exactly(&c, 6_000, Duration::from_secs(120))
        .await
        .map_err(|e| anyhow::anyhow!("{e}; collector log:\n{}", col.log()))?;
    Ok(())
}
