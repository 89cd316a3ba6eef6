//! End to end: the real `watchhouse demo` binary, driven over HTTP as a member would.

mod common;

use std::time::Duration;

use common::{eventually, Demo};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_shows_events_and_alerts_to_a_member_within_a_minute() -> anyhow::Result<()> {
    let mut demo = Demo::start(20).await?;
    let riverside = demo.member_id("Riverside");
    let member = demo.client("head@riverside.example").await?;

    // Events arrive through the real syslog -> collector -> hub path.
    let events = eventually(Duration::from_secs(60), "events for the member", || async {
        let (s, v) = member
            .get_json(&format!("/api/v1/members/{riverside}/events"))
            .await?;
        assert_eq!(s, StatusCode::OK);
        let n = v["events"].as_array().map(|a| a.len()).unwrap_or(0);
        Ok((n > 0).then_some(v))
    })
    .await?;
    let first = &events["events"][0];
    assert_eq!(first["member_id"], riverside);
    assert_ne!(
        first["direction"], "internal",
        "internal traffic must never reach the hub"
    );

    let alerts = eventually(Duration::from_secs(60), "alerts for the member", || async {
        let (_, v) = member
            .get_json(&format!("/api/v1/members/{riverside}/alerts"))
            .await?;
        let a = v["alerts"].as_array().cloned().unwrap_or_default();
        Ok(
            (a.iter().any(|x| x["severity"] == "high") && a.iter().any(|x| x["severity"] == "low"))
                .then_some(a),
        )
    })
    .await?;
    let to_first_alert = demo.started.elapsed();
    println!(
        "time from demo start to a high and a low alert visible over HTTP: {to_first_alert:?}"
    );
    assert!(alerts.iter().all(|a| a["member_id"] == riverside));

    // A device calling a listed server is reported (watchlist) and raises a critical alert.
    eventually(
        Duration::from_secs(60),
        "the critical outbound alert",
        || async {
            let (_, v) = member
                .get_json(&format!("/api/v1/members/{riverside}/alerts"))
                .await?;
            Ok(v["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["kind"] == "listed_destination_outbound" && a["severity"] == "critical")
                .then_some(()))
        },
    )
    .await?;

    // The alert reads in plain English, with evidence.
    let high = alerts.iter().find(|a| a["severity"] == "high").unwrap();
    let (s, detail) = member
        .get_json(&format!("/api/v1/alerts/{}", high["id"]))
        .await?;
    assert_eq!(s, StatusCode::OK);
    assert!(detail["title"]
        .as_str()
        .unwrap()
        .contains("got through your firewall"));
    assert!(!detail["what_to_do"].as_array().unwrap().is_empty());
    assert!(!detail["evidence"].as_array().unwrap().is_empty());

    // The overview page: chart, alerts, sources, ports, collector health.
    let page = member.get(&format!("/members/{riverside}")).await?;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()?
        .to_owned();
    assert!(csp.contains("default-src 'none'"));
    let html = page.text().await?;
    for needle in [
        "<h1>Riverside Primary School</h1>",
        r#"class="chart-svg""#,
        "Top sources of inbound traffic",
        "Most targeted services",
        "Riverside Primary School firewall",
        "A known attacker got through your firewall",
    ] {
        assert!(html.contains(needle), "overview lacks {needle}");
    }
    let alert_page = member
        .get(&format!("/alerts/{}", high["id"]))
        .await?
        .text()
        .await?;
    assert!(alert_page.contains("What to do"));

    // Collector health reached the hub: lines received, unparsed lines counted and sampled,
    // internal traffic withheld at the edge.
    let collectors = eventually(Duration::from_secs(60), "collector health", || async {
        let (_, v) = member
            .get_json(&format!("/api/v1/members/{riverside}/collectors"))
            .await?;
        let c = v["collectors"][0].clone();
        let stats = &c["stats"];
        let ready = stats["withheld"]["internal"].as_u64().unwrap_or(0) > 0
            && stats["unparsed"].as_object().is_some_and(|m| !m.is_empty());
        Ok(ready.then_some(c))
    })
    .await?;
    assert!(collectors["stats"]["lines_received"].as_u64().unwrap() > 0);
    assert!(!collectors["stats"]["samples"]
        .as_array()
        .unwrap()
        .is_empty());

    // Metrics.
    let metrics = member.get("/metrics").await?.text().await?;
    let ingested: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("watchhouse_events_ingested_total "))
        .unwrap()
        .parse()?;
    assert!(ingested > 0);
    assert!(metrics.contains("watchhouse_alerts_total{kind=\"listed_source_inbound\"}"));
    let (s, h) = member.get_json("/healthz").await?;
    assert_eq!((s, h["status"].as_str()), (StatusCode::OK, Some("ok")));

    // Ctrl-C stops it cleanly.
    let status = demo.proc.interrupt(Duration::from_secs(20))?;
    assert!(
        status.success(),
        "demo exited with {status}; log:\n{}",
        demo.proc.log()
    );
    assert!(demo.proc.log().contains("demo stopped"));
    Ok(())
}
