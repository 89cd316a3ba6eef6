//! The outbound watchlist, end to end with the real binaries:
//!
//! - a member that has not opted in to sending outbound traffic still reports a device
//!   contacting a listed destination (and that raises a critical alert), while its other
//!   outbound traffic stays on its network;
//! - changing the feed file changes matching at the hub and at the collector, without a restart.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{eventually, Site};

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.sync_all().unwrap();
}

fn fwd(i: usize, src: &str, dst: &str, dport: u16) -> String {
    // A forwarded connection from the LAN (eth1) to the internet (eth0).
    format!("Nov 21 06:00:{:02} fw kernel: [ACCEPT] IN=eth1 OUT=eth0 SRC={src} DST={dst} LEN=60 PROTO=TCP SPT={} DPT={dport} SYN", i % 60, 40000 + i)
}

fn inbound(i: usize) -> String {
    format!("Nov 21 06:01:{:02} fw kernel: [UFW BLOCK] IN=eth0 OUT= SRC=198.18.0.{} DST=198.51.100.10 LEN=40 PROTO=TCP SPT=5555 DPT={} SYN", i % 60, i % 250 + 1, 1000 + i)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_destinations_are_reported_without_the_outbound_opt_in() -> anyhow::Result<()> {
    let site = Site::new()?;
    let dir = &site.dir;
    let feed = dir.path().join("c2.netset");
    std::fs::write(
        &feed,
        "# command-and-control servers\n203.0.113.0/24\n10.0.0.0/8\n",
    )?;
    let feed_arg = format!("c2_list={}", feed.display());
    let _hub = site
        .start_hub(
            &["--feed", &feed_arg],
            &[("WATCHHOUSE__HUB__FEED_CHECK_SECS", "1")],
        )
        .await?;
    let mut admin = site.admin().await?;

    let log = dir.path().join("fw.log");
    append(&log, &[inbound(0)]);
    let col = site.start_collector(
        &["--file", log.to_str().unwrap()],
        &[("WATCHHOUSE__COLLECTOR__HEARTBEAT_SECS", "1")],
    )?;
    let updates = |n: usize| {
        let col_log = col.log.clone();
        async move {
            eventually(
                Duration::from_secs(30),
                "the collector to fetch the watchlist",
                || {
                    let p = col_log.clone();
                    async move {
                        Ok((std::fs::read_to_string(&p)?
                            .matches("watchlist updated")
                            .count()
                            >= n)
                            .then_some(()))
                    }
                },
            )
            .await
        }
    };
    updates(1).await?;
    // The private block in the feed is not pushed: only internet destinations are watched.
    let wl = std::fs::read_to_string(dir.path().join("collector/watchlist.txt"))?;
    assert!(
        wl.contains("203.0.113.0/24") && !wl.contains("10.0.0.0/8"),
        "{wl}"
    );

    append(
        &log,
        &[
            fwd(1, "192.168.1.5", "203.0.113.66", 443),
            fwd(2, "192.168.1.5", "8.8.4.4", 443),
            inbound(3),
        ],
    );
    eventually(
        Duration::from_secs(30),
        "the listed outbound connection and the inbound line",
        || async {
            let (_, v) = admin.get_json("/api/v1/members/1/summary").await?;
            Ok((v["total_events"].as_u64() == Some(3)).then_some(()))
        },
    )
    .await?;
    let (_, ev) = admin.get_json("/api/v1/members/1/events?limit=10").await?;
    let dsts: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["dst_ip"].as_str().unwrap())
        .collect();
    assert!(dsts.contains(&"203.0.113.66"), "{dsts:?}");
    assert!(
        !dsts.contains(&"8.8.4.4"),
        "unlisted outbound traffic must stay on the member's network"
    );
    let (_, alerts) = admin.get_json("/api/v1/members/1/alerts").await?;
    let critical = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "listed_destination_outbound")
        .cloned();
    let critical = critical.expect("a critical alert for the C2 connection");
    assert_eq!(critical["severity"], "critical");
    assert_eq!(critical["subject_ip"], "203.0.113.66");

    // The feed changes: the hub reloads it, and the collector fetches the new watchlist.
    std::fs::write(
        &feed,
        "# command-and-control servers\n203.0.113.0/24\n8.8.4.0/24\n",
    )?;
    eventually(
        Duration::from_secs(30),
        "the hub to reload the feed",
        || async {
            let m = admin.get("/metrics").await?.text().await?;
            Ok(m.contains("watchhouse_intel_entries 2\n").then_some(()))
        },
    )
    .await?;
    append(&log, &[inbound(4)]); // any shipment carries the new version
    updates(2).await?;
    append(&log, &[fwd(5, "192.168.1.7", "8.8.4.4", 443)]);
    eventually(
        Duration::from_secs(30),
        "the newly listed destination to be reported",
        || async {
            let (_, v) = admin.get_json("/api/v1/members/1/alerts").await?;
            Ok(v["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["subject_ip"] == "8.8.4.4")
                .then_some(()))
        },
    )
    .await?;
    let (_, cols) = admin.get_json("/api/v1/members/1/collectors").await?;
    assert_eq!(
        cols["collectors"][0]["stats"]["withheld"]["outbound"], 1,
        "{cols}"
    );
    admin.session = None;
    Ok(())
}
