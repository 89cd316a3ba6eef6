//! A scripted scenario per detection, through the real pipeline: firewall log lines appended to
//! a file the real collector follows, shipped to the real hub, and the alert read back over its
//! API with its plain-English words. Each scenario also has a near miss that must not alert.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{eventually, run, spawn, Client, Proc, Site};
use jiff::Timestamp;
use serde_json::Value;

/// An RFC 5424 UFW line at `t_ms` (so the year and zone are exact).
fn ufw(t_ms: i64, verdict: &str, src: &str, dst: &str, dport: u16) -> String {
    let t = Timestamp::from_millisecond(t_ms).unwrap();
    format!(
        "<4>1 {t} fw kernel - - - [UFW {verdict}] IN=eth0 OUT= MAC=00:00:00:00:00:00:00:00:00:00:00:00:08:00 \
         SRC={src} DST={dst} LEN=44 TOS=0x00 PREC=0x00 TTL=49 ID=1 PROTO=TCP SPT=40000 DPT={dport} \
         WINDOW=1024 RES=0x00 SYN URGP=0\n"
    )
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

fn append(path: &Path, lines: &[String]) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        f.write_all(l.as_bytes()).unwrap();
    }
    f.sync_all().unwrap();
}

async fn alerts(admin: &Client) -> anyhow::Result<Vec<Value>> {
    let (_, v) = admin.get_json("/api/v1/alerts?limit=1000").await?;
    Ok(v["alerts"].as_array().cloned().unwrap_or_default())
}

async fn wait_alert(admin: &Client, kind: &str, subject: &str) -> anyhow::Result<Value> {
    eventually(
        Duration::from_secs(30),
        &format!("a {kind} alert about {subject}"),
        || async {
            Ok(alerts(admin)
                .await?
                .into_iter()
                .find(|a| a["kind"] == kind && a["subject_ip"] == subject))
        },
    )
    .await
}

/// A collector for member `member` (1-based, as created) following `log`.
fn collector(site: &Site, member: u32, token: &str, log: &Path) -> anyhow::Result<Proc> {
    let data = site.path(&format!("collector-{member}"));
    spawn(
        site.dir.path(),
        &format!("collector-{member}"),
        &[
            "collect",
            "--hub",
            &site.url,
            "--data-dir",
            &data,
            "--udp",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--file",
            log.to_str().unwrap(),
        ],
        &[
            ("WATCHHOUSE_ENROL_TOKEN", token),
            ("WATCHHOUSE__COLLECTOR__AGGREGATE_WINDOW_SECS", "2"),
        ],
    )
}

/// A hub with three members (networks 198.51.100.0/28, .16/28, .32/28), each with a collector
/// following its own log file.
struct Three {
    site: Site,
    _hub: Proc,
    _cols: Vec<Proc>,
    logs: Vec<std::path::PathBuf>,
    admin: Client,
}

async fn three(hub_args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Three> {
    let site = Site::new()?;
    let mut tokens = vec![site.token.clone()];
    for (n, net) in [(2, "198.51.100.16/28"), (3, "198.51.100.32/28")] {
        run(
            &[
                "admin",
                "--data-dir",
                &site.data,
                "member",
                "add",
                "--force",
                "1",
                "--name",
                &format!("M{n}"),
                "--network",
                net,
            ],
            None,
        )?;
        tokens.push(
            run(
                &[
                    "admin",
                    "--data-dir",
                    &site.data,
                    "token",
                    "create",
                    "--member",
                    &n.to_string(),
                ],
                None,
            )?
            .trim()
            .to_owned(),
        );
    }
    let mut all_envs = vec![("WATCHHOUSE__HUB__UPLOAD_INTERVAL_MS", "500")];
    all_envs.extend_from_slice(envs);
    let hub = site.start_hub(hub_args, &all_envs).await?;
    let logs: Vec<_> = (1..=3)
        .map(|m| site.dir.path().join(format!("fw{m}.log")))
        .collect();
    for l in &logs {
        append(l, &[]);
    }
    let cols: Vec<Proc> = (0..3)
        .map(|i| collector(&site, i as u32 + 1, &tokens[i], &logs[i]))
        .collect::<anyhow::Result<_>>()?;
    let admin = site.admin().await?;
    Ok(Three {
        site,
        _hub: hub,
        _cols: cols,
        logs,
        admin,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_detection_fires_through_the_pipeline() -> anyhow::Result<()> {
    let Three {
        site,
        _hub,
        _cols,
        logs,
        admin,
    } = three(&[], &[("WATCHHOUSE__DETECT__VOLUME_MIN_EVENTS", "100")]).await?;
    let t = now_ms() - 60_000;

    // Volume anomaly first (it needs history): 30 past hours of ~5 events, then a burst of 150.
    let mut lines = Vec::new();
    for h in (1..=30).rev() {
        for k in 0..5 {
            lines.push(ufw(
                t - h * 3_600_000 + k * 1000,
                "BLOCK",
                &format!("45.33.40.{k}"),
                "198.51.100.3",
                23,
            ));
        }
    }
    append(&logs[0], &lines);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let burst: Vec<String> = (0..150)
        .map(|k| {
            ufw(
                t + k,
                "BLOCK",
                &format!("45.33.41.{}", k % 250),
                "198.51.100.3",
                80 + (k % 3) as u16,
            )
        })
        .collect();
    append(&logs[0], &burst);
    let v = wait_alert(&admin, "volume_anomaly", "198.51.100.3").await?;
    assert_eq!(v["severity"], "medium");

    // Port scan: 15 ports in seconds; a near miss of 5 ports from another source.
    let scan: Vec<String> = (0..15)
        .map(|p| {
            ufw(
                t + 1000 + p,
                "BLOCK",
                "45.33.32.100",
                "198.51.100.5",
                20 + p as u16,
            )
        })
        .collect();
    let miss: Vec<String> = (0..5)
        .map(|p| {
            ufw(
                t + 1000 + p,
                "BLOCK",
                "45.33.32.199",
                "198.51.100.5",
                20 + p as u16,
            )
        })
        .collect();
    append(&logs[0], &[scan, miss].concat());
    let a = wait_alert(&admin, "port_scan", "45.33.32.100").await?;
    assert_eq!(a["severity"], "low");

    // Brute force: 25 allowed SSH connections in a minute; 10 from another source is not enough.
    let brute: Vec<String> = (0..25)
        .map(|i| {
            ufw(
                t + 2000 + i * 1000,
                "ALLOW",
                "45.33.32.101",
                "198.51.100.6",
                22,
            )
        })
        .collect();
    let few: Vec<String> = (0..10)
        .map(|i| {
            ufw(
                t + 2000 + i * 1000,
                "ALLOW",
                "45.33.32.198",
                "198.51.100.6",
                22,
            )
        })
        .collect();
    append(&logs[0], &[brute, few].concat());
    let a = wait_alert(&admin, "brute_force", "45.33.32.101").await?;
    assert_eq!(a["severity"], "high");

    // Exposed service: one allowed RDP connection from the internet; allowed HTTPS is not.
    append(
        &logs[0],
        &[
            ufw(t + 3000, "ALLOW", "45.33.32.102", "198.51.100.7", 3389),
            ufw(t + 3000, "ALLOW", "45.33.32.102", "198.51.100.8", 443),
        ],
    );
    let a = wait_alert(&admin, "exposed_service", "198.51.100.7").await?;
    assert_eq!(a["severity"], "high");

    // Campaign: one source at three members, through the third one's firewall; another at two
    // only; a third at all three but blocked everywhere (a campaign nobody needs telling of).
    append(
        &logs[0],
        &[
            ufw(t + 4000, "BLOCK", "45.33.32.103", "198.51.100.9", 22),
            ufw(t + 4000, "BLOCK", "45.33.32.197", "198.51.100.9", 22),
            ufw(t + 4000, "BLOCK", "45.33.32.196", "198.51.100.9", 22),
        ],
    );
    append(
        &logs[1],
        &[
            ufw(t + 4100, "BLOCK", "45.33.32.103", "198.51.100.20", 22),
            ufw(t + 4100, "BLOCK", "45.33.32.197", "198.51.100.20", 22),
            ufw(t + 4100, "BLOCK", "45.33.32.196", "198.51.100.20", 22),
        ],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    append(
        &logs[2],
        &[
            ufw(t + 4200, "BLOCK", "45.33.32.196", "198.51.100.40", 22),
            ufw(t + 4200, "BLOCK", "45.33.32.103", "198.51.100.40", 22),
            ufw(t + 4250, "ALLOW", "45.33.32.103", "198.51.100.40", 443),
        ],
    );
    let a = wait_alert(&admin, "campaign", "45.33.32.103").await?;
    assert_eq!(a["severity"], "medium");
    assert_eq!(a["member_id"], 3, "the member that completed the campaign");

    // Every alert reads in plain English, and no near miss alerted.
    let all = alerts(&admin).await?;
    for a in &all {
        let (_, full) = admin
            .get_json(&format!("/api/v1/alerts/{}", a["id"]))
            .await?;
        let text = &full;
        assert!(!text["title"].as_str().unwrap_or("").is_empty(), "{full}");
        assert!(
            text["what_it_means"].as_str().unwrap_or("").len() > 40,
            "{full}"
        );
        assert!(!text["what_to_do"].as_array().unwrap().is_empty(), "{full}");
        assert!(
            !full["evidence"].as_array().unwrap().is_empty(),
            "evidence: {full}"
        );
    }
    for quiet in [
        "45.33.32.199",
        "45.33.32.198",
        "198.51.100.8",
        "45.33.32.197",
        "45.33.32.196",
    ] {
        assert!(
            !all.iter()
                .any(|a| a["subject_ip"] == quiet && a["kind"] != "volume_anomaly"),
            "{quiet} alerted: {all:?}"
        );
    }
    let metrics = reqwest::get(format!("{}/metrics", site.url))
        .await?
        .text()
        .await?;
    for k in [
        "port_scan",
        "brute_force",
        "exposed_service",
        "campaign",
        "volume_anomaly",
    ] {
        assert!(
            metrics.contains(&format!("watchhouse_alerts_total{{kind=\"{k}\"}} 1")),
            "{k}: {metrics}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feedback_suppresses_the_repeat_and_disputes_lower_confidence() -> anyhow::Result<()> {
    let site_feed = tempfile::tempdir()?;
    let feed = site_feed.path().join("list.netset");
    std::fs::write(&feed, "# test list\n45.33.32.150\n45.33.32.151\n")?;
    let feed_arg = format!("testlist={}", feed.display());
    let Three {
        site: _site,
        _hub,
        _cols,
        logs,
        admin,
    } = three(
        &["--feed", &feed_arg],
        &[
            ("WATCHHOUSE__HUB__DISPUTE_MIN_MEMBERS", "3"),
            ("WATCHHOUSE__HUB__FEED_CHECK_SECS", "1"),
        ],
    )
    .await?;
    let t = now_ms() - 30_000;
    let nets = ["198.51.100.3", "198.51.100.20", "198.51.100.40"];
    for (i, l) in logs.iter().enumerate() {
        append(
            l,
            &[
                ufw(t, "BLOCK", "45.33.32.150", nets[i], 22),
                ufw(t, "BLOCK", "45.33.32.151", nets[i], 22),
            ],
        );
    }
    let listed_alert = |member: i64, ip: &'static str| {
        let admin = &admin;
        async move {
            eventually(
                Duration::from_secs(30),
                &format!("member {member}'s alert about {ip}"),
                || async {
                    Ok(alerts(admin).await?.into_iter().find(|a| {
                        a["kind"] == "listed_source_inbound"
                            && a["subject_ip"] == ip
                            && a["member_id"] == member
                    }))
                },
            )
            .await
        }
    };
    let first = listed_alert(1, "45.33.32.150").await?;
    let (_, before) = admin.get_json("/api/v1/intel/check/45.33.32.150").await?;
    assert_eq!(before["labels"][0]["confidence"], 50);

    // Member 1 says the alert is expected: it is resolved and a repeat does not alert.
    let (s, v) = admin
        .post_json(
            &format!("/api/v1/alerts/{}/feedback", first["id"]),
            &serde_json::json!({"feedback": "expected", "note": "our scanner"}),
        )
        .await?;
    assert_eq!(s, reqwest::StatusCode::OK, "{v}");
    let (_, a) = admin
        .get_json(&format!("/api/v1/alerts/{}", first["id"]))
        .await?;
    assert_eq!(
        (&a["alert"]["status"], &a["alert"]["feedback"]),
        (
            &serde_json::json!("resolved"),
            &serde_json::json!("expected")
        )
    );
    append(
        &logs[0],
        &[
            ufw(t + 5000, "BLOCK", "45.33.32.150", nets[0], 23),
            ufw(t + 5000, "BLOCK", "45.33.32.151", nets[0], 23),
        ],
    );
    // The other address's alert grows with the same batch: so the batch has been stored.
    eventually(Duration::from_secs(30), "the second batch", || async {
        let a = alerts(&admin).await?;
        Ok(a.iter()
            .any(|a| {
                a["subject_ip"] == "45.33.32.151" && a["member_id"] == 1 && a["event_count"] == 2
            })
            .then_some(()))
    })
    .await?;
    let now_alerts = alerts(&admin).await?;
    let about: Vec<&Value> = now_alerts
        .iter()
        .filter(|a| {
            a["subject_ip"] == "45.33.32.150"
                && a["member_id"] == 1
                && a["kind"] == "listed_source_inbound"
        })
        .collect();
    assert_eq!(
        about.len(),
        1,
        "no new alert for the suppressed repeat: {about:?}"
    );
    assert_eq!(
        about[0]["event_count"], 1,
        "and the resolved one did not grow"
    );

    // Three members call 45.33.32.151 a false alarm: its intelligence is trusted half as much.
    for m in 1..=3 {
        let a = listed_alert(m, "45.33.32.151").await?;
        let (s, _) = admin
            .post_json(
                &format!("/api/v1/alerts/{}/feedback", a["id"]),
                &serde_json::json!({"feedback": "false_positive"}),
            )
            .await?;
        assert_eq!(s, reqwest::StatusCode::OK);
    }
    eventually(
        Duration::from_secs(20),
        "the dispute to lower confidence",
        || async {
            let (_, v) = admin.get_json("/api/v1/intel/check/45.33.32.151").await?;
            Ok((v["labels"][0]["confidence"] == 25).then_some(()))
        },
    )
    .await?;
    let (_, other) = admin.get_json("/api/v1/intel/check/45.33.32.150").await?;
    assert_eq!(
        other["labels"][0]["confidence"], 50,
        "one member's 'expected' is not a dispute"
    );
    Ok(())
}

/// A device asking for a listed domain (Suricata sees the HTTP Host) is reported, even though
/// the member sends no other outbound traffic and the address itself is on no list: the hub
/// pushes domains and URLs in the collector's watchlist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_asking_for_a_listed_domain_is_reported() -> anyhow::Result<()> {
    let site = Site::new()?;
    let feed = site.path("domains.txt");
    std::fs::write(&feed, "# test domains\nevil.example\n")?;
    let feed_arg = format!("c2domains={feed}");
    let _hub = site
        .start_hub(
            &["--feed", &feed_arg],
            &[("WATCHHOUSE__HUB__UPLOAD_INTERVAL_MS", "500")],
        )
        .await?;
    let log = site.dir.path().join("eve.json");
    append(&log, &[]);
    let col = site.start_collector(
        &["--file", log.to_str().unwrap()],
        &[("WATCHHOUSE__COLLECTOR__HEARTBEAT_SECS", "1")],
    )?;
    let admin = site.admin().await?;
    // Wait for the collector to have the watchlist with the domain in it.
    eventually(
        Duration::from_secs(30),
        "the watchlist at the collector",
        || async {
            let log = std::fs::read_to_string(&col.log).unwrap_or_default();
            Ok(log.contains("watchlist updated").then_some(()))
        },
    )
    .await?;
    let t = Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6f+0000")
        .to_string();
    let line = |host: &str, dst: &str| {
        format!(
            "{{\"timestamp\":\"{t}\",\"event_type\":\"alert\",\"src_ip\":\"192.168.1.5\",\"src_port\":50000,\
             \"dest_ip\":\"{dst}\",\"dest_port\":80,\"proto\":\"TCP\",\"alert\":{{\"action\":\"allowed\",\
             \"signature\":\"ET INFO HTTP request\"}},\"http\":{{\"hostname\":\"{host}\",\"url\":\"/gate.php\"}}}}\n"
        )
    };
    append(
        &log,
        &[
            line("c2.evil.example", "45.33.32.80"),
            line("www.harmless.example", "45.33.32.81"),
        ],
    );
    let a = eventually(Duration::from_secs(30), "the alert", || async {
        Ok(alerts(&admin)
            .await?
            .into_iter()
            .find(|a| a["kind"] == "listed_destination_outbound"))
    })
    .await?;
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["subject_ip"], "45.33.32.80");
    assert_eq!(a["lists"][0], "c2domains");
    let (_, full) = admin
        .get_json(&format!("/api/v1/alerts/{}", a["id"]))
        .await?;
    assert_eq!(full["evidence"][0]["host"], "c2.evil.example");
    // The harmless request stayed on the member's network (outbound traffic is not sent).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, ev) = admin.get_json("/api/v1/members/1/events").await?;
    let hosts: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["host"].as_str())
        .collect();
    assert_eq!(hosts, vec!["c2.evil.example"], "{ev}");
    Ok(())
}
